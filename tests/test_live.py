"""A live word list: edits and accepts against a fresh completer of the list they make (oracle),
the journal's crash rules, `rnnac lexicon`, `complete --accept`, and a resume refused over a
changed list."""

import json
import os
import subprocess
import time

import numpy as np
import pytest
from conftest import lexicon_checkpoint, rnnac_command

import rnnac
from rnnac.errors import DataError
from rnnac.inference.completer import Completer
from rnnac.inference.live import accept, accept_counts, with_added_counts
from rnnac.storage.checkpoint import load_checkpoint
from rnnac.storage.journal import JournalError, append_edits, journal_path, read_journal
from rnnac.storage.lexedit import apply_edits, diff, edit_problem
from rnnac.storage.lexicon import Lexicon, LexiconData

VOCAB = rnnac.Vocab("abcé")
LIST = {"ab": 5.0, "abc": 2.0, "b": 7.0, "ba": 1.0, "bca": 3.0, "cab": 4.0, "Cab": 1.0, "acé": 2.0, "cc": 6.0}


def tiny_checkpoint(path, words=LIST, held=("ba",)):
    return lexicon_checkpoint(path, words, VOCAB, hidden_size=6, seed=4, mixture_lambda=0.7, held_out=held)


@pytest.fixture
def ckpt(tmp_path):
    return tiny_checkpoint(tmp_path / "tiny.npz")


def expected_list(edits, start=LIST):
    """The list the edits make, by their definition (rnnac.storage.lexedit), as a dict."""
    words = dict(start)
    for e in edits:
        word, op = e["word"], e["op"]
        if op in ("add", "accept"):
            words[word] = words.get(word, 0.0) + e["count"]
        elif op == "set":
            words[word] = e["count"]
        elif op == "remove":
            words.pop(word, None)
        elif word in words:
            words[word] *= e["factor"]
    return words


def random_edits(rng, n):
    pool = [*LIST, "aaa", "cé", "bb", "Ab", "abcab"]
    edits = []
    for _ in range(n):
        op = rng.choice(["add", "accept", "set", "remove", "boost", "accept", "add"])
        word = str(rng.choice(pool))
        edit = {"op": op, "word": word}
        if op in ("add", "accept", "set"):
            edit["count"] = float(rng.integers(0 if op == "set" else 1, 9))
        elif op == "boost":
            edit["factor"] = float(rng.choice([0.5, 2.0, 3.0]))
        edits.append(edit)
    return edits


def answers(completer, mode_options):
    prefixes = ["", "a", "b", "c", "ab", "ca", "cé", "ac"]
    return [completer.complete(p, 6, **mode_options) for p in prefixes]


@pytest.mark.parametrize("seed", range(12))
def test_any_sequence_of_edits_answers_as_a_fresh_completer_of_the_list_it_makes(ckpt, seed):
    rng = np.random.default_rng(seed)
    live = Completer.load(ckpt)
    live.complete("a")  # the whole trie built: counts added in place of a copy from here
    live.complete_many(["a", "b"] * 20)
    edits = []
    for step in range(4):
        batch = random_edits(rng, int(rng.integers(1, 5)))
        live.edit_lexicon(batch)
        edits += batch
        words = expected_list(edits)
        order = sorted(words)
        fresh = Completer(live.model, live.vocab, live.folding,
                          Lexicon(order, VOCAB, live.folding, [words[w] for w in order]), live.mixture_lambda)
        assert live.lexicon.total == pytest.approx(sum(words.values()), rel=1e-12)  # the mixture's total
        assert dict(zip(live.lexicon_words.words, live.lexicon_words.counts.tolist())) == pytest.approx(words)
        for options in ({}, {"known_only": True}, {"open": False, "new": 0}):
            for got, want in zip(answers(live, options), answers(fresh, options)):
                assert [c.word for c in got.completions] == [c.word for c in want.completions], (step, got.prefix)
                np.testing.assert_allclose([c.prob for c in got.completions], [c.prob for c in want.completions],
                                           rtol=1e-9)


