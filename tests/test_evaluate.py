import json
import math

import numpy as np
import pytest
from conftest import tiny_model

from rnnac.engine.model import RNN
from rnnac.engine.vocab import Vocab
from rnnac.errors import DataError
from rnnac.evaluation.baselines import FrequencyTrie, KneserNey, fit_kn
from rnnac.evaluation import evaluate as evaluation
from rnnac.evaluation.evaluate import (
    BYTES_PER_CHARACTER,
    Contender,
    chunk_size,
    evaluate,
    evaluate_checkpoint,
    format_table,
    ngram_contender,
    rnn_contender,
    score_model,
)
from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
from rnnac.storage.wordlist import read_word_list, split_words
from rnnac.training.config import Config
from columns import pairs

# The hand-worked case. Trie (k = 2): "c" and "ca" -> [car, cat]; "car" -> [car, cart];
# "cat" -> [cat]; "d", "do" -> [dog]; "co" -> [].
TRAIN = {"car": 5, "cat": 3, "cart": 2, "dog": 4}
EVALUATED = ["cat", "cart", "dog", "cow"]  # cow is held out
#   cat:  rank 2 after "c" and "ca"      -> accepted after 1 letter: 2 keys of 4
#   cart: absent after "c", "ca"; rank 2 after "car" -> 4 keys of 5
#   dog:  rank 1 after "d" and "do"      -> 2 keys of 4
#   cow:  absent after "c" and "co"      -> 4 keys of 4


def hand_scores(weights=(1, 1, 1, 1)):
    trie = FrequencyTrie(list(TRAIN), list(TRAIN.values()))
    seen = [w in TRAIN for w in EVALUATED]
    return score_model(Contender("trie", trie.rank_many), EVALUATED, weights, seen, k=2)


def uniform_model(K, hidden_size=3):
    model = RNN.init(K, hidden_size, dtype=np.float64)
    model.params["V"][:] = 0  # every logit o_t = 0: y^ is uniform over the K tokens
    return model


def test_hand_worked_trie_metrics():
    scores = hand_scores()
    all_, seen, held_out = scores["all"], scores["seen"], scores["held_out"]
    for L in (1, 2):  # the same ranks after 1 and 2 letters
        p = all_.prefix[L]
        assert (p.n_words, p.top1, p.topk, p.mrr) == (4, 0.25, 0.5, pytest.approx((0.5 + 0 + 1 + 0) / 4))
        p = seen.prefix[L]
        assert (p.n_words, p.top1, p.topk, p.mrr) == (3, pytest.approx(1 / 3), pytest.approx(2 / 3), pytest.approx(0.5))
        p = held_out.prefix[L]
        assert (p.n_words, p.top1, p.topk, p.mrr) == (1, 0.0, 0.0, 0.0)
    p = all_.prefix[3]  # only cart is longer than 3 letters
    assert (p.n_words, p.top1, p.topk, p.mrr) == (1, 0.0, 1.0, 0.5)
    p = all_.prefix[4]
    assert (p.n_words, p.top1, p.topk, p.mrr) == (0, None, None, None)
    assert all_.keystroke_savings == pytest.approx(1 - (2 + 4 + 2 + 4) / (4 + 5 + 4 + 4))
    assert seen.keystroke_savings == pytest.approx(1 - (2 + 4 + 2) / (4 + 5 + 4))
    assert held_out.keystroke_savings == 0.0
    assert (all_.n_words, all_.n_chars, all_.nll_per_char, all_.perplexity) == (4, 17, None, None)


def test_hand_worked_weighted():
    all_ = hand_scores(weights=(1, 2, 3, 4))["all"]  # cat, cart, dog, cow
    assert all_.weight == 10.0
    assert all_.prefix[1].top1 == pytest.approx(3 / 10)  # dog
    assert all_.prefix[1].topk == pytest.approx((1 + 3) / 10)  # cat, dog
    assert all_.prefix[1].mrr == pytest.approx((1 * 0.5 + 3 * 1.0) / 10)
    keys, chars = 1 * 2 + 2 * 4 + 3 * 2 + 4 * 4, 1 * 4 + 2 * 5 + 3 * 4 + 4 * 4
    assert all_.keystroke_savings == pytest.approx(1 - keys / chars)


