"""Run configuration: a YAML file read into one dataclass per section, checked key by key.

    config = load_config("configs/tiny.yaml", ["train.learning_rate=0.01"])
    config.train.learning_rate -> 0.01

A file has up to four sections (data, model, train, output); a key left out takes
its default. configs/default.yaml documents every field. Unknown keys, wrong types,
values out of range, numbers that are not finite (inf, nan, 1e999), bad choices and a key
written twice raise ConfigError naming the key; user input in a message is cut by errors.quote.

Paths written in a config file are relative to the folder holding that file, so a
config means the same thing from any working directory; paths given as overrides
(`--set output.dir=runs/x`) are relative to the working directory, like any other
command-line path, and so are default paths. All are stored absolute.
"""

import dataclasses
import difflib
import json
import math
import os
import re
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Iterable, get_args

import yaml

from rnnac.engine.bptt import LOSSES
from rnnac.engine.model import ACTIVATIONS, FLOAT_DTYPES
from rnnac.engine.optim import OPTIMIZER_ALIASES, OPTIMIZERS, SCHEDULES
from rnnac.errors import ConfigError, quote
from rnnac.storage.checkpoint import BUNDLED_NAME
from rnnac.storage.folding import Folding
from rnnac.storage.wordlist import FORMATS, SCHEMES


def _option(default: Any = MISSING, *, help: str, null: str | None = None, choices=None, aliases=None, ge=None, gt=None,
            le=None, lt=None, path=False, keywords=()):
    """A dataclass field plus what `_check` applies and `config_text` writes: its meaning (`help`;
    `null`, what null means where it is allowed), choices (and other names of them, stored as the
    choice they name), bounds, is-a-path (and the `keywords` such a field takes as they are)."""
    bounds = {">=": ge, ">": gt, "<=": le, "<": lt}
    return field(default=default, metadata={"help": help, "null": null, "choices": choices, "aliases": aliases or {},
                                            "bounds": bounds, "path": path, "keywords": keywords})


@dataclass
class DataConfig:
    """Which words to read and which of them to keep."""

    path: str = _option(path=True, help="word list, required: one word a line, a frequency list of word<TAB>count, "
                                        "word,count or `uniq -c` lines, or `history` output")
    format: str = _option("auto", choices=FORMATS, help="how its lines read; auto detects it from the file")
    lowercase: bool = _option(True, help="lowercase words before filtering")
    fold_accents: bool = _option(True, help="read words without accents (café as cafe, ø as o, ß as ss) before filtering; "
                                            "completions keep the list's spelling")
    allowed_chars: str | None = _option(None, null="keep every word",
                                        help="drop words holding other characters, e.g. \"abcdefghijklmnopqrstuvwxyz'-\"")
    min_length: int = _option(1, ge=1, help="drop words shorter than this")
    max_length: int | None = _option(None, ge=1, null="no limit", help="drop words longer than this, at least min_length")
    max_words: int | None = _option(None, ge=1, null="all", help="keep only the first N words of the file")
    val_fraction: float = _option(0.1, ge=0, lt=1, help="share of words held out for validation")
    weighting: str = _option("uniform", choices=SCHEMES, help="how often a word is drawn, by its count in a frequency list")

    @property
    def folding(self) -> Folding:
        """How the model reads text (rnnac.storage.folding): lowercase, fold_accents."""
        return Folding(self.lowercase, self.fold_accents)


@dataclass
class ModelConfig:
    """The shape of the RNN."""

    hidden_size: int = _option(128, ge=1, help="H, the size of the hidden state a_t")
    activation: str = _option("tanh", choices=tuple(ACTIVATIONS), help="h in a_t = h(z_t)")
    dtype: str = _option("float32", choices=FLOAT_DTYPES, help="dtype of parameters and activations")


