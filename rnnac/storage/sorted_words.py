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


def prefix_lines(data: bytes, prefix: bytes) -> tuple[int, list[bytes]]:
    """The lines of `data` that start with `prefix`: (the index of the first, the lines). `data` is
    sorted lines joined by newlines, UTF-8; b"" is one empty line, so a list of no words has no
    text to ask. Bisects on byte offsets, reading a line at each step, so it needs no table of
    where lines start: a cold start reads a few dozen lines of a million.

    prefix_lines(b"a\\nab\\nb", b"a") -> (0, [b"a", b"ab"])
    """
    lo = _first_line_from(data, prefix)
    hi = _first_line_from(data, prefix + b"\xff")  # no UTF-8 byte is 0xff: after every line that starts with prefix
    lines = data[lo:hi].split(b"\n")
    if lines and hi <= len(data):  # the range ends with the newline before the next line
        lines.pop()
    return data.count(b"\n", 0, lo), lines if lo < hi else []


def line_of(data: bytes, word: bytes) -> int | None:
    """Where the line `word` starts in `data` (sorted lines joined by newlines, as prefix_lines
    takes), or None when no line is `word`; by bisection on byte offsets, nothing decoded.

    line_of(b"a\nab\nb", b"ab") -> 2
    """
    at = _first_line_from(data, word)
    end = at + len(word)
    if data[at:end] == word and (end == len(data) or data[end : end + 1] == b"\n"):
        return at
    return None


def _first_line_from(data: bytes, key: bytes) -> int:
    """Where the first line >= key starts in `data`, or len(data) + 1 if none is."""
    def line_start(at: int) -> int:  # the start of the first line starting at or after byte `at`
        return at if at == 0 or data[at - 1 : at] == b"\n" else data.find(b"\n", at) + 1 or len(data) + 1

    lo, hi = 0, len(data) + 1
    while lo < hi:  # the least byte `at` whose line (line_start(at)) is >= key, or the end
        at = (lo + hi) // 2
        start = line_start(at)
        end = data.find(b"\n", start)
        if start > len(data) or data[start : end if end >= 0 else len(data)] >= key:
            hi = at
        else:
            lo = at + 1
    return line_start(lo) if lo <= len(data) else len(data) + 1
