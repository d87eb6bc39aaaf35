"""Checkpoint round trips, atomic writes (down to SIGKILL) and every way a load can fail."""

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import rnnac
from rnnac.engine.optim import make_optimizer
from rnnac.engine.vocab import Vocab
from rnnac.errors import CheckpointError
from rnnac.storage.checkpoint import (
    BUNDLED_MODEL,
    FORMAT_VERSION,
    Checkpoint,
    describe,
    export_for_inference,
    load_checkpoint,
    save_checkpoint,
    vocab_from_meta,
)
from rnnac.storage.atomic import replace_atomically
from rnnac.storage.lexicon import LexiconData

CHARS = ["a", "b", "c"]  # K = 4 with the boundary


def make_checkpoint(dtype=np.float32, hidden_size=3, seed=0, step=7):
    """Random params, a full meta and Adam-like optimizer state for a tiny model."""
    rng = np.random.default_rng(seed)
    H, K = hidden_size, len(CHARS) + 1
    shapes = {"U": (H, K), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
    params = {name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}
    meta = {
        "chars": CHARS,
        "activation": "tanh",
        "hidden_size": H,
        "dtype": np.dtype(dtype).name,
        "config": {"model": {"hidden_size": H}, "train": {"lr": 0.01, "words": ["x", "y"]}},
        "step": step,
        "epoch": 2,
        "best_val_loss": 1.2345678901234567,
        # a real generator state: PCG64 holds 128-bit ints, which JSON must carry exactly
        "rng_state": rng.bit_generator.state,
    }
    optimizer_state = {  # flat, like Optimizer.state_dict()
        **{f"m.{name}": rng.standard_normal(p.shape).astype(dtype) for name, p in params.items()},
        **{f"v.{name}": rng.random(p.shape).astype(dtype) for name, p in params.items()},
        "t": np.array(step, dtype=np.int64),
    }
    return params, meta, optimizer_state


def assert_same_arrays(got: dict, want: dict):
    """Dicts of arrays equal bit for bit, dtype and shape included."""
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert got[key].tobytes() == value.tobytes(), key


def assert_load_fails(path, *fragments):
    """load_checkpoint raises CheckpointError with one line naming `path` and `fragments`."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def rewrite(src, dst, meta_change=None, **arrays):
    """Copy the checkpoint `src` to `dst` as a raw npz, with meta and arrays changed."""
    with np.load(src) as npz:
        entries = dict(npz)
    meta = json.loads(entries["meta"].item())
    meta.update(meta_change or {})
    entries.update(meta=np.array(json.dumps(meta)), **arrays)
    entries = {name: value for name, value in entries.items() if value is not None}
    np.savez(dst, **entries)
    return dst


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, *make_checkpoint())
    return path


def make_lexicon():
    """Unsorted, mixed case, non-ASCII, fractional and huge counts, one word held out."""
    return LexiconData.from_unsorted(["Zürich", "apple", "Apple", "ß", "a b", "x"],
                                     [3.0, 0.1, 1e300, 0.0, 2.5, 7.0],
                                     [False, True, False, False, False, True])


@pytest.fixture
def with_lexicon(tmp_path):
    path = tmp_path / "lex.npz"
    save_checkpoint(path, *make_checkpoint(), lexicon=make_lexicon())
    return path


def write_format_1(path, dtype=np.float32, optimizer=True):
    """A format-1 checkpoint, as rnnac wrote them before lexicons: params, opt.*, meta, nothing else."""
    params, meta, optimizer_state = make_checkpoint(dtype)
    opt = {f"opt.{name}": value for name, value in optimizer_state.items()} if optimizer else {}
    with open(path, "wb") as f:
        np.savez(f, **params, **opt, meta=np.array(json.dumps({**meta, "format_version": 1})))
    return params, meta, optimizer_state


@pytest.fixture
def format_1(tmp_path):
    path = tmp_path / "v1.npz"
    write_format_1(path)
    return path


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(tmp_path, dtype):
    params, meta, optimizer_state = make_checkpoint(dtype)
    path = tmp_path / "runs" / "deep" / "model.npz"  # parent folders are created
    save_checkpoint(path, params, meta, optimizer_state)
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint)
    assert_same_arrays(ckpt.params, params)
    assert_same_arrays(ckpt.optimizer_state, optimizer_state)
    assert ckpt.meta == {**meta, "format_version": FORMAT_VERSION}
    assert "format_version" not in meta  # the caller's dict is left alone
    assert all(p.flags.writeable for p in ckpt.params.values())
    assert sorted(os.listdir(path.parent)) == ["model.npz"]  # no ".npz.npz", no temp file


def test_file_layout_is_plain_npz_with_json_meta(good):
    with np.load(good, allow_pickle=False) as npz:
        assert set(npz.files) == {"U", "W", "b", "V", "c", "meta", "opt.t",
                                  *(f"opt.{s}.{n}" for s in "mv" for n in "UWbVc")}
        meta = npz["meta"]
        assert meta.shape == () and meta.dtype.kind == "U"
        assert json.loads(meta.item())["format_version"] == FORMAT_VERSION
        assert npz["opt.t"].shape == ()


def test_without_optimizer_state_and_str_path(tmp_path):
    params, meta, _ = make_checkpoint(np.float64)
    save_checkpoint(str(tmp_path / "m.npz"), params, meta)
    ckpt = load_checkpoint(str(tmp_path / "m.npz"))
    assert ckpt.optimizer_state == {}
    assert_same_arrays(ckpt.params, params)


def test_save_overwrites_and_infinite_best_loss_survives(tmp_path):
    path = tmp_path / "m.npz"
    params, meta, opt = make_checkpoint(step=1)
    save_checkpoint(path, params, meta, opt)
    params, meta, opt = make_checkpoint(seed=1, step=2)
    save_checkpoint(path, params, {**meta, "best_val_loss": float("inf")}, opt)
    ckpt = load_checkpoint(path)
    assert ckpt.meta["step"] == 2 and ckpt.meta["best_val_loss"] == float("inf")
    assert_same_arrays(ckpt.params, params)


def test_adam_state_survives_a_round_trip(tmp_path):
    params, meta, _ = make_checkpoint(np.float64)
    adam = make_optimizer("adam", params)
    grads = {name: np.ones_like(p) for name, p in params.items()}
    adam.step(params, grads, lr=0.1)
    adam.step(params, grads, lr=0.1)
    save_checkpoint(tmp_path / "m.npz", params, meta, adam.state_dict())
    ckpt = load_checkpoint(tmp_path / "m.npz")
    resumed = make_optimizer("adam", ckpt.params)
    resumed.load_state_dict(ckpt.optimizer_state)
    assert_same_arrays(resumed.state_dict(), adam.state_dict())
    adam.step(params, grads, lr=0.1)
    resumed.step(ckpt.params, grads, lr=0.1)  # the loaded params are writable
    assert_same_arrays(ckpt.params, params)


def test_vocab_from_meta(good):
    vocab = vocab_from_meta(load_checkpoint(good).meta)
    assert vocab == Vocab(CHARS) and len(vocab) == 4 and vocab.encode("cab") == [3, 1, 2]


# --- the lexicon -------------------------------------------------------------------------


def test_lexicon_round_trip_is_exact(tmp_path):
    params, meta, optimizer_state = make_checkpoint()
    lexicon = make_lexicon()
    save_checkpoint(tmp_path / "m.npz", params, meta, optimizer_state, lexicon=lexicon)
    ckpt = load_checkpoint(tmp_path / "m.npz")
    assert ckpt.lexicon == lexicon
    assert ckpt.lexicon.words == ["Apple", "Zürich", "a b", "apple", "x", "ß"]  # str order, case kept
    assert ckpt.lexicon.counts.tolist() == [1e300, 3.0, 2.5, 0.1, 7.0, 0.0]  # bit for bit
    assert ckpt.lexicon.counts.dtype == np.float64 and ckpt.lexicon.held_out.dtype == bool
    assert ckpt.lexicon.held_out.tolist() == [False, False, False, True, True, False]
    assert ckpt.meta["lexicon"]["n_words"] == 6 and ckpt.meta["lexicon"]["total_count"] == sum(lexicon.counts)
    assert_same_arrays(ckpt.params, params)
    assert_same_arrays(ckpt.optimizer_state, optimizer_state)
    assert "lexicon" not in meta  # the caller's dict is left alone


@pytest.mark.parametrize("words, counts, held_out", [([], [], []), ([""], [1.0], [True]), (["only"], [0.0], [False])])
def test_tiny_lexicons_round_trip(tmp_path, words, counts, held_out):
    lexicon = LexiconData.from_unsorted(words, counts, held_out)
    save_checkpoint(tmp_path / "m.npz", *make_checkpoint(), lexicon=lexicon)
    assert load_checkpoint(tmp_path / "m.npz").lexicon == lexicon


def test_lexicon_storage_format(with_lexicon):
    """The entries documented in rnnac/storage/checkpoint.py: the words as they are, zlib'd counts, int32 held-out
    indices, a sha256."""
    with np.load(with_lexicon, allow_pickle=False) as npz:
        words, counts, held_out = npz["lexicon.words"], npz["lexicon.counts"], npz["lexicon.held_out"]
        summary = json.loads(npz["meta"].item())["lexicon"]
    assert words.dtype == counts.dtype == np.uint8 and held_out.dtype == np.dtype("<i4")
    text, raw_counts = words.tobytes(), zlib.decompress(counts.tobytes())
    lexicon = make_lexicon()
    assert text == "\n".join(lexicon.words).encode("utf-8")
    assert np.frombuffer(raw_counts, "<f8").tolist() == lexicon.counts.tolist()
    assert held_out.tolist() == [3, 4]
    assert summary == {"n_words": 6, "sha256": hashlib.sha256(text + raw_counts + held_out.tobytes()).hexdigest(),
                       "total_count": float(lexicon.counts.sum()), "text_bytes": len(text),
                       "nfc": True, "lower": False, "unaccented": False, "chars": " AZabcehilprxßü", "longest": 6}


def test_a_checkpoint_of_rnnac_0_2_with_zlibbed_words_still_loads(with_lexicon, tmp_path):
    old = rewrite_lexicon(with_lexicon, tmp_path / "old.npz", zlib_words=True)
    with np.load(old) as npz:
        assert json.loads(npz["meta"].item())["format_version"] == 2
    assert load_checkpoint(old).lexicon == load_checkpoint(with_lexicon).lexicon == make_lexicon()


def test_from_unsorted_sorts_everything_together():
    lexicon = LexiconData.from_unsorted(("b", "c", "a"), np.array([2, 3, 1]), [0, 1, 0])
    assert lexicon == LexiconData(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), np.array([False, False, True]))
    assert lexicon != LexiconData(["a", "b", "c"], np.array([1.0, 2.0, 3.5]), np.array([False, False, True]))


@pytest.mark.parametrize("words, counts, held_out, fragment", [
    (["a", "b", "a"], [1, 1, 1], [0, 0, 0], "'a' before 'a'"),
    (["a", "b"], [1], [0, 0], "1 counts"),
    (["a", "b"], [1, 1], [0], "1 held_out"),
    (["a", "b"], [1, -1], [0, 0], "finite and >= 0"),
    (["a", "b"], [1, np.nan], [0, 0], "finite and >= 0"),
    (["a", "b"], [1, np.inf], [0, 0], "finite and >= 0"),
    (["a", "b\nc"], [1, 1], [0, 0], "newline"),
])
def test_from_unsorted_refuses(words, counts, held_out, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        LexiconData.from_unsorted(words, counts, held_out)


@pytest.mark.parametrize("lexicon, fragment", [
    (LexiconData(["b", "a"], [1, 1], [0, 0]), "not sorted"),
    (LexiconData(["a", "a"], [1, 1], [0, 0]), "not sorted and distinct"),
    (LexiconData(["a", 3], [1, 1], [0, 0]), "strings"),
    (LexiconData(["a", "\ud800"], [1, 1], [0, 0]), "not valid Unicode"),
    (LexiconData(["a"], [[1]], [0]), "shape"),
])
def test_save_refuses_a_bad_lexicon(tmp_path, lexicon, fragment):
    with pytest.raises(ValueError, match=fragment):
        save_checkpoint(tmp_path / "m.npz", *make_checkpoint(), lexicon=lexicon)
    assert os.listdir(tmp_path) == []


def test_format_1_loads_without_a_lexicon(format_1):
    params, meta, optimizer_state = make_checkpoint()
    ckpt = load_checkpoint(format_1)
    assert ckpt.lexicon is None and ckpt.meta == {**meta, "format_version": 1}
    assert_same_arrays(ckpt.params, params)
    assert_same_arrays(ckpt.optimizer_state, optimizer_state)
    assert describe(format_1)["lexicon_words"] is None


def test_format_2_without_a_lexicon(good):
    assert load_checkpoint(good).lexicon is None and "lexicon" not in load_checkpoint(good).meta


def test_the_bundled_model_still_loads():
    ckpt = load_checkpoint(BUNDLED_MODEL)
    H = ckpt.meta["hidden_size"]
    assert ckpt.meta["format_version"] in (1, FORMAT_VERSION) and ckpt.params["W"].shape == (H, H)
    if ckpt.meta["format_version"] == 1:
        assert ckpt.lexicon is None
    else:  # the shipped model carries its list, validation words marked, and a fitted weight
        assert len(ckpt.lexicon.words) == 50_000 and ckpt.lexicon.held_out.sum() == 5_000
        assert 0 < ckpt.meta["mixture_lambda"] < 1 and not ckpt.optimizer_state


def test_export_keeps_the_lexicon_and_drops_the_optimizer(with_lexicon, format_1, tmp_path):
    export_for_inference(with_lexicon, tmp_path / "small.npz")
    small = load_checkpoint(tmp_path / "small.npz")
    assert small.lexicon == make_lexicon() and small.optimizer_state == {}
    export_for_inference(format_1, tmp_path / "v1-small.npz")  # a format-1 file becomes format 2, still without one
    small = load_checkpoint(tmp_path / "v1-small.npz")
    assert small.lexicon is None and small.meta["format_version"] == FORMAT_VERSION


def test_export_keeps_no_folder_of_the_machine_that_built_it(tmp_path, monkeypatch):
    """data.path and output.dir under the working directory become relative to it; others, their name alone."""
    params, meta, _ = make_checkpoint()
    meta["config"] = {**meta["config"], "data": {"path": str(tmp_path / "data" / "words.tsv"), "lowercase": True},
                      "output": {"dir": str(tmp_path.parent / "elsewhere" / "runs" / "default")}}
    save_checkpoint(tmp_path / "full.npz", params, meta)
    monkeypatch.chdir(tmp_path)
    export_for_inference("full.npz", "small.npz")
    config = load_checkpoint(tmp_path / "small.npz").meta["config"]
    assert config["data"] == {"path": "data/words.tsv", "lowercase": True}
    assert config["output"] == {"dir": "default"}
    assert config["model"] == meta["config"]["model"] and config["train"] == meta["config"]["train"]
    assert load_checkpoint(tmp_path / "full.npz").meta["config"] == meta["config"]  # the source is left as it was


def test_saving_a_loaded_checkpoint_without_its_lexicon_drops_meta_lexicon(with_lexicon, tmp_path):
    ckpt = load_checkpoint(with_lexicon)
    save_checkpoint(tmp_path / "m.npz", ckpt.params, ckpt.meta)
    assert "lexicon" not in load_checkpoint(tmp_path / "m.npz").meta


def test_describe_shows_the_lexicon_and_mixture_lambda(tmp_path, good):
    params, meta, _ = make_checkpoint()
    save_checkpoint(tmp_path / "m.npz", params, {**meta, "mixture_lambda": 0.25}, lexicon=make_lexicon())
    facts = describe(tmp_path / "m.npz")
    assert facts["lexicon_words"] == 6 and facts["lexicon_held_out"] == 2 and facts["mixture_lambda"] == 0.25
    assert list(facts)[-1] == "config"  # `rnnac info` prints the config last
    facts = describe(good)
    assert facts["lexicon_words"] is None and facts["lexicon_held_out"] is None and "mixture_lambda" not in facts


def rewrite_lexicon(src, dst, text=None, counts=None, held_out=None, summary=None, zlib_words=False):
    """Copy `src` with its lexicon's uncompressed parts replaced, and a sha256 and text_bytes that match
    them; with zlib_words, its words zlib'd in checkpoint format 2, as rnnac 0.2 wrote them."""
    with np.load(src) as npz:
        entries = dict(npz)
    meta = json.loads(entries["meta"].item())
    text = entries["lexicon.words"].tobytes() if text is None else text
    counts = zlib.decompress(entries["lexicon.counts"].tobytes()) if counts is None else counts
    held_out = entries["lexicon.held_out"] if held_out is None else np.asarray(held_out, "<i4")
    meta["lexicon"]["sha256"] = hashlib.sha256(text + counts + held_out.tobytes()).hexdigest()
    meta["lexicon"].update(summary or {})
    meta["lexicon"]["text_bytes"] = len(text)
    if zlib_words:
        meta["format_version"] = 2
        for key in ("nfc", "lower", "chars"):
            del meta["lexicon"][key]
    entries.update({"lexicon.words": np.frombuffer(zlib.compress(text) if zlib_words else text, np.uint8),
                    "lexicon.counts": np.frombuffer(zlib.compress(counts), np.uint8),
                    "lexicon.held_out": held_out, "meta": np.array(json.dumps(meta))})
    np.savez(dst, **entries)
    return dst


def f8(*values):
    return np.array(values, "<f8").tobytes()


@pytest.mark.parametrize("change, fragment", [
    ({"text": b"b\na"}, "not sorted and distinct: 'b' before 'a'"),
    ({"text": b"a\na"}, "not sorted and distinct"),
    ({"text": b"a\nb\nc"}, "3 words and 2 counts, meta says 2 words"),
    ({"text": b"a\xff\nb"}, "not UTF-8"),
    ({"counts": f8(1.0)}, "2 words and 1 counts"),
    ({"counts": f8(1.0, -2.0)}, "finite and >= 0"),
    ({"counts": f8(1.0, np.nan)}, "finite and >= 0"),
    ({"held_out": [1, 0]}, "held_out is not increasing"),
    ({"held_out": [2]}, "held_out is not increasing indices below 2"),
    ({"held_out": [-1]}, "held_out"),
    ({"summary": {"n_words": 3}}, "meta says 3 words"),
    ({"summary": {"n_words": "2"}}, "n_words '2' is not an int"),
    ({"summary": {"total_count": 99.0}}, "total_count 99.0 is not the sum"),
    ({"summary": {"sha256": None}}, "sha256"),
])
def test_damaged_lexicon(tmp_path, change, fragment):
    src = tmp_path / "src.npz"
    save_checkpoint(src, *make_checkpoint(), lexicon=LexiconData(["a", "b"], [1.0, 2.0], [False, True]))
    path = rewrite_lexicon(src, tmp_path / "bad.npz", **change)
    assert_load_fails(path, "lexicon", fragment)


def test_lexicon_checksum_catches_a_flipped_bit(with_lexicon, tmp_path):
    with np.load(with_lexicon) as npz:
        entries = dict(npz)
    held_out = entries["lexicon.held_out"].copy()
    held_out[0] += 1
    np.savez(tmp_path / "bad.npz", **{**entries, "lexicon.held_out": held_out})
    assert_load_fails(tmp_path / "bad.npz", "sha256 does not match")


@pytest.mark.parametrize("drop", ["lexicon.words", "lexicon.counts", "lexicon.held_out", "meta"])
def test_incomplete_lexicon(with_lexicon, tmp_path, drop):
    with np.load(with_lexicon) as npz:
        entries = dict(npz)
    if drop == "meta":
        meta = json.loads(entries["meta"].item())
        del meta["lexicon"]
        entries["meta"] = np.array(json.dumps(meta))
    else:
        del entries[drop]
    np.savez(tmp_path / "bad.npz", **entries)
    assert_load_fails(tmp_path / "bad.npz", "lexicon is incomplete")


def test_lexicon_entries_of_the_wrong_kind(with_lexicon, tmp_path):
    path = rewrite(with_lexicon, tmp_path / "bad.npz", **{"lexicon.held_out": np.array([3, 4], np.int64)})
    assert_load_fails(path, "lexicon.held_out must be at most 6 int32 indices")
    path = rewrite(with_lexicon, tmp_path / "bad.npz", **{"lexicon.words": np.zeros((2, 2), np.uint8)})
    assert_load_fails(path, "1-d uint8")


# --- atomic writes -----------------------------------------------------------------------


def half_written_then(exception):
    """A stand-in for np.savez that writes part of a file and then dies with `exception`."""

    def savez(file, **entries):
        file.write(b"PK\x03\x04" + bytes(1000))
        raise exception

    return savez


def failing_replace(src, dst):
    raise OSError("rename failed")


@pytest.mark.parametrize("target, sabotage, expected", [
    (os, {"replace": failing_replace}, OSError),
    (np, {"savez": half_written_then(OSError(28, "No space left on device"))}, OSError),
    (np, {"savez": half_written_then(KeyboardInterrupt())}, KeyboardInterrupt),
])
def test_crash_mid_save_keeps_previous_checkpoint(good, monkeypatch, target, sabotage, expected):
    before = load_checkpoint(good)
    params, meta, opt = make_checkpoint(seed=5, step=99)
    for name, fake in sabotage.items():
        monkeypatch.setattr(target, name, fake)
    with pytest.raises(expected):
        save_checkpoint(good, params, meta, opt)
    monkeypatch.undo()
    after = load_checkpoint(good)
    assert_same_arrays(after.params, before.params)
    assert_same_arrays(after.optimizer_state, before.optimizer_state)
    assert after.meta == before.meta
    assert os.listdir(good.parent) == ["good.npz"]  # the temp file is gone


def test_the_temp_file_is_hidden_and_beside_the_target(tmp_path, monkeypatch):
    """.<name>.<random>.tmp, made by mkstemp (O_EXCL): the pattern stale-temp cleanup looks for."""
    seen, savez = [], np.savez

    def spying_savez(file, **entries):
        seen.extend(os.listdir(tmp_path))
        savez(file, **entries)

    monkeypatch.setattr(np, "savez", spying_savez)
    save_checkpoint(tmp_path / "m.npz", *make_checkpoint())
    assert len(seen) == 1 and re.fullmatch(r"\.m\.npz\.\w+\.tmp", seen[0]), seen
    assert os.listdir(tmp_path) == ["m.npz"]


def test_the_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """fsync(temp file) with every byte written, then os.replace, then fsync(folder): a power cut
    leaves the old file or the whole new one, and the new name survives once it is written."""
    events, fsync, replace = [], os.fsync, os.replace

    def spying_fsync(fd):
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            events.append(("fsync", "folder", info.st_ino))
        else:
            events.append(("fsync", "file", info.st_ino, info.st_size))  # the size: all of it is written
        fsync(fd)

    def spying_replace(src, dst):
        info = os.stat(src)
        events.append(("replace", info.st_ino, Path(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", spying_fsync)
    monkeypatch.setattr(os, "replace", spying_replace)
    target = tmp_path / "m.txt"
    replace_atomically(target, lambda f: f.write(b"x" * 5000))
    monkeypatch.undo()
    written = os.stat(target)
    assert events == [("fsync", "file", written.st_ino, 5000), ("replace", written.st_ino, target),
                      ("fsync", "folder", os.stat(tmp_path).st_ino)]
    assert target.read_bytes() == b"x" * 5000


def test_crash_on_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", half_written_then(OSError("boom")))
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "m.npz", *make_checkpoint())
    assert os.listdir(tmp_path) == []


# The child saves ~3 MB checkpoints in a loop, every array filled with the step, and
# prints each step once it is saved. A torn file would fail to load or mix steps.
SAVE_FOREVER = """
import sys
import numpy as np
from rnnac.storage.checkpoint import save_checkpoint

path, first_step = sys.argv[1], int(sys.argv[2])
H, K = 300, 4
shapes = {"U": (H, K), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
for step in range(first_step, first_step + 10**6):
    params = {name: np.full(shape, float(step)) for name, shape in shapes.items()}
    meta = {"chars": ["a", "b", "c"], "activation": "tanh", "hidden_size": H,
            "dtype": "float64", "config": {}, "step": step, "epoch": 0,
            "best_val_loss": None, "rng_state": None}
    opt = {f"{slot}.{name}": p for slot in ("m", "v") for name, p in params.items()}
    save_checkpoint(path, params, meta, {**opt, "t": step})
    print(step, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_saves_never_tears_the_file(tmp_path):
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(0)
    package_root = Path(rnnac.__path__[0]).parent  # so the child imports this rnnac
    env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for trial in range(4):
        first_step = 1000 * trial
        child = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path), str(first_step)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=tmp_path, env=env)
        try:
            for _ in range(rng.integers(1, 4)):
                line = child.stdout.readline()
                assert line, f"child died: {child.stderr.read() if child.poll() is not None else ''}"
            time.sleep(rng.uniform(0.0, 0.03))  # land somewhere inside a later save
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        ckpt = load_checkpoint(path)
        step = ckpt.meta["step"]
        assert step >= first_step  # this trial's child saved at least once
        assert len(ckpt.optimizer_state) == 11
        for value in [*ckpt.params.values(), *ckpt.optimizer_state.values()]:
            assert (value == step).all()
        # SIGKILL can leave a hidden temp file behind, never a visible one
        assert [name for name in os.listdir(tmp_path) if not name.startswith(".")] == ["model.npz"]


# --- loads that must fail ----------------------------------------------------------------


def test_missing_file(tmp_path):
    assert_load_fails(tmp_path / "nope.npz", "no such file")


def test_directory(tmp_path):
    assert_load_fails(tmp_path, "directory")


def test_pickled_npz(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array("{}"), U=np.array([{"x": 1}], dtype=object))
    assert_load_fails(path, "pickled")


def test_pickle_file(tmp_path):
    path = tmp_path / "evil.npz"
    np.save(tmp_path / "evil.npy", np.array([{"x": 1}], dtype=object))
    os.replace(tmp_path / "evil.npy", path)
    assert_load_fails(path, "not a valid .npz")


def test_truncated(good):
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    assert_load_fails(good, "not a valid .npz")


@pytest.mark.parametrize("prefix", [b"", b"PK\x03\x04"])
def test_random_bytes(tmp_path, prefix):
    path = tmp_path / "noise.npz"
    path.write_bytes(prefix + np.random.default_rng(0).bytes(5000))
    assert_load_fails(path, "not a valid .npz")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.touch()
    assert_load_fails(path, "not a valid .npz")


def test_single_npy(tmp_path):
    path = tmp_path / "one.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    assert_load_fails(path, "not an rnnac checkpoint")


def test_npz_without_meta(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    assert_load_fails(path, "not an rnnac checkpoint", "meta")


def test_missing_parameter(good, tmp_path):
    path = rewrite(good, tmp_path / "bad.npz", W=None)
    assert_load_fails(path, "not an rnnac checkpoint", "no W")


def test_bad_json(good, tmp_path):
    path = rewrite(good, tmp_path / "bad.npz")
    with np.load(path) as npz:
        entries = dict(npz)
    np.savez(path, **{**entries, "meta": np.array("{not json")})
    assert_load_fails(path, "not valid JSON")


def test_meta_not_a_string(good, tmp_path):
    path = rewrite(good, tmp_path / "bad.npz")
    with np.load(path) as npz:
        entries = dict(npz)
    np.savez(path, **{**entries, "meta": np.zeros(2)})
    assert_load_fails(path, "meta is not a string")


def test_future_format_version(good, tmp_path):
    path = rewrite(good, tmp_path / "future.npz", {"format_version": FORMAT_VERSION + 1})
    message = assert_load_fails(path)
    assert message.endswith(f"written by a newer rnnac (format {FORMAT_VERSION + 1}); this one reads up to {FORMAT_VERSION}")


@pytest.mark.parametrize("version", [None, 0, "1", True])
def test_nonsense_format_version(good, tmp_path, version):
    path = rewrite(good, tmp_path / "bad.npz", {"format_version": version})
    assert_load_fails(path, "format_version")


H, K = 3, 4  # of the `good` checkpoint


@pytest.mark.parametrize("change, fragment", [
    ({"U": np.zeros((H, K + 1), np.float32)}, "U has shape (3, 5), expected (3, 4)"),
    ({"W": np.zeros((H, H + 1), np.float32)}, "W has shape"),
    ({"b": np.zeros((H, 1), np.float32)}, "b has shape"),
    ({"V": np.zeros((K, H + 1), np.float32)}, "V has shape"),
    ({"c": np.zeros(K - 1, np.float32)}, "c has shape"),
    ({"meta_hidden_size": H + 1}, "shape"),
    ({"meta_chars": ["a", "b"]}, "shape"),
    ({"meta_chars": ["a", "a", "b"]}, "distinct single characters"),
    ({"meta_dtype": "float64"}, "U has dtype float32, meta says float64"),
    ({"meta_dtype": "float16"}, "meta dtype"),
    ({"c": np.zeros(K, np.float64)}, "c has dtype float64"),
    ({"meta_step": None, "meta_rng_state": None, "meta_epoch": None}, None),  # null values are fine
])
def test_params_that_disagree_with_meta(good, tmp_path, change, fragment):
    meta_change = {k[5:]: v for k, v in change.items() if k.startswith("meta_")}
    arrays = {k: v for k, v in change.items() if not k.startswith("meta_")}
    path = rewrite(good, tmp_path / "bad.npz", meta_change, **arrays)
    if fragment is None:
        load_checkpoint(path)
    else:
        assert_load_fails(path, fragment)


def test_missing_meta_key(good, tmp_path):
    path = rewrite(good, tmp_path / "bad.npz")
    with np.load(path) as npz:
        entries = dict(npz)
    meta = json.loads(entries["meta"].item())
    del meta["chars"]
    np.savez(path, **{**entries, "meta": np.array(json.dumps(meta))})
    assert_load_fails(path, "missing chars")


# --- saves that must refuse --------------------------------------------------------------


@pytest.mark.parametrize("breakage, fragment", [
    (lambda p, m, o: m.pop("rng_state"), "missing rng_state"),
    (lambda p, m, o: p.pop("c"), "exactly U, W, b, V, c"),
    (lambda p, m, o: p.update(W=np.zeros((2, 2), np.float32)), "W has shape"),
    (lambda p, m, o: m.update(dtype="float64"), "meta says float64"),
    (lambda p, m, o: m.update(config={"x": object()}), "JSON"),
    (lambda p, m, o: o.update(names=np.array(["x"])), "not a numeric array"),
    (lambda p, m, o: o.update(junk=np.array([{}], dtype=object)), "not a numeric array"),
    (lambda p, m, o: o.update({"": np.zeros(2)}), "non-empty str"),
])
def test_save_rejects_programmer_errors(tmp_path, breakage, fragment):
    params, meta, optimizer_state = make_checkpoint()
    breakage(params, meta, optimizer_state)
    with pytest.raises(ValueError) as info:
        save_checkpoint(tmp_path / "m.npz", params, meta, optimizer_state)
    assert fragment in str(info.value)
    assert os.listdir(tmp_path) == []  # nothing written
