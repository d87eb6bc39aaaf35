"""Checkpoint round trips, atomic writes (down to SIGKILL) and every way a load can fail."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnac
from rnnac.checkpoint import (FORMAT_VERSION, Checkpoint, load_checkpoint, save_checkpoint,
                              vocab_from_meta)
from rnnac.data import Vocab
from rnnac.errors import CheckpointError
from rnnac.optim import make_optimizer

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
        assert json.loads(meta.item())["format_version"] == 1
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
from rnnac.checkpoint import save_checkpoint

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
    path = rewrite(good, tmp_path / "future.npz", {"format_version": 2})
    message = assert_load_fails(path)
    assert message.endswith("written by a newer rnnac (format 2); this one reads up to 1")


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
