"""How a word list's lines read: its format, detected or given (FORMATS), and each line as an
entry and its count.

Formats:
- lines: one entry a line; an entry on several lines counts that many times.
- tsv: `word<TAB>count`.
- csv: `word,count`, with or without a header line (a first line whose count is not a number).
- uniq: the output of `sort | uniq -c`, `  123 word`: a count, a space, the word.

Detection ("auto") looks at the first non-blank line: a tab makes the list TSV, a number then a
word `uniq -c`, `word,count` with a number (or a file named .csv) CSV; anything else is one
entry a line.

Spaces: the line end (`\n`, `\r\n`) is no part of an entry, nor are the white space before it
(indentation, the padding of `uniq -c`) and tabs or other white space after it. Spaces that end
an entry belong to it (`cd ` is not `cd`) in a list of phrases: one where at least one entry in
ten holds a space inside and fewer than half end in one. In a list of single words spaces at the
end are stray (copied from a padded column, typed by accident) and dropped, as they are when
most entries end in spaces (padding to a width).

Performance notes: deciding the spaces reads every line twice, once counting entries with
spaces inside and at the end, once reading them.
"""

from __future__ import annotations

import csv
import math
import os
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Iterator

from rnnac.engine.vocab import is_control
from rnnac.errors import DataError, quote

FORMATS = ("auto", "lines", "tsv", "csv", "uniq")  # auto: detected (module docstring)
KINDS = {"lines": "one word per line", "tsv": "frequency list", "csv": "frequency list, CSV",
         "uniq": "frequency list, uniq -c"}
_EXPECTED = {"tsv": "word<TAB>count", "csv": "word,count", "uniq": "count word (uniq -c)"}
_NUMBERED = re.compile(r"(\d+)( |$)(.*)", re.S)  # a `uniq -c` line after its padding: count, space, word
PHRASES = 0.1  # the least share of entries with a space inside for a list of phrases
PADDED = 0.5  # the least share of entries ending in a space for a padded list


@dataclass(frozen=True)
class Layout:
    """How every line of one word list reads; read_entries finds it (module docstring)."""

    format: str  # lines, tsv, csv or uniq
    header: bool = False  # csv: the first non-blank line names the columns
    trailing_spaces: bool = False  # spaces that end an entry belong to it

    def split(self, line: str) -> tuple[str, str] | None:
        """(the entry's text as the line has it, spaces around it included; its count's text, ""
        in a plain list) of a non-blank line, or None where the line has not this form."""
        if self.format == "lines":
            return line, ""
        if self.format == "tsv":
            parts = line.split("\t")
            return (parts[0], parts[1].strip()) if len(parts) == 2 else None
        if self.format == "uniq":
            match = _NUMBERED.fullmatch(line.lstrip())
            return (match[3], match[1]) if match else None
        fields = _csv_fields(line)
        return (fields[0], fields[1].strip()) if len(fields) == 2 else None


def read_entries(lines: list[str], label: str, format: str) -> tuple[Layout, Iterator[tuple[int, str, float]]]:
    """(how the lines read, the format detected for "auto"; (line number, entry, count) of each
    line that holds an entry, in file order). Entries are in NFC, without the white space around
    them but the spaces after them that belong to them (module docstring). Bad lines raise
    DataError naming `label` and the line as the iterator reaches them; a file of blank lines
    raises it at once."""
    first, first_line = next(_non_blank(lines), (0, None))
    if first_line is None:
        raise DataError(f"{label}: holds no words")
    if format == "auto":
        format = detect_format(first_line, label)
    layout = Layout(format, header=format == "csv" and _is_csv_header(first_line))
    layout = replace(layout, trailing_spaces=_ends_entries(_body(lines, layout), layout))
    return layout, _entries(_body(lines, layout), label, layout, first)


