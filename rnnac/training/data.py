"""A run's words: the list read with the run's settings, split into training and held-out
words, and the vocabulary of the training words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnac.engine.vocab import Vocab
from rnnac.errors import DataError, quote
from rnnac.storage.wordlist import WordList, read_word_list, split_words
from rnnac.training.config import Config


@dataclass
class Data:
    """A run's words: the whole list (the lexicon a checkpoint carries), its split, and the
    vocabulary of the training words."""

    vocab: Vocab
    train_words: list[str]
    train_counts: np.ndarray  # (N_train,) the training words' counts
    val_words: list[str]  # the held-out words the vocabulary can score
    summary: str
    words: list[str]  # every word kept from the list, in read order
    counts: np.ndarray  # (N,) their counts
    held_out: np.ndarray  # (N,) bool, True for the validation words
    written: list[str] | None = None  # (N,) the words as most often written ("Paris"), for the lexicon


def load_data(config: Config, vocab: Vocab | None = None) -> Data:
    """Read, filter and split config.data's word list. The vocabulary comes from the training
    words, or is `vocab` (a model trained further keeps its own): then DataError names the
    characters of the list that `vocab` lacks."""
    d = config.data
    words = read_word_list(d.path, lowercase=d.lowercase, fold_accents=d.fold_accents, allowed_chars=d.allowed_chars,
                           min_length=d.min_length, max_length=d.max_length, max_words=d.max_words, format=d.format)
    if vocab is not None:
        _check_known(words, vocab)
    train_idx, val_idx = split_words(len(words.words), d.val_fraction, config.train.seed)
    train_words = [words.words[i] for i in train_idx]
    vocab = vocab or Vocab.from_words(train_words)
    val_all = [words.words[i] for i in val_idx]
    val_words = [w for w in val_all if vocab.unknown_char(w) is None]  # unscorable otherwise
    summary = f"{words.summary()}; {len(train_words):,} training and {len(val_words):,} validation words"
    if len(val_words) < len(val_all):
        summary += f" ({len(val_all) - len(val_words):,} held-out words with unseen characters skipped)"
    held_out = np.zeros(len(words.words), dtype=bool)  # (N,)
    held_out[val_idx] = True
    return Data(vocab, train_words, words.counts[train_idx], val_words, summary, words.words, words.counts, held_out,
                words.written)


def _check_known(words: WordList, vocab: Vocab) -> None:
    """DataError naming the characters of `words` outside `vocab`, and how to leave their words out."""
    unknown = sorted(set().union(*map(set, words.words)) - set(vocab.chars))
    if not unknown:
        return
    held = sum(1 for w in words.words if not set(w) <= set(vocab.chars))
    shown = ", ".join(map(repr, unknown[:20])) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
    raise DataError(f"{words.path}: {held:,} of {len(words):,} words hold characters the model to start from does not "
                    f"know: {shown}; leave those words out with data.allowed_chars (the model knows "
                    f"{quote(''.join(vocab.chars))}), or train from scratch")
