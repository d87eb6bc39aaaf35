"""Evaluation: what a user of the completer feels, for the RNN and its baselines, by one code path.

Every model is a Contender (one entry of the table): `rank_many(prefixes, k)` gives each prefix's top k whole words, best
first; a model with probabilities also gives `word_logprobs(words)`, log P(word) (N,) over its
characters and its end. Over a word list, each word w weighing c_w (its count with weighted=True,
else 1) and scoring n_w = len(w) + 1 characters (the end counts as one):

    NLL per character  = -sum_w c_w log P(w) / sum_w c_w n_w    (nats; bits = NLL / ln 2)
    perplexity         = exp(NLL per character)
    at prefix length L, over the words longer than L (a word of L letters is typed in full already):
        rank_L(w)      = position of w among the top k completions of w[:L], 0 if it is not there
        top-1, top-k   = weighted share of words with rank_L = 1, with rank_L >= 1
        MRR            = weighted mean of 1 / rank_L, 0 when absent (so MRR@k)
    keystroke savings  = 1 - sum_w c_w keys(w) / sum_w c_w n_w: the user types w a character at a
        time and, once w is among the top k completions of the i typed characters (1 <= i < len(w)),
        accepts it with one keystroke; keys(w) = i + 1 for the first such i, else n_w.

Each figure is given for all words, the seen ones (among the training words) and the held-out ones.
The RNN's completions come from an injected search (complete.py) or by default from ranking a closed
candidate set, the training words and the evaluated words, by P(word); the n-grams (add-k "ngram" and
Kneser-Ney "kn") rank the same candidates. The trie knows only training words, so it cannot answer for
held-out ones. Tables name each model by its label, which carries the settings it was fitted with.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import numpy as np

from rnnac.engine.vocab import Vocab
from rnnac.errors import DataError
from rnnac.evaluation.baselines import CharNGram, FrequencyTrie, KneserNey, PrefixRanker, fit_kn, fit_ngram
from rnnac.evaluation.verdict import Verdict, format_verdict, percent, verdict
from rnnac.inference.lexicons import release_freed_memory
from rnnac.inference.mixture import rnn_word_logprobs
from rnnac.storage.checkpoint import TrainedModel, load_trained
from rnnac.storage.folding import Folding, fold
from rnnac.storage.wordlist import WordList, read_word_list, sampling_weights
from rnnac.training.config import Config
from rnnac.training.data import Data, load_data

BASELINES = ("trie", "ngram", "kn")
PREFIX_LENGTHS = (1, 2, 3, 4)
SUBSETS = ("all", "seen", "held_out")
CompleteFn = Callable[[list[str], int], list[list[str]]]  # (prefixes, k) -> top-k words per prefix
MEMORY_BUDGET = 256 * 2**20  # bytes one chunk of words may hold while it is scored and completed
# An upper bound of what scoring holds per character of a chunk's words: the prefix it ends, that
# prefix's k answers and their positions (Python objects, ~1 KB), and the n-grams' events.
BYTES_PER_CHARACTER = 2048
# A model's words are scored in chunks of at most 1 / PROGRESS_STEPS of them, so that progress is
# told as they go, but of at least MIN_PROGRESS_CHUNK words, which cost no more per word than one
# big chunk (the search groups its own prefixes).
PROGRESS_STEPS = 100
MIN_PROGRESS_CHUNK = 500


class Stage(NamedTuple):
    """Where an evaluation is, as its `progress` callback is told: as each stage starts (done 0),
    and in a stage that scores a model, after each chunk of words."""

    what: str  # e.g. "scoring rnn", "fitting the Kneser-Ney n-gram (its order)"
    number: int  # this stage's, from 1
    stages: int  # how many in all
    done: int  # words scored so far in this stage
    words: int  # words this stage scores; 0 for a stage that does not count them (a fit)


ProgressCallback = Callable[[Stage], None]


@dataclass
class Contender:
    """One model as the metrics see it."""

    name: str  # the key in Evaluation.models and the JSON
    rank_many: CompleteFn
    word_logprobs: Callable[[Sequence[str]], np.ndarray] | None = None  # log P(word) (N,); None: no probabilities
    label: str | None = None  # how tables name it, with its fitted settings; None: the name


@dataclass
class PrefixScores:
    """Completion quality with L characters typed; None where no word is longer than L."""

    n_words: int  # words longer than L
    top1: float | None
    topk: float | None
    mrr: float | None


@dataclass
class Scores:
    """One model on one subset of the words; None where the model or the subset cannot say."""

    n_words: int
    weight: float  # sum of the words' weights (n_words unless weighted)
    n_chars: int  # characters scored, each word's end included, unweighted
    nll_per_char: float | None  # nats
    bits_per_char: float | None
    perplexity: float | None
    prefix: dict[int, PrefixScores]  # by prefix length L
    keystroke_savings: float | None


@dataclass
class Evaluation:
    """Everything `rnnac evaluate` reports; `to_json()` holds every figure."""

    k: int
    prefix_lengths: list[int]
    weighted: bool
    n_words: int  # words scored
    n_seen: int
    n_held_out: int
    n_skipped: int  # words holding a character the model's vocabulary lacks
    n_train_words: int
    models: dict[str, dict[str, Scores]]  # model name -> subset -> scores
    verdict: Verdict | None = None  # rnnac against the best baseline; None without baselines
    ngram: dict | None = None  # the chosen order and add-k, the tuning grid, every order's NLL
    kn: dict | None = None  # the Kneser-Ney order chosen, its discounts, the tuning grid, every order's NLL
    labels: dict[str, str] = field(default_factory=dict)  # model name -> label with its fitted settings
    info: dict = field(default_factory=dict)  # where the words and the model came from

    def to_dict(self) -> dict:
        """Every field, the verdict first."""
        tree = asdict(self)
        return {"verdict": tree.pop("verdict"), **tree}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)  # figures are finite or None


def rnn_contender(model, vocab: Vocab, candidates: Sequence[str], complete_fn: CompleteFn | None = None) -> Contender:
    """The RNN alone as a Contender. Its completions come from `complete_fn` when given, else
    from ranking `candidates` by P(word), scored in one batched pass the first time they are needed."""
    return _probabilistic_contender("rnn", _memo(lambda words: rnn_word_logprobs(model, vocab, words)),
                                    candidates, complete_fn)


def mixture_contender(rnn: Contender, train_words: Sequence[str], train_counts: np.ndarray, mixture_lambda: float,
                      candidates: Sequence[str], complete_fn: CompleteFn | None = None) -> Contender:
    """The lexicon-RNN mixture (rnnac.inference.mixture) as a Contender: log(lambda P_lex(w) + (1 - lambda) P_rnn(w)),
    P_lex over the training words only, so a held-out word is as new to it as to the trie."""
    total = float(np.sum(train_counts))
    share = {w: c / total for w, c in zip(train_words, train_counts) if c > 0}

    def word_logprobs(words):
        lex = np.array([share.get(w, 0.0) for w in words])  # (N,)
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log(mixture_lambda) + np.log(lex), np.log1p(-mixture_lambda) + rnn.word_logprobs(words))

    contender = _probabilistic_contender("mixture", _memo(word_logprobs), candidates, complete_fn)
    contender.label = f"mixture (lambda {mixture_lambda:.3f})"
    return contender


def _probabilistic_contender(name: str, word_logprobs, candidates: Sequence[str], complete_fn: CompleteFn | None):
    if complete_fn is None:
        ranker = None

        def complete_fn(prefixes, k):
            nonlocal ranker
            if ranker is None:
                ranker = PrefixRanker(candidates, word_logprobs(candidates))
            return ranker.rank_many(prefixes, k)

    return Contender(name, complete_fn, word_logprobs)


def _memo(word_logprobs):
    """word_logprobs remembering its last answer: scoring and ranking ask for the same words twice."""
    last: dict = {}

    def cached(words):
        key = tuple(words)
        if key not in last:
            last.clear()
            last[key] = word_logprobs(words)
        return last[key]

    return cached


def ngram_contender(ngram: CharNGram | KneserNey, candidates: Sequence[str], name: str = "ngram") -> Contender:
    """An n-gram as a Contender labelled with its settings: completions rank `candidates` by P(word)."""
    ranker = PrefixRanker(candidates, chunked_logprobs(ngram.word_logprobs, candidates))
    return Contender(name, ranker.rank_many, ngram.word_logprobs, ngram.label)


def score_model(contender: Contender, words: Sequence[str], weights, seen, k: int = 5,
                prefix_lengths: Sequence[int] = PREFIX_LENGTHS, chunk: int | None = None,
                progress: Callable[[int], None] | None = None) -> dict[str, Scores]:
    """Every figure of the module docstring for one model, by subset: {"all", "seen", "held_out"}.

    weights (N,) weigh the words; seen (N,) bool marks the words among the training words. The
    words are scored and completed `chunk` at a time (default scoring_chunk(words)), in alphabetical
    order so that a chunk's words share their prefixes; what is kept of a word is a few numbers.
    `progress(words scored so far)` is told after each chunk.
    """
    weights, seen = np.asarray(weights, dtype=np.float64), np.asarray(seen, dtype=bool)  # (N,), (N,)
    n_chars = np.array([len(w) + 1 for w in words], dtype=np.float64)  # (N,)
    logp = None if contender.word_logprobs is None else np.zeros(len(words))  # (N,)
    at_length = {L: np.full(len(words), -1, dtype=np.int64) for L in prefix_lengths}  # (N,) each, -1: not longer than L
    keys = np.zeros(len(words))  # (N,)
    done = 0
    for rows in _chunks(words, chunk or scoring_chunk(words)):
        chunk_words = [words[i] for i in rows]
        if logp is not None:
            logp[rows] = contender.word_logprobs(chunk_words)  # (n,)
        ranks = completion_ranks(contender, chunk_words, k)
        for L, rank in at_length.items():
            rank[rows] = [r[L - 1] if len(r) >= L else -1 for r in ranks]
        keys[rows] = [_keystrokes(r) for r in ranks]
        done += len(rows)
        if progress:
            progress(done)

    def subset_scores(mask: np.ndarray) -> Scores:
        w = weights[mask]  # (n,)
        nll = _ratio(-(w * logp[mask]).sum(), (w * n_chars[mask]).sum()) if logp is not None else None
        prefix = {}
        for L, rank in at_length.items():
            rank, w_L = rank[mask], w[rank[mask] >= 0]  # (n,), (n_L,)
            rank = rank[rank >= 0]  # (n_L,)
            total = w_L.sum()
            reciprocal = np.divide(1.0, rank, out=np.zeros(len(rank)), where=rank > 0)  # (n_L,), 0 if absent
            prefix[L] = PrefixScores(len(rank), _ratio((w_L * (rank == 1)).sum(), total),
                                     _ratio((w_L * (rank >= 1)).sum(), total), _ratio((w_L * reciprocal).sum(), total))
        typed = _ratio((w * keys[mask]).sum(), (w * n_chars[mask]).sum())
        return Scores(
            n_words=int(mask.sum()), weight=float(w.sum()), n_chars=int(n_chars[mask].sum()),
            nll_per_char=nll, bits_per_char=None if nll is None else nll / math.log(2),
            perplexity=None if nll is None or nll > 700 else math.exp(nll),  # exp(700) is near float64's limit
            prefix=prefix, keystroke_savings=None if typed is None else 1.0 - typed,
        )

    everything = np.ones(len(words), dtype=bool)  # (N,)
    return {"all": subset_scores(everything), "seen": subset_scores(seen), "held_out": subset_scores(~seen)}


def chunk_size(words: Sequence[str], budget: int | None = None) -> int:
    """Words per chunk, at least 1: as many as hold `budget` bytes (default MEMORY_BUDGET) at
    BYTES_PER_CHARACTER for each character of a word of mean length, its end included.
    chunk_size(["ab"] * 10, budget=3 * BYTES_PER_CHARACTER * 10) -> 10
    """
    budget = MEMORY_BUDGET if budget is None else budget
    mean_chars = sum(len(w) + 1 for w in words) / max(len(words), 1)
    return max(1, int(budget // (BYTES_PER_CHARACTER * mean_chars)))


def scoring_chunk(words: Sequence[str]) -> int:
    """Words per chunk when scoring a model: chunk_size(words), but no more than 1 / PROGRESS_STEPS
    of them unless that is under MIN_PROGRESS_CHUNK."""
    return min(chunk_size(words), max(MIN_PROGRESS_CHUNK, math.ceil(len(words) / PROGRESS_STEPS)))


def _chunks(words: Sequence[str], chunk: int):
    """The indices of `words` (N,) in alphabetical order, `chunk` at a time: lists of up to `chunk` ints."""
    order = sorted(range(len(words)), key=words.__getitem__)
    return (order[start : start + chunk] for start in range(0, len(order), chunk))


def chunked_logprobs(word_logprobs: Callable[[Sequence[str]], np.ndarray], words: Sequence[str],
                     chunk: int | None = None) -> np.ndarray:
    """word_logprobs(words) (N,), asked `chunk` words at a time (default chunk_size(words)), in order."""
    chunk = chunk or chunk_size(words)
    parts = [np.asarray(word_logprobs(words[start : start + chunk])) for start in range(0, len(words), chunk)]
    return np.concatenate(parts) if parts else np.zeros(0)


def completion_ranks(contender: Contender, words: Sequence[str], k: int) -> list[np.ndarray]:
    """For each word w, ranks (len(w) - 1,): entry i - 1 is the position (1-based) of w among the
    top k completions of w[:i], 0 if absent, for i = 1 .. len(w) - 1. One rank_many call in all."""
    prefixes = sorted({w[:i] for w in words for i in range(1, len(w))})
    answers = contender.rank_many(prefixes, k) if prefixes else []
    position = {p: {word: r for r, word in enumerate(answer[:k], start=1)} for p, answer in zip(prefixes, answers)}
    return [np.array([position[w[:i]].get(w, 0) for i in range(1, len(w))], dtype=np.int64) for w in words]


def _keystrokes(ranks: np.ndarray) -> int:
    """Keys to enter a word of len(ranks) + 1 letters: accepted after the first i typed where it shows."""
    shown = np.flatnonzero(ranks > 0)
    return int(shown[0]) + 2 if len(shown) else len(ranks) + 2  # i = shown[0] + 1 letters, + 1 accept


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def evaluate(model, vocab: Vocab, words: Sequence[str], counts=None, *, train_words: Sequence[str],
             train_counts=None, weighted: bool = False, baselines: Sequence[str] = BASELINES, k: int = 5,
             prefix_lengths: Sequence[int] = PREFIX_LENGTHS, complete_fn: CompleteFn | None = None,
             mixture_lambda: float | None = None, mixture_complete_fn: CompleteFn | None = None,
             train_weighting: str = "uniform", seed: int = 0, info: dict | None = None,
             progress: ProgressCallback | None = None) -> Evaluation:
    """Score the RNN `model` and the `baselines` on `words`, split into seen and held-out by `train_words`.

    counts (N,) weigh the words when `weighted`; train_counts rank the trie's words. The add-k n-gram
    is fitted on the training words weighted as the RNN was trained (`train_weighting`, a sampling
    scheme of wordlist.py), after choosing its order and add-k on a held-out part of them; the
    Kneser-Ney n-gram counts each distinct training word once, its order chosen the same way.
    Words with characters outside `vocab` cannot be scored by the RNN, so every model skips them.
    With `mixture_lambda`, the lexicon-RNN mixture over the training words is scored too, its
    completions from `mixture_complete_fn` or else ranked among the candidates. `progress(Stage)`
    is told as each fit or model's scoring starts, and as a model's words are scored.
    """
    _check_settings(baselines, k, prefix_lengths)
    scored = _Words.of(vocab, words, counts, weighted, train_words, train_counts)
    stage = _Stages(progress, 1 + (mixture_lambda is not None) + len(baselines) + len({"ngram", "kn"} & set(baselines)))
    models, labels, reports = {}, {}, {}

    def score(contender: Contender) -> None:
        stage(f"scoring {contender.label or contender.name}", len(scored.words))
        models[contender.name] = score_model(contender, scored.words, scored.weights, scored.seen, k, prefix_lengths,
                                             progress=stage.scored)
        labels[contender.name] = contender.label or contender.name

    # For memory, each baseline is built, scored and let go before the next, and all before the
    # RNN: a fitted n-gram is never held beside another, nor beside the RNN's completer.
    for build in _baselines(scored, vocab, baselines, train_weighting, seed, stage, reports):
        score(build())
        release_freed_memory()  # a fit's temporaries, a few times the counts it keeps
    rnn = rnn_contender(model, vocab, scored.candidates, complete_fn)
    score(rnn)
    if mixture_lambda is not None:
        score(mixture_contender(rnn, scored.train_words, scored.train_counts, mixture_lambda, scored.candidates,
                                mixture_complete_fn))
    order = ["rnn", "mixture", *BASELINES]  # the tables' order
    rnn_completions = "search" if complete_fn else f"ranks {len(scored.candidates):,} candidate words"
    info = dict(info or {}, rnn_completions=rnn_completions, train_weighting=train_weighting)
    return Evaluation(k, list(prefix_lengths), weighted, len(scored.words), int(scored.seen.sum()),
                      int((~scored.seen).sum()), scored.n_skipped, len(scored.train_words),
                      {name: models[name] for name in order if name in models},
                      verdict=verdict(models, BASELINES, prefix_lengths), ngram=reports.get("ngram"), kn=reports.get("kn"),
                      labels={name: labels[name] for name in order if name in labels}, info=info)


def _check_settings(baselines: Sequence[str], k: int, prefix_lengths: Sequence[int]) -> None:
    """ValueError for an unknown baseline, k < 1, or no or a non-positive prefix length."""
    for name in baselines:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if k < 1 or not prefix_lengths or min(prefix_lengths) < 1:
        raise ValueError(f"need k >= 1 and prefix lengths >= 1, got k={k}, {list(prefix_lengths)}")


@dataclass(frozen=True)
class _Words:
    """The words an evaluation scores and the training words it compares them with, those the
    model can score only (every character in its vocabulary)."""

    words: list[str]  # (N,) evaluated
    weights: np.ndarray  # (N,) their counts when weighted, else 1 each
    seen: np.ndarray  # (N,) bool: among the training words
    n_skipped: int  # evaluated words left out for a character outside the vocabulary
    train_words: list[str]
    train_counts: np.ndarray
    candidates: list[str]  # the training and evaluated words, sorted: the closed vocabulary of the rankers

    @classmethod
    def of(cls, vocab: Vocab, words: Sequence[str], counts, weighted: bool, train_words: Sequence[str],
           train_counts) -> _Words:
        """DataError if none of `words` can be scored."""
        scorable, counts = _scorable(vocab, words, counts)  # (N,)
        if not scorable:
            raise DataError(f"none of the {len(words):,} words can be scored: each holds a character "
                            f"outside the model's vocabulary ({''.join(vocab.chars)!r})")
        train_words, train_counts = _scorable(vocab, train_words, train_counts)
        train_set = set(train_words)
        seen = np.array([w in train_set for w in scorable])  # (N,)
        return cls(scorable, counts if weighted else np.ones(len(scorable)), seen, len(words) - len(scorable),
                   train_words, train_counts, sorted(train_set | set(scorable)))


def _baselines(scored: _Words, vocab: Vocab, baselines: Sequence[str], train_weighting: str, seed: int,
               stage: _Stages, reports: dict) -> list[Callable[[], Contender]]:
    """A function per baseline asked for that builds it (fitting an n-gram on the training words,
    its report put in `reports` by name), so that a caller holds one baseline at a time."""
    if {"ngram", "kn"} & set(baselines) and len(set(scored.train_words)) < 2:
        raise DataError("the n-gram baselines need at least two training words")
    evaluated = (scored.words, scored.weights, scored.seen, vocab)

    def trie() -> Contender:
        return Contender("trie", FrequencyTrie(scored.train_words, scored.train_counts).rank_many)

    def ngram() -> Contender:
        train_weights = sampling_weights(scored.train_counts, train_weighting) * len(scored.train_words)  # (N,), mean 1
        stage("fitting the character n-gram (its order and add-k)")
        chosen, grid = fit_ngram(scored.train_words, vocab, train_weights, seed=seed)
        reports["ngram"] = _ngram_report(chosen, grid, scored.train_words, train_weights, *evaluated)
        return ngram_contender(chosen, scored.candidates)

    def kn() -> Contender:
        stage("fitting the Kneser-Ney n-gram (its order)")
        chosen, grid = fit_kn(scored.train_words, vocab, seed=seed)
        reports["kn"] = _kn_report(chosen, grid, scored.train_words, *evaluated)
        return ngram_contender(chosen, scored.candidates, "kn")

    builders = {"trie": trie, "ngram": ngram, "kn": kn}
    return [builders[name] for name in BASELINES if name in baselines]


def _scorable(vocab: Vocab, words: Sequence[str], counts) -> tuple[list[str], np.ndarray]:
    """The words the model can score (every character in `vocab`) and their counts (1 each if None)."""
    counts = np.ones(len(words)) if counts is None else np.asarray(counts, dtype=np.float64)  # (N,)
    keep = [i for i, w in enumerate(words) if vocab.unknown_char(w) is None]
    return [words[i] for i in keep], counts[keep]


class _Stages:
    """Tells `progress` of each stage of an evaluation as it starts, and of the words it has scored."""

    def __init__(self, progress: ProgressCallback | None, total: int):
        self.progress, self.total, self.current = progress, total, None

    def __call__(self, what: str, words: int = 0) -> None:
        """The next stage starts; it will score `words` (0: it does not count them)."""
        self.current = Stage(what, self.current.number + 1 if self.current else 1, self.total, 0, words)
        if self.progress:
            self.progress(self.current)

    def scored(self, done: int) -> None:
        """The current stage has scored `done` words."""
        self.current = self.current._replace(done=done)
        if self.progress:
            self.progress(self.current)


def _ngram_report(chosen: CharNGram, grid: list[dict], train_words, train_weights, words, weights, seen, vocab) -> dict:
    """The chosen order and add-k, the grid, and each order (at its best add-k) scored on the words,
    so "the best character n-gram" can be read whichever order that is."""
    orders = []
    for order in sorted({g["order"] for g in grid}):
        best = min((g for g in grid if g["order"] == order), key=lambda g: g["tune_nll_per_char"])
        ngram = chosen
        if order != chosen.order:
            ngram = CharNGram(vocab, order, best["add_k"]).fit(train_words, train_weights)
        orders.append({**best, "nll_per_char": _nll_by_subset(chunked_logprobs(ngram.word_logprobs, words), words, weights, seen)})
    return {"order": chosen.order, "add_k": chosen.add_k, "label": chosen.label, "grid": grid, "orders": orders}


def _kn_report(chosen: KneserNey, grid: list[dict], train_words, words, weights, seen, vocab) -> dict:
    """The chosen Kneser-Ney order and its discounts (D1, D2, D3+ for orders 1..n), the grid, and
    every order of the grid fitted on all training words and scored on the words."""
    orders = []
    for g in grid:
        kn = chosen if g["order"] == chosen.order else KneserNey(vocab, g["order"]).fit(train_words)
        orders.append({**g, "nll_per_char": _nll_by_subset(chunked_logprobs(kn.word_logprobs, words), words, weights, seen)})
    return {"order": chosen.order, "label": chosen.label, "discounts": chosen.discounts.tolist(),
            "grid": grid, "orders": orders}


def _nll_by_subset(logp: np.ndarray, words, weights, seen) -> dict[str, float | None]:
    """Weighted NLL per character of log P(word) (N,) over {"all", "seen", "held_out"}."""
    n_chars = np.array([len(w) + 1 for w in words], dtype=np.float64)  # (N,)
    masks = {"all": np.ones(len(words), dtype=bool), "seen": seen, "held_out": ~seen}  # (N,) each
    return {name: _ratio(-(weights[m] * logp[m]).sum(), (weights[m] * n_chars[m]).sum()) for name, m in masks.items()}


def evaluate_checkpoint(wordlist: str | os.PathLike, checkpoint: str | os.PathLike, *, weighted: bool = False,
                        baselines: Sequence[str] = BASELINES, k: int = 5,
                        prefix_lengths: Sequence[int] = PREFIX_LENGTHS, train_list: str | os.PathLike | None = None,
                        search: str = "exact", mixture_lambda: float | None = None,
                        progress: ProgressCallback | None = None) -> Evaluation:
    """`rnnac evaluate WORDLIST -c CHECKPOINT`: read both, rebuild the training words, evaluate
    (`progress` as for `evaluate`).

    The training words are rebuilt as training made them: the checkpoint's data config (filters,
    val_fraction) and train.seed applied to `train_list`, by default the list the checkpoint was
    trained on, or WORDLIST itself when that file is not on this machine (a bundled model).

    search "exact": the RNN's and the mixture's completions are `rnnac complete`'s (--open, and
    the mixture over the training words); "known": the RNN ranks the training and evaluated
    words, the mixture completes only to training words (`rnnac complete --known-only`).
    mixture_lambda None is the one `rnnac complete` uses (TrainedModel.mixture_lambda).
    """
    inputs = _prepare(wordlist, checkpoint, train_list, mixture_lambda)
    trained, split, config = inputs.trained, inputs.split, inputs.config
    rnn_search, mixture_search = _searches(trained, split, inputs.mixture_lambda, search)
    return evaluate(trained.model, trained.vocab, inputs.evaluated.words, inputs.evaluated.counts,
                    train_words=split.train_words, train_counts=split.train_counts, weighted=weighted,
                    baselines=baselines, k=k, prefix_lengths=prefix_lengths, train_weighting=config.data.weighting,
                    seed=config.train.seed, complete_fn=rnn_search, mixture_lambda=inputs.mixture_lambda,
                    mixture_complete_fn=mixture_search, info=inputs.info, progress=progress)


def typo_checkpoint(wordlist: str | os.PathLike, checkpoint: str | os.PathLike, rate: float, *, weighted: bool = False,
                    k: int = 5, n_words: int = 2000, typed: int = 4, seed: int = 0,
                    train_list: str | os.PathLike | None = None, mixture_lambda: float | None = None):
    """`rnnac evaluate WORDLIST --typos RATE`: the typo benchmark (rnnac.evaluation.typobench) of the
    checkpoint's mixture over the training words, without and with max_edits 1, beside a
    frequency trie of the training words, exact and with Levenshtein-1 prefixes."""
    from rnnac.evaluation.typobench import FuzzyTrie, draw_words, typo_benchmark
    from rnnac.inference.completer import Completer
    from rnnac.storage.lexicon import Lexicon

    inputs = _prepare(wordlist, checkpoint, train_list, mixture_lambda)
    trained, split, evaluated = inputs.trained, inputs.split, inputs.evaluated
    vocab, folding = trained.vocab, trained.folding
    words, counts = _scorable(vocab, evaluated.words, evaluated.counts)
    drawn = draw_words(words, counts, weighted, n_words, typed, np.random.default_rng(seed))
    if not drawn:
        raise DataError(f"no word of {evaluated.path} the model can score is longer than {typed} characters")
    completer = Completer(trained.model, vocab, folding, Lexicon(split.train_words, vocab, folding, split.train_counts),
                          inputs.mixture_lambda)
    train_words, train_counts = _scorable(vocab, split.train_words, split.train_counts)

    def rnnac(max_edits: int):
        return lambda prefixes, k: [[fold(c.word, folding) for c in r.completions]
                                    for r in completer.complete_many(prefixes, k, known_only=False, max_edits=max_edits)]

    rankers = {"rnnac": rnnac(0), "rnnac_edits": rnnac(1), "trie": FrequencyTrie(train_words, train_counts).rank_many,
               "trie_lev1": FuzzyTrie(train_words, train_counts, vocab.chars).rank_many}
    labels = {"rnnac": "rnnac", "rnnac_edits": "rnnac --max-edits 1", "trie": "trie", "trie_lev1": "trie, Levenshtein 1"}
    info = inputs.info | {"drawn": f"drawn {'by count' if weighted else 'evenly'} from {evaluated.path} "
                                   f"(longer than {typed} characters)"}
    return typo_benchmark(rankers, drawn, vocab.chars, rate, k, typed, seed, labels, info)


@dataclass(frozen=True)
class _Inputs:
    """What evaluating a checkpoint on a list needs."""

    trained: TrainedModel
    config: Config
    split: Data  # the training split: the words the model trained on and the ones held out
    evaluated: WordList  # the list to evaluate on
    info: dict  # where the words and the model came from, for the report
    mixture_lambda: float  # the one given, else the checkpoint's (TrainedModel.mixture_lambda)


def _prepare(wordlist, checkpoint, train_list, mixture_lambda: float | None) -> _Inputs:
    """Read the checkpoint, rebuild its training split and read the evaluated list."""
    trained = load_trained(checkpoint)
    config = Config.from_dict(trained.meta["config"])
    # The folding the model reads with: a config from before data.fold_accents existed would take its default.
    config = replace(config, data=replace(config.data, lowercase=trained.folding.lowercase,
                                          fold_accents=trained.folding.accents))
    data, source, note = _training_split(wordlist, checkpoint, trained, config, train_list)
    if data.vocab != trained.vocab:
        note = (note + "; " if note else "") + (f"the words of {source} have other characters than the "
                                                f"checkpoint's vocabulary: the split may differ from training's")
    evaluated = read_word_list(wordlist, lowercase=config.data.lowercase, fold_accents=config.data.fold_accents)
    info = {"wordlist": evaluated.path, "checkpoint": os.fspath(checkpoint), "train_source": os.fspath(source),
            "val_fraction": config.data.val_fraction, "split_seed": config.train.seed, "step": trained.meta.get("step")}
    if note:
        info["note"] = note
    if mixture_lambda is None:
        mixture_lambda = trained.mixture_lambda
        stored = trained.meta.get("mixture_lambda") is not None
        info["mixture_lambda"] = "the checkpoint's" if stored else "the default (the checkpoint stores none)"
    return _Inputs(trained, config, data, evaluated, info, mixture_lambda)


def _training_split(wordlist, checkpoint, trained: TrainedModel, config: Config, train_list):
    """(the training split, where it comes from, a note or None): `train_list` split again as training
    did when given, else the split the checkpoint's word list records, else the training list,
    else WORDLIST itself."""
    source, note = train_list, None
    if source is None and trained.lexicon is not None:  # the list travelled with the model, split marked
        return _split_from_lexicon(trained.lexicon, trained.vocab, trained.folding), f"the word list {checkpoint} carries", None
    if source is None:
        source = config.data.path
        if not os.path.exists(source):
            if str(wordlist) == "-":
                raise DataError(f"the training list {source} is not on this machine and WORDLIST is stdin: "
                                f"name the training list to rebuild the train split")
            source, note = wordlist, (f"Seen and held-out words are a split of {os.fspath(wordlist)} made as "
                                      f"training made it, since the training list {config.data.path} is not here")
    # A model trained further from another (train.init_from) kept that one's vocabulary: so does the rebuilt split.
    data = load_data(replace(config, data=replace(config.data, path=os.fspath(source))),
                     trained.vocab if config.train.init_from else None)
    return data, source, note


def _split_from_lexicon(lexicon, vocab: Vocab, folding: Folding) -> Data:
    """The training split a checkpoint's word list records: its unmarked words train, its marked ones
    were held out. Words are folded as the model reads them (the list keeps them as written)."""
    words = [fold(w, folding) for w in lexicon.words]
    train = np.flatnonzero(~lexicon.held_out)  # (N_train,)
    val_words = [words[i] for i in np.flatnonzero(lexicon.held_out) if vocab.unknown_char(words[i]) is None]
    return Data(vocab, [words[i] for i in train], lexicon.counts[train], val_words, "", words, lexicon.counts,
                lexicon.held_out)


def _searches(trained: TrainedModel, split: Data, mixture_lambda: float, search: str):
    """(the RNN's, the mixture's) completion functions for evaluate: `rnnac complete`'s exact search
    with the training words as the lexicon (held-out words left out of it). The completer and its
    lexicon are built at the first completion, so they are not held while the baselines are fitted."""
    from rnnac.inference.completer import Completer
    from rnnac.storage.lexicon import Lexicon

    if search not in ("exact", "known"):
        raise ValueError(f"search must be exact or known, got {search!r}")
    vocab, folding = trained.vocab, trained.folding

    @functools.cache
    def completer() -> Completer:
        lexicon = Lexicon(split.train_words, vocab, folding, split.train_counts)
        return Completer(trained.model, vocab, folding, lexicon, mixture_lambda)

    def by(**flags) -> CompleteFn:
        return lambda prefixes, k: [[fold(c.word, folding) for c in r.completions]
                                    for r in completer().complete_many(prefixes, k, **flags)]

    return (by(open=True) if search == "exact" else None), by(known_only=search != "exact")


def format_table(result: Evaluation) -> str:
    """Markdown: the verdict (rnnac.evaluation.verdict) when there are baselines, a likelihood and
    savings table, a completion table by prefix length and the n-grams chosen. Models are named by
    their labels, e.g. "kn (order 6, modified KN)". When the training list was not at hand, the
    title says how the held-out words were chosen instead."""
    lines = format_verdict(result.verdict, result.labels, result.k) + [""] if result.verdict else []
    lines += [_title(result), "", *_likelihood_table(result), "", *_completion_table(result)]
    if result.ngram:
        lines += ["", _ngram_note(result.ngram)]
    if result.kn:
        lines += ["", _kn_note(result.kn)]
    return "\n".join(lines)


def _title(result: Evaluation) -> str:
    """The words evaluated and how: '120 words (100 seen in training, 20 held out), each distinct word once; ...'."""
    weighting = "each word weighted by its count" if result.weighted else "each distinct word once"
    note = f"{result.info['note']}. " if result.info.get("note") else ""
    skipped = f"; {result.n_skipped:,} skipped for characters outside the vocabulary" if result.n_skipped else ""
    return (f"{note}{result.n_words:,} words ({result.n_seen:,} seen in training, {result.n_held_out:,} held out"
            f"{skipped}), {weighting}; completions: top {result.k}.")


def _likelihood_table(result: Evaluation) -> list[str]:
    """Likelihood and keystroke savings: a row per subset and model."""
    lines = ["| words | model | n | nats/char | bits/char | perplexity | keystroke savings |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for subset in SUBSETS:
        for name, by_subset in result.models.items():
            s = by_subset[subset]
            lines.append(f"| {_SUBSET_NAMES[subset]} | {result.labels.get(name, name)} | {s.n_words:,} | {_num(s.nll_per_char)} | "
                         f"{_num(s.bits_per_char)} | {_num(s.perplexity, 2)} | {percent(s.keystroke_savings)} |")
    return lines


def _completion_table(result: Evaluation) -> list[str]:
    """Top-1, top-k and MRR by prefix length: a row per subset, metric and model."""
    lengths = result.prefix_lengths
    lines = ["| words | metric | model | " + " | ".join(f"{L} typed" for L in lengths) + " |",
             "|---|---|---|" + "---:|" * len(lengths)]
    metrics = (("top-1", "top1", percent), (f"top-{result.k}", "topk", percent), ("MRR", "mrr", _num))
    for subset in SUBSETS:
        for label, key, show in metrics:
            for name, by_subset in result.models.items():
                cells = " | ".join(show(getattr(by_subset[subset].prefix[L], key)) for L in lengths)
                lines.append(f"| {_SUBSET_NAMES[subset]} | {label} | {result.labels.get(name, name)} | {cells} |")
    return lines


def _ngram_note(ngram: dict) -> str:
    """The add-k n-gram chosen, and the held-out NLL of each order."""
    orders = ", ".join(f"order {o['order']} (k={o['add_k']:g}): {_num(o['nll_per_char']['held_out'])}"
                       for o in ngram["orders"])
    return (f"n-gram: order {ngram['order']}, add-k {ngram['add_k']:g}, chosen on held-out "
            f"training words. Held-out nats/char by order: {orders}.")


def _kn_note(kn: dict) -> str:
    """The Kneser-Ney order chosen, its discounts, and the held-out NLL of each order."""
    order = kn["order"]
    discounts = ", ".join(f"{d:.3f}" for d in kn["discounts"][order - 1])
    orders = ", ".join(f"order {o['order']}: {_num(o['nll_per_char']['held_out'])}" for o in kn["orders"])
    return (f"kn: interpolated modified Kneser-Ney of order {order}, each distinct training word once, "
            f"chosen on held-out training words; D1, D2, D3+ of order {order}: {discounts}. "
            f"Held-out nats/char by order: {orders}.")


_SUBSET_NAMES = {"all": "all", "seen": "seen", "held_out": "held out"}


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"
