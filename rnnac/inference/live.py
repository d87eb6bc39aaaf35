"""A live word list: edits and accepted completions applied to a model's lexicon, exactly.

The RNN never changes; only the lexicon does (rnnac.storage.lexedit): a completer after any
sequence of edits answers as a completer built from the list they make. Edits reach a
checkpoint two ways: `rnnac lexicon` writes a new checkpoint (edited_checkpoint), and accepts
(and a server's edits) are appended to the checkpoint's journal (rnnac.storage.journal), which
Completer.load replays, until `rnnac lexicon compact` writes them into the checkpoint.

Accepting a completion adds to its word's count. The n-th accept into a list adds

    increment * decay ** -n,   increment = max(ACCEPT_SHARE * C, C / N) by default,

C and N the total count and the number of words of the checkpoint's own list (its journal's
edits aside): a first accept counts as much as the list's average word, and at least as much
as a word used once in 10,000. Each accept weighs 1/decay times the one before: the same
ranking as decaying every earlier accept's count by `decay` at each new one (P_lex(w) = c_w / C is unchanged when every count
is scaled alike), without touching other counts. A word accepted that the list lacks joins it.
Before that growth reaches MAX_GROWTH, the accept is preceded by a "scale" edit multiplying
every count by decay ** n (the shares unchanged) and the clock n starts again from 0.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import Vocab
from rnnac.errors import DataError
from rnnac.inference.lexicons import with_stored_trie
from rnnac.inference.options import ACCEPT_SHARE, DEFAULT_DECAY
from rnnac.storage.checkpoint import load_trained
from rnnac.storage.folding import Folding, fold
from rnnac.storage.lexedit import apply_edits, edit_problem
from rnnac.storage.lexicon import Lexicon, LexiconData


MAX_GROWTH = 1e12  # decay ** -n at most, before every count is scaled down and n starts again


def accepts_since_scale(edits: Sequence[dict], before: int) -> int:
    """The accept clock after `edits`: `before` plus their accepts, counted from their last scale."""
    for edit in edits:
        before = 0 if edit["op"] == "scale" else before + (edit["op"] == "accept")
    return before


def unspellable(words: Sequence[str], vocab: Vocab, folding: Folding) -> list[str]:
    """The words (as given) holding, once folded, a character outside the model's vocabulary."""
    return [word for word in words if vocab.unknown_char(fold(word, folding)) is not None]


def edit_lexicon(model: RNN, vocab: Vocab, folding: Folding, lexicon: LexiconData,
                 edits: Sequence[dict]) -> tuple[LexiconData, list[str]]:
    """The lexicon the edits make, each new word's log P_rnn scored by the model, and the words
    removed or boosted that it did not hold. DataError naming every word an edit would add that
    the model cannot spell (it could never be completed); ValueError for a malformed edit."""
    adding = [edit["word"] for edit in edits if isinstance(edit, dict) and edit.get("op") in ("add", "set", "accept")
              and isinstance(edit.get("word"), str)]
    bad = unspellable(sorted(set(adding)), vocab, folding)
    if bad:
        shown = ", ".join(f"{w!r} ({vocab.unknown_char(fold(w, folding))!r})" for w in bad[:20])
        more = f" and {len(bad) - 20:,} more" if len(bad) > 20 else ""
        raise DataError(f"{len(bad):,} word{'s' if len(bad) > 1 else ''} with a character the model cannot spell, "
                        f"never completed, so not added: {shown}{more}")
    edited, absent = apply_edits(lexicon, edits)
    if edited.rnn_logp is not None:
        fresh = np.flatnonzero(np.isnan(edited.rnn_logp))  # the words that joined
        if len(fresh):
            from rnnac.inference.mixture import rnn_word_logprobs

            folded = [fold(edited.words[i], folding) for i in fresh]
            edited.rnn_logp[fresh] = np.minimum(rnn_word_logprobs(model, vocab, folded), 0.0)
    return edited, absent


def accept_counts(total: float, words: int, accepts: int, n: int, increment: float | None = None,
                  decay: float = DEFAULT_DECAY) -> list[float]:
    """What each of n accepts adds, after `accepts` earlier ones into a list of that total count
    and number of words."""
    base = max(ACCEPT_SHARE * total, total / max(words, 1)) if increment is None else increment
    return [base * math.exp(-(accepts + i) * math.log(decay)) for i in range(n)]


def with_added_counts(lexicon: Lexicon, vocab: Vocab, folding: Folding, added: dict[str, float]) -> Lexicon | None:
    """`lexicon` with counts added to words it holds (folded words -> amount > 0), as a new
    Lexicon sharing every array the change leaves alone; None when a word is not in it (then
    build anew). Exact: a word's count, and the count sums and maxima of the pieces on its path,
    are what a build from the new counts gives (sums of integral counts to the last bit)."""
    paths, amounts = [], []
    for word, amount in added.items():
        ids = vocab.encode(fold(word, folding)) if vocab.unknown_char(fold(word, folding)) is None else None
        if not ids:
            return None
        node, path = 0, [0]
        for token in ids:
            node = int(lexicon.child(node, token))
            if node < 0:
                return None
            path.append(node)
        if not lexicon.ends(node):
            return None
        paths.append(np.array(path))
        amounts.append(amount)
    new = object.__new__(Lexicon)
    new.__dict__.update(lexicon.__dict__)
    new._count = lexicon._count.copy()
    new.piece_mass, new.piece_max = lexicon.piece_mass.copy(), lexicon.piece_max.astype(np.float64)
    for path, amount in zip(paths, amounts):
        word = lexicon._word(path[-1])
        new._count[word] += amount
        pieces = np.unique(lexicon._piece(path))
        new.piece_mass[pieces] += amount
        new.piece_max[pieces] = np.maximum(new.piece_max[pieces], new._count[word])
        new.total += amount
    return new