def test_counts_added_to_known_words_update_a_copy_of_the_trie_exactly():
    words = ["ab", "abc", "b", "ba", "bca", "cab"]
    counts = [5.0, 2.0, 7.0, 1.0, 3.0, 4.0]
    lexicon = Lexicon(words, VOCAB, True, counts)
    added = with_added_counts(lexicon, VOCAB, rnnac.storage.folding.Folding(True, False), {"abc": 10.0, "ba": 2.5})
    rebuilt = Lexicon(words, VOCAB, True, [5.0, 12.0, 7.0, 3.5, 3.0, 4.0])
    assert added.total == rebuilt.total == 34.5
    nodes = np.arange(rebuilt.n_nodes)
    for read in ("count", "max_below", "mass"):
        np.testing.assert_array_equal(getattr(added, read)(nodes), getattr(rebuilt, read)(nodes), err_msg=read)
    assert lexicon.count(lexicon.walk([1, 2, 3])) == 2.0  # the original is untouched
    assert with_added_counts(lexicon, VOCAB, True, {"aa": 1.0}) is None  # not a word of it: build anew


def test_apply_edits_names_absent_words_and_new_words_are_not_held_out():
    lexicon = LexiconData.from_unsorted(["a", "b"], [1.0, 2.0], [False, True])
    lexicon.rnn_logp = np.array([-1.0, -2.0], dtype=np.float32)
    edited, absent = apply_edits(lexicon, [{"op": "remove", "word": "zz"}, {"op": "boost", "word": "q", "factor": 2},
                                           {"op": "add", "word": "c", "count": 3}, {"op": "remove", "word": "a"},
                                           {"op": "set", "word": "a", "count": 4}])
    assert absent == ["zz", "q"]
    assert list(edited.words) == ["a", "b", "c"] and edited.counts.tolist() == [4.0, 2.0, 3.0]
    assert edited.held_out.tolist() == [False, True, False]
    assert edited.rnn_logp[:2].tolist() == [-1.0, -2.0] and np.isnan(edited.rnn_logp[2])  # for the model to score
    assert diff(lexicon, edited) == [("~", "a", 1.0, 4.0), ("+", "c", None, 3.0)]


@pytest.mark.parametrize("edit, message", [
    ({"op": "grow", "word": "a"}, "op one of"), ({"op": "add", "word": "", "count": 1}, "non-empty string"),
    ({"op": "add", "word": "a", "count": 0}, "above 0"), ({"op": "set", "word": "a", "count": -1}, "at least 0"),
    ({"op": "boost", "word": "a", "factor": 0}, "above 0"), ({"op": "add", "word": "a", "count": float("nan")}, "finite"),
    ({"op": "add", "word": "a\nb", "count": 1}, "newline"), ({"op": "add", "word": "a", "count": True}, "finite number")])
def test_malformed_edits_are_refused(edit, message):
    assert message in edit_problem(edit)


def test_a_word_the_model_cannot_spell_is_refused_by_name(ckpt):
    live = Completer.load(ckpt)
    with pytest.raises(DataError, match=r"2 words with a character the model cannot spell.*'xa' \('x'\), 'zz' \('z'\)"):
        live.edit_lexicon([{"op": "add", "word": "zz", "count": 1}, {"op": "add", "word": "xa", "count": 1}])
    assert live.lexicon_words.counts.sum() == sum(LIST.values())  # nothing changed


# --- the journal ---------------------------------------------------------------------------------


def test_the_journal_skips_a_torn_last_line_and_the_next_append_cuts_it(tmp_path):
    path = tmp_path / "x.npz.journal"
    append_edits(path, "s1", [{"op": "add", "word": "a", "count": 1}])
    with open(path, "ab") as f:
        f.write(b'{"op":"add","wo')  # a write cut by a crash
    assert read_journal(path, "s1") == ([{"op": "add", "word": "a", "count": 1}], True)
    append_edits(path, "s1", [{"op": "set", "word": "b", "count": 2}])
    assert read_journal(path, "s1") == ([{"op": "add", "word": "a", "count": 1}, {"op": "set", "word": "b", "count": 2}],
                                        False)
    assert read_journal(path, "another list") == ([], False)  # compacted since: nothing to apply twice
    append_edits(path, "s2", [{"op": "remove", "word": "a"}])  # a journal for another list starts over
    assert read_journal(path, "s2") == ([{"op": "remove", "word": "a"}], False) and read_journal(path, "s1")[0] == []