@dataclass
class TrainConfig:
    """How to fit the parameters, and when to stop."""

    optimizer: str = _option("adam", choices=tuple(OPTIMIZERS), aliases=OPTIMIZER_ALIASES,
                             help="update rule (adamw is adam with weight_decay > 0)")
    learning_rate: float = _option(0.003, gt=0, help="base learning rate, before warm-up and schedule")
    momentum: float = _option(0.9, ge=0, lt=1, help="heavy-ball coefficient, used by optimizer momentum only")
    weight_decay: float = _option(0.0, ge=0, help="decoupled (AdamW-style) weight decay; 0 switches it off")
    batch_size: int = _option(64, ge=1, help="words per update")
    max_steps: int = _option(2000, ge=1, help="stop after this many updates")
    max_epochs: int | None = _option(None, ge=1, null="no limit", help="stop after this many passes over the training words")
    max_seconds: float | None = _option(None, gt=0, null="no limit", help="stop after this much wall-clock time")
    target_loss: float | None = _option(None, gt=0, null="never",
                                        help="stop once the smoothed training loss goes below this, as in seed 000")
    patience: int | None = _option(None, ge=1, null="never", help="stop after this many validations without improvement")
    eval_every: int = _option(200, ge=1, help="validate every N updates")
    eval_words: int | None = _option(None, ge=1, null="all of them", help="validate periodically on at most N validation words")
    schedule: str = _option("cosine", choices=SCHEDULES, help="learning-rate schedule")
    warmup_steps: int = _option(0, ge=0, help="first ramp the learning rate linearly up from 0 over this many updates")
    decay_every: int = _option(1000, ge=1, help="schedule step: multiply the learning rate by decay_rate every N updates")
    decay_rate: float = _option(0.5, gt=0, le=1, help="schedule step: the factor")
    min_lr: float = _option(0.0, ge=0, help="floor of the step and cosine schedules, at most learning_rate")
    dropout: float = _option(0.0, ge=0, lt=1, help="drop each hidden unit the output layer reads with this probability in "
                                                    "training (not in the recurrence); 0 switches it off")
    average: float | None = _option(None, gt=0, lt=1, null="off",
                                    help="validate and keep the moving average of the parameters with this decay (Polyak averaging)")
    clip_norm: float | None = _option(5.0, gt=0, null="off", help="rescale gradients whose global L2 norm exceeds this, as in seed 003")
    clip_value: float | None = _option(None, gt=0, null="off", help="clip each gradient entry to [-v, v]")
    loss: str = _option("cross_entropy", choices=LOSSES, help="softmax and NLL (seed 004), or squared error (seed 002)")
    truncate: int | None = _option(None, ge=0, null="full BPTT", help="backpropagate through at most N time steps")
    seed: int = _option(0, ge=0, help="seeds the run's one random generator: init, split, batches")
    threads: int | None = _option(None, ge=1, le=64, null="automatic", help="BLAS threads")
    init_from: str | None = _option(None, path=True, keywords=(BUNDLED_NAME,), null="random weights (seed)",
                                    help="start from this trained model (a checkpoint, a run folder, or bundled), "
                                         "keeping its size and characters")


@dataclass
class OutputConfig:
    """Where a run writes its checkpoints and logs."""

    dir: str = _option("runs/default", path=True, help="run folder for checkpoints and logs")
    checkpoint_every: int | None = _option(None, ge=1, null="at each validation", help="save every N updates")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "output": OutputConfig}
_FIELDS = {name: {f.name: f for f in dataclasses.fields(cls)} for name, cls in SECTIONS.items()}
_KEYS = [f"{section}.{key}" for section, keys in _FIELDS.items() for key in keys]


@dataclass
class Config:
    """A whole run: `config.train.learning_rate`. Paths are absolute."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict of plain values, ready for JSON (checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, tree: dict) -> "Config":
        """Inverse of to_dict, with the same checks as a file; relative paths are from the working directory."""
        return config_from_tree(tree, "config dict", os.getcwd())


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config, then apply overrides "section.key=value" in order.

    An override's value is read as YAML, so 0.01 is a float, null is None and true a bool.
    load_config("configs/tiny.yaml", ["model.hidden_size=32"]).model.hidden_size -> 32
    """
    return config_from_tree(read_yaml(path), str(path), os.path.dirname(os.path.abspath(path)), overrides)


def config_from_tree(tree: Any, origin: str, base_dir: str, overrides: Iterable[str] = ()) -> Config:
    """A Config from a {section: {key: value}} tree (relative paths from base_dir; `origin` names
    it in errors), then overrides "section.key=value" in order (relative paths from the working
    directory)."""
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    _collect(tree, origin, base_dir, values)
    for text in overrides:
        section, key, value = _parse_override(text)
        values[section][key] = _check(section, key, value, f"override {quote(text)}", os.getcwd())
    return _build(values, origin)


def config_text(values: dict[str, dict[str, Any]] | None = None, header: str = "") -> str:
    """A commented YAML config: every field of every section in order, each with its meaning, its
    range or choices and what null means, generated from the dataclasses above. `values`
    {section: {key: value}} fills fields in (a value other than the default is marked
    `(default X)`); the rest show their defaults; data.path shows words.txt unless given.
    configs/default.yaml is `config_text` of its own values (tests/test_config.py checks).

    yaml.safe_load(config_text({"data": {"path": "a.txt"}}))["data"]["path"] -> "a.txt"
    """
    values = values or {}
    lines = [header.rstrip("\n"), ""] if header else []
    for section, fields in _FIELDS.items():
        lines.append(f"{section}:")
        for key, f in fields.items():
            value = values.get(section, {}).get(key, "words.txt" if f.default is MISSING else f.default)
            line = f"  {key}: {_yaml_scalar(value)}"
            lines.append(f"{line.ljust(COMMENT_COLUMN)}# {_describe(f, value)}" if len(line) < COMMENT_COLUMN
                         else f"{line}  # {_describe(f, value)}")
        lines.append("")
    return "\n".join(lines[:-1]) + "\n"


