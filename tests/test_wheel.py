"""The wheel, installed into a fresh virtual environment, trains and completes without the source tree.

Builds the wheel from a copy of the package's files (nothing is written into the source tree),
installs it with pip into a new venv that borrows numpy, click, tqdm and pyyaml from this
interpreter (a .pth file naming their folders, so nothing is downloaded and no other rnnac is
seen), then works in a folder outside the source tree, as a user would after `pip install rnnac`.
Runs in CI like every test (`make test`); about 20 s here.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rnnac import __version__

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "rnnac", "configs", "data")

pytestmark = pytest.mark.wheel


def sh(*args, cwd, env=None, timeout=120) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, the wheel) with the wheel built from this tree installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).exists():
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # or pip finds this tree's rnnac installed
    sh(sys.executable, "-m", "pip", "wheel", src, "-w", tmp / "dist", "--no-deps", "-q", *build_isolation(), cwd=tmp,
       env=env)
    (wheel,) = (tmp / "dist").glob("rnnac-*.whl")
    sh(sys.executable, "-m", "venv", "--without-pip", tmp / "venv", cwd=tmp)
    python = tmp / "venv" / "bin" / "python"
    site = sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp).stdout.strip()
    Path(site, "rnnac-test-deps.pth").write_text("".join(f"{folder}\n" for folder in dependency_folders()))
    sh(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp,
       env=env)
    return tmp / "venv" / "bin", wheel


def build_isolation() -> list[str]:
    """--no-build-isolation when the installed setuptools can build rnnac (nothing to download);
    else pip's isolated build, which fetches setuptools>=77 (.ci/run installs it first)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        new_enough = int(version("setuptools").split(".")[0]) >= 77
    except (PackageNotFoundError, ValueError):
        new_enough = False
    return ["--no-build-isolation"] if new_enough else []


def dependency_folders() -> list[str]:
    """The folders this interpreter imports rnnac's run-time dependencies from."""
    import click
    import numpy
    import tqdm
    import yaml

    return sorted({str(Path(module.__file__).resolve().parent.parent) for module in (numpy, click, tqdm, yaml)})


@pytest.fixture
def user_env(installed, tmp_path):
    """A working folder outside the source tree and an environment that runs the venv's rnnac."""
    bin_dir, _ = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RNNAC_CHECKPOINT", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"
    work.mkdir()
    return work, env, bin_dir


def test_the_wheel_holds_the_configs_word_lists_and_model(installed):
    _, wheel = installed
    assert wheel.name == f"rnnac-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("default", "names", "tiny", "identifiers"):
        assert f"rnnac/share/configs/{shipped}.yaml" in names
    for listing in ("names.txt", "words.tsv", "identifiers.txt", "README.md"):  # README.md: their sources and licenses
        assert f"rnnac/share/data/{listing}" in names
    assert "rnnac/models/en.npz" in names and "rnnac/interfaces/cli.py" in names
    assert not any(name.startswith(("tests/", "configs/", "data/")) for name in names)


def test_the_installed_package_is_the_wheel_not_this_tree(user_env):
    work, env, bin_dir = user_env
    where = sh(bin_dir / "python", "-c", "import rnnac, rnnac.storage.shipped as s; print(rnnac.__file__); "
               "print(s.shipped_dir('configs'))", cwd=work, env=env).stdout.splitlines()
    venv = bin_dir.parent
    assert Path(where[0]).is_relative_to(venv) and Path(where[1]) == Path(where[0]).parent / "share" / "configs"
    assert sh("rnnac", "--version", cwd=work, env=env).stdout == f"rnnac, version {__version__}\n"