def edited_checkpoint(source: str | os.PathLike, edits: Sequence[dict], output: str | os.PathLike | None,
                      compact: bool = True) -> tuple[Path, int, list[str]]:
    """Write the checkpoint at `source` with its word list edited: its journal's edits first
    (with `compact`), then `edits`; to `output`, or over `source` when None (a copy of it kept as
    source.bak, and its journal, now in the checkpoint, removed). Atomic: a crash leaves the old
    file or the new one. The parameters are copied as they are; the list's words' log P_rnn and
    its trie are stored with it, and meta lexicon_edits counts the edits since training (a run
    refuses to resume over them: rnnac.training.trainer). (the file written, edits applied,
    words an edit removed or boosted that the list lacks)."""
    from rnnac.storage.atomic import replace_atomically
    from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
    from rnnac.storage.journal import journal_header, journal_path, read_journal

    source = Path(source)
    trained = load_trained(source)
    ckpt, lexicon = trained.checkpoint, trained.lexicon
    if lexicon is None:
        raise DataError(f"{source} carries no word list to change (a model trained before rnnac 0.2)")
    journal = journal_path(source)
    logged, _ = read_journal(journal, lexicon.summary["sha256"]) if compact else ([], False)
    header = journal_header(journal) if logged else None
    edited, absent = edit_lexicon(trained.model, trained.vocab, trained.folding, lexicon, [*logged, *edits])
    edited = with_stored_trie(edited, trained.vocab, trained.folding)
    was = ckpt.meta.get("lexicon_edits") or {}
    accepts = accepts_since_scale([*logged, *edits], (header or {}).get("accepts", int(was.get("accepts", 0))))
    meta = {**ckpt.meta, "lexicon_edits": {
        "edits": int(was.get("edits", 0)) + len(logged) + len(edits),
        "accepts": accepts,
        "changed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "trained_sha256": was.get("trained_sha256", lexicon.summary["sha256"])}}
    target = source if output is None else Path(output)
    if output is None:
        original = source.read_bytes()
        replace_atomically(source.with_name(source.name + ".bak"), lambda f: f.write(original))
    save_checkpoint(target, ckpt.params, meta, ckpt.optimizer_state, edited)
    if output is None and compact and journal.exists():
        journal.unlink()  # its edits are in the checkpoint; had this not happened, its header names the old list
    load_checkpoint(target)  # read back whole: what was written loads
    return target, len(logged) + len(edits), absent


def check_unchanged(completer) -> None:
    """DataError if the completer's checkpoint was replaced since it was loaded (`rnnac lexicon
    ... --in-place`, compact, a run's end): its journal now follows another list, and edits
    written for the old one would be lost."""
    from rnnac.inference.completer import file_identity

    now = file_identity(completer.path)
    if now is None or now != completer.file_identity:
        raise DataError(f"{completer.path} changed since it was loaded; load it again (restart the server) to change "
                        "its word list")


def accept(completer, words: Sequence[tuple[str, str]], increment: float | None = None,
           decay: float = DEFAULT_DECAY) -> list[float]:
    """Record accepted completions, (word, prefix typed) each, into a loaded completer's list and
    its checkpoint's journal (fsync'd before this returns); what each added to its word's count.
    Validated first, in memory (DataError for a word the model cannot spell, nothing written)."""
    from rnnac.storage.checkpoint import BUNDLED_MODEL
    from rnnac.storage.journal import append_edits, journal_path

    if completer.journal_sha256 is None:
        raise DataError("this model carries no word list to learn into (trained before rnnac 0.2)")
    check_unchanged(completer)
    if completer.path.resolve() == BUNDLED_MODEL.resolve():
        raise DataError("the bundled model learns nothing; learn into a copy of it: rnnac lexicon compact -c bundled -o mine.npz")
    if not (0 < decay <= 1) or (increment is not None and not (increment > 0 and math.isfinite(increment))):
        raise DataError(f"accepts need an increment above 0 and a decay in (0, 1], not {increment} and {decay}")
    clock, scale = completer.accepts, []
    if (clock + len(words)) * -math.log(decay) > math.log(MAX_GROWTH):  # rescale first: the increments stay finite
        scale, clock = [{"op": "scale", "factor": decay ** clock}], 0
    counts = accept_counts(completer.base_total, completer.base_words, clock, len(words), increment, decay)
    edits = scale + [{"op": "accept", "word": word, "count": count, "prefix": prefix}
                     for (word, prefix), count in zip(words, counts)]
    problem = next(filter(None, map(edit_problem, edits)), None)
    if problem:
        raise DataError(problem)
    bad = unspellable([word for word, _ in words], completer.vocab, completer.folding)
    if bad:
        raise DataError(f"{bad[0]!r} holds a character the model cannot spell "
                        f"({completer.vocab.unknown_char(fold(bad[0], completer.folding))!r}): it could never be completed")
    append_edits(journal_path(completer.path), completer.journal_sha256, edits, accepts=completer.accepts)
    completer.edit_lexicon(edits)  # on disk first: what the list shows is never more than the journal holds
    completer.accepts = accepts_since_scale(edits, completer.accepts)
    return counts