def test_evaluate_runs_the_trie_through_the_same_code():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(uniform_model(len(vocab)), vocab, EVALUATED, train_words=list(TRAIN),
                      train_counts=list(TRAIN.values()), baselines=("trie",), k=2)
    assert result.models["trie"] == hand_scores()
    assert (result.n_words, result.n_seen, result.n_held_out, result.n_train_words) == (4, 3, 1, 4)


def test_uniform_model_perplexity_is_K_and_it_prefers_short_words():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    K = len(vocab)
    result = evaluate(uniform_model(K), vocab, EVALUATED, train_words=list(TRAIN), baselines=(), k=2)
    for subset in ("all", "seen", "held_out"):
        s = result.models["rnn"][subset]
        assert s.nll_per_char == pytest.approx(math.log(K))
        assert s.perplexity == pytest.approx(K)
        assert s.bits_per_char == pytest.approx(math.log2(K))
    # P(w) = K^-(len(w) + 1): shorter words first, then alphabetical. Candidates: training and
    # evaluated words, so "c" -> [car, cat] and "co" -> [cow]: cow is found after 2 letters.
    assert result.models["rnn"]["held_out"].keystroke_savings == pytest.approx(1 - 3 / 4)


def test_rnn_ranking_matches_a_step_by_step_brute_force():
    words = ["abc", "a", "cabba", "bb", "abcab", "ba", "cab", "acca", "ab", "b", "cc"]
    vocab = Vocab.from_words(words)
    model = tiny_model(vocab, hidden_size=5, seed=1)

    def logprob(word):  # log P(word) by feeding one token at a time through RNN.step
        a, total = model.initial_state(1), 0.0
        for prev, nxt in zip([0] + vocab.encode(word), vocab.encode(word) + [0]):
            a, logp = model.step(a, np.array([prev]))
            total += logp[0, nxt]
        return total

    completer = rnn_contender(model, vocab, words)
    np.testing.assert_allclose(completer.word_logprobs(words), [logprob(w) for w in words], rtol=1e-10)
    for prefix in ["", "a", "ab", "c", "b", "x"]:
        expected = sorted((w for w in words if w.startswith(prefix)), key=lambda w: (-logprob(w), w))
        assert completer.rank_many([prefix], 3) == [expected[:3]]


def test_an_injected_search_replaces_the_candidate_ranking():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    asked = []

    def complete_fn(prefixes, k):  # always offers "cow" first
        asked.append((list(prefixes), k))
        return [["cow", "dog"] for _ in prefixes]

    result = evaluate(uniform_model(len(vocab)), vocab, EVALUATED, train_words=list(TRAIN), baselines=(),
                      k=2, complete_fn=complete_fn)
    assert len(asked) == 1 and asked[0][1] == 2  # one batched call
    assert asked[0][0] == sorted({w[:i] for w in EVALUATED for i in range(1, len(w))})
    rnn = result.models["rnn"]["all"]
    assert rnn.prefix[1].top1 == 0.25 and rnn.prefix[1].topk == 0.5  # cow rank 1, dog rank 2
    assert rnn.keystroke_savings == pytest.approx(1 - (4 + 5 + 2 + 2) / 17)
    assert result.info["rnn_completions"] == "search"


def test_words_with_unknown_characters_are_skipped():
    vocab = Vocab.from_words(list(TRAIN))  # no "w": cow cannot be scored
    result = evaluate(uniform_model(len(vocab)), vocab, EVALUATED, train_words=list(TRAIN), baselines=("trie",))
    assert (result.n_words, result.n_skipped, result.n_held_out) == (3, 1, 0)
    assert result.models["rnn"]["held_out"].nll_per_char is None  # an empty subset says nothing
    with pytest.raises(DataError, match="none of the 1 words"):
        evaluate(uniform_model(len(vocab)), vocab, ["xyz"], train_words=list(TRAIN))