def rewrite_config_text(path: str | os.PathLike) -> str:
    """The text of the config at `path` as config_text writes it: its leading comment lines, then
    every field, with the values it gives (as written) and the comments generated for them."""
    text = Path(path).read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True)[: _header_lines(text)])
    return config_text(read_yaml(path), header)


def _header_lines(text: str) -> int:
    lines = text.splitlines()
    return next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))


COMMENT_COLUMN = 28  # where config_text starts a field's comment, unless the line is longer
_MIRRORED = {">=": "<=", ">": "<"}  # a lower bound written before the x: 0 <= x


def _describe(f: dataclasses.Field, value: Any) -> str:
    """A field's comment: `(default X)` if `value` is not its default, its meaning, its choices or
    bounds, what null means."""
    meta, text = f.metadata, f.metadata["help"]
    if meta["choices"]:
        text += ": " + " | ".join(meta["choices"])
    bounds = [(op, b) for op, b in meta["bounds"].items() if b is not None]
    if len(bounds) == 2:  # a lower and an upper bound: 0 <= x < 1
        (low_op, low), (high_op, high) = bounds
        text += f" ({low} {_MIRRORED[low_op]} x {high_op} {high})"
    elif bounds:
        text += f" ({bounds[0][0]} {bounds[0][1]})"
    if meta["null"]:
        text += f"; null: {meta['null']}"
    if f.default is not MISSING and not meta["path"] and value != f.default:
        text = f"(default {_yaml_scalar(f.default)}) {text}"
    return text


_PLAIN = re.compile(r"[\w./~][\w./ ~-]*")  # strings written without quotes (paths, choices)


def _yaml_scalar(value: Any) -> str:
    """A value as YAML reads it back: null, true, 0.003, runs/x, "a'b"."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted string


class _Loader(yaml.SafeLoader):
    """yaml.safe_load's loader, but a key written twice in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node, deep=False):
        first_line = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict, set)):  # `? [a, b]`: YAML allows it, no config has such a key
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a name, not a {'list' if isinstance(key, list) else 'mapping'}",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)) and key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {quote(str(key))} (first at line {first_line[key]})", key_node.start_mark)
            first_line.setdefault(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | os.PathLike) -> Any:
    """The YAML tree of a config file (a key written twice is an error); ConfigError if unreadable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {quote(str(path))} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {quote(str(path))}: {getattr(e, 'strerror', None) or e}") from None
    try:
        tree = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"cannot parse {quote(str(path))}{where}: {problem}") from None
    except (ValueError, RecursionError) as e:  # an integer of 5,000 digits, lists nested 10,000 deep
        raise ConfigError(f"cannot parse {quote(str(path))}: {quote(str(e))}") from None
    return {} if tree is None else tree  # an empty file is a config of defaults


def _collect(tree: Any, origin: str, base_dir: str, values: dict) -> None:
    """Check a {section: {key: value}} tree and store its values in `values`."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{origin} must be a mapping of sections, got {_show(tree)}")
    for section, keys in tree.items():
        _field(section, None, origin)  # unknown section?
        if keys is None:  # `model:` with nothing under it
            continue
        if not isinstance(keys, dict):
            raise ConfigError(f"section {quote(section)} in {origin} must be a mapping, got {_show(keys)}")
        for key, value in keys.items():
            values[section][key] = _check(section, key, value, origin, base_dir)


def _parse_override(text: str) -> tuple[str, str, Any]:
    name, equals, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not (equals and section and key) or "." in key:
        raise ConfigError(f"malformed override {quote(text)}: expected section.key=value")
    base = _base_type(_field(section, key, f"override {quote(text)}"))
    try:
        value = yaml.load(raw, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError):
        value = raw.strip()  # not YAML (say, an unbalanced quote): take the text as it is
    if base is str and value is not None and not isinstance(value, str):
        value = raw.strip()  # `output.dir=2024` names a folder, not a number
    return section, key, value


