"""Sampling words from the model, one character at a time, with a temperature.

Shapes: n words drawn together, T characters after the prefix, H hidden, K vocabulary (id 0 is
the word boundary).
"""

from __future__ import annotations

import math

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import BOUNDARY, Vocab
from rnnac.engine.reading import read_strings
from rnnac.storage.lexicon import fold


def sample(model: RNN, vocab: Vocab, n: int, temperature: float = 1.0, prefix: str = "",
           rng: np.random.Generator | int | None = None, max_length: int = 32, lowercase: bool = True) -> list[str]:
    """n words drawn from the model, each starting with `prefix` (case-folded as the model was
    trained). temperature divides the logits: < 1 sharper, > 1 flatter, 0 the most likely
    character every time. A word is never empty and stops at `max_length` characters.
    rng: a Generator, or a seed for one (None: fresh entropy).

    sample(model, vocab, 3, rng=np.random.default_rng(1)) -> e.g. ["the", "ston", "reading"]
    """
    prefix = fold(prefix, lowercase)
    _check_options(n, temperature, max_length, prefix)
    rng = np.random.default_rng(rng)  # passes a Generator through unchanged
    # 1. Read the prefix once; every sample starts from its state.
    a, logp, _ = read_strings(model, [vocab.encode(prefix)])  # (1, H), (1, K)
    a, logp = np.repeat(a, n, axis=0), np.repeat(logp, n, axis=0)  # (n, H), (n, K)
    tokens = np.zeros((n, max(0, max_length - len(prefix))), dtype=np.int64)  # (n, T), 0 pads
    active = np.arange(n)  # rows still growing
    for t in range(tokens.shape[1]):
        # 2. Next-character distribution, sharpened or flattened by the temperature.
        logits = logp[active].astype(np.float64)  # (n', K)
        if not prefix and t == 0:
            logits[:, BOUNDARY] = -np.inf  # no empty words
        draw = _draw(logits, temperature, rng)  # (n',)
        # 3. Rows that drew the boundary are finished words; the others take one more step.
        tokens[active, t] = draw
        active = active[draw != BOUNDARY]
        if not active.size:
            break
        a[active], logp[active] = model.step(a[active], tokens[active, t])
    return [prefix + vocab.decode(row) for row in tokens.tolist()]


def _check_options(n: int, temperature: float, max_length: int, prefix: str) -> None:
    """ValueError unless sample's options make sense for the folded prefix."""
    if n < 0 or not 0 <= temperature < math.inf or max_length < 1:
        raise ValueError("n must be >= 0, temperature finite and >= 0, max_length >= 1")
    if len(prefix) > max_length:
        raise ValueError(f"the prefix has {len(prefix)} characters, more than max_length {max_length}")


def _draw(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One token id per row (n',) from logits (n', K) at this temperature (0: the most likely): by
    inverse CDF, the first token whose cumulative mass passes a uniform draw."""
    if temperature == 0:
        return logits.argmax(axis=1)  # (n',)
    p = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)  # (n', K)
    cdf = np.cumsum(p, axis=1)  # (n', K)
    u = rng.random(len(logits)) * cdf[:, -1]  # (n',)
    return np.minimum((cdf <= u[:, None]).sum(axis=1), logits.shape[1] - 1)  # (n',)