def test_json_holds_every_figure():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(tiny_model(vocab), vocab, EVALUATED, [1, 2, 3, 4], train_words=list(TRAIN),
                      train_counts=list(TRAIN.values()), weighted=True, k=3)
    tree = json.loads(result.to_json())
    assert tree["k"] == 3 and tree["weighted"] is True and tree["prefix_lengths"] == [1, 2, 3, 4]
    assert set(tree["models"]) == {"rnn", "trie", "ngram", "kn"}
    for name, by_subset in tree["models"].items():
        assert set(by_subset) == {"all", "seen", "held_out"}
        for scores in by_subset.values():
            assert set(scores) == {"n_words", "weight", "n_chars", "nll_per_char", "bits_per_char",
                                   "perplexity", "prefix", "keystroke_savings"}
            assert set(scores["prefix"]) == {"1", "2", "3", "4"}
            for p in scores["prefix"].values():
                assert set(p) == {"n_words", "top1", "topk", "mrr"}
            has_nll = name != "trie"
            assert (scores["nll_per_char"] is not None) == has_nll
            assert scores["keystroke_savings"] is not None
    assert tree["ngram"]["order"] in (2, 3, 4, 5) and len(tree["ngram"]["orders"]) == 4
    assert {o["order"] for o in tree["ngram"]["orders"]} == {2, 3, 4, 5}
    kn = tree["kn"]
    assert [o["order"] for o in kn["orders"]] == [2, 3, 4, 5, 6, 7] and len(kn["discounts"]) == kn["order"]
    assert kn["order"] == min(kn["grid"], key=lambda g: g["tune_nll_per_char"])["order"]
    assert tree["labels"] == {"rnn": "rnn", "trie": "trie", "ngram": tree["ngram"]["label"], "kn": kn["label"]}


def test_format_table():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(tiny_model(vocab), vocab, EVALUATED, [1, 2, 3, 4], train_words=list(TRAIN),
                      train_counts=list(TRAIN.values()), weighted=True, k=2)
    table = format_table(result)
    ngram, kn = result.ngram, result.kn
    ngram_label = f"ngram (order {ngram['order']}, add-{ngram['add_k']:g})"  # the settings actually fitted
    kn_label = f"kn (order {kn['order']}, modified KN)"
    for row in ("| all | rnn | 4 |", "| held out | trie | 1 |", f"| seen | {ngram_label} | 3 |",
                f"| held out | {kn_label} | 1 | {result.models['kn']['held_out'].nll_per_char:.3f} |",
                "| all | top-2 | trie |", "| held out | MRR | rnn |", f"| seen | top-1 | {kn_label} |",
                "n-gram: order", f"kn: interpolated modified Kneser-Ney of order {kn['order']}"):
        assert row in table
    assert "Target" not in table  # development targets are not the tool's business
    lines = table.splitlines()
    assert lines[0].startswith("rnn ") and lines[2] == ""  # the verdict first (test_verdict.py)
    assert lines[3].startswith("4 words (3 seen in training, 1 held out)")


def test_kn_contender_is_fitted_on_the_distinct_training_words():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(uniform_model(len(vocab)), vocab, EVALUATED, train_words=list(TRAIN),
                      train_counts=list(TRAIN.values()), baselines=("kn",), k=2)
    kn = KneserNey(vocab, result.kn["order"]).fit(list(TRAIN))  # counts ignored: each word once
    logp = kn.word_logprobs(EVALUATED)
    n_chars = sum(len(w) + 1 for w in EVALUATED)
    assert result.models["kn"]["all"].nll_per_char == pytest.approx(-logp.sum() / n_chars)
    assert set(result.models) == {"rnn", "kn"} and result.ngram is None
    with pytest.raises(ValueError, match="trie, ngram, kn"):
        evaluate(uniform_model(len(vocab)), vocab, EVALUATED, train_words=list(TRAIN), baselines=("knn",))


def make_checkpoint(tmp_path, words_path, val_fraction=0.25, seed=3):
    config = Config.from_dict({"data": {"path": str(words_path), "val_fraction": val_fraction, "weighting": "sqrt"},
                               "model": {"hidden_size": 6}, "train": {"seed": seed}})
    words = read_word_list(words_path)
    train_idx, _ = split_words(len(words), val_fraction, seed)
    vocab = Vocab.from_words([words.words[i] for i in train_idx])
    model = RNN.init(len(vocab), 6, seed=0)
    meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float32",
            "config": config.to_dict(), "step": 7, "epoch": 0, "best_val_loss": None, "rng_state": {}}
    save_checkpoint(tmp_path / "model.npz", model.params, meta)
    return tmp_path / "model.npz", words, {words.words[i] for i in train_idx}


