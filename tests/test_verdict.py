import json

import numpy as np
import pytest
from conftest import tiny_model

from rnnac.engine.vocab import Vocab
from rnnac.evaluation.baselines import FrequencyTrie
from rnnac.evaluation.evaluate import evaluate, format_table

# The hand-worked case of test_evaluate.py. Trie (k = 2): "c" and "ca" -> [car, cat]; "car" ->
# [car, cart]; "d", "do" -> [dog]; it saves 1 - 12/17 keystrokes.
TRAIN = {"car": 5, "cat": 3, "cart": 2, "dog": 4}
EVALUATED = ["cat", "cart", "dog", "cow"]  # cow is held out


def shown(cell: str) -> float:
    return float(cell.rstrip("%"))


def verdict_from_tables(text: str, k: int) -> tuple[set[str], list[str]]:
    """(the labels of the baselines saving the most, the verdict lines naming each of them) as read
    from the tables of `text`, all words, the mixture as rnnac: what the first lines must say."""
    savings, topk = {}, {}
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if cells[0] != "all":
            continue
        if cells[1] == f"top-{k}":
            topk[cells[2]] = cells[5]  # 3 typed
        elif cells[1] not in ("top-1", "MRR"):
            savings[cells[1]] = cells[6]
    mixture = next(label for label in savings if label.startswith("mixture"))
    baselines = [label for label in savings if label.split(" ")[0] in ("trie", "ngram", "kn")]
    most = max(shown(savings[b]) for b in baselines)
    best = {b for b in baselines if shown(savings[b]) == most}

    def line(baseline: str, figure: str, ours: str, theirs: str) -> str:
        outcome = ("a tie" if shown(ours) == shown(theirs) else "rnnac wins" if shown(ours) > shown(theirs)
                   else f"{baseline.split(' ')[0]} wins")
        return f"rnnac {ours} vs {baseline} {theirs} {figure}: {outcome}"

    def lines(baseline: str) -> list[str]:
        name = baseline.split(" ")[0]
        which = "the only baseline" if len(baselines) == 1 else f"{name} saves the most of {len(baselines)} baselines"
        return [f"{line(baseline, 'keystroke savings', savings[mixture], savings[baseline])} (all words; {which}).",
                f"{line(baseline, f'top-{k} with 3 typed', topk[mixture], topk[baseline])}."]

    return best, [line for b in sorted(best) for line in lines(b)]


def oracle(prefixes, k):
    """Completes to the evaluated words, held-out cow included: shortest first, then alphabetical."""
    return [sorted((w for w in EVALUATED if w.startswith(p)), key=lambda w: (len(w), w))[:k] for p in prefixes]


@pytest.mark.parametrize(("complete_fn", "savings_winner"), [
    (oracle, "mixture"),  # cat and cow after "c", cart after "ca", dog after "d": 9 keys of 17, the trie 12
    (FrequencyTrie(list(TRAIN), list(TRAIN.values())).rank_many, "tie"),  # the trie's own answers
    (lambda prefixes, k: [[] for _ in prefixes], "trie"),  # nothing: no keystroke saved
])
def test_the_verdict_reads_as_the_tables_do(complete_fn, savings_winner):
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(tiny_model(vocab), vocab, EVALUATED, train_words=list(TRAIN), train_counts=list(TRAIN.values()),
                      baselines=("trie",), k=2, mixture_lambda=0.5, mixture_complete_fn=complete_fn)
    text = format_table(result)
    best, expected = verdict_from_tables(text, k=2)
    assert best == {"trie"} and text.splitlines()[:3] == [*expected, ""]
    assert result.verdict.keystroke_savings.winner == savings_winner
    assert json.loads(result.to_json())["verdict"]["keystroke_savings"]["winner"] == savings_winner


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_verdict_names_the_baseline_saving_the_most(seed):
    rng = np.random.default_rng(seed)
    words = sorted({"".join(rng.choice(list("abcd"), size=rng.integers(2, 7))) for _ in range(120)})
    train = [w for w in words if rng.random() < 0.7]
    counts = rng.integers(1, 50, size=len(train))
    vocab = Vocab.from_words(words)
    result = evaluate(tiny_model(vocab, hidden_size=6, seed=seed), vocab, words, train_words=train,
                      train_counts=counts, k=3, mixture_lambda=0.8)
    text = format_table(result)
    best, expected = verdict_from_tables(text, k=3)
    label = result.labels[result.verdict.baseline]
    assert label in best
    assert text.splitlines()[:2] == [line for line in expected if f" vs {label} " in line]
    tree = json.loads(result.to_json())
    assert next(iter(tree)) == "verdict" and tree["verdict"]["baseline"] == result.verdict.baseline
    assert tree["verdict"]["keystroke_savings"]["model"] == tree["models"]["mixture"]["all"]["keystroke_savings"]


def test_without_the_mixture_the_model_alone_is_judged():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(tiny_model(vocab), vocab, EVALUATED, train_words=list(TRAIN), train_counts=list(TRAIN.values()),
                      baselines=("trie", "kn"), k=2)
    first = format_table(result).splitlines()[0]
    assert result.verdict.model == "rnn" and first.startswith("rnn ") and first.endswith("saves the most of 2 baselines).")


def test_no_baselines_no_verdict():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(tiny_model(vocab), vocab, EVALUATED, train_words=list(TRAIN), baselines=(), k=2, mixture_lambda=0.5)
    assert result.verdict is None and json.loads(result.to_json())["verdict"] is None
    assert format_table(result).startswith("4 words (3 seen in training, 1 held out)")


def test_top_k_without_words_long_enough():
    words = ["ab", "ba", "abc", "bca"]  # none longer than 3
    vocab = Vocab.from_words(words)
    result = evaluate(tiny_model(vocab), vocab, words, train_words=words[:2], baselines=("trie",), k=2)
    assert result.verdict.typed == 3 and result.verdict.topk.winner is None
    assert format_table(result).splitlines()[1] == "rnn vs trie top-2 with 3 typed: no word is longer than 3 characters."


def test_top_k_is_read_at_the_prefix_length_nearest_three():
    vocab = Vocab.from_words([*TRAIN, *EVALUATED])
    result = evaluate(tiny_model(vocab), vocab, EVALUATED, train_words=list(TRAIN), baselines=("trie",), k=2,
                      prefix_lengths=(1, 2, 4))  # the shorter of two as near
    assert result.verdict.typed == 2
    assert result.verdict.topk.model == result.models["rnn"]["all"].prefix[2].topk


def scores(savings: float, topk: float):
    from rnnac.evaluation.evaluate import PrefixScores, Scores

    return {"all": Scores(10, 10.0, 40, None, None, None, {3: PrefixScores(10, None, topk, None)}, savings)}


@pytest.mark.parametrize(("ours", "theirs", "winner"), [
    (0.41004, 0.40996, "tie"),  # both shown as 41.0%
    (0.4112, 0.4104, "mixture"),  # 41.1% against 41.0%
    (0.4096, 0.4112, "trie"),
])
def test_a_tie_is_two_figures_shown_alike(ours, theirs, winner):
    from rnnac.evaluation.verdict import verdict

    models = {"mixture": scores(ours, 0.5), "trie": scores(theirs, 0.25), "ngram": scores(theirs - 0.1, 0.9)}
    judged = verdict(models, ("trie", "ngram", "kn"), (3,))
    assert (judged.baseline, judged.n_baselines, judged.keystroke_savings.winner) == ("trie", 2, winner)
    assert judged.topk.winner == "mixture"  # top-k against the baseline that saves the most, not the best at top-k
