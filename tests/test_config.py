import dataclasses
import json
import os
from pathlib import Path

import pytest
import yaml

from rnnac.errors import ConfigError
from rnnac.training.config import SECTIONS, Config, config_text, load_config, rewrite_config_text

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def minimal(tmp_path):
    return write(tmp_path, "data:\n  path: words.txt\n")


def error(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path, overrides)
    message = str(e.value)
    assert "\n" not in message
    return message


# --- reading ---------------------------------------------------------------


def test_defaults_fill_everything_but_the_path(minimal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")  # a default path is relative to the working directory
    config = load_config(minimal)
    assert config.data.path == str(tmp_path / "words.txt")
    assert config.model.hidden_size == 128 and config.model.activation == "tanh"
    assert config.train.optimizer == "adam" and config.train.learning_rate == 0.003
    assert config.train.clip_norm == 5.0 and config.train.truncate is None
    assert config.output.dir == str(tmp_path.parent / "runs" / "default")


def test_yaml_values_are_converted(tmp_path):
    path = write(
        tmp_path,
        """
data: {path: w.txt, lowercase: false, allowed_chars: "ab-", max_length: 12}
model: {hidden_size: 8, activation: relu, dtype: float64}
train: {learning_rate: 1, clip_norm: null, target_loss: 1e-3, threads: 64}
output:
""",
    )
    config = load_config(path)
    assert config.data.lowercase is False and config.data.allowed_chars == "ab-"
    assert config.data.max_length == 12
    assert config.model == SECTIONS["model"](hidden_size=8, activation="relu", dtype="float64")
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)  # int is a number
    assert config.train.clip_norm is None
    assert config.train.target_loss == 0.001  # YAML 1.1 reads 1e-3 as a string; we take it as a number
    assert config.train.threads == 64


def test_empty_file_needs_the_path(tmp_path):
    assert error(write(tmp_path, "")) == f"missing required key 'data.path' in {tmp_path / 'run.yaml'}"


def test_shipped_configs_load():
    for name in ("tiny", "names", "default", "identifiers"):
        config = load_config(CONFIGS / f"{name}.yaml")
        assert Path(config.data.path).parent == CONFIGS.parent / "data"
        assert config.output.dir == str(CONFIGS.parent / "runs" / name)
    tiny = load_config(CONFIGS / "tiny.yaml")
    assert (tiny.data.max_words, tiny.model.hidden_size, tiny.train.max_steps) == (300, 16, 60)


def test_default_yaml_documents_every_field_and_marks_what_differs_from_the_default():
    text = (CONFIGS / "default.yaml").read_text()
    tree = yaml.safe_load(text)
    assert list(tree) == list(SECTIONS)
    for section, cls in SECTIONS.items():
        assert list(tree[section]) == [f.name for f in dataclasses.fields(cls)], section
    defaults = Config(data=SECTIONS["data"](path="x")).to_dict()
    comments = {line.split(":")[0].strip(): line.split("#", 1)[1] for line in text.splitlines()
                if line.startswith("  ") and "#" in line}
    for section, keys in tree.items():
        for key, value in keys.items():
            assert key in comments, f"{section}.{key} has no comment"
            if value != defaults[section][key] and (section, key) not in {("data", "path"), ("output", "dir")}:
                assert "(default" in comments[key], f"{section}.{key} differs from its default unmarked"


def test_default_yaml_is_generated_from_the_dataclasses():
    """`make configs` writes it: a field, a help text or a bound changed in config.py shows here."""
    assert (CONFIGS / "default.yaml").read_text() == rewrite_config_text(CONFIGS / "default.yaml")


