"""Sampling words from the model, one character at a time, with a temperature.

Shapes: n words drawn together (at most CHUNK at a time), T characters after the prefix, H hidden, K vocabulary (id 0 is
the word boundary).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import BOUNDARY, Vocab
from rnnac.engine.reading import read_strings
from rnnac.storage.folding import Folding, fold


CHUNK = 4096  # words drawn together by sample_chunks


def sample(model: RNN, vocab: Vocab, n: int, temperature: float = 1.0, prefix: str = "",
           rng: np.random.Generator | int | None = None, max_length: int = 32, folding: Folding | bool = True) -> list[str]:
    """n words drawn from the model, each starting with `prefix` (folded as the model was trained:
    `folding`, rnnac.storage.folding; a bool is the case folding alone). temperature divides the
    logits: < 1 sharper, > 1 flatter, 0 the most likely character every time. A word is never
    empty and stops at `max_length` characters.
    rng: a Generator, or a seed for one (None: fresh entropy). The words of sample_chunks, joined.

    sample(model, vocab, 3, rng=np.random.default_rng(1)) -> e.g. ["the", "ston", "reading"]
    """
    return list(itertools.chain.from_iterable(sample_chunks(model, vocab, n, temperature, prefix, rng, max_length,
                                                            folding)))


def sample_chunks(model: RNN, vocab: Vocab, n: int, temperature: float = 1.0, prefix: str = "",
                  rng: np.random.Generator | int | None = None, max_length: int = 32, folding: Folding | bool = True,
                  chunk: int = CHUNK) -> Iterator[list[str]]:
    """sample's n words as lists of `chunk` words (the last one shorter), each drawn when asked
    for: memory stays that of one chunk however large n is, and a reader that stops early (a
    closed pipe) stops the drawing. The options are checked at once, before the first chunk."""
    prefix = fold(prefix, folding)
    _check_options(n, temperature, max_length, prefix)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    rng = np.random.default_rng(rng)  # passes a Generator through unchanged
    a, logp, _ = read_strings(model, [vocab.encode(prefix)])  # (1, H), (1, K): the prefix read once
    return (_draw_words(model, vocab, a, logp, min(chunk, n - start), temperature, prefix, rng, max_length)
            for start in range(0, n, chunk))


def _draw_words(model: RNN, vocab: Vocab, a: np.ndarray, logp: np.ndarray, n: int, temperature: float, prefix: str,
                rng: np.random.Generator, max_length: int) -> list[str]:
    """n words drawn together from the prefix's state a (1, H) and next-character log-probs logp (1, K)."""
    a, logp = np.repeat(a, n, axis=0), np.repeat(logp, n, axis=0)  # (n, H), (n, K)
    tokens = np.zeros((n, max(0, max_length - len(prefix))), dtype=np.int64)  # (n, T), 0 pads
    active = np.arange(n)  # rows still growing
    for t in range(tokens.shape[1]):
        # 1. Next-character distribution, sharpened or flattened by the temperature.
        logits = logp[active].astype(np.float64)  # (n', K)
        if not prefix and t == 0:
            logits[:, BOUNDARY] = -np.inf  # no empty words
        draw = _draw(logits, temperature, rng)  # (n',)
        # 2. Rows that drew the boundary are finished words; the others take one more step.
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
