"""Word lists on disk: reading, the train/validation split, sampling weights, batches.

A word list is one word per line, a frequency list in one of the forms people already have, or
a shell history; listformats.py reads its lines (FORMATS). Words are merged after lowercasing (and
accent folding, when asked: rnnac.storage.folding), so a WordList holds each word once with its
total count and its most frequent written form; everything downstream (split, weights,
sampler) works with indices into `WordList.words`.
Shape letters: N words, B batch.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from rnnac.errors import CheckpointError, ConfigError, DataError, quote
from rnnac.storage.folding import Folding, fold
from rnnac.storage.listformats import FORMATS, KINDS, read_entries
from rnnac.storage.shipped import missing_list_hint, word_list_file

SCHEMES = ("uniform", "count", "sqrt", "log")
_BOM = b"\xef\xbb\xbf"


@dataclass(eq=False)
class WordList:
    """Distinct words in first-seen order with their counts; what filtering dropped."""

    words: list[str]  # distinct, first-seen order
    counts: np.ndarray  # (N,) float64; occurrences in a plain list, summed counts in a frequency list
    format: str  # how the lines were read: lines, tsv, csv, uniq or history (FORMATS)
    path: str  # the file read, or "<stdin>"
    dropped_chars: int = 0  # distinct words with a character outside allowed_chars
    dropped_length: int = 0  # distinct words outside [min_length, max_length]
    dropped_max_words: int = 0  # distinct words kept out by max_words
    cased: dict[str, str] = field(default_factory=dict)  # folded word -> its most frequent form when that differs (capitals, accents)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def lengths(self) -> np.ndarray:
        """Characters per word, (N,) int64."""
        return np.array([len(w) for w in self.words], dtype=np.int64)  # (N,)

    @property
    def written(self) -> list[str]:
        """The words as most often written in the file: "Paris" where lowercasing made it "paris",
        "Café" where accent folding made it "cafe"."""
        return [self.cased.get(w, w) for w in self.words]

    @property
    def is_frequency_list(self) -> bool:
        """Whether the counts say how often each word is used: read with a count on every line
        (TSV, CSV or uniq -c), or from a shell history; not a plain list."""
        return self.format != "lines"

    def summary(self) -> str:
        """One line: 'data/words.tsv: 48,683 words (frequency list), dropped 1,317 for characters, ...'."""
        kind = KINDS[self.format]
        drops = [(self.dropped_chars, "for characters"), (self.dropped_length, "for length"),
                 (self.dropped_max_words, "beyond max_words")]
        dropped = ", ".join(f"{n:,} {why}" for n, why in drops if n)
        return f"{self.path}: {len(self.words):,} words ({kind})" + (f", dropped {dropped}" if dropped else "")


def read_word_list(
    path: str | os.PathLike,
    *,
    lowercase: bool = True,
    fold_accents: bool = False,
    allowed_chars: str | None = None,
    min_length: int = 1,
    max_length: int | None = None,
    max_words: int | None = None,
    format: str = "auto",
    allow_empty: bool = False,
) -> WordList:
    """Read a word list: one word a line, a frequency list (`word<TAB>count`, `word,count`,
    `word;count`, `uniq -c`) or a shell's `history`; `format` "auto" tells them apart
    (listformats.read_entries).

    Words are stripped (trailing spaces kept in a history or a list of phrases: listformats),
    put in NFC, lowercased and accent-folded (each if asked: rnnac.storage.folding.fold) and
    merged, counts added, in first-seen order.
    Then words with characters outside `allowed_chars`, or outside [min_length, max_length],
    are dropped, and only the first `max_words` kept. `path` "-" reads stdin; the name of a shipped
    list ("words", "names", "identifiers") reads that list, unless a file has that name
    (shipped.word_list_file). A file of no words (empty, or blank lines) is a DataError, or with
    `allow_empty` a WordList of none.
    """
    _check_read_options(format, min_length, max_length, max_words)
    label, lines = _read_lines(word_list_file(path))
    if allow_empty and not any(line.strip() for line in lines):
        return WordList([], np.zeros(0), "lines" if format == "auto" else format, label)
    merged, format, cased = _merge(lines, label, Folding(lowercase, fold_accents), format)
    kept, dropped_chars, dropped_length = _filter(merged, allowed_chars, min_length, max_length)
    if not kept:
        raise DataError(
            f"{label}: no words left after filtering ({len(merged):,} distinct read, "
            f"{dropped_chars:,} with characters outside allowed_chars, "
            f"{dropped_length:,} outside lengths [{min_length}, {max_length}])"
        )
    dropped_max_words = max(0, len(kept) - max_words) if max_words is not None else 0
    kept = kept[:max_words]
    return WordList(kept, _finite_counts([merged[w] for w in kept]), format, label, dropped_chars, dropped_length,
                    dropped_max_words, {w: cased[w] for w in kept if w in cased})


def _check_read_options(format: str, min_length: int, max_length: int | None, max_words: int | None) -> None:
    """ConfigError unless read_word_list's options make sense."""
    if format not in FORMATS:
        raise ConfigError(f"unknown word list format {quote(format)}; choose one of {', '.join(FORMATS)}")
    if min_length < 1 or (max_length is not None and max_length < min_length):
        raise ConfigError(f"word lengths must satisfy 1 <= min_length <= max_length, got {min_length}, {max_length}")
    if max_words is not None and max_words < 1:
        raise ConfigError(f"max_words must be at least 1, got {max_words}")