def _field(section: Any, key: Any, origin: str) -> dataclasses.Field | None:
    """The field section.key, or ConfigError with a suggestion; key None checks the section only."""
    if section not in SECTIONS:
        guess = difflib.get_close_matches(str(section), [*SECTIONS, *_KEYS], n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"sections are {', '.join(SECTIONS)}"
        raise ConfigError(f"unknown section {quote(str(section))} in {origin}; {hint}")
    if key is None:
        return None
    if key not in _FIELDS[section]:
        name = f"{section}.{key}"
        guess = difflib.get_close_matches(name, _KEYS, n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"keys of {section} are {', '.join(_FIELDS[section])}"
        raise ConfigError(f"unknown key {quote(name)} in {origin}; {hint}")
    return _FIELDS[section][key]


def _base_type(f: dataclasses.Field) -> type:
    """int for a field declared `int` or `int | None`."""
    return next(t for t in get_args(f.type) or (f.type,) if t is not type(None))


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
# PyYAML follows YAML 1.1, where 1e-3 (no dot) is a string, not a float; accept it anyway.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_BOUND_TESTS = {">=": lambda x, b: x >= b, ">": lambda x, b: x > b, "<=": lambda x, b: x <= b, "<": lambda x, b: x < b}


def _check(section: str, key: Any, value: Any, origin: str, base_dir: str) -> Any:
    """`value` checked and converted for section.key; a path is made absolute from base_dir."""
    f = _field(section, key, origin)
    name, base = f"{section}.{key}", _base_type(f)
    if value is None:
        if type(None) in get_args(f.type):
            return None
        raise ConfigError(f"{name} must be {_TYPE_NAMES[base]}, got null")
    value = _typed(name, base, value)
    value = f.metadata["aliases"].get(value, value) if isinstance(value, str) else value
    _check_range(name, f, value)
    if base is str and not value:
        raise ConfigError(f"{name} must not be empty")
    if f.metadata["path"] and value not in f.metadata["keywords"]:
        value = os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))
    return value


def _check_range(name: str, f: dataclasses.Field, value: Any) -> None:
    """ConfigError unless `value` is one of the field's choices (if it has any) and within its bounds."""
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {_show(value)}")
    bounds = {op: b for op, b in f.metadata["bounds"].items() if b is not None}
    if not all(_BOUND_TESTS[op](value, b) for op, b in bounds.items()):
        rule = " and ".join(f"{op} {b}" for op, b in bounds.items())
        raise ConfigError(f"{name} must be {rule}, got {_show(value)}")


def _typed(name: str, base: type, value: Any) -> Any:
    """`value` as the type `base` (an int where a float goes becomes a float), or ConfigError."""
    if base is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        value = float(value)
    is_int = isinstance(value, int) and not isinstance(value, bool)  # YAML true is a bool, never 1
    ok = {
        bool: isinstance(value, bool),
        int: is_int,
        float: is_int or isinstance(value, float),
        str: isinstance(value, str),
    }[base]
    if not ok:
        raise ConfigError(f"{name} must be {_TYPE_NAMES[base]}, got {_show(value)}")
    if base is not float:
        return value
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if not math.isfinite(value):  # .inf, .nan and 1e999 pass every bound check or fail it misleadingly
        raise ConfigError(f"{name} must be a finite number, got {_show(value)}")
    return value


def _build(values: dict[str, dict[str, Any]], origin: str) -> Config:
    """Dataclasses from checked values, after the checks that span two keys."""
    _fill_defaults(values, origin)
    config = Config(**{section: cls(**values[section]) for section, cls in SECTIONS.items()})
    data, train = config.data, config.train
    if data.max_length is not None and data.max_length < data.min_length:
        raise ConfigError(f"data.max_length must be >= data.min_length ({data.min_length}), got {data.max_length}")
    if train.min_lr > train.learning_rate:
        raise ConfigError(f"train.min_lr must be <= train.learning_rate ({train.learning_rate}), got {train.min_lr}")
    return config


def _fill_defaults(values: dict[str, dict[str, Any]], origin: str) -> None:
    """Absolute default paths into `values` where a key is not given; ConfigError for a required key missing."""
    for section, keys in _FIELDS.items():
        for key, f in keys.items():
            if key in values[section]:
                continue
            if f.default is MISSING:
                raise ConfigError(f"missing required key '{section}.{key}' in {origin}")
            if f.metadata["path"] and f.default is not None:  # a default path is written nowhere: relative to the working directory
                values[section][key] = os.path.abspath(f.default)


def _show(value: Any) -> str:
    """A value as the user wrote it: null, true, 'abc', 3.5."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int) and value.bit_length() > 128:  # the repr of a 4,000-digit int is no help
        return f"an integer of {value.bit_length():,} bits"
    return repr(value) if isinstance(value, (int, float)) else type(value).__name__