def test_a_damaged_journal_is_an_error_not_a_silent_loss(tmp_path):
    path = tmp_path / "x.npz.journal"
    append_edits(path, "s1", [{"op": "add", "word": "a", "count": 1}] * 2)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"garbage", *lines[2:]]))
    with pytest.raises(JournalError, match="line 2 is damaged"):
        read_journal(path, "s1")
    path.write_text("my notes\nabout words\n")
    with pytest.raises(JournalError, match="not a journal"):
        append_edits(path, "s1", [{"op": "add", "word": "a", "count": 1}])
    assert path.read_text() == "my notes\nabout words\n"  # never overwritten


def test_accepts_are_journalled_replayed_at_load_and_compacted(ckpt):
    live = Completer.load(ckpt)
    before = live.complete("c", 3).completions[0].word
    added = accept(live, [("acé", "a"), ("acé", "a"), ("bca", "")], decay=0.5)
    base = max(1e-4 * sum(LIST.values()), sum(LIST.values()) / len(LIST))
    assert added == pytest.approx([base, 2 * base, 4 * base])  # each weighs 1 / decay times the one before
    assert added == accept_counts(sum(LIST.values()), len(LIST), 0, 3, None, 0.5)
    again = Completer.load(ckpt)  # a new process: the journal replayed
    assert again.journal_edits == 3 and again.accepts == 3
    assert dict(zip(again.lexicon_words.words, again.lexicon_words.counts.tolist())) == pytest.approx(
        expected_list([{"op": "accept", "word": w, "count": c} for w, c in zip(["acé", "acé", "bca"], added)]))
    assert [c.word for c in again.complete("a", 3).completions] == [c.word for c in live.complete("a", 3).completions]
    assert again.complete("a", 1).completions[0].word == "acé"
    assert before == "cc"
    result = run("lexicon", "compact", "-c", ckpt, "--in-place")
    assert result.returncode == 0 and result.stderr == f"Wrote {ckpt}: 3 edits\n"
    assert not journal_path(ckpt).exists() and os.path.exists(ckpt + ".bak")
    compacted = Completer.load(ckpt)
    assert compacted.journal_edits == 0 and compacted.accepts == 3  # the decay's clock goes on
    assert compacted.lexicon_words == again.lexicon_words
    assert load_checkpoint(ckpt).meta["lexicon_edits"]["edits"] == 3


def test_the_bundled_model_learns_nothing():
    with pytest.raises(DataError, match="the bundled model learns nothing"):
        accept(Completer.load(), [("record", "rec")])


# --- the command line ----------------------------------------------------------------------------


def run(*args, stdin=None, env=None):
    return subprocess.run([*rnnac_command(), *args], capture_output=True, text=True, input=stdin, timeout=120,
                          env={**os.environ, **(env or {})})


def test_lexicon_add_remove_set_boost_list_and_diff(ckpt, tmp_path):
    (tmp_path / "new.tsv").write_text("aaa\t9\nab\t1\n")
    (tmp_path / "gone.txt").write_text("cc\nzzz-not-there\n")
    original = open(ckpt, "rb").read()
    added = run("lexicon", "add", str(tmp_path / "new.tsv"), "-c", ckpt, "-o", str(tmp_path / "a.npz"))
    assert added.returncode == 0 and added.stderr == f"Wrote {tmp_path / 'a.npz'}: 2 edits\n"
    assert open(ckpt, "rb").read() == original  # -o leaves the source alone
    removed = run("lexicon", "remove", str(tmp_path / "gone.txt"), "-c", str(tmp_path / "a.npz"), "--in-place")
    assert removed.returncode == 0
    assert removed.stderr.splitlines() == ["Warning: 'zzz-not-there' is not in the list; nothing to remove",
                                           f"Wrote {tmp_path / 'a.npz'}: 2 edits"]
    assert run("lexicon", "set", "ba", "8", "-c", str(tmp_path / "a.npz"), "--in-place").returncode == 0
    assert run("lexicon", "boost", "b", "0.5", "-c", str(tmp_path / "a.npz"), "--in-place").returncode == 0
    listed = run("lexicon", "list", "-c", str(tmp_path / "a.npz"))
    words = {**LIST, "aaa": 9.0, "ab": 6.0, "ba": 8.0, "b": 3.5}
    del words["cc"]
    assert listed.returncode == 0 and listed.stdout == "".join(f"{w}\t{words[w]:g}\n" for w in sorted(words))
    changes = run("lexicon", "diff", ckpt, str(tmp_path / "a.npz"))
    assert changes.stdout.splitlines() == ["+\taaa\t9", "~\tab\t5\t6", "~\tb\t7\t3.5", "~\tba\t1\t8", "-\tcc\t6"]
    bak = str(tmp_path / "a.npz.bak")
    assert run("lexicon", "diff", bak, str(tmp_path / "a.npz")).stdout == "~\tb\t7\t3.5\n"  # the last change's backup
    fresh_list = tmp_path / "list.tsv"
    fresh_list.write_text(listed.stdout)
    trained = Completer.load(str(tmp_path / "a.npz"))
    fresh = Completer(trained.model, trained.vocab, trained.folding, Lexicon.from_file(fresh_list, VOCAB, trained.folding),
                      trained.mixture_lambda)
    for prefix in ("a", "b", "c", "ab"):
        assert trained.complete(prefix, 5).completions == fresh.complete(prefix, 5).completions