def test_config_text_documents_every_field_and_reads_back(tmp_path):
    values = {"data": {"path": "w.txt", "allowed_chars": "ab'-", "format": "csv"},
              "train": {"learning_rate": 1e-05, "clip_norm": None}, "output": {"dir": "runs/x y"}}
    text = config_text(values, "# a header\n")
    assert text.startswith("# a header\n\ndata:\n  path: w.txt")
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if line.startswith("  ")}
    assert list(lines) == [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f.metadata["help"] in lines[f.name], f"{section}.{f.name}"
    assert "# (default 0.003) base learning rate, before warm-up and schedule (> 0)" in lines["learning_rate"]
    assert "(default 5.0)" in lines["clip_norm"] and lines["clip_norm"].endswith("; null: off")
    assert lines["val_fraction"].endswith("(0 <= x < 1)") and lines["threads"].endswith("(1 <= x <= 64); null: automatic")
    assert lines["format"].endswith("auto | lines | tsv | csv | uniq | history") and "(default auto)" in lines["format"]
    config = load_config(write(tmp_path, text))
    assert config.data.allowed_chars == "ab'-" and config.train.learning_rate == 1e-05 and config.train.clip_norm is None
    assert config.output.dir == str(tmp_path / "runs" / "x y") and config.data.path == str(tmp_path / "w.txt")
    assert config.model == SECTIONS["model"]()


def test_config_text_without_values_is_every_default(tmp_path):
    config = load_config(write(tmp_path, config_text()))
    assert config.data.path == str(tmp_path / "words.txt")
    assert config.train == SECTIONS["train"]() and config.model == SECTIONS["model"]()
    assert "(default" not in config_text()


# --- errors ----------------------------------------------------------------


def test_missing_file(tmp_path):
    assert error(tmp_path / "nope.yaml") == f"config file '{tmp_path / 'nope.yaml'}' not found"


def test_unparsable_yaml_names_the_line(tmp_path):
    message = error(write(tmp_path, "data:\n  path: [x\n"))
    assert message.startswith(f"cannot parse '{tmp_path / 'run.yaml'}' at line")


def test_not_a_mapping(tmp_path):
    assert "must be a mapping of sections, got list" in error(write(tmp_path, "- a\n- b\n"))
    assert "section 'model' in" in error(write(tmp_path, "data: {path: x}\nmodel: 3\n"))


def test_unknown_key_suggests_the_nearest(tmp_path):
    path = write(tmp_path, "data: {path: x}\ntrain:\n  learning_rat: 0.1\n", "x.yaml")
    assert error(path) == f"unknown key 'train.learning_rat' in {path}; did you mean 'train.learning_rate'?"


def test_unknown_key_without_a_near_one_lists_the_section(tmp_path):
    message = error(write(tmp_path, "data: {path: x}\nmodel: {zzzz: 1}\n"))
    assert message.endswith("; keys of model are hidden_size, activation, dtype")


def test_unknown_section(tmp_path):
    assert error(write(tmp_path, "data: {path: x}\ntrian: {}\n")).endswith("; did you mean 'train'?")
    # a flat key at the top level points to where it belongs
    assert error(write(tmp_path, "data: {path: x}\nhidden_size: 3\n")).endswith("did you mean 'model.hidden_size'?")


@pytest.mark.parametrize(
    "text, message",
    [
        ("train: {batch_size: abc}", "train.batch_size must be an integer, got 'abc'"),
        ("train: {batch_size: 2.5}", "train.batch_size must be an integer, got 2.5"),
        ("train: {batch_size: true}", "train.batch_size must be an integer, got true"),  # bool is not an int
        ("train: {batch_size: null}", "train.batch_size must be an integer, got null"),  # not optional
        ("train: {learning_rate: fast}", "train.learning_rate must be a number, got 'fast'"),
        ("train: {learning_rate: false}", "train.learning_rate must be a number, got false"),
        ("data: {lowercase: 1}", "data.lowercase must be true or false, got 1"),
        ("data: {allowed_chars: 5}", "data.allowed_chars must be a string, got 5"),
        ("data: {allowed_chars: ''}", "data.allowed_chars must not be empty"),
        ("model: {activation: gelu}", "model.activation must be one of tanh, sigmoid, relu, got 'gelu'"),
        ("model: {dtype: float16}", "model.dtype must be one of float32, float64, got 'float16'"),
        ("data: {weighting: zipf}", "data.weighting must be one of uniform, count, sqrt, log, got 'zipf'"),
        (
            "train: {optimizer: lbfgs}",
            "train.optimizer must be one of sgd, momentum, adagrad, rmsprop, adam, got 'lbfgs'",
        ),
        ("model: {hidden_size: 0}", "model.hidden_size must be >= 1, got 0"),
        ("train: {learning_rate: 0}", "train.learning_rate must be > 0, got 0.0"),
        ("data: {val_fraction: 1}", "data.val_fraction must be >= 0 and < 1, got 1.0"),
        ("data: {val_fraction: -0.1}", "data.val_fraction must be >= 0 and < 1, got -0.1"),
        ("train: {threads: 65}", "train.threads must be >= 1 and <= 64, got 65"),
        ("train: {truncate: -1}", "train.truncate must be >= 0, got -1"),
        ("train: {max_seconds: 0}", "train.max_seconds must be > 0, got 0.0"),
        ("data: {min_length: 5, max_length: 3}", "data.max_length must be >= data.min_length (5), got 3"),
        ("train: {learning_rate: 0.1, min_lr: 0.2}", "train.min_lr must be <= train.learning_rate (0.1), got 0.2"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    if text.startswith("data:"):
        text = text.replace("data: {", "data: {path: x, ")
    else:
        text = "data: {path: x}\n" + text
    assert error(write(tmp_path, text + "\n")) == message


def test_missing_path(tmp_path):
    assert error(write(tmp_path, "model: {hidden_size: 3}\n")).startswith("missing required key 'data.path'")


# --- overrides -------------------------------------------------------------


def test_overrides_of_each_type(minimal):
    config = load_config(
        minimal,
        [
            "train.learning_rate=0.01",  # float
            "train.learning_rate=0.02",  # a later override wins
            "model.hidden_size=32",  # int
            "data.lowercase=false",  # bool
            "train.clip_norm=null",  # None
            "train.truncate=3",
            "model.activation=sigmoid",  # choice
            "data.allowed_chars=abc'-",  # not valid YAML: taken as text
            "train.max_seconds=2",  # int where a float goes
            " train.seed = 7 ",
        ],
    )
    assert config.train.learning_rate == 0.02
    assert config.model.hidden_size == 32
    assert config.data.lowercase is False
    assert config.train.clip_norm is None
    assert config.train.truncate == 3
    assert config.model.activation == "sigmoid"
    assert config.data.allowed_chars == "abc'-"
    assert config.train.max_seconds == 2.0
    assert config.train.seed == 7


def test_override_can_supply_the_required_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path, ""), ["data.path=2024"])  # a str field keeps the text
    assert config.data.path == str(tmp_path / "2024")


@pytest.mark.parametrize("override", ["train.learning_rate", "learning_rate=3", "train=3", "a.b.c=1", ".x=1"])
def test_malformed_override(minimal, override):
    assert error(minimal, [override]) == f"malformed override {override!r}: expected section.key=value"


def test_bad_overrides_name_the_key(minimal):
    assert error(minimal, ["train.batch_size=abc"]) == "train.batch_size must be an integer, got 'abc'"
    assert error(minimal, ["train.learning_rat=1"]) == (
        "unknown key 'train.learning_rat' in override 'train.learning_rat=1'; did you mean 'train.learning_rate'?"
    )
    assert error(minimal, ["model.hidden_size=null"]) == "model.hidden_size must be an integer, got null"


# --- paths -----------------------------------------------------------------


def test_file_paths_are_relative_to_the_file_and_overrides_to_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    path = write(tmp_path / "configs", "data: {path: ../data/w.txt}\noutput: {dir: out}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(os.path.relpath(path))  # a relative config path too
    assert config.data.path == str(tmp_path / "data" / "w.txt")
    assert config.output.dir == str(tmp_path / "configs" / "out")
    config = load_config(path, ["output.dir=runs/x", "data.path=../w.txt"])
    assert config.output.dir == str(tmp_path / "elsewhere" / "runs" / "x")
    assert config.data.path == str(tmp_path / "w.txt")


def test_absolute_paths_stay(tmp_path):
    config = load_config(write(tmp_path, f"data: {{path: {tmp_path / 'a' / 'w.txt'}}}\n"))
    assert config.data.path == str(tmp_path / "a" / "w.txt")


# --- round trip ------------------------------------------------------------


def test_to_dict_from_dict_round_trip(tmp_path, monkeypatch):
    path = write(tmp_path, "data: {path: w.tsv, weighting: log}\ntrain: {target_loss: 1.5, clip_norm: null}\n")
    config = load_config(path, ["model.dtype=float64", "train.optimizer=momentum"])
    d = config.to_dict()
    monkeypatch.chdir(tmp_path.parent)  # absolute paths do not depend on the working directory
    restored = Config.from_dict(json.loads(json.dumps(d)))
    assert restored == config
    assert restored.to_dict() == d
    assert list(d) == ["data", "model", "train", "output"]


def test_from_dict_checks_like_a_file():
    with pytest.raises(ConfigError, match="model.hidden_size must be >= 1, got -3"):
        Config.from_dict({"data": {"path": "/w.txt"}, "model": {"hidden_size": -3}})
    with pytest.raises(ConfigError, match="unknown key 'model.size' in config dict"):
        Config.from_dict({"data": {"path": "/w.txt"}, "model": {"size": 3}})


# --- faults a hostile user found ---------------------------------------------


FLOAT_FIELDS = [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
                if "float" in str(f.type)]


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e999", "1.0e+999", "1" + "0" * 400],
                         ids=["inf", "-inf", "nan", "1e999", "1.0e+999", "10**400"])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_field_refuses_numbers_that_are_not_finite(tmp_path, name, value):
    section, key = name.split(".")
    text = f"data: {{path: x}}\n{section}: {{{key}: {value}}}\n" if section != "data" else f"data: {{path: x, {key}: {value}}}\n"
    assert error(write(tmp_path, text)).startswith(f"{name} must be a finite number, got ")
    assert error(write(tmp_path, "data: {path: x}\n"), [f"{name}={value}"]).startswith(f"{name} must be a finite number")


def test_float_fields_are_all_found():
    assert {"train.learning_rate", "train.weight_decay", "data.val_fraction", "train.clip_norm"} <= set(FLOAT_FIELDS)


@pytest.mark.parametrize("text, message", [
    ("data: {path: x}\ntrain:\n  learning_rate: 0.1\n  batch_size: 3\n  learning_rate: 0.2\n",
     "at line 5: duplicate key 'learning_rate' (first at line 3)"),
    ("data: {path: x}\nmodel: {hidden_size: 3}\nmodel: {hidden_size: 4}\n", "at line 3: duplicate key 'model' (first at line 2)"),
    ("data: {path: x, path: y}\n", "at line 1: duplicate key 'path' (first at line 1)"),
], ids=["key", "section", "flow mapping"])
def test_a_key_written_twice_is_an_error_naming_it_and_its_line(tmp_path, text, message):
    assert error(write(tmp_path, text)) == f"cannot parse {str(tmp_path / 'run.yaml')!r} {message}"


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    path = write(tmp_path, "data: {path: x}\nmodel:\n  <<: {hidden_size: 3, activation: relu}\n  hidden_size: 5\n")
    assert load_config(path).model == SECTIONS["model"](hidden_size=5, activation="relu")


def test_a_word_list_given_as_the_config_gives_a_short_error(tmp_path):
    text = "".join(f"word{i}\n" for i in range(20000))
    words = write(tmp_path, text, "words.txt")
    message = error(words)
    assert message.startswith(f"{words} must be a mapping of sections, got 'word0 word1 ")
    assert message.endswith(f"word19999' ({len(text) - 1:,} characters)")  # YAML read it as one string
    assert len(message) < len(str(words)) + 200


@pytest.mark.parametrize("text, start", [
    ("data: {path: x}\n" + "x" * 1000 + ": 1\n", "unknown section 'xxx"),  # YAML keys stop at 1,024 characters
    ("data: {path: x}\nmodel: {" + "y" * 1000 + ": 1}\n", "unknown key 'model.yyy"),
    ("data: {path: x}\ntrain: {optimizer: " + "z" * 5000 + "}\n", "train.optimizer must be one of"),
    ("data: {path: x}\nmodel: {hidden_size: -" + "9" * 4000 + "}\n", "model.hidden_size must be >= 1, got an integer of"),
    ("data: {path: x}\nmodel: {hidden_size: " + "9" * 5000 + "}\n", "cannot parse"),  # more digits than Python reads
], ids=["section", "key", "choice", "4000-digit int", "5000-digit int"])
def test_long_user_input_is_cut_in_errors(tmp_path, text, start):
    message = error(write(tmp_path, text))
    assert message.startswith(start) and len(message) < 300


@pytest.mark.parametrize("override", ["train." + "x" * 5000 + "=1", "x" * 5000, "train.optimizer=" + "x" * 5000],
                         ids=["key", "malformed", "choice"])
def test_long_overrides_are_cut_in_errors(minimal, override):
    message = error(minimal, [override])
    assert "x" * 100 not in message and "(5,0" in message


def test_adamw_is_adam():
    config = Config.from_dict({"data": {"path": "/w.txt"}, "train": {"optimizer": "adamw", "weight_decay": 0.1}})
    assert config.train.optimizer == "adam" and config.train.weight_decay == 0.1