def _filter(merged: dict[str, float], allowed_chars: str | None, min_length: int,
            max_length: int | None) -> tuple[list[str], int, int]:
    """(the distinct words kept, in order; the number dropped for characters; for length): each
    dropped word is counted once, for its first failing test."""
    allowed = None if allowed_chars is None else set(allowed_chars)
    kept: list[str] = []
    dropped_chars = dropped_length = 0
    for word in merged:
        if allowed is not None and not allowed.issuperset(word):
            dropped_chars += 1
        elif len(word) < min_length or (max_length is not None and len(word) > max_length):
            dropped_length += 1
        else:
            kept.append(word)
    return kept, dropped_chars, dropped_length


def _finite_counts(counts: list[float]) -> np.ndarray:
    """The counts (N,) float64, rescaled when their sum overflows: only their ratios matter."""
    array = np.array(counts, dtype=np.float64)  # (N,)
    with np.errstate(over="ignore"):
        overflows = not np.isfinite(array.sum())
    if overflows:
        array /= array.max()
    return array


def _merge(lines: list[str], label: str, folding: Folding, format: str) -> tuple[dict[str, float], str, dict[str, str]]:
    """({word: total count} in first-seen order, the format read, {word: its most frequent written
    form where that differs: capitals, accents}) from a file's lines."""
    merged: dict[str, float] = {}
    forms: dict[str, dict[str, float]] = {}  # folded word -> {a written form other than it: its count}
    layout, entries = read_entries(lines, label, format)
    for number, written, count in entries:
        word = fold(written, folding)  # `written` is in NFC already (listformats)
        if word != written:
            forms.setdefault(word, {})[written] = forms.get(word, {}).get(written, 0.0) + count
        merged[word] = merged.get(word, 0.0) + count
        if math.isinf(merged[word]):
            raise DataError(f"{label}: line {number}: the counts of {quote(word)} add up to more than a float holds")
    if not merged:  # a CSV header alone, or uniq -c of blank lines
        raise DataError(f"{label}: holds no words")
    return merged, layout.format, _most_frequent_written(merged, forms, folding)


def _most_frequent_written(merged: dict[str, float], forms: dict[str, dict[str, float]], folding: Folding) -> dict[str, str]:
    """{word: its most frequent written form, where that is not the word itself}: first its most
    frequent spelling, case folded as the model folds it but accents kept (crème), then that
    spelling's most frequent case (Crème). The word itself counts what its other forms leave of
    its total; a tie at either step keeps the plainer form (the word, then the spelling as the
    model folds case), so Crème and crème once each give crème, Bonn and BONN once each bonn."""
    written = {}
    for word, counts in forms.items():
        by_form = {word: merged[word] - sum(counts.values()), **counts}  # every form, the word itself first
        spelled: dict[str, float] = {}  # spelling (case folded) -> its count
        for form, count in by_form.items():
            spelled[fold(form, folding.case)] = spelled.get(fold(form, folding.case), 0.0) + count
        spelling = _the_most_frequent(spelled, word)
        cases = {spelling: by_form.get(spelling, 0.0)} | {f: c for f, c in by_form.items() if fold(f, folding.case) == spelling}
        form = _the_most_frequent(cases, spelling)
        if form != word:
            written[word] = form
    return written


