"""Training without writing a config: what `rnnac train TARGET` means, and `rnnac init`'s config.

TARGET is, in this order: a file (a word list: a .txt, .tsv or .csv file, or any file that is
not a YAML mapping, trained with settings sized to it (`sized_settings`) into runs/<list name>;
else a config file); a run folder (the settings its run saved, for `--resume`); the name of a
shipped config (`default`, `names`, `tiny`, ...: package data, writing to runs/<name> under the
working directory); the name of a shipped word list (`words`, ...: sized to it, as a file).

    config, note = training_config("mylist.txt")
    config.model.hidden_size -> 32 for a list of 300 words; note says so
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from rnnac.errors import ConfigError, OutputError, quote
from rnnac.storage.shipped import LIST_SUFFIXES, is_shipped_list, looks_like_a_name, shipped_dir, shipped_lists, word_list_file
from rnnac.training.config import Config, DataConfig, config_from_tree, config_text, load_config, read_yaml
from rnnac.training.rundir import CONFIG_FILE, holds_run, saved_config

CONFIG_SUFFIXES = (".yaml", ".yml")  # always configs
LARGEST_CONFIG = 1 << 20  # bytes; a file without a telling suffix above this is a word list

# sized_settings: (lists of fewer distinct words than this, hidden_size, batch_size)
SIZES = ((1_000, 32, 32), (10_000, 64, 64), (50_000, 128, 128), (float("inf"), 256, 128))
EPOCHS = 30  # passes over the list that max_steps aims at
MIN_STEPS, MAX_STEPS = 300, 20_000  # bounds on max_steps: a few seconds for a tiny list, minutes for a big one
VALIDATIONS = 10  # validations per run
VAL_WORDS = 5_000  # at most this many held-out words: enough to compare checkpoints, few enough to keep
SIZED_KEYS = ("model.hidden_size", "train.batch_size", "train.max_steps", "data.val_fraction")  # what the log states


def shipped_configs() -> list[str]:
    """The names `rnnac train NAME` accepts: default, names, tiny, ..."""
    return sorted(path.stem for path in shipped_dir("configs").glob("*.yaml"))


def training_config(target: str, overrides: Iterable[str] = ()) -> tuple[Config, str]:
    """The Config that `rnnac train TARGET --set ...` runs, and a line for the log saying what
    was chosen for the user ("" for a config file of theirs)."""
    path, overrides = Path(target), list(overrides)
    if path.is_dir() and holds_run(path):  # a run folder wins over a name, a folder that is none does not
        return saved_config(path, overrides), f"the settings of the run in {path} (its {CONFIG_FILE})"
    if not path.is_file():
        if target in shipped_configs():
            config = load_config(shipped_dir("configs") / f"{target}.yaml", [f"output.dir=runs/{target}", *overrides])
            return config, f"shipped config {target!r}: {config.data.path}, into {config.output.dir}"
        if target in shipped_lists():
            config, note = list_config(shipped_lists()[target], overrides)
            return config, f"shipped word list {target!r}, {note}"
        _refuse_missing(target, path)
    if is_word_list(path):
        return list_config(path, overrides)
    return load_config(path, overrides), ""


def _refuse_missing(target: str, path: Path) -> None:
    """ConfigError for a TARGET that is a folder but no run folder, or nothing at all and without
    a suffix (naming what is shipped when it looks like a name); a missing config or list file
    (`my.yaml`, `mylist.txt`) is left to its reader, which says which one is missing."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder but not a run folder (it holds no {CONFIG_FILE}): give a word list, "
                          "a config, a run folder or a shipped name")
    if os.path.lexists(path) or path.suffix:
        return
    if looks_like_a_name(target):
        raise ConfigError(f"no file {quote(target)}, nor a shipped config ({', '.join(shipped_configs())}) or word list "
                          f"({', '.join(shipped_lists())})")
    raise ConfigError(f"no file or run folder {quote(target)}")


def is_word_list(path: Path) -> bool:
    """A .txt, .tsv or .csv file, or a file of another name that does not read as a YAML mapping."""
    suffix = path.suffix.lower()
    if suffix in LIST_SUFFIXES:
        return True
    if suffix in CONFIG_SUFFIXES or not path.is_file():
        return False  # load_config names what is wrong
    if path.stat().st_size > LARGEST_CONFIG:
        return True
    try:
        return not isinstance(read_yaml(path), dict)
    except ConfigError:  # not YAML at all
        return True


def list_config(path: Path, overrides: Iterable[str] = ()) -> tuple[Config, str]:
    """A Config for training on the word list at `path` with settings sized to it, into
    runs/<list name> under the working directory; and a line stating those settings."""
    path = Path(word_list_file(path))
    tree, n_words = _list_tree(path, Path.cwd())
    config = config_from_tree(tree, str(path), os.getcwd(), overrides)
    return config, f"{path}: {n_words:,} words; sized to them: {describe_sizes(config)} (change any with --set)"


