"""How a word list's lines read: its format, detected or given (FORMATS), and each line as an
entry and its count.

Formats:
- lines: one entry a line; an entry on several lines counts that many times.
- tsv: `word<TAB>count`.
- csv: `word,count`, or `word;count` as spreadsheets write CSV where the comma is the decimal
  point (and there a count may be `2,5`); with or without a header line. The delimiter is the
  one that gives the first line a number for its count, or else the line after a header.
- uniq: the output of `sort | uniq -c`, `  123 word`: a count, a space, the word.
- history: the output of a shell's `history`, `  101  git push`: a line number, two spaces (or
  `* `, bash's mark of an edited command), the command. Each line is one use of its command, so
  a command typed 30 times counts 30. Time stamps before every command (bash's HISTTIMEFORMAT,
  zsh's `history -i`) are cut off where they read as a date and time: `2024-01-02 10:00:00 `,
  `01/02/24 10:00 `, `Jan  2 10:00:00 `, `[...]`, bash's `??` for a command saved without one.
  A history with stamps on some lines only, or whose every command starts with a digit (a
  stamp of a form not read), is refused.

Detection ("auto") looks at the first non-blank line: a tab makes the list TSV, a number then
more `uniq -c` or a history, `word,count` or `word;count` with a number (or a file named .csv)
CSV, and so does a header line with such a line after it; anything else is one entry a line.
`uniq -c` and a history are told apart by the whole file: a history has two spaces after every
number and line numbers that rise (by one, or with gaps where it went through grep); `uniq -c`
has one space after its counts, padded to a width. A file with two spaces but numbers that
fall, or one space and unpadded numbers running 1, 2, 3 ... (a numbered list: `1 corinthians`),
is refused, to be read with its format given.

Spaces: the line end (`\n`, `\r\n`) is no part of an entry, nor are the white space before it
(indentation, the padding of `uniq -c` and `history`) and tabs or other white space after it.
Spaces that end an entry belong to it (`cd ` is not `cd`) in a history, and in a list of
phrases: one where at least one entry in ten holds a space inside, and fewer than half end in
one. In a list of single words, spaces at the end are stray (copied from a padded column, typed
by accident) and dropped, as they are when most entries end in spaces (padding to a width).

Performance notes: deciding the spaces reads every line twice, once counting entries with
spaces inside and at the end, once reading them; a history's stamps and the numbers of `uniq -c`
or a history are checked in a pass of their own.
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

FORMATS = ("auto", "lines", "tsv", "csv", "uniq", "history")  # auto: detected (module docstring)
KINDS = {"lines": "one word per line", "tsv": "frequency list", "csv": "frequency list, CSV",
         "uniq": "frequency list, uniq -c", "history": "shell history"}
_EXPECTED = {"tsv": "word<TAB>count", "csv": "word{}count", "uniq": "count word (uniq -c)",
             "history": "a number, two spaces and a command (history)"}
# A line of `uniq -c` or `history` after its padding: a number, the gap after it, the rest.
_NUMBERED = re.compile(r"(\d+)(\* |  | |$)(.*)", re.S)
_DELIMITERS = ";,"  # of a CSV, in the order tried: `the;2,5` is `the` counted 2.5
_HISTORY_GAPS = ("  ", "* ")  # after a history's line number: two spaces, or bash's `* ` for an edited command
_STAMP = re.compile(r"""  # a time stamp before a history's command, and the spaces after it
    (?: \?\?                                          # bash: a command saved without its time
      | \[? (?: [A-Z][a-z]{2},?\ +)?                  # [ and a weekday: [Tue
        (?: (?: \d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}       # a date: 2024-01-02, 02/01/24, 2.1.2024
              | [A-Z][a-z]{2}\ +\d{1,2}(?:,?\ +\d{4})?  # Jan  2, Jan 2, 2024
            ) (?: [\ T]+ \d{1,2}:\d{2}(?::\d{2})? )?  # then maybe a time
          | \d{1,2}:\d{2}(?::\d{2})?                  # a time alone: 10:00, 10:00:00
          | \d{10}                                    # seconds since 1970
        ) (?: \ +\d{4})? \]? [:|]?                      # a year after the time (%c), ], : or |
    ) \ *""", re.X)
PHRASES = 0.1  # the least share of entries with a space inside for a list of phrases
PADDED = 0.5  # the least share of entries ending in a space for a padded list


@dataclass(frozen=True)
class Layout:
    """How every line of one word list reads; read_entries finds it (module docstring)."""

    format: str  # lines, tsv, csv, uniq or history
    delimiter: str = ","  # csv: "," or ";"
    header: bool = False  # csv: the first non-blank line names the columns
    stamps: bool = False  # history: a time stamp precedes every command, to be cut off
    trailing_spaces: bool = False  # spaces that end an entry belong to it

    def split(self, line: str) -> tuple[str, str] | None:
        """(the entry's text as the line has it, spaces around it included; its count's text, ""
        in a plain list or a history) of a non-blank line, or None where the line has not this
        form. The text is blank where the line holds no entry: `uniq -c` counting blank lines."""
        if self.format == "lines":
            return line, ""
        if self.format == "tsv":
            parts = line.split("\t")
            return (parts[0], parts[1].strip()) if len(parts) == 2 else None
        if self.format in ("uniq", "history"):
            match = _NUMBERED.fullmatch(line.lstrip())
            if not match or (self.format == "uniq" and match[2] == "* "):
                return None
            if self.format == "uniq":
                return match[3], match[1]
            stamp = _STAMP.match(match[3]) if self.stamps else None
            return match[3][stamp.end() if stamp else 0:], ""
        fields = _csv_fields(line, self.delimiter)
        return (fields[0], fields[1].strip()) if len(fields) == 2 else None

    @property
    def expected(self) -> str:
        """What a line should look like, for messages: `word;count`."""
        return _EXPECTED[self.format].format(self.delimiter)


def read_entries(lines: list[str], label: str, format: str) -> tuple[Layout, Iterator[tuple[int, str, float]]]:
    """(how the lines read, the format detected for "auto"; (line number, entry, count) of each
    line that holds an entry, in file order). Entries are in NFC, without the white space around
    them but the spaces after them that belong to them (module docstring). Bad lines raise
    DataError naming `label` and the line as the iterator reaches them; a file of blank lines
    raises it at once."""
    body = _non_blank(lines)
    first, first_line = next(body, (0, None))
    if first_line is None:
        raise DataError(f"{label}: holds no words")
    second_line = next(body, (0, None))[1]
    csv_layout = _csv_layout(first_line, second_line)
    if format == "auto":
        # `sort | uniq -c` puts its count of blank lines, a number alone, first.
        bare = second_line is not None and first_line.strip().isdecimal()
        format = detect_format(second_line if bare else first_line, label)
        if format in ("uniq", "history"):
            format = _uniq_or_history(_non_blank(lines), label)
        elif format == "lines" and csv_layout and csv_layout[1]:
            format = "csv"  # a header, then `word,count`
    delimiter, header = ",", False
    if format == "csv":
        delimiter, header = csv_layout or (",", _is_csv_header(first_line))
    layout = Layout(format, delimiter, header, stamps=format == "history" and _has_stamps(_non_blank(lines), label))
    trailing_spaces = format == "history" or _keeps_trailing_spaces(_body(lines, layout), layout)
    layout = replace(layout, trailing_spaces=trailing_spaces)
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
        if split is not None and not split[0].strip() and layout.format in ("uniq", "history"):
            continue  # `uniq -c` counting blank lines
        word, spaces = _stripped(split[0]) if split is not None else ("", 0)
        if not word:
            several = " (a command of several lines? rnnac reads one-line commands)" if layout.format == "history" else ""
            raise DataError(f"{label}: line {number}: expected {layout.expected}, "
                            f"got {quote(line.strip())}{several}")
        if layout.trailing_spaces:
            word += " " * spaces
        count = 1.0 if layout.format in ("lines", "history") else _count(split[1], label, number, layout.delimiter)
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


def _keeps_trailing_spaces(body: Iterator[tuple[int, str]], layout: Layout) -> bool:
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


def _uniq_or_history(body: Iterator[tuple[int, str]], label: str) -> str:
    """uniq or history: the format of a list whose first line is a number and more, told by the
    gaps after the numbers and how the numbers run (module docstring). DataError where the two
    signs disagree. `body` is the numbered non-blank lines."""
    one_space = fall = None  # the first line with one space after its number; whose number falls
    by_one, padded, numbered, previous = True, True, 0, None
    for number, line in body:
        match = _NUMBERED.fullmatch(line.lstrip())
        if not match or not match[3].strip():
            continue  # a line the reading pass names, or a blank entry: no sign either way
        padded = padded and line[0] == " "
        value = int(match[1]) if len(match[1]) <= 18 else None  # no history has 10^18 lines
        if match[2] not in _HISTORY_GAPS and one_space is None:
            one_space = number
        if numbered and (value is None or previous is None or value != previous + 1):
            by_one = False
        if numbered and (value is None or previous is None or value <= previous) and fall is None:
            fall = number
        numbered, previous = numbered + 1, value
        if one_space is not None and not (by_one and not padded):
            return "uniq"  # counts, as uniq -c writes them
    if one_space is None and fall is None:
        return "history"
    if one_space is not None and numbered < 3:
        return "uniq"  # two counts running on by one are no sign
    if one_space is None:
        raise DataError(f"{label}: two spaces follow every number, as in `history` output, but the numbers fall at "
                        f"line {fall}, as a history's do not: say which it is with data.format (history or uniq)")
    raise DataError(f"{label}: the numbers run on by one from line to line, with one space after them (line "
                    f"{one_space}) and no padding before: a numbered list, not `uniq -c` counts nor `history` "
                    "output? say which it is with data.format (lines, uniq or history)")


def _has_stamps(body: Iterator[tuple[int, str]], label: str) -> bool:
    """Whether a time stamp precedes every command of a history (`body`, its numbered non-blank
    lines). DataError where some commands have one and others not, or where every command starts
    with a digit, as after a stamp of a form not read (module docstring)."""
    stamped = unstamped = None  # the first line with a stamp, without one
    commands = digits = 0
    for number, line in body:
        match = _NUMBERED.fullmatch(line.lstrip())
        if not match or not match[3].strip():
            continue
        command = match[3].lstrip()
        if _STAMP.match(command):
            stamped = number if stamped is None else stamped
        else:
            unstamped = number if unstamped is None else unstamped
        commands += 1
        digits += command[0] in "0123456789"
    redo = "print the history without them (bash: HISTTIMEFORMAT= history)"
    if stamped is not None and unstamped is not None:
        raise DataError(f"{label}: line {stamped} starts with a time stamp and line {unstamped} does not: {redo}")
    if stamped is None and commands >= 2 and digits == commands:
        raise DataError(f"{label}: every command starts with a digit, as after a time stamp of a form rnnac does not "
                        f"read: {redo}")
    return stamped is not None


def detect_format(line: str, path: str | os.PathLike = "") -> str:
    """The format of a list whose first non-blank line is `line`: tsv for a tab, history for
    `  101  git push` (two spaces after the number), uniq for `  123 word` (one space), csv for
    `word,123`, `word;123` or a file named .csv, else lines (one word a line). read_entries
    checks the other lines of a file that seems uniq or history (_uniq_or_history), and the
    second line of one that seems a plain list for a CSV header before it (_csv_layout).

    detect_format("   12 the") -> "uniq";  detect_format("  101  git push") -> "history";
    detect_format("the,12") -> "csv";  detect_format("the;2,5") -> "csv"
    """
    if "\t" in line:
        return "tsv"
    match = _NUMBERED.fullmatch(line.lstrip())
    if match and match[3].strip():
        return "history" if match[2] in _HISTORY_GAPS else "uniq"
    if str(path).lower().endswith(".csv"):
        return "csv"
    for delimiter in _DELIMITERS:
        word, found, count = line.rpartition(delimiter)
        if found and word.strip() and _number(count, delimiter) is not None:
            return "csv"
    return "lines"


def _csv_layout(first: str, second: str | None) -> tuple[str, bool] | None:
    """(the delimiter, whether `first` is a header) of a CSV whose first two non-blank lines are
    `first` and `second` (None for none): `;` or `,`, whichever gives the first line a number for
    its count, or else gives the second line one after a header of two names. None if neither."""
    for delimiter in _DELIMITERS:
        if _has_count(first, delimiter):
            return delimiter, False
    for delimiter in _DELIMITERS:
        names = _csv_fields(first, delimiter)
        if len(names) == 2 and all(name.strip() for name in names) and second and _has_count(second, delimiter):
            return delimiter, True
    return None


def _has_count(line: str, delimiter: str) -> bool:
    """Whether `line` reads as a word, `delimiter` and a number."""
    fields = _csv_fields(line, delimiter)
    return len(fields) == 2 and bool(fields[0].strip()) and _number(fields[1], delimiter) is not None


def _csv_fields(line: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV line; a quoted field may hold the delimiter: "a, b",3."""
    try:
        return next(csv.reader([line.strip()], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return []


def _is_csv_header(line: str) -> bool:
    """A first line of a `,` CSV whose count is not a number (`word,count`) names the columns."""
    fields = _csv_fields(line)
    return len(fields) != 2 or _number(fields[1]) is None


def _number(text: str, delimiter: str = ",") -> float | None:
    """`text` as a float, None if it is none. In a `;` CSV a decimal comma is a decimal point:
    _number("2,5", ";") -> 2.5."""
    if delimiter == ";" and text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def _count(text: str, label: str, number: int, delimiter: str = ",") -> float:
    """The count `text` of line `number`: a finite number >= 0, else a DataError."""
    count = _number(text, delimiter)
    if count is None:
        raise DataError(f"{label}: line {number}: count {quote(text)} is not a number")
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