def test_evaluate_checkpoint_rebuilds_the_training_split(tmp_path):
    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("abcde"), size=rng.integers(2, 7))) for _ in range(60)})
    path = tmp_path / "words.tsv"
    path.write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(words)))
    checkpoint, wl, train = make_checkpoint(tmp_path, path)
    result = evaluate_checkpoint(path, checkpoint, weighted=True, k=3)
    assert result.n_seen == len(train) and result.n_held_out == len(wl) - len(train)
    assert result.n_train_words == len(train) and result.info["train_source"] == str(path)
    assert result.info["step"] == 7 and result.info["train_weighting"] == "sqrt" and "note" not in result.info

    # The training list is gone (a bundled model on another machine): WORDLIST is split instead.
    copy = tmp_path / "copy.tsv"
    copy.write_text(path.read_text())
    path.unlink()
    again = evaluate_checkpoint(copy, checkpoint, weighted=True, k=3)
    assert again.models == result.models
    title = format_table(again).splitlines()[3]  # after the verdict's two lines and a blank one
    assert title.startswith(f"Seen and held-out words are a split of {copy} made as training made it, "
                            f"since the training list {path} is not here. ")


def test_mixture_nll_by_hand():
    # With a uniform model every character costs log K, so P_rnn(w) = K^-(len(w) + 1).
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    K, lam = len(vocab), 0.75
    result = evaluate(uniform_model(K), vocab, EVALUATED, train_words=list(TRAIN), train_counts=list(TRAIN.values()),
                      baselines=(), k=2, mixture_lambda=lam)
    total = sum(TRAIN.values())

    def p_mix(w):
        return lam * TRAIN.get(w, 0) / total + (1 - lam) * K ** -(len(w) + 1)

    n_chars = {w: len(w) + 1 for w in EVALUATED}
    seen = [w for w in EVALUATED if w in TRAIN]
    mixture = result.models["mixture"]
    assert mixture["seen"].nll_per_char == pytest.approx(-sum(math.log(p_mix(w)) for w in seen) / sum(n_chars[w] for w in seen))
    assert mixture["held_out"].nll_per_char == pytest.approx(-math.log((1 - lam) * K ** -4) / 4)  # cow: 3 letters + end
    assert result.models["rnn"]["all"].nll_per_char == pytest.approx(math.log(K))
    # Ranked among the candidates by the mixture, the lexicon's counts lead as in the trie: after "c",
    # car (5) then cat (3), cart third; after "d", dog.
    first = mixture["seen"].prefix[1]
    assert (first.top1, first.topk) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert result.labels["mixture"] == "mixture (lambda 0.750)"


def ten_counted_words(tmp_path):
    """(the list's path, its words, a run config over it, its Data, a tiny model of its vocabulary)."""
    from rnnac.training.data import load_data

    path = tmp_path / "words.tsv"
    words = ["ab", "abc", "abd", "bca", "bcd", "cab", "cad", "dab", "dad", "dcb"]
    path.write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(words)))
    config = Config.from_dict({"data": {"path": str(path), "val_fraction": 0.2}, "output": {"dir": str(tmp_path / "run")}})
    data = load_data(config)
    return path, words, config, data, tiny_model(data.vocab, hidden_size=6)


