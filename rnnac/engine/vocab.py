"""Words as token ids: the vocabulary and padded batches.

Token id 0 is the word boundary. It is the first input and the last target, so
the word "ab" is the input [0, a, b] and the target [a, b, 0]. Shape letters:
B batch (words), T time (longest word + 1).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from rnnac.errors import UnknownCharError

BOUNDARY = 0


def is_control(ch: str) -> bool:
    """A control, surrogate or line/paragraph separator character: none belongs in a word (it
    would break line-based input and output)."""
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


class Vocab:
    """Sorted characters; id 0 is the word boundary, `chars[i]` is id i + 1.

    >>> Vocab.from_words(["ab"]).encode("ab")
    [1, 2]
    """

    def __init__(self, chars: Iterable[str]):
        self.chars = list(chars)
        if len(set(self.chars)) != len(self.chars) or any(len(ch) != 1 for ch in self.chars):
            raise ValueError("vocabulary characters must be distinct single characters")
        self.index = {ch: i + 1 for i, ch in enumerate(self.chars)}

    @classmethod
    def from_words(cls, words: Iterable[str]) -> "Vocab":
        return cls(sorted(set().union(*map(set, words))))

    def __len__(self) -> int:
        return len(self.chars) + 1  # + the boundary

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Vocab({''.join(self.chars)!r})"

    def unknown_char(self, word: str) -> str | None:
        """The first character of `word` not in the vocabulary, or None."""
        return next((ch for ch in word if ch not in self.index), None)

    def encode(self, word: str) -> list[int]:
        """Ids of the characters of `word`, without boundary tokens."""
        try:
            return [self.index[ch] for ch in word]
        except KeyError as e:
            raise UnknownCharError(word, e.args[0]) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of `ids`; boundary tokens are dropped."""
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)


@dataclass
class Batch:
    """Padded words. inputs, targets: int (B, T); mask: float (B, T), 1.0 where a target counts."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray

    @property
    def n_targets(self) -> int:
        """Number of characters scored (each word's letters plus its end)."""
        return int(self.mask.sum())


def make_batch(words: Sequence[str], vocab: Vocab) -> Batch:
    """Pad `words` into one batch: input [0, w1..wn], target [w1..wn, 0], then padding.

    make_batch(["ab", "b"], Vocab.from_words(["ab"])).targets -> [[1, 2, 0], [2, 0, 0]]
    """
    if not words:
        raise ValueError("a batch needs at least one word")
    encoded = [vocab.encode(w) for w in words]
    lengths = np.array([len(ids) for ids in encoded])
    B, T = len(words), int(lengths.max()) + 1
    inputs = np.zeros((B, T), dtype=np.int64)  # (B, T)
    targets = np.zeros((B, T), dtype=np.int64)  # (B, T)
    for row, ids in enumerate(encoded):
        inputs[row, 1 : len(ids) + 1] = ids
        targets[row, : len(ids)] = ids
    mask = (np.arange(T)[None, :] <= lengths[:, None]).astype(np.float64)  # (B, T)
    return Batch(inputs, targets, mask)
