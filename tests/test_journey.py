"""The README's "Your own word list" commands, run as written by the installed script in a shell,
in a fresh folder holding the user's list, one after the other as a user would."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import rnnac_command

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["apple", "apply", "applet", "application", "apricot", "banana", "bandana", "band", "bandwidth", "cherry",
         "chert", "chess", "abacus", "abandon", "abbey", "abbot", "abide", "ability", "able", "aboard", "abode", "about"]


def readme_block(section: str) -> list[str]:
    """The commands of the first ```sh block after `## {section}`, comments cut."""
    text = (ROOT / "README.md").read_text()
    body = text[text.index(f"\n## {section}\n"):]
    block = re.search(r"```sh\n(.*?)```", body, re.S)[1]
    return [re.split(r"\s+# ", line)[0].strip() for line in block.splitlines() if line.strip()]


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """`command` as a user types it, with `rnnac` the installed script beside this interpreter."""
    script = shlex.join(rnnac_command())
    return subprocess.run(["bash", "-c", f"rnnac() {{ {script} \"$@\"; }}\n{command}"], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """{command: its CompletedProcess} for every command of the section, run in order."""
    home = tmp_path_factory.mktemp("journey")
    (home / "mylist.txt").write_text("".join(f"{w}\n" for w in WORDS * 3 + ["Apple", "apple"]))
    (home / "prefixes.txt").write_text("ab\n  ap \nba!\nch\n")
    return home, {command: shell(command, home) for command in readme_block("Your own word list")}


def test_the_section_holds_the_journey():
    commands = readme_block("Your own word list")
    assert commands[:2] == ["rnnac train mylist.txt", "rnnac complete -c runs/mylist ab"]
    assert any(c.startswith("rnnac init mylist.txt") for c in commands)


def test_train_on_the_list_states_its_settings(journey):
    home, done = journey
    train = done["rnnac train mylist.txt"]
    assert train.returncode == 0, train.stderr
    assert "mylist.txt: 22 words; sized to them: model.hidden_size 32" in train.stderr
    assert train.stdout.startswith("stopped at step 300 (max_steps)") and f"checkpoints in {home / 'runs' / 'mylist'}" in train.stdout
    assert (home / "runs" / "mylist" / "best.npz").exists()


def test_complete_with_the_run_folder(journey):
    _, done = journey
    result = done["rnnac complete -c runs/mylist ab"]
    assert result.returncode == 0 and result.stderr == ""
    words = result.stdout.splitlines()
    assert len(words) == 5 and all(w.startswith("ab") for w in words)
    assert set(words) & {"about", "able", "ability", "abandon", "abacus", "abbey", "abbot", "abide", "aboard", "abode"}


def test_complete_from_a_file_lines_up_with_it(journey):
    _, done = journey
    (command,) = [c for c in done if "prefixes.txt" in c]
    result = done[command]
    assert result.returncode == 1  # ba! holds a character the list lacks
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0][:3] == ["prefix", "rank", "word"]
    prefixes = [r[0] for r in rows[1:]]
    assert prefixes == ["ab"] * 5 + ["ap"] * 5 + ["ba!"] + ["ch"] * prefixes.count("ch") and 1 <= prefixes.count("ch") <= 5
    assert [r[5] for r in rows[1:] if r[0] == "ch"].count("false") <= 1  # one invented string at most, by default
    assert rows[11][8] == "'ba!' holds '!', which is not in the vocabulary"
    assert result.stderr == "Error: 'ba!' holds '!', which is not in the vocabulary\n"


def test_init_writes_the_same_run_as_a_config(journey):
    home, done = journey
    (init,) = [c for c in done if c.startswith("rnnac init")]
    assert done[init].returncode == 0 and done[init].stdout == ""
    text = (home / "mylist.yaml").read_text()
    assert "  path: mylist.txt" in text and "  dir: runs/mylist" in text and "  hidden_size: 32" in text
    again = done["rnnac train mylist.yaml --force"]
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("stopped at step 300 (max_steps)")


def test_fine_tune_the_bundled_model(journey):
    home, done = journey
    (command,) = [c for c in done if "--init-from" in c]
    result = done[command]
    assert result.returncode == 0, result.stderr
    info = shell("rnnac info -c runs/mylist-en --format json", home)
    facts = json.loads(info.stdout)
    from rnnac.storage.checkpoint import describe

    bundled = describe("bundled")["hidden_size"]
    assert facts["hidden_size"] == bundled and facts["lexicon_words"] == 22  # the bundled model's size, the list's words