def test_evaluate_checkpoint_mixture_completes_as_rnnac_complete(tmp_path):
    from rnnac.inference.completer import Completer
    from rnnac.storage.lexicon import Lexicon

    path, words, config, data, model = ten_counted_words(tmp_path)
    meta = {"chars": data.vocab.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float64",
            "config": config.to_dict(), "step": 1, "epoch": 0, "best_val_loss": 2.0, "rng_state": {},
            "mixture_lambda": 0.6}
    save_checkpoint(tmp_path / "m.npz", model.params, meta)
    result = evaluate_checkpoint(path, tmp_path / "m.npz", k=2, baselines=())
    completer = Completer(model, data.vocab, True, Lexicon(data.train_words, data.vocab, True, data.train_counts), 0.6)
    expected = {w[:i]: [c for c, _ in pairs(completer.complete(w[:i], k=2, known_only=False))]
                for w in words for i in range(1, len(w))}
    held = [w for w in words if w not in data.train_words]
    for L in (1, 2):
        ranks = [expected[w[:L]].index(w) + 1 if w in expected[w[:L]] else 0 for w in words if len(w) > L]
        assert result.models["mixture"]["all"].prefix[L].topk == pytest.approx(np.mean([r > 0 for r in ranks]))
    assert result.info["mixture_lambda"] == "the checkpoint's" and held


@pytest.mark.parametrize("carries_list", [True, False])
def test_complete_and_evaluate_weigh_a_checkpoint_without_a_fitted_lambda_alike(tmp_path, carries_list):
    from rnnac.inference.completer import Completer
    from rnnac.storage.checkpoint import DEFAULT_LAMBDA
    from rnnac.storage.lexicon import LexiconData

    path, words, config, data, model = ten_counted_words(tmp_path)
    meta = {"chars": data.vocab.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float64",
            "config": config.to_dict(), "step": 1, "epoch": 0, "best_val_loss": 2.0, "rng_state": {}}  # no mixture_lambda
    lexicon = LexiconData.from_unsorted(data.words, data.counts, data.held_out) if carries_list else None
    save_checkpoint(tmp_path / "m.npz", model.params, meta, lexicon=lexicon)
    completer = Completer.load(tmp_path / "m.npz")
    result = evaluate_checkpoint(path, tmp_path / "m.npz", k=2, baselines=())
    assert completer.mixture_lambda == DEFAULT_LAMBDA and completer.has_lexicon == carries_list
    assert result.labels["mixture"] == f"mixture (lambda {completer.mixture_lambda:.3f})"
    assert result.info["mixture_lambda"] == "the default (the checkpoint stores none)"
    given = evaluate_checkpoint(path, tmp_path / "m.npz", k=2, baselines=(), mixture_lambda=completer.mixture_lambda)
    assert given.models == result.models


def test_a_checkpoint_carrying_its_list_needs_no_training_file(tmp_path):
    from rnnac.training.trainer import run

    path = tmp_path / "words.tsv"
    words = ["ab", "abc", "abd", "bca", "bcd", "cab", "cad", "dab", "dad", "dcb", "cabd", "dabc"]
    path.write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(words)))
    config = Config.from_dict({"data": {"path": str(path), "val_fraction": 0.25},
                               "model": {"hidden_size": 6, "dtype": "float64"},
                               "train": {"max_steps": 20, "eval_every": 10, "batch_size": 4},
                               "output": {"dir": str(tmp_path / "run")}})
    run(config, quiet=True)
    checkpoint = tmp_path / "run" / "best.npz"
    rebuilt = evaluate_checkpoint(path, checkpoint, weighted=True, k=2, train_list=path, baselines=("trie",))
    carried = evaluate_checkpoint(path, checkpoint, weighted=True, k=2, baselines=("trie",))
    assert carried.models == rebuilt.models and carried.n_held_out == rebuilt.n_held_out == 3
    assert carried.info["train_source"] == f"the word list {checkpoint} carries"
    path.unlink()
    copy = tmp_path / "copy.tsv"
    copy.write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(words)))
    assert evaluate_checkpoint(copy, checkpoint, weighted=True, k=2, baselines=("trie",)).models == rebuilt.models


