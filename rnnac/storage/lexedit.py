"""Changing a checkpoint's word list without retraining: edits, applied exactly.

An edit names words as written (the list's own spelling; a word folding together with another,
`cafe` and `Café`, is another written form of the same completion, whose counts add, as in a
list read from a file):

    {"op": "add", "word": w, "count": c}      c more of w (w joins the list when new)
    {"op": "remove", "word": w}               w leaves the list
    {"op": "set", "word": w, "count": c}      w's count is c (w joins the list when new)
    {"op": "boost", "word": w, "factor": f}   w's count times f (w must be in the list)
    {"op": "accept", "word": w, "count": c,   a completion accepted: as add, with the prefix it
     "prefix": p}                             was typed from (for the record)
    {"op": "scale", "factor": f}              every count times f: the list's shares unchanged
                                              (accepts' growing increments rescaled: rnnac.inference.live)

apply_edits gives the LexiconData the edits make, exactly what a list read with those words
and counts would give: a Completer built from it answers as one built from that list. A word
joining the list is not held out (it was never a validation word); each word's stored log P_rnn
is kept, a new word's is NaN for the caller (rnnac.inference.live) to fill with the model.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rnnac.storage.lexicon import LexiconData, WordText, text_facts
from rnnac.storage.sorted_words import line_of

MANY_WORDS = 100  # edits naming more distinct words than this look them up in the decoded list
OPS = {"add": ("count",), "remove": (), "set": ("count",), "boost": ("factor",), "accept": ("count",), "scale": ("factor",)}


def edit_problem(edit: Any) -> str | None:
    """Why `edit` is not an edit apply_edits takes (a mapping as the module says), or None."""
    if not isinstance(edit, dict) or edit.get("op") not in OPS:
        return f"an edit must be a mapping with op one of {', '.join(OPS)}"
    word = edit.get("word")
    if edit["op"] == "scale":
        word = "every word"
    elif not isinstance(word, str) or not word or "\n" in word or word != word.strip("\n"):
        return "an edit's word must be a non-empty string without a newline"
    for key in OPS[edit["op"]]:
        value = edit.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{edit['op']} {word!r}: {key} must be a finite number"
        if value < 0 or (key == "factor" and value == 0) or (edit["op"] != "set" and key == "count" and value == 0):
            return f"{edit['op']} {word!r}: {key} must be {'at least 0' if edit['op'] == 'set' else 'above 0'}, not {value:g}"
    return None


def apply_edits(lexicon: LexiconData, edits: Iterable[dict]) -> tuple[LexiconData, list[str]]:
    """(the edited lexicon, the words it does not hold that an edit named: removed or boosted
    while absent, which change nothing). ValueError for an edit edit_problem refuses.

    Counts change in place of a copy; only when a word joins or leaves the list are the words
    rebuilt (sorted, as LexiconData keeps them)."""
    words, counts = lexicon.words, lexicon.counts.copy()  # (N,)
    held_out = lexicon.held_out
    logp = None if lexicon.rnn_logp is None else np.asarray(lexicon.rnn_logp, dtype=np.float32)
    joining: dict[str, float] = {}  # new words -> their count so far
    leaving: set[int] = set()  # rows removed
    absent: list[str] = []
    edits = list(edits)
    rows: dict[str, int | None] = {}  # each word's row, looked up once
    # Many words: bisect the list decoded once (a few ms for 50,000 words), not its bytes (20 us a word)
    look_in = list(words) if isinstance(words, WordText) and len({e.get("word") for e in edits
                                                                  if isinstance(e, dict)}) > MANY_WORDS else words
    for edit in edits:
        problem = edit_problem(edit)
        if problem:
            raise ValueError(problem)
        if edit["op"] == "scale":
            counts *= edit["factor"]
            joining = {w: c * edit["factor"] for w, c in joining.items()}
            continue
        word, op = edit["word"], edit["op"]
        row = rows[word] if word in rows else rows.setdefault(word, _row(look_in, word))
        if row is not None and row in leaving and op in ("add", "set", "accept"):
            leaving.discard(row)  # back again, from nothing
            counts[row] = 0.0
        if row is None or row in leaving:
            if not _edit_joining(joining, edit):
                absent.append(word)
            continue
        if op == "remove":
            leaving.add(row)
        elif op == "boost":
            counts[row] *= edit["factor"]
        elif op == "set":
            counts[row] = edit["count"]
        else:
            counts[row] += edit["count"]
    if not joining and not leaving:  # the same words: what the checkpoint states of them still holds
        edited = LexiconData(words, counts, held_out)
        edited.rnn_logp = logp
        facts = {k: v for k, v in (lexicon.summary or {}).items() if k not in ("sha256", "trie")}
        edited.summary = facts | {"total_count": float(counts.sum())} if facts else None
        return edited, absent
    keep = np.ones(len(words), dtype=bool)  # (N,)
    keep[list(leaving)] = False
    kept = np.flatnonzero(keep)
    merged = [words[i] for i in kept] + list(joining)
    order = sorted(range(len(merged)), key=merged.__getitem__)
    new_counts = np.concatenate([counts[kept], np.fromiter(joining.values(), dtype=np.float64, count=len(joining))])
    new_held = np.concatenate([held_out[kept], np.zeros(len(joining), dtype=bool)])
    text = WordText.of([merged[i] for i in order])
    edited = LexiconData(text, new_counts[order], new_held[order])
    edited.summary = {"n_words": len(text), "total_count": float(new_counts.sum()), "text_bytes": len(text.data),
                      **text_facts(text.data)}
    if logp is not None:
        edited.rnn_logp = np.concatenate([logp[kept], np.full(len(joining), np.nan, dtype=np.float32)])[order]
    return edited, absent


def _edit_joining(joining: dict[str, float], edit: dict) -> bool:
    """Apply an edit to a word not in the list (joining: the words joining it, with their counts);
    False when it removes or boosts a word that is not there either."""
    word, op = edit["word"], edit["op"]
    if op in ("remove", "boost") and word not in joining:
        return False
    if op == "remove":
        del joining[word]
    elif op == "boost":
        joining[word] *= edit["factor"]
    else:
        joining[word] = (0.0 if op == "set" else joining.get(word, 0.0)) + edit["count"]
    return True


def _row(words: Sequence[str], word: str) -> int | None:
    """The row of `word` in the sorted `words`, or None; in a WordText by its bytes, nothing decoded."""
    if isinstance(words, WordText):
        at = line_of(words.data, word.encode("utf-8", "surrogatepass"))  # as WordText keeps them
        return None if at is None else int(np.searchsorted(words.starts, at))
    i = bisect_left(words, word)
    return i if i < len(words) and words[i] == word else None


def diff(a: LexiconData, b: LexiconData) -> list[tuple[str, str, float | None, float | None]]:
    """What changed from a to b, in word order: (change, word, count in a, count in b), change
    "+" (only in b), "-" (only in a) or "~" (another count)."""
    counts_a, counts_b = dict(zip(a.words, a.counts.tolist())), dict(zip(b.words, b.counts.tolist()))
    changes = []
    for word in sorted(counts_a.keys() | counts_b.keys()):
        was, now = counts_a.get(word), counts_b.get(word)
        if was is None:
            changes.append(("+", word, None, now))
        elif now is None:
            changes.append(("-", word, was, None))
        elif was != now:
            changes.append(("~", word, was, now))
    return changes