def _list_tree(path: Path, folder: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """The config tree for the word list at `path` (its path and runs/<list name>, both relative to
    `folder`, but a shipped list's absolute: it stays where rnnac is installed when the config
    moves; and the settings sized to it) and its number of distinct words."""
    from rnnac.storage.wordlist import read_word_list

    listing = read_word_list(path, lowercase=DataConfig.lowercase, fold_accents=DataConfig.fold_accents)  # as trained by default
    where = {"data": {"path": os.path.abspath(path) if is_shipped_list(path) else os.path.relpath(os.path.abspath(path), folder)},
             "output": {"dir": os.path.relpath(Path.cwd() / "runs" / path.stem, folder)}}
    return _merged(where, sized_settings(len(listing), listing.is_frequency_list)), len(listing)


def describe_sizes(config: Config) -> str:
    """'model.hidden_size 32, train.batch_size 32, train.max_steps 300, data.val_fraction 0.1'
    (without the model's size when it comes from train.init_from)."""
    tree = config.to_dict()
    keys = [key for key in SIZED_KEYS if not (config.train.init_from and key.startswith("model."))]
    return ", ".join(f"{key} {_number(tree[key.split('.')[0]][key.split('.')[1]])}" for key in keys)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def sized_settings(n_words: int, frequency_list: bool = False) -> dict[str, dict[str, Any]]:
    """Settings for training on a list of `n_words` distinct words, as config sections.

    1. hidden_size and batch_size grow with the list (SIZES): 32 and 32 below 1,000 words.
    2. max_steps makes EPOCHS passes over the words, within [MIN_STEPS, MAX_STEPS], rounded to
       100; validation VALIDATIONS times in the run.
    3. val_fraction holds out 10% of the words, at most VAL_WORDS of them.
    4. Fixed: weight decay 0.1 (small lists overfit without it); a frequency list is drawn by count,
       as people type its words.

    sized_settings(300)["model"]["hidden_size"] -> 32
    """
    hidden_size, batch_size = next((h, b) for below, h, b in SIZES if n_words < below)
    max_steps = int(min(max(round(EPOCHS * n_words / batch_size, -2), MIN_STEPS), MAX_STEPS))
    val_fraction = 0.1 if n_words * 0.1 <= VAL_WORDS else float(f"{VAL_WORDS / n_words:.2g}")
    return {"data": {"val_fraction": val_fraction, "weighting": "count" if frequency_list else "uniform"},
            "model": {"hidden_size": hidden_size},
            "train": {"batch_size": batch_size, "max_steps": max_steps, "eval_every": max(1, max_steps // VALIDATIONS),
                      "weight_decay": 0.1}}


def _merged(a: dict, b: dict) -> dict:
    """Two {section: {key: value}} trees in one; b wins."""
    return {section: {**a.get(section, {}), **b.get(section, {})} for section in {**a, **b}}


def init_text(wordlist: str | os.PathLike | None = None, config_path: str | os.PathLike | None = None) -> str:
    """The config `rnnac init` writes: every field with its meaning, range and default
    (config.config_text), filled in for `wordlist` when given (its path, runs/<list name>, and
    the settings `rnnac train WORDLIST` would size to it). Paths are written relative to the
    folder of `config_path`, where the text goes (the working directory for None)."""
    if wordlist is None:
        return config_text(header="# rnnac config: every field, at its default unless marked. Set data.path to your\n"
                                  "# word list, then: rnnac train THIS_FILE\n" + _PATHS_NOTE)
    wordlist = word_list_file(wordlist)  # a shipped list by name
    folder = Path(config_path).parent.absolute() if config_path else Path.cwd()
    tree, n_words = _list_tree(Path(wordlist), folder)
    header = (f"# rnnac config for {Path(wordlist).name}: every field, at its default unless marked; the marked\n"
              f"# sizes suit its {n_words:,} words. Train with: rnnac train THIS_FILE\n")
    return config_text(tree, header + _PATHS_NOTE)


_PATHS_NOTE = ("# Paths are relative to this file's folder; paths given with --set are relative to the working\n"
               "# directory. `null` means \"not set\" and is allowed only where noted.\n")


def write_new_file(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Write `text` to `path` whole or not at all (atomically: a full disk leaves the old file as
    it was); OutputError if the file exists (unless `force`), is a symbolic link or not a regular
    file (never written through: the link's target would be overwritten), or cannot be written."""
    from rnnac.storage.atomic import not_written_through, replace_atomically

    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise OutputError(f"cannot write {quote(str(path))}: {e.strerror}") from None
    what = None if mode is None else not_written_through(mode)
    if what:
        raise OutputError(f"{quote(str(path))} is {what}; rnnac does not write through it: choose another file")
    if mode is not None and not force:
        raise OutputError(f"{quote(str(path))} exists: choose another file, or --force to overwrite it")
    try:
        replace_atomically(path, lambda f: f.write(text.encode("utf-8")))
    except OSError as e:
        raise OutputError(f"cannot write {quote(str(path))}: {e.strerror}") from None
    return path