def test_evaluate_reads_words_as_the_model_does(tmp_path):
    from rnnac.evaluation.evaluate import _prepare
    from rnnac.training.trainer import run

    plain = ["ab", "abc", "abd", "bca", "bcd", "cab", "cad", "dab", "dad", "dcb", "cabd", "dabc"]
    accented = ["àb", "abç", "Abd", "bçá", "bcd", "cab", "Cád", "dab", "dad", "dcb", "cabd", "dabc"]
    for name, words in (("plain.tsv", plain), ("accented.tsv", accented)):
        (tmp_path / name).write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(words)))
    config = Config.from_dict({"data": {"path": str(tmp_path / "accented.tsv"), "val_fraction": 0.25},
                               "model": {"hidden_size": 6, "dtype": "float64"},
                               "train": {"max_steps": 20, "eval_every": 10, "batch_size": 4},
                               "output": {"dir": str(tmp_path / "run")}})
    run(config, quiet=True)
    checkpoint = tmp_path / "run" / "best.npz"
    folded = evaluate_checkpoint(tmp_path / "accented.tsv", checkpoint, k=2, baselines=("trie",))
    assert folded.models == evaluate_checkpoint(tmp_path / "plain.tsv", checkpoint, k=2, baselines=("trie",)).models
    assert folded.n_seen + folded.n_held_out == len(plain)
    # A checkpoint from before data.fold_accents existed reads accents as they are, whatever the default now.
    old, _, _ = make_checkpoint(tmp_path, tmp_path / "plain.tsv")
    saved = load_checkpoint(old)
    del saved.meta["config"]["data"]["fold_accents"]
    save_checkpoint(old, saved.params, saved.meta)
    inputs = _prepare(tmp_path / "accented.tsv", old, None, None)
    assert inputs.config.data.fold_accents is False and "àb" in inputs.evaluated.words


def random_words(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return sorted({"".join(rng.choice(list("abc"), size=rng.integers(1, 7))) for _ in range(n)})


@pytest.mark.parametrize("chunk", [1, 3, 10])
def test_scoring_in_chunks_equals_scoring_at_once(chunk):
    words = random_words(80)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(words))  # not alphabetical: chunks reorder the words
    evaluated, train = [words[i] for i in order[:40]], words[20:]
    weights, seen = rng.integers(1, 5, size=40), np.array([w in set(train) for w in evaluated])
    vocab = Vocab.from_words(words)
    candidates = sorted(set(train) | set(evaluated))
    kn, _ = fit_kn(train, vocab)
    contenders = [ngram_contender(kn, candidates, "kn"), Contender("trie", FrequencyTrie(train).rank_many)]
    for contender in contenders:  # the same numbers per word, summed over the same arrays: exactly equal
        assert (score_model(contender, evaluated, weights, seen, k=3, chunk=chunk)
                == score_model(contender, evaluated, weights, seen, k=3, chunk=len(evaluated)))
    rnn = rnn_contender(tiny_model(vocab, hidden_size=5, seed=2), vocab, candidates)
    chunked = score_model(rnn, evaluated, weights, seen, k=3, chunk=chunk)
    at_once = score_model(rnn, evaluated, weights, seen, k=3, chunk=len(evaluated))
    assert chunked["all"].prefix == at_once["all"].prefix  # ranks among the same candidate scores
    for subset in ("all", "seen", "held_out"):  # the RNN reads other batches: float tolerance
        assert chunked[subset].nll_per_char == pytest.approx(at_once[subset].nll_per_char, rel=1e-6)


def test_each_chunk_completes_only_its_own_prefixes():
    words = random_words(60)
    asked = []

    def rank_many(prefixes, k):
        asked.append(list(prefixes))
        return [[] for _ in prefixes]

    score_model(Contender("none", rank_many), words[::-1], np.ones(len(words)), np.ones(len(words), dtype=bool),
                chunk=7)
    chunks = [words[i : i + 7] for i in range(0, len(words), 7)]  # alphabetical, as score_model takes them
    expected = [sorted({w[:i] for w in chunk for i in range(1, len(w))}) for chunk in chunks]
    assert asked == [prefixes for prefixes in expected if prefixes]  # a chunk of one-letter words asks nothing


@pytest.mark.parametrize("budget", [1, 10_000, 10**6, 2**28])
def test_chunk_size_holds_the_budget(budget):
    words = random_words(200)
    per_word = BYTES_PER_CHARACTER * sum(len(w) + 1 for w in words) / len(words)
    chunk = chunk_size(words, budget)
    assert chunk == 1 or chunk * per_word <= budget  # one word, however long, is the least chunk
    assert (chunk + 1) * per_word > budget  # and the most the budget holds