@pytest.mark.parametrize("args, code, message", [
    (["lexicon", "set", "ab", "3"], 2, "give -o FILE or --in-place"),
    (["lexicon", "set", "ab", "lots", "--in-place"], 2, "'lots' is not a non-negative number"),
    (["lexicon", "boost", "ab", "0", "--in-place"], 2, "'0' is not a positive number"),
    (["lexicon", "set", "xyz", "3", "--in-place"], 1, "Error: 1 word with a character the model cannot spell"),
    (["complete", "--accept", "xy"], 1, "Error: 'xy' holds a character the model cannot spell ('x')"),
    (["complete", "--accept", "ab", "a", "b"], 2, "--accept takes one PREFIX at most")])
def test_lexicon_errors_are_one_line(ckpt, args, code, message):
    result = run(*args, "-c", ckpt)
    assert result.returncode == code and message in result.stderr and "Traceback" not in result.stderr
    assert not journal_path(ckpt).exists() and not os.path.exists(ckpt + ".bak")


def test_the_bundled_model_is_not_changed_in_place(tmp_path):
    result = run("lexicon", "set", "record", "5", "-c", "bundled", "--in-place")
    assert result.returncode == 1 and result.stderr == "Error: the bundled model is not changed in place; write a copy with -o FILE\n"
    copy = run("lexicon", "compact", "-c", "bundled", "-o", str(tmp_path / "mine.npz"))
    assert copy.returncode == 0 and Completer.load(str(tmp_path / "mine.npz")).lexicon_words == Completer.load().lexicon_words


def test_complete_accept_learns_and_a_resume_over_the_changed_list_is_refused(tmp_path):
    from conftest import write_run_config

    write_run_config(tmp_path, "".join(f"{w}\n" for w in ("cab", "abc", "bca", "aab", "cca", "bab") * 4))
    assert run("train", str(tmp_path / "run.yaml"), "-q", "--set", "train.max_steps=10").returncode == 0
    out = str(tmp_path / "out")
    assert os.path.exists(out + "/best.npz")
    top = run("complete", "-c", out, "-k", "1", "a").stdout
    picks = [run("complete", "-c", out, "--accept", "aab", "a") for _ in range(3)]
    assert all(p.returncode == 0 and p.stdout == p.stderr == "" for p in picks)
    assert top != "aab\n" and run("complete", "-c", out, "-k", "1", "a").stdout == "aab\n"
    resumed = run("train", "--resume", out, "--set", "train.max_steps=20")
    assert resumed.returncode == 1 and "the word list of" in resumed.stderr and "3 in its journal" in resumed.stderr


