"""What `rnnac train TARGET` means (a word list, a config, a shipped config by name) and `rnnac init`'s text."""

from pathlib import Path

import pytest
import yaml

from rnnac.errors import ConfigError, DataError, OutputError
from rnnac.storage.shipped import shipped_dir
from rnnac.training import quickstart
from rnnac.training.config import load_config
from rnnac.training.rundir import RunFolder
from rnnac.training.quickstart import (
    MAX_STEPS,
    MIN_STEPS,
    VAL_WORDS,
    init_text,
    is_word_list,
    shipped_configs,
    sized_settings,
    training_config,
    write_new_file,
)

ROOT = Path(__file__).resolve().parent.parent


def words(n: int) -> str:
    return "".join(f"w{i}\n" for i in range(n))


@pytest.mark.parametrize("n", [1, 10, 300, 999, 1_000, 5_000, 29_494, 50_000, 200_000, 10**7])
def test_sized_settings_grow_with_the_list_within_bounds(n):
    sized = sized_settings(n)
    steps, hidden = sized["train"]["max_steps"], sized["model"]["hidden_size"]
    assert MIN_STEPS <= steps <= MAX_STEPS and steps % 100 == 0
    assert sized["train"]["eval_every"] == steps // 10
    assert 0 < sized["data"]["val_fraction"] * n <= VAL_WORDS or n * 0.1 < 1
    assert sized["data"]["val_fraction"] <= 0.1 and sized["data"]["weighting"] == "uniform"
    bigger = sized_settings(n * 10)
    assert bigger["model"]["hidden_size"] >= hidden and bigger["train"]["max_steps"] >= steps


def test_sized_settings_examples():
    assert sized_settings(300)["model"] == {"hidden_size": 32}
    assert sized_settings(300)["train"]["max_steps"] == MIN_STEPS  # seconds, not minutes
    assert sized_settings(50_000)["model"] == {"hidden_size": 256}
    assert sized_settings(10**6)["data"]["val_fraction"] == 0.005  # 5,000 words
    assert sized_settings(100, frequency_list=True)["data"]["weighting"] == "count"


def test_a_word_list_trains_into_runs_of_its_name_with_sized_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mylist.txt").write_text(words(300))
    config, note = training_config("mylist.txt", ["train.max_steps=50"])
    assert config.data.path == str(tmp_path / "mylist.txt") and config.output.dir == str(tmp_path / "runs" / "mylist")
    assert config.model.hidden_size == 32 and config.train.max_steps == 50  # --set wins
    assert note == ("mylist.txt: 300 words; sized to them: model.hidden_size 32, train.batch_size 32, "
                    "train.max_steps 50, data.val_fraction 0.1 (change any with --set)")


@pytest.mark.parametrize("name, content, is_list", [
    ("a.txt", "data:\n  path: x\n", True),  # the suffix says so
    ("a.tsv", "a\t1\n", True),
    ("a.csv", "a,1\n", True),
    ("a.yaml", "just words\n", False),
    ("a.yml", "", False),
    ("mylist", "apple\nbanana\n", True),  # a YAML string, not a mapping
    ("mylist", "- apple\n- banana\n", True),  # a YAML list
    ("mylist", "a: [\n", True),  # not YAML at all
    ("myconfig", "data:\n  path: x.txt\n", False),
])
def test_a_word_list_is_told_from_a_config(tmp_path, name, content, is_list):
    path = tmp_path / name
    path.write_text(content)
    assert is_word_list(path) is is_list
    assert is_word_list(tmp_path / "missing") is False  # load_config says it is missing


def test_a_big_file_is_a_word_list_without_parsing_it(tmp_path, monkeypatch):
    path = tmp_path / "big"
    path.write_text("a: 1\n" * 300_000)
    monkeypatch.setattr(quickstart, "read_yaml", lambda p: pytest.fail("parsed"))
    assert is_word_list(path)


def test_shipped_configs_by_name_write_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"default", "names", "tiny", "identifiers"} <= set(shipped_configs())
    config, note = training_config("tiny")
    assert config.data.path == str(shipped_dir("data") / "names.txt") and config.data.max_words == 300
    assert config.output.dir == str(tmp_path / "runs" / "tiny") and "shipped config 'tiny'" in note
    moved, _ = training_config("tiny", ["output.dir=elsewhere"])
    assert moved.output.dir == str(tmp_path / "elsewhere")
    Path("names").mkdir()  # a folder of that name does not
    assert training_config("names")[0].output.dir == str(tmp_path / "runs" / "names")
    Path("tiny").write_text("data:\n  path: mine.txt\n")  # a file of that name wins
    own, note = training_config("tiny")
    assert own.data.path == str(tmp_path / "mine.txt") and note == ""