def test_evaluate_scores_in_chunks_of_the_budget(monkeypatch):
    sizes = []
    real = evaluation.completion_ranks
    monkeypatch.setattr(evaluation, "completion_ranks", lambda c, words, k: sizes.append(len(words)) or real(c, words, k))
    monkeypatch.setattr(evaluation, "MEMORY_BUDGET", 5 * BYTES_PER_CHARACTER * 4)  # 5 words of 3 letters
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    evaluate(uniform_model(len(vocab)), vocab, EVALUATED * 3, train_words=list(TRAIN), baselines=("trie",))
    assert max(sizes) <= 5 and sum(sizes) == 2 * 12  # rnn and trie, 12 words each


def test_evaluate_lets_go_of_each_baseline_before_the_next_and_the_completer(tmp_path, monkeypatch):
    import gc
    import weakref

    from rnnac.inference import completer as completer_module

    rng = np.random.default_rng(1)
    words = sorted({"".join(rng.choice(list("abcde"), size=rng.integers(2, 7))) for _ in range(60)})
    path = tmp_path / "words.tsv"
    path.write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(words)))
    checkpoint, _, _ = make_checkpoint(tmp_path, path)
    fitted, built, alive_at = [], [], []  # weak references to the fitted n-grams and the completers; what lived when one came

    def alive() -> tuple[int, int]:
        gc.collect()
        return sum(ref() is not None for ref in fitted), sum(ref() is not None for ref in built)

    def watched_contender(ngram, candidates, name="ngram"):
        alive_at.append(alive())
        fitted.append(weakref.ref(ngram))
        return ngram_contender(ngram, candidates, name)

    class WatchedCompleter(completer_module.Completer):
        def __init__(self, *args, **kwargs):
            alive_at.append(alive())
            built.append(weakref.ref(self))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(evaluation, "ngram_contender", watched_contender)
    monkeypatch.setattr(completer_module, "Completer", WatchedCompleter)
    stages = []
    result = evaluate_checkpoint(path, checkpoint, k=3, progress=lambda stage: stages.append(stage.what))
    assert len(fitted) == 2 and alive_at == [(0, 0)] * 3  # add-k, Kneser-Ney, then the completer, each alone
    assert [s.split(" ")[1] for s in dict.fromkeys(stages) if s.startswith("scoring")] == ["trie", "ngram", "kn", "rnn", "mixture"]
    assert list(result.models) == list(result.labels) == ["rnn", "mixture", "trie", "ngram", "kn"]  # the tables' order


def test_progress_tells_each_stage_and_the_words_a_model_has_scored(monkeypatch):
    monkeypatch.setattr(evaluation, "MIN_PROGRESS_CHUNK", 1)  # so that 12 words come in chunks of 1
    stages = []
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    evaluate(uniform_model(len(vocab)), vocab, EVALUATED * 3, train_words=list(TRAIN), train_counts=list(TRAIN.values()),
             baselines=("trie", "kn"), k=2, mixture_lambda=0.5, progress=stages.append)
    numbers = list(dict.fromkeys(s.number for s in stages))
    assert numbers == list(range(1, 6)) and {s.stages for s in stages} == {5}  # trie, fit kn, kn, rnn, mixture
    for number in numbers:
        told = [s for s in stages if s.number == number]
        assert len({s.what for s in told}) == 1
        if told[0].what.startswith("scoring"):  # each word told, from none to all
            assert [(s.done, s.words) for s in told] == [(done, 12) for done in range(13)]
        else:
            assert told == [evaluation.Stage("fitting the Kneser-Ney n-gram (its order)", number, 5, 0, 0)]


@pytest.mark.parametrize("n_words", [10, 1000, 100_000])
def test_a_model_is_scored_in_hundredths_unless_they_are_small(n_words):
    chunks = []
    score_model(Contender("none", lambda prefixes, k: [[] for _ in prefixes]), ["ab"] * n_words, np.ones(n_words),
                np.ones(n_words, dtype=bool), progress=chunks.append)
    assert chunks[-1] == n_words and len(chunks) == max(1, min(100, n_words // evaluation.MIN_PROGRESS_CHUNK))

