"""Where a run writes: its folder, locked for the whole run, and the metrics file in it.

Nothing is lost: rnnac writes and deletes in a run folder only its own files (RUN_FILES), never
through a symbolic link, and writes them atomically (a temporary file of a random name beside
the target, then a rename), so a kill leaves the previous file whole; the next run removes the
temporary files such a kill leaves. The folder is locked (flock on LOCK_FILE, which holds the
pid) for as long as the run goes, so a second run into it is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Iterable

from rnnac.errors import ConfigError, RunExistsError, RunFolderError, RunLockedError
from rnnac.storage.atomic import not_written_through, replace_atomically
from rnnac.training.config import Config, config_from_tree, read_yaml

try:
    import fcntl
except ImportError:  # Windows: no flock; a second run into the folder is not detected there
    fcntl = None

CONFIG_FILE = "run-config.yaml"  # the config as run; not config.yaml, which may be the user's own file
RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl", CONFIG_FILE)  # the files a run writes: nothing else is touched
LOCK_FILE = ".rnnac.lock"  # flock()ed while a run goes; holds its pid
LEGACY_TEMP_FILES = (".config.yaml.tmp", ".metrics.jsonl.tmp")  # fixed temporary names of earlier versions


class RunFolder:
    """A run's output folder, locked for as long as the run goes: a second run into it is refused
    with the pid of the first, and the lock goes with a process that dies. rnnac writes there only
    RUN_FILES (never through a symbolic link), deletes only those, and cleans up the temporary
    files of a run that was killed; the user's own files are left alone.

        with RunFolder(Path("runs/x")) as folder:
            folder.claim(force=False)
            folder.write_config(config)
    """

    def __init__(self, path: Path):
        self.path, self._lock_fd = path, None

    def __enter__(self) -> RunFolder:
        self.path.mkdir(parents=True, exist_ok=True)
        self._refuse_links()
        self._lock()
        try:
            self._remove_stale_temp_files()  # the lock says no rnnac process is writing them
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._lock_fd)  # releases the lock

    def claim(self, force: bool) -> None:
        """Make the folder ready for a new run: RunExistsError if it holds one, unless `force`,
        which deletes that run's files (and nothing else)."""
        held = [name for name in RUN_FILES if os.path.lexists(self.path / name)]
        if held and not force:
            how = ("resume it with --resume, start over with --force" if "last.npz" in held
                   else "it has no last.npz to resume: start over with --force")
            raise RunExistsError(f"{self.path} already holds a run ({', '.join(held)}): {how}, or set output.dir")
        for name in held:
            os.unlink(self.path / name)

    def write_config(self, config: Config) -> None:
        import yaml

        replace_atomically(self.path / CONFIG_FILE, lambda f: f.write(yaml.safe_dump(config.to_dict(), sort_keys=False).encode()))

    def _refuse_links(self) -> None:
        for name in (*RUN_FILES, LOCK_FILE):
            try:
                mode = os.lstat(self.path / name).st_mode
            except FileNotFoundError:
                continue
            what = not_written_through(mode)
            if what:
                raise RunFolderError(f"{self.path / name} is {what}; rnnac writes only its own files there, never through "
                                     "a link: remove it or set output.dir")

    def _lock(self) -> None:
        fd = _open_own(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f"pid {holder}" if holder.isdigit() else "pid unknown"
            raise RunLockedError(f"{self.path} is in use by another rnnac run ({pid}): wait for it to end, stop it, "
                                 "or set output.dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _remove_stale_temp_files(self) -> None:
        with os.scandir(self.path) as entries:
            for entry in entries:
                if _is_own_temp_file(entry.name) and not entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def holds_run(folder: Path) -> bool:
    """Whether `folder` is a run folder: it holds the config a run wrote, or a last.npz to resume."""
    return (folder / CONFIG_FILE).is_file() or (folder / "last.npz").is_file()


def saved_config(folder: Path, overrides: Iterable[str] = ()) -> Config:
    """The config the run in `folder` ran with (its CONFIG_FILE, whose paths are absolute), writing
    to `folder` wherever it was first (a run folder may have been moved), then overrides
    "section.key=value" as load_config applies them: what `rnnac train --resume RUN` continues with.

        saved_config(Path("runs/x"), ["train.max_steps=5000"]).train.max_steps -> 5000
    """
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{folder} holds no {CONFIG_FILE} to read the run's settings from: give the config or word "
                          f"list that started the run, with --resume")
    tree = read_yaml(path)
    if isinstance(tree, dict) and isinstance(tree.get("output") or {}, dict):  # else config_from_tree names the problem
        tree = {**tree, "output": {**(tree.get("output") or {}), "dir": os.path.abspath(folder)}}
    return config_from_tree(tree, str(path), os.path.abspath(folder), overrides)


def _is_own_temp_file(name: str) -> bool:
    """A temporary file of rnnac's atomic writes, `.{file}.{random}.tmp` (rnnac.storage.atomic)."""
    return name in LEGACY_TEMP_FILES or any(name.startswith(f".{own}.") and name.endswith(".tmp") for own in RUN_FILES)


def _open_own(path: Path, flags: int) -> int:
    """os.open for one of rnnac's files, never through a symbolic link planted at `path`."""
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        if os.path.islink(path):
            raise RunFolderError(f"{path} is a symbolic link; rnnac writes only its own files there, never through a "
                                 "link: remove it or set output.dir") from None
        raise e


class Metrics:
    """metrics.jsonl, one JSON object a line; on resume, lines past the checkpoint are dropped
    so the file reads as one uninterrupted run, and unreadable lines (a torn write, foreign
    bytes) are dropped with a warning."""

    def __init__(self, path: Path, keep_until: int, warn):
        if keep_until:
            _keep_lines_until(path, keep_until, warn)
        self.file = open(_open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")

    def __enter__(self) -> Metrics:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, **record) -> None:
        record = {k: json_float(v) if isinstance(v, float) else v for k, v in record.items()}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()


def _keep_lines_until(path: Path, step: int, warn) -> None:
    """Rewrite the metrics file at `path` with its readable lines of steps up to `step`."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    kept, unreadable = [], 0
    for line in filter(bytes.strip, lines):
        at = _step_of(line)
        unreadable += at is None
        if at is not None and at <= step:
            kept.append(line + b"\n")
    if unreadable:
        warn(f"{path}: dropped {unreadable:,} unreadable line{'s' * (unreadable > 1)}")
    replace_atomically(path, lambda f: f.write(b"".join(kept)))


def _step_of(line: bytes) -> int | None:
    """The step of a metrics line, or None for a line that is not one (torn by a kill, foreign)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def json_float(x):
    """JSON has no inf or NaN: write them as None."""
    return None if x is None or not math.isfinite(x) else x
