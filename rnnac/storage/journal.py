"""The journal of a checkpoint's word list: edits made since it was written, one a line.

`runs/x/best.npz` has its journal at `runs/x/best.npz.journal`, JSON lines:

    {"journal": 1, "lexicon_sha256": "...", "accepts": 0}     the header: the list it follows
    {"op": "accept", "word": "record", "count": 1250.0, "prefix": "rec"}
    {"op": "set", "word": "recipe", "count": 3.0}
    ...

Each edit (rnnac.storage.lexedit) is appended as one write of one line under an exclusive lock
and fsync'd before the call returns, so an edit that was answered is on disk. A crash can
leave only the last line torn (no newline at its end): reading skips it, and the next append
cuts it first. The header names the checkpoint's list by its sha256 (meta lexicon sha256): once
the edits are compacted into the checkpoint (`rnnac lexicon compact`: the new checkpoint is
written atomically, then the journal removed), a journal left by a crash between the two names
another list and is ignored, so no edit is applied twice. `accepts` is how many accepts the
checkpoint's counts already hold (their decay's clock: rnnac.inference.live).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

JOURNAL_SUFFIX = ".journal"
VERSION = 1


def journal_path(checkpoint: str | os.PathLike) -> Path:
    """Where the journal of `checkpoint` lies: beside it, named after it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + JOURNAL_SUFFIX)


class JournalError(ValueError):
    """A journal that cannot be read: not rnnac's, or a line in its middle damaged."""


def read_journal(path: str | os.PathLike, lexicon_sha256: str) -> tuple[list[dict], bool]:
    """(the edits of the journal at `path` for the list of that sha256, whether a torn last line
    was skipped). No journal, or one for another list (compacted since), is no edit."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], False
    lines = data.split(b"\n")
    torn = lines.pop() != b""  # the text after the last newline: empty unless a write was cut
    if not lines:
        return [], torn
    header = _parse(lines[0], path, 1)
    if not isinstance(header, dict) or header.get("journal") != VERSION:
        raise JournalError(f"{path}: not a journal of rnnac's (line 1 is no header of version {VERSION})")
    if header.get("lexicon_sha256") != lexicon_sha256:
        return [], torn
    return [_parse(line, path, number) for number, line in enumerate(lines[1:], start=2)], torn


def journal_header(path: str | os.PathLike) -> dict | None:
    """The journal's header, or None without one."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    return _parse(first.rstrip(b"\n"), path, 1) if first.endswith(b"\n") else None


def _parse(line: bytes, path, number: int):
    try:
        return json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise JournalError(f"{path}: line {number} is damaged (not JSON)") from None


def append_edits(path: str | os.PathLike, lexicon_sha256: str, edits: list[dict], accepts: int = 0) -> None:
    """Append `edits` to the journal at `path` for the list of that sha256, in one write, fsync'd;
    the journal is started (or restarted, when it follows another list) with its header first.
    A torn last line is cut before. Reads the header and the tail only: an append costs the
    same however long the journal."""
    import fcntl

    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        f.seek(0)
        first = f.readline()
        header = _header_of(first)
        if header is None and first.endswith(b"\n"):
            raise JournalError(f"{path}: not a journal of rnnac's (line 1 is no header of version {VERSION}); move it away")
        text = b""
        if header is None or header.get("lexicon_sha256") != lexicon_sha256:
            f.truncate(0)
            text = _line({"journal": VERSION, "lexicon_sha256": lexicon_sha256, "accepts": accepts})
        else:
            _cut_torn_tail(f)
        text += b"".join(_line(edit) for edit in edits)
        os.write(f.fileno(), text)  # append mode: at the end, whatever the offset
        os.fsync(f.fileno())
    if header is None:
        _fsync_folder(Path(path).parent)  # a new file's name is on disk too


def _cut_torn_tail(f) -> None:
    """Cut the file after its last newline (a line a crash left unfinished), reading back from the end."""
    end = f.seek(0, os.SEEK_END)
    at = end
    while at > 0:
        start = max(0, at - 65536)
        f.seek(start)
        chunk = f.read(at - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            if start + newline + 1 < end:
                f.truncate(start + newline + 1)
            return
        at = start
    f.truncate(0)


def _header_of(data: bytes) -> dict | None:
    first, newline, _ = data.partition(b"\n")
    if not newline:
        return None
    try:
        header = json.loads(first)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return header if isinstance(header, dict) and header.get("journal") == VERSION else None


def _line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
