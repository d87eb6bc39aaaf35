"""Sorted word lists: the words starting with a prefix are one run, found by bisection."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

LAST_CHAR = "\U0010ffff"  # the last code point: sorts after every other character


def prefix_range(words: Sequence[str], prefix: str) -> tuple[int, int]:
    """(lo, hi): words[lo:hi] are exactly the words of the sorted `words` starting with `prefix`.

    Two bisections, then a step past the words that hold LAST_CHAR right after the prefix
    (they sort after prefix + LAST_CHAR, yet start with the prefix).
    prefix_range(["a", "a\\U0010ffffb", "ab", "b"], "a") -> (0, 3)
    """
    lo = bisect.bisect_left(words, prefix)
    hi = bisect.bisect_left(words, prefix + LAST_CHAR, lo)
    while hi < len(words) and words[hi].startswith(prefix):
        hi += 1
    return lo, hi
