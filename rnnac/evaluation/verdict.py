"""The verdict of an evaluation: does rnnac beat the best baseline? One answer before the tables.

rnnac is the model `rnnac complete` ranks by: the mixture when it was scored, else the RNN alone.
The best baseline is the one with the highest keystroke savings over all words. Over all words,
the two are compared on

    keystroke savings
    top-k with VERDICT_TYPED characters typed (else the prefix length evaluated nearest to it,
        the shorter of two as near)

and the one with the higher figure wins; a tie is two figures the tables show alike (to 0.1 of a
percentage point), so the verdict never reads otherwise than the tables below it. No test of
significance: on a small list a gap of a point can be chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # evaluate.py imports this module
    from rnnac.evaluation.evaluate import Scores

VERDICT_TYPED = 3  # characters typed for the verdict's top-k
TIE = "tie"
_SHOWN_AS = {"mixture": "rnnac"}  # what `rnnac complete` gives is rnnac; the model alone keeps its label


@dataclass
class Comparison:
    """One figure over all words, for rnnac and for the best baseline."""

    model: float | None  # None: no word is long enough to have it (top-k only)
    baseline: float | None
    winner: str | None  # the model's name, the baseline's, or TIE; None when a figure is missing


@dataclass
class Verdict:
    """rnnac against the baseline with the highest keystroke savings, over all words."""

    model: str  # "mixture", else "rnn"
    baseline: str  # "trie", "ngram" or "kn"
    n_baselines: int  # baselines it was the best of
    typed: int  # characters typed for top-k
    keystroke_savings: Comparison
    topk: Comparison


def verdict(models: dict[str, dict[str, Scores]], baselines: Sequence[str], prefix_lengths: Sequence[int]) -> Verdict | None:
    """The Verdict of the scores `models` (name -> subset -> Scores), None without a baseline among them."""
    model = "mixture" if "mixture" in models else "rnn"
    scored = [name for name in baselines if name in models]
    if not scored:
        return None
    best = max(scored, key=lambda name: models[name]["all"].keystroke_savings or 0.0)  # the first of equals
    typed = min(prefix_lengths, key=lambda L: (abs(L - VERDICT_TYPED), L))
    ours, theirs = models[model]["all"], models[best]["all"]

    def compare(a: float | None, b: float | None) -> Comparison:
        if a is None or b is None:
            return Comparison(a, b, None)
        return Comparison(a, b, TIE if percent(a) == percent(b) else model if a > b else best)

    return Verdict(model, best, len(scored), typed, compare(ours.keystroke_savings, theirs.keystroke_savings),
                   compare(ours.prefix[typed].topk, theirs.prefix[typed].topk))


def format_verdict(result: Verdict, labels: dict[str, str], k: int) -> list[str]:
    """Two lines, e.g. 'rnnac 41.0% vs trie 40.3% keystroke savings: rnnac wins (all words; trie
    saves the most of 3 baselines).' and 'rnnac 70.9% vs trie 70.7% top-5 with 3 typed: rnnac wins.'"""
    model = _SHOWN_AS.get(result.model, labels.get(result.model, result.model))
    baseline = labels.get(result.baseline, result.baseline)
    best = "the only baseline" if result.n_baselines == 1 else f"{result.baseline} saves the most of {result.n_baselines} baselines"

    def line(figure: str, c: Comparison) -> str:
        if c.winner is None:
            return f"{model} vs {baseline} {figure}: no word is longer than {result.typed} characters"
        outcome = "a tie" if c.winner == TIE else f"{_SHOWN_AS.get(c.winner, c.winner)} wins"
        return f"{model} {percent(c.model)} vs {baseline} {percent(c.baseline)} {figure}: {outcome}"

    return [f"{line('keystroke savings', result.keystroke_savings)} (all words; {best}).",
            f"{line(f'top-{k} with {result.typed} typed', result.topk)}."]


def percent(x: float | None) -> str:
    """A share as the tables show it: percent(0.4096) -> '41.0%'; '-' for None."""
    return "-" if x is None else f"{100 * x:.1f}%"