def _the_most_frequent(counts: dict[str, float], tie: str) -> str:
    """The key of `counts` with the largest count, or `tie` when several have it."""
    top = max(counts.values())
    best = [key for key, count in counts.items() if count == top]
    return best[0] if len(best) == 1 else tie


def _read_lines(path: str | os.PathLike) -> tuple[str, list[str]]:
    """(label for messages, decoded lines). Undecodable bytes are a DataError naming their line."""
    if str(path) == "-":
        label, data = "<stdin>", sys.stdin.buffer.read()
    else:
        label = str(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise DataError(f"{label}: no such file{missing_list_hint(path)}") from None
        except OSError as e:
            raise DataError(f"{label}: cannot read ({e.strerror})") from None
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        # Decoding the whole file is fast; the line of the bad byte is recovered from its offset.
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{label}: line {line}: not valid UTF-8 (byte 0x{data[e.start]:02x}: {e.reason})") from None
    # Split on "\n" only: str.splitlines would also break on \x0b, \x1c, \u2028 ... and shift line numbers.
    return label, text.split("\n")


def split_words(n_words: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split word indices 0..n_words-1 into (train_idx, val_idx), both sorted int64.

    WordList words are distinct, so no validation word is trained on. The validation
    set holds round(val_fraction * n_words) words, at least 1 when val_fraction > 0 and
    n_words >= 2, and never all of them. Deterministic: PCG64 with a fixed seed gives
    the same permutation on every machine (for a given NumPy major version).
    split_words(10, 0.2, seed=0) -> (8 indices, 2 indices)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if n_words < 1:
        raise DataError("cannot split an empty word list")
    n_val = round(val_fraction * n_words)
    if val_fraction > 0 and n_words >= 2:
        n_val = min(max(n_val, 1), n_words - 1)
    order = np.random.default_rng(seed).permutation(n_words)  # (N,)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def sampling_weights(counts: np.ndarray, scheme: str) -> np.ndarray:
    """Probabilities (N,) of drawing each word: uniform, or proportional to count, sqrt(count), log1p(count).

    sampling_weights([1, 3], "count") -> [0.25, 0.75]
    """
    counts = np.asarray(counts, dtype=np.float64)  # (N,)
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown sampling scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if counts.ndim != 1 or counts.size == 0:
        raise DataError("sampling weights need a non-empty 1-D array of counts")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise DataError("counts must be finite and >= 0")
    raw = {
        "uniform": lambda: np.ones_like(counts),
        "count": lambda: counts,
        "sqrt": lambda: np.sqrt(counts),
        "log": lambda: np.log1p(counts),  # log1p so a count of 1 still has weight
    }[scheme]()  # (N,)
    total = raw.sum()
    if total <= 0:
        raise DataError(f"every word has weight 0 under scheme {scheme!r} (all counts are 0)")
    return raw / total


def _check_sampler_options(batch_size: int, bucket_batches: int, seed: int, scheme: str, counts) -> None:
    """ConfigError unless BatchSampler's options make sense."""
    if batch_size < 1 or bucket_batches < 1:
        raise ConfigError(f"batch_size and bucket_batches must be >= 1, got {batch_size}, {bucket_batches}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown sampling scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme != "uniform" and counts is None:
        raise ConfigError(f"sampling scheme {scheme!r} needs word counts")


class BatchSampler:
    """Endless, seeded, resumable batches of word indices, bucketed by length.

    An epoch draws N = len(lengths) indices: a permutation under "uniform" (each word
    exactly once), else N draws with replacement by sampling_weights(counts, scheme).
    Each run of `bucket_batches` batches' worth of draws is sorted by length (stable,
    so ties stay random) and cut into batches, so words in a batch have similar
    lengths and padding stays low; then the epoch's batch order is shuffled. Only the
    epoch's last batch may be smaller than batch_size. bucket_batches=1 turns bucketing off.

    Epoch e uses np.random.default_rng([seed, e]), so (epoch, position) is the whole
    state: `BatchSampler.from_state(sampler.state_dict(), ...)` continues the same sequence.
    """

    def __init__(self, lengths, batch_size: int, *, seed: int = 0, scheme: str = "uniform",
                 counts=None, bucket_batches: int = 50):
        self.lengths = np.asarray(lengths, dtype=np.int64)  # (N,)
        if self.lengths.ndim != 1 or self.lengths.size == 0:
            raise DataError("the sampler needs at least one word")
        _check_sampler_options(batch_size, bucket_batches, seed, scheme, counts)
        # None under "uniform": the epoch is a permutation, not draws with replacement.
        self.weights = None if scheme == "uniform" else sampling_weights(counts, scheme)  # (N,)
        if self.weights is not None and len(self.weights) != len(self.lengths):
            raise DataError(f"{len(self.weights)} counts for {len(self.lengths)} words")
        self.batch_size, self.seed, self.scheme, self.bucket_batches = batch_size, seed, scheme, bucket_batches
        self.epoch = 0  # completed epochs
        self.position = 0  # batches served in the current epoch
        self._plan: list[np.ndarray] | None = None  # the current epoch's batches, built lazily

    @property
    def batches_per_epoch(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def _epoch_plan(self, epoch: int) -> list[np.ndarray]:
        """All batches of one epoch, in serving order; a pure function of (seed, epoch)."""
        n, size = len(self.lengths), self.batch_size
        rng = np.random.default_rng([self.seed, epoch])
        # 1. Draw the epoch's N indices.
        if self.weights is None:
            drawn = rng.permutation(n)  # (N,)
        else:
            drawn = rng.choice(n, size=n, replace=True, p=self.weights)  # (N,)
        # 2. Sort each bucket of bucket_batches * batch_size draws by length, cut into batches.
        bucket = size * self.bucket_batches
        batches = []
        for start in range(0, n, bucket):
            chunk = drawn[start : start + bucket]  # (<= bucket,)
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        # 3. Shuffle the batch order so lengths don't rise and fall in a saw-tooth.
        return [batches[i] for i in rng.permutation(len(batches))]

    def next_batch(self) -> np.ndarray:
        """Indices (B,) int64 of the next batch; rolls over into the next epoch."""
        if self._plan is None:
            self._plan = self._epoch_plan(self.epoch)
        batch = self._plan[self.position].copy()  # (B,)
        self.position += 1
        if self.position == len(self._plan):  # epoch finished: `epoch` counts it at once
            self.epoch, self.position, self._plan = self.epoch + 1, 0, None
        return batch

    def state_dict(self) -> dict:
        """JSON-able state; with the same lengths and counts it resumes the identical sequence."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position,
                "batch_size": self.batch_size, "bucket_batches": self.bucket_batches,
                "scheme": self.scheme, "n_words": len(self.lengths)}

    @classmethod
    def from_state(cls, state: dict, lengths, counts=None) -> "BatchSampler":
        """Rebuild a sampler from state_dict() and the same word lengths (and counts)."""
        keys = ("seed", "epoch", "position", "batch_size", "bucket_batches", "scheme", "n_words")
        missing = [k for k in keys if k not in state]
        if missing:
            raise CheckpointError(f"sampler state lacks {', '.join(missing)}")
        if state["n_words"] != len(lengths):
            raise CheckpointError(f"sampler state is for {state['n_words']:,} words, "
                                  f"but the word list has {len(lengths):,}")
        sampler = cls(lengths, state["batch_size"], seed=state["seed"], scheme=state["scheme"],
                      counts=counts, bucket_batches=state["bucket_batches"])
        if not (0 <= state["epoch"] and 0 <= state["position"] < sampler.batches_per_epoch):
            raise CheckpointError(f"sampler state has epoch {state['epoch']}, position {state['position']} "
                                  f"out of range ({sampler.batches_per_epoch} batches per epoch)")
        sampler.epoch, sampler.position = int(state["epoch"]), int(state["position"])
        return sampler