def _entries(body: Iterator[tuple[int, str]], label: str, layout: Layout,
             first: int) -> Iterator[tuple[int, str, float]]:
    """read_entries' (line number, entry, count) of the numbered lines `body` read by `layout`;
    `first` is the number of the file's first non-blank line."""
    for number, line in body:
        if layout.format == "lines" and "\t" in line:
            raise DataError(f"{label}: line {number} holds a tab, but line {first} does not: "
                            "use one word per line, or word<TAB>count on every line")
        split = layout.split(line)
        if layout.format == "uniq" and split is not None and not split[0].strip():
            continue  # `uniq -c` counting blank lines
        word, spaces = _stripped(split[0]) if split is not None else ("", 0)
        if not word:
            raise DataError(f"{label}: line {number}: expected {_EXPECTED[layout.format]}, got {quote(line.strip())}")
        if layout.trailing_spaces:
            word += " " * spaces
        count = 1.0 if layout.format == "lines" else _count(split[1], label, number)
        yield number, _check_word(word, label, number), count


def _body(lines: list[str], layout: Layout) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) of the lines that may hold an entry: not blank, not a header."""
    body = _non_blank(lines)
    if layout.header:
        next(body)
    return body


def _non_blank(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) of the lines that are not blank."""
    return ((number, line) for number, line in enumerate(lines, start=1) if line and not line.isspace())


def _stripped(text: str) -> tuple[str, int]:
    """(`text` without the white space around it, the number of spaces U+0020 right after it).

    _stripped("  cd  \\r") -> ("cd", 2)
    """
    word = text.strip()
    after = text[len(text) - len(text.lstrip()) + len(word):]
    return word, len(after) - len(after.lstrip(" "))


def _ends_entries(body: Iterator[tuple[int, str]], layout: Layout) -> bool:
    """Whether spaces at the end of an entry belong to it: a list of phrases, not padded
    (module docstring). `body` is the numbered lines that may hold one."""
    entries = inside = ending = 0
    for _, line in body:
        split = layout.split(line)
        if split is None:
            continue  # a bad line: the reading pass names it
        word, spaces = _stripped(split[0])
        entries += bool(word)
        inside += " " in word
        ending += bool(word) and spaces > 0
    return inside >= PHRASES * entries and ending < PADDED * entries and inside > 0


def detect_format(line: str, path: str | os.PathLike = "") -> str:
    """The format of a list whose first non-blank line is `line`: tsv for a tab, uniq for
    `  123 word`, csv for `word,123` or a file named .csv, else lines (one word a line).

    detect_format("   12 the") -> "uniq";  detect_format("the,12") -> "csv"
    """
    if "\t" in line:
        return "tsv"
    match = _NUMBERED.fullmatch(line.lstrip())
    if match and match[3].strip():
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


def _csv_fields(line: str) -> list[str]:
    """The fields of one CSV line; a quoted field may hold the delimiter: "a, b",3."""
    try:
        return next(csv.reader([line.strip()]))
    except (csv.Error, StopIteration):
        return []


def _is_csv_header(line: str) -> bool:
    """A first CSV line whose count is not a number (`word,count`) names the columns."""
    fields = _csv_fields(line)
    return len(fields) != 2 or not _is_number(fields[1])


def _count(text: str, label: str, number: int) -> float:
    """The count `text` of line `number`: a finite number >= 0, else a DataError."""
    try:
        count = float(text)
    except ValueError:
        raise DataError(f"{label}: line {number}: count {quote(text)} is not a number") from None
    if not math.isfinite(count) or count < 0:
        raise DataError(f"{label}: line {number}: count {quote(text)} must be a finite number >= 0")
    return count


def _check_word(word: str, label: str, number: int) -> str:
    """`word` in NFC; DataError for a control character, which would break line-based output.
    The word is in Unicode NFC, so a precomposed and a decomposed "café" are the same word."""
    word = unicodedata.normalize("NFC", word)
    bad = next((ch for ch in word if is_control(ch)), None)
    if bad is not None:
        raise DataError(f"{label}: line {number}: {quote(word)} holds the control character U+{ord(bad):04X}")
    return word