def test_init_train_complete_from_the_wheel(user_env):
    work, env, _ = user_env
    (work / "mylist.txt").write_text("".join(f"{w}\n" for w in WORDS))
    init = sh("rnnac", "init", "mylist.txt", "-o", "cfg.yaml", cwd=work, env=env)
    assert init.stdout == "" and "Wrote cfg.yaml" in init.stderr
    text = (work / "cfg.yaml").read_text()
    assert "path: mylist.txt" in text and "dir: runs/mylist" in text and "# (default 128)" in text
    trained = sh("rnnac", "train", "cfg.yaml", "--set", "train.max_steps=200", cwd=work, env=env)
    assert "stopped at step 200" in trained.stdout and (work / "runs" / "mylist" / "best.npz").exists()
    done = sh("rnnac", "complete", "-c", "runs/mylist", "--format", "json", "pro", cwd=work, env=env)
    completions = json.loads(done.stdout)["completions"]
    assert len(completions) == 5 and all(c["word"].startswith("pro") for c in completions)
    assert any(c["known"] for c in completions)  # the list travels with the model


def test_a_shipped_config_by_name_from_the_wheel(user_env):
    work, env, _ = user_env
    trained = sh("rnnac", "train", "tiny", "-q", cwd=work, env=env)
    assert f"checkpoints in {work / 'runs' / 'tiny'}" in trained.stdout
    reference = sh("rnnac", "init", cwd=work, env=env).stdout
    assert "format: auto" in reference and "hidden_size: 128" in reference


def test_the_shipped_word_lists_by_name_from_the_wheel(user_env):
    work, env, bin_dir = user_env
    share = Path(sh(bin_dir / "python", "-c", "import rnnac.storage.shipped as s; print(s.shipped_dir('data'))", cwd=work,
                    env=env).stdout.strip())
    assert share.is_relative_to(bin_dir.parent) and (share / "README.md").is_file()
    evaluated = sh("rnnac", "evaluate", "identifiers", "--no-baselines", "-q", "--format", "json", cwd=work, env=env)
    report = json.loads(evaluated.stdout)  # the bundled model on a shipped list: a cheap `rnnac evaluate words`
    assert report["info"]["wordlist"] == str(share / "identifiers.txt") and report["models"]["rnn"]["all"]["n_words"] == 389
    completed = sh("rnnac", "complete", "--lexicon", "names", "-k", "3", "--format", "json", "ma", cwd=work, env=env)
    assert all(c["known"] and c["word"].startswith("ma") for c in json.loads(completed.stdout)["completions"])
    trained = sh("rnnac", "train", "words", "-q", "--set", "train.max_steps=20", cwd=work, env=env)
    assert f"checkpoints in {work / 'runs' / 'words'}" in trained.stdout
    config = json.loads(sh("rnnac", "info", "runs/words", "--format", "json", cwd=work, env=env).stdout)["config"]
    assert config["data"]["path"] == str(share / "words.tsv") and config["data"]["weighting"] == "count"
    unknown = subprocess.run(["rnnac", "evaluate", "wrods"], cwd=work, env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == "Error: wrods: no such file, nor a shipped word list: identifiers, names, words\n"


def test_train_names_then_resume_the_run_by_its_folder_from_the_wheel(user_env):
    work, env, _ = user_env
    first = sh("rnnac", "train", "names", "-q", "--set", "train.max_steps=20", "--set", "train.eval_every=10", cwd=work, env=env)
    assert "stopped at step 20 (max_steps)" in first.stdout and f"checkpoints in {work / 'runs' / 'names'}" in first.stdout
    resumed = sh("rnnac", "train", "--resume", "runs/names", "--set", "train.max_steps=30", cwd=work, env=env)
    assert f"resuming {work / 'runs' / 'names' / 'last.npz'} at step 20" in resumed.stderr.splitlines()
    assert resumed.stdout.startswith("stopped at step 30 (max_steps)")
    facts = json.loads(sh("rnnac", "info", "runs/names/last.npz", "--format", "json", cwd=work, env=env).stdout)
    assert facts["hidden_size"] == 512 and facts["config"]["train"]["eval_every"] == 10  # names.yaml's size, the run's --set


WORDS = """product produce producer production profile profit program progress project promise prompt proof
proper property protect protocol proto prototype provide provider proxy process processor procedure
prize prism private privilege prior priority print printer prince principal principle price
press pressure preset preview prefix prefer premium prepare present preserve prevent previous""".split()
