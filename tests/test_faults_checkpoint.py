"""Crafted and broken checkpoints: zip bombs and lying headers, meta of the wrong types, weights
that are not finite, control characters in the vocabulary, the file mode, symbolic links, and
error messages that stay one short line, down to the `rnnac info` command."""

import functools
import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_checkpoint import assert_load_fails, make_checkpoint, rewrite

import rnnac
from rnnac.errors import CheckpointError
from rnnac.storage.checkpoint import describe, load_checkpoint, save_checkpoint
from rnnac.storage.lexicon import LexiconData

MiB = 2**20


# --- crafting files by hand --------------------------------------------------------------


def npy(array) -> bytes:
    """`array` as the bytes of a .npy file."""
    f = io.BytesIO()
    np.save(f, array, allow_pickle=False)
    return f.getvalue()


def npy_header(shape, dtype) -> bytes:
    """A .npy header announcing `shape` and `dtype`, for data that may or may not follow."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                             "fortran_order": False, "shape": shape})
    return f.getvalue()


def stored(name, data, flags=0, method=zipfile.ZIP_STORED):
    """A zip entry `name`.npy holding `data` as it is: (filename, method, flags, payload, crc, size)."""
    return name + ".npy", method, flags, data, zlib.crc32(data), len(data)


def write_zip(path, entries):
    """A zip written byte by byte, so that an entry can carry any payload, sizes and flags."""
    body, directory = bytearray(), bytearray()
    for filename, method, flags, payload, crc, size in entries:
        name, offset = filename.encode(), len(body)
        fields = (20, flags, method, 0, 0x21, crc, len(payload), size, len(name), 0)  # version, ..., date 1980-01-01
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + payload
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    Path(path).write_bytes(bytes(body + directory + end))
    return path


def checkpoint_entries(drop=()):
    """The stored entries of a good format-1 checkpoint (H = 3, K = 4), without those named in `drop`."""
    params, meta, _ = make_checkpoint()
    arrays = {**params, "meta": np.array(json.dumps({**meta, "format_version": 1}))}
    return [stored(name, npy(array)) for name, array in arrays.items() if name not in drop]


@functools.cache
def zeros_deflated(prefix: bytes, size: int) -> tuple[bytes, int]:
    """A raw deflate stream of `prefix` and then zeros, `size` bytes in all, and its CRC-32.

    Cheap to build at any size: after a full flush the compressor starts afresh, so one
    compressed MiB of zeros repeated is a valid stream of many MiB.
    """
    deflate, zeros = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(MiB)
    first = prefix + bytes(MiB - len(prefix))
    head = deflate.compress(first) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH) == block
    crc = zlib.crc32(first)
    for _ in range(size // MiB - 1):
        crc = zlib.crc32(zeros, crc)
    return head + block * (size // MiB - 1) + deflate.flush(), crc


def bomb_entry(name, size=1200 * MiB):
    """Entry `name`.npy: a float32 array of `size` bytes (header included) of zeros, deflated to ~1/1000."""
    header = npy_header(((size - 128) // 4,), np.float32)
    assert len(header) == 128
    stream, crc = zeros_deflated(header, size)
    return name + ".npy", zipfile.ZIP_DEFLATED, 0, stream, crc, size


def peak_memory_of(function, *args):
    """(the exception raised or None, the peak bytes Python and NumPy allocated) while calling function(*args)."""
    tracemalloc.start()
    error = None
    try:
        function(*args)
    except Exception as e:  # noqa: BLE001 - the caller checks what it was
        error = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


def assert_refused_cheaply(path, limit, *fragments):
    """load_checkpoint refuses `path` with a one-line CheckpointError, allocating less than `limit` bytes."""
    error, peak = peak_memory_of(load_checkpoint, path)
    assert peak < limit, f"{peak:,} bytes allocated"
    assert isinstance(error, CheckpointError), repr(error)
    assert "\n" not in str(error) and all(fragment in str(error) for fragment in fragments), str(error)
    return str(error)


# --- a. zip bombs and headers that lie -----------------------------------------------------


@pytest.mark.parametrize("name", ["W", "junk"])
def test_zip_bomb_is_refused_before_inflating(tmp_path, name):
    """1.2 MB on disk, 1.2 GB inflated: in a parameter, or in an entry rnnac does not even read."""
    path = write_zip(tmp_path / "bomb.npz", [*checkpoint_entries(drop={name}), bomb_entry(name)])
    assert path.stat().st_size < 1.5e6
    assert_refused_cheaply(path, 16 * MiB, "zip bomb")


def test_header_declaring_a_trillion_floats(tmp_path):
    entries = [*checkpoint_entries(drop={"U"}), stored("U", npy_header((10**12,), np.float64) + bytes(16))]
    path = write_zip(tmp_path / "huge.npz", entries)
    assert_refused_cheaply(path, 1 * MiB, "'U'", "its header says 8,000,000,000,128")


def test_shape_that_disagrees_with_meta_is_refused_before_its_data_is_read(tmp_path):
    """A W of 32 MB, whole and honest about its size, but meta says H = 3."""
    size = 32 * MiB
    header = npy_header(((size - 128) // 4,), np.float32)
    data = header + bytes(size - len(header))
    entry = ("W.npy", zipfile.ZIP_DEFLATED, 0, zlib.compress(data, 1)[2:-4], zlib.crc32(data), size)
    path = write_zip(tmp_path / "big.npz", [*checkpoint_entries(drop={"W"}), entry])
    assert_refused_cheaply(path, 4 * MiB, "W has shape (8388576,), expected (3, 3)")


def test_lexicon_zlib_bomb(tmp_path):
    """lexicon.words holds 256 KB that would inflate to 256 MiB, for a lexicon of two words."""
    save_checkpoint(tmp_path / "src.npz", *make_checkpoint(), lexicon=LexiconData(["a", "b"], [1, 1], [0, 0]))
    stream, _ = zeros_deflated(b"", 256 * MiB)
    words = b"\x78\xda" + stream + struct.pack(">I", 1)  # a zlib header, and a checksum never reached
    path = rewrite(tmp_path / "src.npz", tmp_path / "bomb.npz", **{"lexicon.words": np.frombuffer(words, np.uint8)})
    with np.load(path) as npz:
        meta = json.loads(npz["meta"].item())
    meta["format_version"] = 2  # zlib'd words, as rnnac 0.2 wrote them
    path = with_meta_text(path, tmp_path / "old_bomb.npz", json.dumps(meta))
    assert_refused_cheaply(path, 4 * MiB, "lexicon.words is not one zlib stream of at most 4,224 bytes")


def test_stored_words_larger_than_meta_says_are_not_read(tmp_path):
    save_checkpoint(tmp_path / "src.npz", *make_checkpoint(), lexicon=LexiconData(["a", "b"], [1, 1], [0, 0]))
    words = np.frombuffer(b"a\n" + b"b" * (8 * MiB), np.uint8)
    path = rewrite(tmp_path / "src.npz", tmp_path / "fat.npz", **{"lexicon.words": words})
    assert_refused_cheaply(path, 4 * MiB, "lexicon.words holds 8,388,610 bytes, meta lexicon says 3")


def test_meta_larger_than_16_mb_is_not_read(tmp_path):
    params, meta, _ = make_checkpoint()
    meta["config"]["notes"] = "x" * (5 * MiB)  # 20 MiB as numpy's UTF-32
    np.savez_compressed(tmp_path / "fat.npz", **params, meta=np.array(json.dumps({**meta, "format_version": 1})))
    assert_refused_cheaply(tmp_path / "fat.npz", 4 * MiB, "bytes, more than the 16,777,216")


def with_meta_text(src, dst, text):
    """A copy of the checkpoint `src` whose meta is `text`, JSON or not."""
    with np.load(src) as npz:
        np.savez(dst, **{**dict(npz), "meta": np.array(text)})
    return dst


def test_json_nested_too_deep(tmp_path):
    save_checkpoint(tmp_path / "good.npz", *make_checkpoint())
    path = with_meta_text(tmp_path / "good.npz", tmp_path / "deep.npz", '{"config": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_load_fails(path, "meta is not valid JSON")


@pytest.mark.parametrize("flags, method", [(0x1, zipfile.ZIP_STORED), (0, 99), (0, zipfile.ZIP_BZIP2)])
def test_zip_entries_numpy_never_writes(tmp_path, flags, method):
    """An encrypted entry, an unknown compression method, bzip2: refused, not a traceback."""
    entries = checkpoint_entries(drop={"W"})
    entries.append(stored("W", npy(np.zeros((3, 3), np.float32)), flags=flags, method=method))
    assert_load_fails(write_zip(tmp_path / "odd.npz", entries), "not a valid .npz file")


@pytest.mark.parametrize("name, value, fragment", [
    ("m.U", np.zeros((3, 5), np.float32), "optimizer state 'm.U' has shape (3, 5), expected (3, 4), the shape of U"),
    ("v.b", np.zeros(2, np.float32), "'v.b' has shape (2,)"),
    ("t", np.zeros(2, np.int64), "t is not a 0-d integer"),
    ("t", np.array(3.0), "t is not a 0-d integer"),
    ("m.X", np.zeros(3), "'m.X' is neither t nor <slot>.<parameter>"),
    ("junk", np.zeros(3), "neither t nor"),
    ("names", np.array(["x"]), "not a numeric array"),
])
def test_optimizer_state_must_fit_the_parameters(tmp_path, name, value, fragment):
    save_checkpoint(tmp_path / "good.npz", *make_checkpoint())
    path = rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", **{f"opt.{name}": value})
    assert_load_fails(path, fragment)
    params, meta, optimizer_state = make_checkpoint()
    with pytest.raises(ValueError, match="optimizer state"):  # and what load refuses, save does not write
        save_checkpoint(tmp_path / "new.npz", params, meta, {**optimizer_state, name: value})


# --- b. meta values of the wrong type ------------------------------------------------------


@pytest.mark.parametrize("key, value", [
    ("activation", ["tanh"]), ("activation", 3), ("step", "7"), ("step", True), ("epoch", 1.5), ("chars", "abc"),
    ("config", ["data"]), ("config", {"model": []}), ("config", {"data": "lowercase"}), ("hidden_size", 3.0),
    ("hidden_size", 10**30), ("best_val_loss", "low"), ("rng_state", 5), ("mixture_lambda", "half"),
    ("dtype", ["float32"]),
])
def test_meta_of_the_wrong_type(tmp_path, key, value):
    save_checkpoint(tmp_path / "good.npz", *make_checkpoint())
    path = rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", {key: value})
    assert_load_fails(path, f"meta {key}")
    with pytest.raises(CheckpointError, match=f"meta {key}"):
        describe(path)  # what `rnnac info` runs


# --- c. weights that are not finite --------------------------------------------------------


@pytest.mark.parametrize("name, index, value", [
    ("W", (1, 2), np.nan), ("c", 0, np.inf), ("opt.m.U", (0, 0), -np.inf), ("opt.v.b", 2, np.nan),
])
def test_non_finite_weights_are_refused(tmp_path, name, index, value):
    params, meta, optimizer_state = make_checkpoint()
    save_checkpoint(tmp_path / "good.npz", params, meta, optimizer_state)
    with np.load(tmp_path / "good.npz") as npz:
        array = npz[name].copy()
    array[index] = value
    path = rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", **{name: array})
    assert_load_fails(path, name.removeprefix("opt."), "NaN or infinite")
    arrays = {**params, **{f"opt.{k}": v for k, v in optimizer_state.items()}, name: array}
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_checkpoint(tmp_path / "new.npz", {k: arrays[k] for k in params}, meta,
                        {k.removeprefix("opt."): v for k, v in arrays.items() if k.startswith("opt.")})


# --- d. control characters in the vocabulary -------------------------------------------------


@pytest.mark.parametrize("char", ["\n", "\t", "\x00", "\x7f", "\x85", "\ud800", "\u2028", "", "ab"])
def test_chars_must_be_printable_single_characters(tmp_path, char):
    save_checkpoint(tmp_path / "good.npz", *make_checkpoint())
    path = rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", {"chars": ["a", char, "c"]})
    assert_load_fails(path, "meta chars")
    params, meta, _ = make_checkpoint()
    with pytest.raises(ValueError, match="meta chars"):
        save_checkpoint(tmp_path / "new.npz", params, {**meta, "chars": ["a", char, "c"]})


# --- e. the file mode ----------------------------------------------------------------------


SAVE_WITH_UMASK = """
import os, stat, sys
os.umask(int(sys.argv[2], 8))
sys.path.insert(0, sys.argv[3])
from test_checkpoint import make_checkpoint
from rnnac.storage.checkpoint import save_checkpoint
save_checkpoint(sys.argv[1], *make_checkpoint())
print(oct(stat.S_IMODE(os.stat(sys.argv[1]).st_mode)))
"""


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o027, "0o640"), (0o002, "0o664"), (0o077, "0o600")])
def test_checkpoints_respect_the_umask(tmp_path, umask, mode):
    """Mode 0666 minus the umask, like any file the process writes (a child process: umask is process-wide)."""
    package_root = Path(rnnac.__path__[0]).parent
    env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.run([sys.executable, "-c", SAVE_WITH_UMASK, str(tmp_path / "m.npz"), oct(umask),
                            str(Path(__file__).parent)], capture_output=True, text=True, env=env, check=True)
    assert child.stdout.strip() == mode


# --- f. symbolic links -----------------------------------------------------------------------


@pytest.mark.parametrize("dangling", [False, True])
def test_save_refuses_a_symbolic_link(tmp_path, dangling):
    target, link = tmp_path / "real.npz", tmp_path / "link.npz"
    if not dangling:
        target.write_bytes(b"precious")
    link.symlink_to(target)
    with pytest.raises(CheckpointError, match=r"link\.npz: it is a symbolic link$"):
        save_checkpoint(link, *make_checkpoint())
    assert link.is_symlink() and (dangling or target.read_bytes() == b"precious")
    assert sorted(os.listdir(tmp_path)) == sorted(["link.npz"] + ([] if dangling else ["real.npz"]))


# --- g. messages stay one short line -------------------------------------------------------


def missing_file_message(path):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and "no such file" in message
    return message


def test_long_and_strange_paths_are_quoted(tmp_path):
    deep = tmp_path.joinpath(*["d" * 200] * 4) / "model.npz"
    message = missing_file_message(deep)
    assert len(message) < 200 and "model.npz" in message and "characters" in message
    message = missing_file_message(tmp_path / "two\nlines.npz")
    assert "two\\nlines.npz" in message


@pytest.mark.parametrize("meta_change", [{"format_version": "x" * 5000}, {"activation": "x" * 5000},
                                         {"dtype": "x" * 5000}, {"activation": ["x" * 5000]}])
def test_long_bad_values_are_cut(tmp_path, meta_change):
    save_checkpoint(tmp_path / "good.npz", *make_checkpoint())
    path = rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", meta_change)
    with pytest.raises(CheckpointError) as info:
        describe(path)
    assert len(str(info.value)) < 300 and "characters" in str(info.value)


def test_crafted_files_are_one_line_errors_in_rnnac_info(tmp_path):
    """The CLI's view of the faults above: exit 1, `Error: ...` on one line, no traceback."""
    save_checkpoint(tmp_path / "good.npz", *make_checkpoint())
    good, files = tmp_path / "good.npz", {}
    files["huge"] = write_zip(tmp_path / "huge.npz", [*checkpoint_entries(drop={"U"}),
                                                      stored("U", npy_header((10**12,), np.float64))])
    files["bomb"] = write_zip(tmp_path / "bomb.npz", [*checkpoint_entries(), bomb_entry("junk")])
    files["odd"] = write_zip(tmp_path / "odd.npz", [*checkpoint_entries(drop={"W"}), stored("W", b"x", method=99)])
    files["activation"] = rewrite(good, tmp_path / "activation.npz", {"activation": ["tanh"]})
    files["newline"] = rewrite(good, tmp_path / "newline.npz", {"chars": ["a", "\n", "c"]})
    files["nan"] = rewrite(good, tmp_path / "nan.npz", W=np.full((3, 3), np.nan, np.float32))
    files["deep"] = with_meta_text(good, tmp_path / "deep.npz", "[" * 100_000 + "]" * 100_000)
    package_root = Path(rnnac.__path__[0]).parent
    env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    children = {name: subprocess.Popen([sys.executable, "-m", "rnnac", "info", str(path)], env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name, path in files.items()}
    for name, child in children.items():
        stdout, stderr = child.communicate(timeout=60)
        assert (child.returncode, stdout) == (1, ""), (name, stderr)
        assert stderr.startswith("Error: cannot load checkpoint ") and stderr.count("\n") == 1, (name, stderr)
        assert "Traceback" not in stderr


def test_a_list_of_long_words_saves_and_loads(tmp_path):
    """The words' size is stated in meta, so a list of long words (URLs, paths) is never refused."""
    from rnnac.storage.checkpoint import LexiconData, load_checkpoint, save_checkpoint

    words = [f"https://example.org/{i:04d}/" + "segment/" * 10 for i in range(1000)]  # ~110 characters each
    lexicon = LexiconData.from_unsorted(words, np.ones(1000), np.zeros(1000, dtype=bool))
    path = tmp_path / "long.npz"
    from rnnac.engine.model import RNN

    model = RNN.init(3, 4, dtype=np.float32)
    meta = {"chars": ["a", "b"], "activation": "tanh", "hidden_size": 4, "dtype": "float32", "config": {},
            "step": 0, "epoch": 0, "best_val_loss": None, "rng_state": {}}
    save_checkpoint(path, model.params, meta, lexicon=lexicon)
    assert load_checkpoint(path).lexicon.words == sorted(words)
