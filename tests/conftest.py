import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import rnnac

# CI (.ci/run) sets HYPOTHESIS_PROFILE=ci: the same examples on every run, so a landing never
# depends on the draw; elsewhere each run explores new ones.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Unequal lengths, so padding and the mask matter; "a" is a prefix of "abcab".
WORDS = ["abc", "a", "cabba", "bb", "abcab"]


@pytest.fixture
def vocab():
    return rnnac.Vocab.from_words(WORDS)


@pytest.fixture
def batch(vocab):
    return rnnac.make_batch(WORDS, vocab)


def tiny_model(vocab, activation="tanh", hidden_size=4, seed=0):
    """A float64 model whose biases are random too, so every parameter is exercised."""
    model = rnnac.RNN.init(len(vocab), hidden_size, activation, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 100)
    model.params["b"][:] = rng.normal(0, 0.5, model.params["b"].shape)
    model.params["c"][:] = rng.normal(0, 0.5, model.params["c"].shape)
    return model


def rnnac_command() -> list[str]:
    """The installed `rnnac` script beside this interpreter (no shims), else `python -m rnnac`."""
    script = Path(sys.executable).parent / "rnnac"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rnnac"]


def write_run_config(folder, words_text: str):
    """A tiny float64 run over `words_text` (one word a line) in `folder`: run.yaml, writing to out/."""
    (folder / "words.txt").write_text(words_text)
    (folder / "run.yaml").write_text(
        "data: {path: words.txt, val_fraction: 0.25}\n"
        "model: {hidden_size: 8, dtype: float64}\n"
        "train: {batch_size: 4, max_steps: 30, eval_every: 10, learning_rate: 0.01, seed: 3}\n"
        "output: {dir: out}\n"
    )
    return folder / "run.yaml"


def lexicon_checkpoint(path, entries: dict, vocab, hidden_size: int = 8, seed: int = 0, mixture_lambda: float = 0.8,
                       held_out=()):
    """A float64 checkpoint at `path` of a random model over `vocab` carrying `entries` ({word: count},
    the words in `held_out` marked so) as its lexicon; its path as a string."""
    import numpy as np

    import rnnac
    from rnnac.storage.checkpoint import save_checkpoint
    from rnnac.storage.lexicon import LexiconData

    model = rnnac.RNN.init(len(vocab), hidden_size, seed=seed, dtype=np.float64)
    meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": hidden_size, "dtype": "float64",
            "config": {"data": {"lowercase": True}}, "step": 1, "epoch": 1, "best_val_loss": 1.0, "rng_state": {},
            "mixture_lambda": mixture_lambda}
    lexicon = LexiconData.from_unsorted(list(entries), list(entries.values()), [w in held_out for w in entries])
    save_checkpoint(path, model.params, meta, lexicon=lexicon)
    return str(path)
