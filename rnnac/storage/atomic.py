"""Writing a file whole or not at all, as every file rnnac writes is written.

The bytes go to a temporary file of a random, exclusive name beside the target (mkstemp: no
planted link is followed; `.{name}.{random}.tmp`, a pattern rundir.py cleans up after a killed
process), are flushed to disk, and are renamed over the target: within one filesystem POSIX
makes the rename atomic, so a crash, even SIGKILL, leaves the old file or the new one, never a
torn mix. The file gets mode 0666 minus the umask, like any file the process creates.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable


def _read_umask() -> int:
    """The process's umask. os.umask can only read it by setting it, which races with other threads
    creating files, so it is read once, at import, with a strict 0o077 standing in meanwhile: a file
    made in that instant ends up too private, never too open."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def not_written_through(mode: int) -> str | None:
    """What a file of this lstat mode is when rnnac must not write over it ("a symbolic link",
    whose target would be overwritten, or "not a regular file"); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"


def replace_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`. On any
    failure, Ctrl-C and a full disk included, the temporary file is removed; an OSError that names
    no file is made to name `path`."""
    import tempfile  # here, not at the top: `rnnac complete` only reads, and starts faster without it

    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp's 0600 is needlessly private
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp_name, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file: say which
            e.filename = str(path)
        raise
    _fsync_dir(path.parent)  # makes the rename itself survive a power cut


def _fsync_dir(folder: Path) -> None:
    """Best effort: flush a directory entry to disk (not possible on every OS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
