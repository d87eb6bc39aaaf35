"""Lists of every shape (README): bench/lists.py's generators read back as the lists they claim to
be; the README's bash `bind -x` recipe, run in bash against a real `rnnac serve`."""

import collections
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

import rnnac
from conftest import lexicon_checkpoint
from rnnac.storage.wordlist import read_word_list

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import lists  # noqa: E402


def test_the_catalogue_has_distinct_long_accented_names_with_falling_counts(tmp_path):
    entries = lists.catalogue(3000, seed=3)
    names = [name for name, _ in entries]
    counts = np.array([count for _, count in entries])
    assert len(set(names)) == 3000 and (np.diff(counts) <= 0).all() and counts[-1] >= 1
    assert sum(len(name) > 32 for name in names) > 1500
    assert any(" " in name for name in names) and any(not name.isascii() for name in names)
    assert lists.catalogue(3000, seed=3) == entries and lists.catalogue(3000, seed=4) != entries

    path = tmp_path / "catalogue.csv"
    run_bench_lists(["catalogue", "--n", "3000", "--seed", "3"], path)
    read = read_word_list(path, lowercase=False)
    assert read.format == "csv" and read.words == names and read.counts.tolist() == counts.tolist()


def test_the_history_reads_as_a_history_with_repeats_as_counts(tmp_path):
    path = tmp_path / "history.txt"
    run_bench_lists(["history", "--n", "300", "--seed", "1"], path)
    lines = path.read_text().splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(1, 301))
    read = read_word_list(path, lowercase=False)
    typed = collections.Counter(lists.history(300, seed=1))
    assert read.format == "history"
    assert dict(zip(read.words, read.counts.tolist())) == typed
    if "cd " in typed:
        assert "cd " in read.words  # a trailing space is part of the command


def run_bench_lists(argv: list[str], out: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "lists.py"), *argv], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    out.write_text(result.stdout)


# --- the bash recipe ------------------------------------------------------------------------


def readme_recipe() -> str:
    """The ```bash block after the README's bind-x marker."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- bind-x recipe: .*? -->\n```bash\n(.*?)```", text, re.S)
    assert match, "README.md has no bind-x recipe"
    return match.group(1)


HISTORY = {"git push": 9.0, "git pull": 5.0, "git push origin main": 3.0, "git status": 7.0, "ls -la": 4.0, "cd ": 2.0}


@pytest.fixture(scope="module")
def history_server(tmp_path_factory):
    pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnac[serve]'")
    from test_serve import Server

    vocab = rnnac.Vocab(sorted(set("".join(HISTORY))))
    path = lexicon_checkpoint(tmp_path_factory.mktemp("history") / "history.npz", HISTORY, vocab, seed=3, mixture_lambda=0.9)
    server = Server("-c", path)
    yield server
    server.stop()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
@pytest.mark.parametrize("line", ["git p", "git push o", "l", "x", "é"])
def test_the_bind_x_recipe_replaces_the_line_with_the_servers_best(history_server, tmp_path, line):
    recipe = tmp_path / "recipe.bash"
    recipe.write_text(readme_recipe())
    script = f'source {recipe}; READLINE_LINE=$1; _rnnac_line; printf "%s|%s" "$READLINE_LINE" "$READLINE_POINT"'
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "RNNAC_URL": history_server.url, "LC_ALL": "C.UTF-8"}
    result = subprocess.run(["bash", "-c", script, "recipe", line], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and result.stderr == ""
    status, record = history_server.get("/complete?" + urllib.parse.urlencode({"q": line, "k": 1}))
    found = record.get("completions") or [{"word": line}]
    best = found[0]["word"]
    assert result.stdout == f"{best}|{len(best)}"
    if line == "git p":
        assert best == "git push"  # the list's most used line below the prefix
    if line in ("x", "é"):
        assert best == line  # nothing below it, or a character the model cannot read: the line stays


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_the_recipe_leaves_the_line_alone_when_no_server_answers(tmp_path):
    recipe = tmp_path / "recipe.bash"
    recipe.write_text(readme_recipe())
    script = f'source {recipe}; READLINE_LINE="git p"; READLINE_POINT=5; _rnnac_line; printf "%s|%s" "$READLINE_LINE" "$READLINE_POINT"'
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "RNNAC_URL": "http://127.0.0.1:9"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and result.stdout == "git p|5" and result.stderr == ""  # no traceback on the prompt
