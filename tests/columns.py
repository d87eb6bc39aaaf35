"""Columns of a completer.Result's completions, for tests that compare them with oracles."""

from rnnac.inference.options import MAX_K
from rnnac.storage.lexicon import fold


def pairs(result, lowercase=True):
    """[(word folded as the model reads it, log P(word | prefix))], best first."""
    return [(fold(c.word, lowercase), c.logprob) for c in result.completions]


def known_of(result):
    return [c.known for c in result.completions]


def shown_of(result):
    """The words as shown (the case typed, or the lexicon's written form)."""
    return [c.word for c in result.completions]


def edits_of(result):
    return [c.edits for c in result.completions]


def corrected_of(result):
    return [c.corrected for c in result.completions]


def counted(completer, *args, **kwargs):
    """(completer.complete(*args, **kwargs), the node evaluations that call made)."""
    before = completer.evaluations
    result = completer.complete(*args, **kwargs)
    return result, completer.evaluations - before


def flags(mode):
    """complete_many's options for a scoring mode: "open", "known", "mixture" (over every word: any
    number of invented strings), or None for the default."""
    return {None: {}, "open": {"open": True}, "known": {"known_only": True},
            "mixture": {"known_only": False, "new": MAX_K}}[mode]
