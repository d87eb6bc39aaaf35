"""The configs and word lists shipped with rnnac, and a word list by name.

They sit at the top of the source tree (configs/, data/) and go into the wheel as
rnnac/share/configs and rnnac/share/data (pyproject.toml), data/README.md with its sources and
licenses included, so `../data/names.txt` in a config means the same in both. A command that
takes a word list takes a shipped one by name when no file has that name:

    word_list_file("names") -> .../rnnac/share/data/names.txt   (or data/names.txt in a source tree)
    word_list_file("mylist.txt") -> "mylist.txt"
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnac.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent.parent  # the rnnac package
LIST_SUFFIXES = (".txt", ".tsv", ".csv")  # a file so named is a word list (data/README.md is not)


def shipped_dir(kind: str) -> Path:
    """The folder of the shipped "configs" or word lists ("data"): inside the installed package
    (rnnac/share/), else at the top of the source tree."""
    for folder in (PACKAGE / "share" / kind, PACKAGE.parent / kind):
        if folder.is_dir():
            return folder
    raise ConfigError(f"the shipped {kind} are missing from this installation of rnnac ({PACKAGE})")


def shipped_lists() -> dict[str, Path]:
    """The shipped word lists by name, sorted: {"identifiers": .../identifiers.txt, "names": ..., "words": ...}."""
    files = [path for path in shipped_dir("data").iterdir() if path.suffix in LIST_SUFFIXES]
    return {path.stem: path for path in sorted(files)}


def word_list_file(path: str | os.PathLike) -> str | os.PathLike:
    """`path` itself when a file has that name, or it is "-" (stdin), or no shipped list has that
    name; else the shipped list of that name (shipped_lists). A folder of that name does not win."""
    name = os.fspath(path)
    if name == "-" or os.path.isfile(name) or not looks_like_a_name(name):
        return path
    try:
        return shipped_lists().get(name, path)
    except ConfigError:  # an installation without its data: the path is simply missing
        return path


def is_shipped_list(path: str | os.PathLike) -> bool:
    """Whether `path` is one of the shipped word lists."""
    try:
        return os.path.abspath(path) in {os.path.abspath(p) for p in shipped_lists().values()}
    except ConfigError:
        return False


def looks_like_a_name(text: str) -> bool:
    """Whether `text` could be the name of a shipped config or list: no folder, no suffix ("words", not "words.tsv")."""
    return bool(text) and os.sep not in text and "/" not in text and not Path(text).suffix


def missing_list_hint(path: str | os.PathLike) -> str:
    """What to add to "no such file" for a missing word list that looks like a name: the shipped
    names (", nor a shipped word list: identifiers, names, words"); "" otherwise."""
    if not looks_like_a_name(os.fspath(path)):
        return ""
    try:
        names = list(shipped_lists())
    except ConfigError:
        return ""
    return f", nor a shipped word list: {', '.join(names)}" if names else ""