def accept_until_gone(port: int, answered: list, started) -> None:
    """POST up to 1,000 accepts one after another, noting each answered, until the server is gone."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(1000):
            body = json.dumps({"word": "abc" if i % 2 else "cab", "prefix": "a"})
            connection.request("POST", "/accept", body, {"content-type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            answered.append(i)
            started.set()
    except (OSError, http.client.HTTPException):
        pass  # the server is gone
    finally:
        started.set()


def test_accepts_survive_sigkill_of_the_server_at_any_point(ckpt):
    """`rnnac serve --learn` taking accepts as fast as a client sends them (1,000 at most),
    SIGKILLed at random points, 20 times: the checkpoint always loads, the journal replays,
    every accept answered is in it and at most one more (the one being written)."""
    pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnac[serve]'")
    import threading

    from test_serve import Server

    rng = np.random.default_rng(0)
    previous = 0
    for _ in range(20):
        server = Server("-c", ckpt, "--learn")
        port = int(server.url.rsplit(":", 1)[1])
        answered, started = [], threading.Event()

        thread = threading.Thread(target=accept_until_gone, args=(port, answered, started))
        thread.start()
        started.wait(10)
        time.sleep(float(rng.uniform(0, 0.2)))
        server.process.kill()
        server.process.wait()
        thread.join(10)
        live = Completer.load(ckpt)  # loads, and replays the journal
        assert len(answered) <= live.accepts - previous <= len(answered) + 1
        previous = live.accepts
    assert previous > 20 and load_checkpoint(ckpt).lexicon == LexiconData.from_unsorted(
        list(LIST), list(LIST.values()), [w == "ba" for w in LIST])  # the checkpoint itself never changed


# --- serve -----------------------------------------------------------------------------------------


@pytest.fixture
def served(ckpt):
    pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnac[serve]'")
    from starlette.testclient import TestClient

    from rnnac.interfaces.serve import Learning, Served, create_app

    models = {"tiny": Served.load("tiny", ckpt)}
    models["tiny"].completer.lexicons.whole()
    with TestClient(create_app(models, Learning(decay=1.0), "t0ken")) as client:
        yield client, models["tiny"]


def test_served_accepts_raise_a_word_and_are_journalled(served, ckpt):
    client, model = served
    first = client.get("/complete", params={"q": "b", "k": 1}).json()["completions"][0]["word"]
    assert first == "b"
    for n in range(1, 4):
        answer = client.post("/accept", json={"word": "bca", "prefix": "b"})
        assert answer.status_code == 200 and answer.json()["journal_edits"] == n
    assert client.get("/complete", params={"q": "b", "k": 1}).json()["completions"][0]["word"] == "bca"
    assert [e["word"] for e in read_journal(journal_path(ckpt), model.completer.journal_sha256)[0]] == ["bca"] * 3
    info = client.get("/info").json()
    assert info["learning"] and info["models"]["tiny"]["journal_edits"] == 3 and info["models"]["tiny"]["last_change"]
    bad = client.post("/accept", json={"word": "zz"})
    assert bad.status_code == 400 and "cannot spell" in bad.json()["error"]
    assert len(read_journal(journal_path(ckpt), model.completer.journal_sha256)[0]) == 3  # nothing written


def test_served_lexicon_changes_need_the_token_and_apply_to_the_next_request(served, ckpt):
    client, model = served
    edits = {"edits": [{"op": "remove", "word": "b"}, {"op": "add", "word": "bb", "count": 50}]}
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "t0ken"}):
        refused = client.post("/lexicon", json=edits, headers=headers)
        assert refused.status_code == 403 and "admin token" in refused.json()["error"]
    assert not journal_path(ckpt).exists()
    done = client.post("/lexicon", json=edits, headers={"authorization": "Bearer t0ken"})
    assert done.status_code == 200 and done.json()["applied"] == 2 and done.json()["lexicon_words"] == len(LIST)
    assert [c["word"] for c in client.get("/complete", params={"q": "b", "k": 2, "new": 0}).json()["completions"]] == ["bb", "bca"]
    refused = client.post("/lexicon", json={"edits": [{"op": "set", "word": "x", "count": 1}]},
                          headers={"authorization": "Bearer t0ken"})
    assert refused.status_code == 400 and "cannot spell" in refused.json()["error"]
    assert client.post("/lexicon", json={"edits": [{"op": "set", "word": "a"}]},
                       headers={"authorization": "Bearer t0ken"}).status_code == 400
    for op in ({"op": "accept", "word": "a", "count": 1}, {"op": "scale", "factor": 0.5}):
        refused = client.post("/lexicon", json={"edits": [op]}, headers={"authorization": "Bearer t0ken"})
        assert refused.status_code == 400 and "is not for POST /lexicon" in refused.json()["error"]
    assert len(read_journal(journal_path(ckpt), model.completer.journal_sha256)[0]) == 2
    restarted = Completer.load(ckpt)  # what a restart sees
    assert restarted.complete("b", 2, new=0).completions == model.completer.complete("b", 2, new=0).completions


def test_a_server_without_learning_or_token_refuses_changes(ckpt):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from rnnac.interfaces.serve import Served, create_app

    with TestClient(create_app({"tiny": Served.load("tiny", ckpt)})) as client:
        assert client.post("/accept", json={"word": "ab"}).status_code == 403
        assert client.post("/lexicon", json={"edits": [{"op": "remove", "word": "ab"}]},
                           headers={"authorization": "Bearer "}).status_code == 403
        assert client.get("/info").json()["learning"] is False
    assert not journal_path(ckpt).exists()


def test_a_pinned_completer_keeps_its_list_through_edits(ckpt):
    live = Completer.load(ckpt)
    pinned = live.pinned()
    before = pinned.complete("c", 3).completions
    live.edit_lexicon([{"op": "remove", "word": "cc"}, {"op": "add", "word": "cab", "count": 100}])
    assert pinned.complete("c", 3).completions == before
    assert live.complete("c", 1).completions[0].word == "cab"


def test_serve_options_give_each_model_its_lexicon_and_exclusions(ckpt, tmp_path):
    pytest.importorskip("starlette")
    import click
    from starlette.testclient import TestClient

    from rnnac.interfaces.cli import _serve_lists
    from rnnac.interfaces.serve import Served, create_app

    (tmp_path / "only.txt").write_text("ca\ncab\n")
    (tmp_path / "no.txt").write_text("cc\n")
    models = {"one": Served.load("one", ckpt), "two": Served.load("two", ckpt)}
    _serve_lists(models, [f"two={tmp_path / 'only.txt'}"], [], [str(tmp_path / "no.txt")], False)
    with TestClient(create_app(models)) as client:
        one = [c["word"] for c in client.get("/complete", params={"q": "c", "k": 5, "new": 0}).json()["completions"]]
        two = [c["word"] for c in client.get("/complete", params={"q": "c", "k": 5, "model": "two"}).json()["completions"]]
    assert "cc" not in one and "cab" in one  # excluded from the first model (no NAME: the first)
    assert sorted(two) == ["ca", "cab"]  # the second completes to the words of its list only
    with pytest.raises(click.UsageError, match="--learn and --admin-token change"):
        _serve_lists(models, [f"two={tmp_path / 'only.txt'}"], [], [], True)
    with pytest.raises(click.BadParameter, match="no model named 'three'"):
        _serve_lists(models, [f"three={tmp_path / 'only.txt'}"], [], [], False)


def test_every_chunk_of_a_big_batch_searches_the_list_of_the_first(monkeypatch):
    pytest.importorskip("starlette")
    import asyncio

    from test_serve import FakeCompleter

    from rnnac.interfaces import serve

    class Changing(FakeCompleter):
        pins = []

        def pinned(self):
            pinned = FakeCompleter()
            self.pins.append(pinned)
            return pinned

    monkeypatch.setattr(serve, "CHUNK", 2)
    live = Changing()
    batcher = serve.Batcher({"m": serve.Served("m", "m.npz", live, {})})
    answers = asyncio.run(batcher.complete(serve.Options("m"), ["a", "b", "c", "d", "e"]))
    assert answers == [f"answer to {p}" for p in "abcde"]
    assert live.calls == [] and len(live.pins) == 1 and [c[0] for c in live.pins[0].calls] == [["a", "b"], ["c", "d"], ["e"]]


def test_the_page_learns_what_is_accepted(ckpt):
    """In Chromium: a word accepted three times from the page rises to the top of its prefix."""
    pytest.importorskip("starlette")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from test_serve import Server, browser_or_skip

    browser = browser_or_skip()
    server = Server("-c", ckpt, "--learn")
    try:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: "learning what you accept" in b.find_element(By.ID, "model").text)
        box = browser.find_element(By.ID, "box")

        def shown():  # read in one go: the list is drawn anew at each answer
            return browser.execute_script("return [...document.querySelectorAll('#list li .w')].map(w => w.firstChild.textContent)")

        for accepted in range(1, 4):
            box.clear()
            box.send_keys("b")
            wait.until(lambda b: "bca" in shown())
            if accepted == 1:
                assert shown()[0] == "b"  # before any accept, the list's most used word
            for _ in range(shown().index("bca")):
                box.send_keys(Keys.ARROW_DOWN)
            box.send_keys(Keys.ENTER)
            wait.until(lambda b: b.find_element(By.ID, "box").get_attribute("value") == "bca")
            wait.until(lambda b, n=accepted: server.get("/info")[1]["models"]["tiny"]["journal_edits"] == n)
        box.clear()
        box.send_keys("b")
        wait.until(lambda b: shown() and shown()[0] == "bca")
        assert [e["prefix"] for e in read_journal(journal_path(ckpt), Completer.load(ckpt).journal_sha256)[0]] == ["b"] * 3
    finally:
        browser.quit()
        server.stop()
        if server.process.poll() is None:
            server.process.kill()


def test_a_process_does_not_learn_into_a_checkpoint_replaced_since_it_loaded_it(ckpt):
    live = Completer.load(ckpt)
    accept(live, [("ab", "a")])
    assert run("lexicon", "compact", "-c", ckpt, "--in-place").returncode == 0  # the accept is in the checkpoint now
    with pytest.raises(DataError, match="changed since it was loaded; load it again"):
        accept(live, [("ab", "a")])  # it would go to a journal of the old list, and be lost
    assert not journal_path(ckpt).exists()
    accept(Completer.load(ckpt), [("ab", "a")])
    assert Completer.load(ckpt).accepts == 2



def test_many_edits_look_words_up_in_the_decoded_list_with_the_same_result():
    from rnnac.storage.lexedit import MANY_WORDS
    from rnnac.storage.lexicon import WordText

    words = sorted({format(i, "b").replace("0", "a").replace("1", "b") for i in range(1, 600)})
    counts = np.arange(1.0, len(words) + 1)
    rng = np.random.default_rng(1)
    edits = [{"op": "accept", "word": str(w), "count": 1.5} for w in rng.choice(words + ["cab", "ccc"], 3 * MANY_WORDS)]
    edits += [{"op": "remove", "word": words[3]}, {"op": "set", "word": "zz", "count": 2.0}]
    as_text = LexiconData(WordText.of(words), counts, np.zeros(len(words), dtype=bool))
    as_list = LexiconData(list(words), counts, np.zeros(len(words), dtype=bool))
    for few in (edits[:5], edits):
        (a, absent_a), (b, absent_b) = apply_edits(as_text, few), apply_edits(as_list, few)
        assert a == b and absent_a == absent_b
        assert dict(zip(b.words, b.counts.tolist())) == pytest.approx(expected_list(few, dict(zip(words, counts.tolist()))))


@pytest.mark.parametrize("args, message", [
    (["complete", "--increment", "5", "ab"], "--increment and --decay go with --accept"),
    (["complete", "--decay", "0.5", "ab"], "--increment and --decay go with --accept"),
    (["complete", "--accept", "ab", "--increment", "0"], "0.0 is not in the range x>0"),
    (["complete", "--accept", "ab", "--increment", "inf"], "inf is not a finite number"),
    (["complete", "--accept", "ab", "--decay", "1.5"], "1.5 is not in the range 0<x<=1"),
    (["serve", "--increment", "5"], "--increment and --decay go with --learn")])
def test_learning_options_are_checked_as_usage(ckpt, args, message):
    result = run(*args, "-c", ckpt)
    assert result.returncode == 2 and message in result.stderr
    assert not journal_path(ckpt).exists()


def test_the_accept_clock_is_rescaled_before_increments_overflow(ckpt):
    from rnnac.inference.live import MAX_GROWTH

    live = Completer.load(ckpt)
    words = ["ab", "bca", "cc", "acé"]
    for i in range(300):  # at decay 0.5, 2 ** 300 would overflow a float's exponent range many times over
        accept(live, [(words[i % 4], "")], decay=0.5)
        assert 0.5 ** -live.accepts <= MAX_GROWTH
    logged, _ = read_journal(journal_path(ckpt), live.journal_sha256)
    assert sum(e["op"] == "scale" for e in logged) >= 300 * np.log(2) // np.log(MAX_GROWTH)
    counts = dict(zip(live.lexicon_words.words, live.lexicon_words.counts.tolist()))
    assert all(np.isfinite(c) and c >= 0 for c in counts.values())
    assert counts["abc"] / counts["ba"] == pytest.approx(LIST["abc"] / LIST["ba"])  # never accepted: their shares kept
    assert counts["acé"] > counts["cc"] > counts["bca"] > counts["ab"]  # the latest picks weigh most
    again = Completer.load(ckpt)  # replayed: the same list and the same clock
    assert again.lexicon_words == live.lexicon_words and again.accepts == live.accepts
    assert run("lexicon", "compact", "-c", ckpt, "--in-place").returncode == 0
    compacted = Completer.load(ckpt)
    assert compacted.accepts == live.accepts and compacted.lexicon_words == live.lexicon_words