def test_a_shipped_word_list_by_name_is_sized_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, note = training_config("words", ["data.max_words=300"])
    assert config.data.path == str(shipped_dir("data") / "words.tsv") and config.output.dir == str(tmp_path / "runs" / "words")
    assert config.data.weighting == "count" and config.model.hidden_size == 256  # sized to its 50,000 words
    assert note.startswith(f"shipped word list 'words', {shipped_dir('data') / 'words.tsv'}: 50,000 words; sized to them")
    assert training_config("names")[1].startswith("shipped config 'names'")  # a config of that name comes first
    with pytest.raises(ConfigError, match=r"^no file 'wrods', nor a shipped config \(default, en, identifiers, names, tiny\) "
                                          r"or word list \(identifiers, names, words\)$"):
        training_config("wrods")


def test_a_run_folder_trains_with_the_settings_it_saved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mylist.txt").write_text(words(300))
    config, _ = training_config("mylist.txt", ["train.max_steps=50", "model.hidden_size=12"])
    with RunFolder(Path(config.output.dir)) as folder:
        folder.write_config(config)
    Path("runs/mylist").rename("moved")
    again, note = training_config("moved", ["train.max_steps=80"])
    assert note == "the settings of the run in moved (its run-config.yaml)"
    assert again.output.dir == str(tmp_path / "moved")  # where the run is now
    assert again.model.hidden_size == 12 and again.train.max_steps == 80  # the run's own settings, --set on top
    assert again.data == config.data and again.train.batch_size == config.train.batch_size
    Path("moved").rename("tiny")
    assert training_config("tiny")[0].model.hidden_size == 12  # a run folder wins over a shipped name
    Path("stub").mkdir()
    Path("stub/last.npz").write_bytes(b"")
    with pytest.raises(ConfigError, match="^stub holds no run-config.yaml to read the run's settings from"):
        training_config("stub")


def test_a_config_file_is_loaded_as_it_says(tmp_path):
    config, note = training_config(str(ROOT / "configs" / "tiny.yaml"))
    assert config == load_config(ROOT / "configs" / "tiny.yaml") and note == ""
    with pytest.raises(ConfigError, match="not found"):
        training_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(DataError, match="no such file"):
        training_config(str(tmp_path / "nope.txt"))


def test_init_text_is_the_config_train_would_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mylist.tsv").write_text("apple\t5\nbanana\t3\n" + "".join(f"w{i}\t1\n" for i in range(2000)))
    (tmp_path / "cfg").mkdir()
    text = init_text("mylist.tsv", "cfg/my.yaml")
    assert text.startswith("# rnnac config for mylist.tsv") and "its 2,002 words" in text
    assert yaml.safe_load(text)["data"]["path"] == "../mylist.tsv"
    write_new_file("cfg/my.yaml", text)
    from_file = load_config("cfg/my.yaml")
    direct, _ = training_config("mylist.tsv")
    assert from_file == direct  # the same run either way: same list, folder and settings
    assert from_file.data.weighting == "count" and from_file.model.hidden_size == 64


def test_init_text_for_a_shipped_list_writes_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = init_text("names", "my.yaml")
    assert text.startswith("# rnnac config for names.txt") and "its 29,494 words" in text
    assert yaml.safe_load(text)["data"]["path"] == str(shipped_dir("data") / "names.txt")  # wherever the config goes


def test_init_text_without_a_list_is_the_reference(tmp_path):
    text = init_text()
    assert "Set data.path to your" in text and yaml.safe_load(text)["data"]["path"] == "words.txt"
    assert "(default" not in text


def test_write_new_file_keeps_an_existing_file(tmp_path):
    path = tmp_path / "my.yaml"
    write_new_file(path, "one\n")
    with pytest.raises(OutputError, match="exists: choose another file, or --force"):
        write_new_file(path, "two\n")
    assert path.read_text() == "one\n"
    write_new_file(path, "two\n", force=True)
    assert path.read_text() == "two\n"
    with pytest.raises(OutputError, match="cannot write"):
        write_new_file(tmp_path / "no" / "such" / "dir.yaml", "x")
