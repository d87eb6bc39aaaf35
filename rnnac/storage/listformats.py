"""How a word list's lines read: its format, detected or given, and each line as an entry and
its count.

A word list is one word a line, or a frequency list in one of three forms people already have:
`word<TAB>count` (TSV), `word,count` (CSV, an optional header line) or `uniq -c` output
(`  123 word`). The form is detected from the first line (or given, FORMATS).
"""

from __future__ import annotations

import csv
import math
import itertools
import os
import re
import unicodedata
from typing import Iterator

from rnnac.engine.vocab import is_control
from rnnac.errors import DataError, quote

FORMATS = ("auto", "lines", "tsv", "csv", "uniq")  # auto: detected from the first line (and a .csv name)
KINDS = {"lines": "one word per line", "tsv": "frequency list", "csv": "frequency list, CSV",
         "uniq": "frequency list, uniq -c"}
_EXPECTED = {"tsv": "word<TAB>count", "csv": "word,count", "uniq": "count word (uniq -c)"}
_UNIQ = re.compile(r"(\d+) +(\S.*)")  # a `uniq -c` line, stripped: the count, a space, the word


def read_entries(lines: list[str], label: str, format: str) -> tuple[str, Iterator[tuple[int, str, float]]]:
    """(the format, detected for "auto"; (line number, entry, count) of each line that holds an
    entry, in file order). The entries are in NFC; bad lines raise DataError naming `label` and the
    line as the iterator reaches them, and a file of blank lines at once."""
    format, first, body = _body(lines, label, format)

    def entries() -> Iterator[tuple[int, str, float]]:
        for number, line in body:
            if format == "uniq" and line.strip().isdigit():  # `uniq -c` counting blank lines
                continue
            word, count = _parse_line(line, format, label, number, first)
            yield number, word, count

    return format, entries()


def _body(lines: list[str], label: str, format: str) -> tuple[str, int, Iterator[tuple[int, str]]]:
    """(the format, detected from the first non-blank line for "auto"; that line's number; the
    numbered non-blank lines that hold words, a CSV header left out)."""
    body = ((number, line) for number, line in enumerate(lines, start=1) if line.strip())
    first, first_line = next(body, (0, None))
    if first_line is None:
        raise DataError(f"{label}: holds no words")
    if format == "auto":
        format = detect_format(first_line, label)
    if not (format == "csv" and _is_csv_header(first_line)):  # `word,count`: a header, not a word
        body = itertools.chain([(first, first_line)], body)
    return format, first, body



def detect_format(line: str, path: str | os.PathLike = "") -> str:
    """The format of a list whose first non-blank line is `line`: tsv for a tab, uniq for
    `  123 word`, csv for `word,123` or a file named .csv, else lines (one word a line).

    detect_format("   12 the") -> "uniq";  detect_format("the,12") -> "csv"
    """
    if "\t" in line:
        return "tsv"
    if _UNIQ.fullmatch(line.strip()):
        return "uniq"
    word, comma, count = line.rpartition(",")
    if str(path).lower().endswith(".csv") or (comma and word.strip() and _is_number(count)):
        return "csv"
    return "lines"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_csv_header(line: str) -> bool:
    """A first CSV line whose count is not a number (`word,count`) names the columns."""
    _, count = _split_count(line, "csv")
    return not _is_number(count)


def _split_count(line: str, format: str) -> tuple[str, str]:
    """(word, count text) of a frequency-list line, both stripped; ("", "") if it has not that form."""
    if format == "tsv":
        parts = line.split("\t")
        return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else ("", "")
    if format == "uniq":
        match = _UNIQ.fullmatch(line.strip())
        return (match[2].strip(), match[1]) if match else ("", "")
    try:
        fields = next(csv.reader([line.strip()]))  # a quoted word may hold a comma: "a, b",3
    except csv.Error:
        return "", ""
    return (fields[0].strip(), fields[1].strip()) if len(fields) == 2 else ("", "")



def _parse_line(line: str, format: str, label: str, number: int, first: int) -> tuple[str, float]:
    """(word, count) of one non-blank line; count is 1.0 in a plain list. The word is in
    Unicode NFC, so a precomposed and a decomposed "café" are the same word."""
    if format == "lines":
        if "\t" in line:
            raise DataError(f"{label}: line {number} holds a tab, but line {first} does not: "
                            "use one word per line, or word<TAB>count on every line")
        return _check_word(line.strip(), label, number), 1.0
    word, count_text = _split_count(line, format)
    if not word:
        raise DataError(f"{label}: line {number}: expected {_EXPECTED[format]}, got {quote(line.strip())}")
    try:
        count = float(count_text)
    except ValueError:
        raise DataError(f"{label}: line {number}: count {quote(count_text)} is not a number") from None
    if not math.isfinite(count) or count < 0:
        raise DataError(f"{label}: line {number}: count {quote(count_text)} must be a finite number >= 0")
    return _check_word(word, label, number), count


def _check_word(word: str, label: str, number: int) -> str:
    """`word` in NFC; DataError for a control character, which would break line-based output."""
    word = unicodedata.normalize("NFC", word)
    bad = next((ch for ch in word if is_control(ch)), None)
    if bad is not None:
        raise DataError(f"{label}: line {number}: {quote(word)} holds the control character U+{ord(bad):04X}")
    return word


