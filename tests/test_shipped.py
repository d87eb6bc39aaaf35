"""The shipped configs and word lists: where they are, and a word list by name."""

import os
from pathlib import Path

import pytest

from rnnac.errors import ConfigError, DataError
from rnnac.storage import shipped
from rnnac.storage.shipped import is_shipped_list, shipped_dir, shipped_lists, word_list_file
from rnnac.storage.wordlist import read_word_list

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_dir_prefers_the_package_then_the_source_tree(tmp_path, monkeypatch):
    assert shipped_dir("configs") == ROOT / "configs"  # this source tree
    (tmp_path / "share" / "configs").mkdir(parents=True)
    monkeypatch.setattr(shipped, "PACKAGE", tmp_path)
    assert shipped_dir("configs") == tmp_path / "share" / "configs"  # an installed package
    with pytest.raises(ConfigError, match="shipped data are missing"):
        shipped_dir("data")
    assert word_list_file("words") == "words"  # nothing shipped: a name is just a missing file
    assert not is_shipped_list(ROOT / "data" / "words.tsv")
    assert os.path.isdir(ROOT / "data")


def test_the_shipped_lists_by_name_with_their_licenses():
    assert shipped_lists() == {"identifiers": ROOT / "data" / "identifiers.txt", "names": ROOT / "data" / "names.txt",
                               "words": ROOT / "data" / "words.tsv"}
    readme = (shipped_dir("data") / "README.md").read_text()
    assert all(f"## {path.name}" in readme for path in shipped_lists().values())  # each with its source and license
    assert is_shipped_list(ROOT / "data" / "names.txt") and not is_shipped_list(ROOT / "data" / "README.md")


def test_a_file_wins_over_a_name_and_a_folder_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert word_list_file("names") == ROOT / "data" / "names.txt"
    for other in ("-", "names.txt", "data/names", "nope", ""):
        assert word_list_file(other) == other
    Path("words").mkdir()
    assert word_list_file("words") == ROOT / "data" / "words.tsv"
    Path("names").write_text("ann\nbob\n")
    assert word_list_file("names") == "names" and word_list_file(Path("names")) == Path("names")


def test_read_word_list_reads_a_shipped_list_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = read_word_list("names")
    assert len(listing) == 29_494 and listing.path == str(ROOT / "data" / "names.txt")
    with pytest.raises(DataError, match=r"^wrods: no such file, nor a shipped word list: identifiers, names, words$"):
        read_word_list("wrods")
    for path in ("wrods.txt", "lists/wrods"):  # a file's name or path: not a name, no list of names
        with pytest.raises(DataError, match=f"^{path}: no such file$"):
            read_word_list(path)
