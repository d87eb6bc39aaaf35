"""Checkpoints: parameters, optimizer state, the word list and a JSON description in one .npz
file; finding the one to use (a path, $RNNAC_CHECKPOINT or the bundled model) and describing it.

No pickle anywhere: every entry is a plain numeric array, and the description is a
JSON string stored as a 0-d unicode array under "meta". Entries:

    U (H, K), W (H, H), b (H,), V (K, H), c (K,)   the parameters, one float dtype
    opt.<name>                                     optimizer state: opt.<slot>.<parameter> (the
                                                   parameter's shape, e.g. opt.m.U) and opt.t (0-d int)
    lexicon.words (bytes,) uint8                   zlib of the UTF-8 of "\\n".join(words)
    lexicon.counts (bytes,) uint8                  zlib of the counts, float64 little-endian
    lexicon.held_out (n_held_out,) int32           indices of the validation words, increasing
    meta                                           JSON: format_version, chars, activation,
                                                   hidden_size, dtype, config, step, epoch,
                                                   best_val_loss, rng_state; with a lexicon,
                                                   lexicon = {n_words, sha256, total_count}

H is the hidden size, K the vocabulary size including the boundary id 0, so
K == len(meta["chars"]) + 1. Format 1 is format 2 without the lexicon. The lexicon's sha256
is over the uncompressed words bytes, counts bytes and held_out bytes, in that order.

A save is atomic: a crash (even SIGKILL) leaves either the old file or the new one at the
path, never a torn mix. A load trusts nothing in the file: it reads every entry's .npy header,
checks it against meta, and only then reads data, so a crafted file costs no more memory than
the model it claims to be.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import os
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from rnnac.data import Vocab
from rnnac.errors import QUOTE_LIMIT, CheckpointError, quote
from rnnac.model import FLOAT_DTYPES, PARAM_NAMES

FORMAT_VERSION = 2
BUNDLED_MODEL = Path(__file__).parent / "models" / "en.npz"  # the fallback model, trained by `make model`
REQUIRED_META = ("chars", "activation", "hidden_size", "dtype", "config",
                 "step", "epoch", "best_val_loss", "rng_state")
OPT_PREFIX = "opt."
LEXICON_ENTRIES = ("lexicon.words", "lexicon.counts", "lexicon.held_out")

# What a file may claim before it is refused unread:
META_LIMIT = 16 * 2**20  # bytes of meta
MAX_HIDDEN_SIZE = 2**16
MAX_LEXICON_WORDS = 10**7
LEXICON_BYTES_PER_WORD = 64  # on average, "\n" included; the words text may inflate to this + 4 KiB
INFLATE_FLOOR, INFLATE_RATIO = 64 * 2**20, 32  # all data inflates to at most max(64 MiB, 32 x the file's size)

NUMBER, NULL = (int, float), type(None)
META_TYPES = {  # key: (the JSON types it may have, how a message says so); bool is never an int here
    "chars": ((list,), "a list"), "config": ((dict,), "a mapping"), "activation": ((str,), "a string"),
    "step": ((int, NULL), "an int or null"), "epoch": ((int, NULL), "an int or null"),
    "best_val_loss": ((*NUMBER, NULL), "a number or null"), "rng_state": ((dict, NULL), "a mapping or null"),
    "mixture_lambda": ((*NUMBER, NULL), "a number or null"),
}


@dataclass(eq=False)
class LexiconData:
    """The word list a model was trained on, validation words included and marked.

    LexiconData.from_unsorted(["b", "a"], [2, 1], [False, True]).words -> ["a", "b"]
    """

    words: list[str]  # distinct, as written (case kept), sorted by Python str order
    counts: np.ndarray  # (N,) float64, finite, >= 0 (a plain list: 1.0 each)
    held_out: np.ndarray  # (N,) bool, True for the run's validation words

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.float64)  # (N,)
        self.held_out = np.asarray(self.held_out, dtype=bool)  # (N,)

    @classmethod
    def from_unsorted(cls, words, counts, held_out) -> LexiconData:
        """Sorted by word; ValueError if lengths disagree, a word repeats, or a count is negative or not finite."""
        words, counts, held_out = list(words), np.asarray(counts, dtype=np.float64), np.asarray(held_out, dtype=bool)
        if not len(words) == len(counts) == len(held_out):
            raise ValueError(f"lexicon of {len(words):,} words with {len(counts):,} counts and {len(held_out):,} held_out flags")
        order = sorted(range(len(words)), key=words.__getitem__)
        lexicon = cls([words[i] for i in order], counts[order], held_out[order])
        problem = lexicon._problem()
        if problem:
            raise ValueError(f"lexicon: {problem}")
        return lexicon

    def _problem(self) -> str | None:
        """Why this lexicon cannot be saved, or None."""
        n = len(self.words)
        if self.counts.shape != (n,) or self.held_out.shape != (n,):
            return f"{n:,} words, but counts of shape {self.counts.shape} and held_out of shape {self.held_out.shape}"
        try:
            joined = "".join(self.words)
        except TypeError:
            return "words must be strings"
        if "\n" in joined:
            return "a word holds a newline"
        return _words_problem(self.words) or _counts_problem(self.counts)

    def __eq__(self, other):
        if not isinstance(other, LexiconData):
            return NotImplemented
        return (self.words == other.words and np.array_equal(self.counts, other.counts)
                and np.array_equal(self.held_out, other.held_out))


def _is_control(ch: str) -> bool:
    """A control, surrogate or line/paragraph separator character, as rnnac.wordlist refuses in a word
    (repeated here: importing wordlist would cost `rnnac complete` 4 ms)."""
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def _words_problem(words: list[str]) -> str | None:
    if all(map(operator.lt, words, words[1:])):  # strictly increasing: sorted and distinct, in C
        return None
    bad = next(i for i in range(len(words) - 1) if not words[i] < words[i + 1])
    return f"words are not sorted and distinct: {quote(words[bad])} before {quote(words[bad + 1])}"


def _counts_problem(counts: np.ndarray) -> str | None:
    return None if (np.isfinite(counts) & (counts >= 0)).all() else "counts must be finite and >= 0"


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns.

    optimizer_state is the flat dict `Optimizer.state_dict()` gave ({"m.U": ..., "t": 0-d
    array}), or {} when none was saved; lexicon is None when none was saved (always in format 1).
    """

    params: dict[str, np.ndarray]
    meta: dict[str, Any]
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    lexicon: LexiconData | None = None


def vocab_from_meta(meta: dict[str, Any]) -> Vocab:
    """The vocabulary a checkpoint was trained with: `chars[i]` is token id i + 1."""
    return Vocab(meta["chars"])


# --- saving ------------------------------------------------------------------------------


def _read_umask() -> int:
    """The process's umask. os.umask can only read it by setting it, which races with other threads
    creating files, so it is read once, at import, with a strict 0o077 standing in meanwhile: a file
    made in that instant ends up too private, never too open."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def save_checkpoint(path: str | os.PathLike, params: dict[str, np.ndarray], meta: dict[str, Any],
                    optimizer_state: dict[str, np.ndarray] | None = None, lexicon: LexiconData | None = None) -> None:
    """Write `params`, `meta` (+ format_version), `optimizer_state` and `lexicon` to `path` atomically.

    optimizer_state is a flat dict of numeric arrays (or scalars), as
    `Optimizer.state_dict()` makes it; each is stored as "opt." + its name. The file gets mode
    0666 minus the umask, like any file the process creates. Raises ValueError for a caller's
    mistake (missing meta key, shapes that disagree with meta, values that are not finite or
    that JSON or npz cannot hold), CheckpointError if `path` is a symbolic link; nothing is
    written then.
    """
    path = Path(path)
    entries = _entries(params, meta, optimizer_state or {}, lexicon)  # validate before touching disk
    if path.is_symlink():  # os.replace would swap the link for a file, leaving what it points to as it was
        raise CheckpointError(f"cannot save checkpoint {_shown_path(path)}: it is a symbolic link")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits next to the target so os.replace is a rename within
    # one filesystem, which POSIX makes atomic. Its dot prefix hides leftovers of a
    # SIGKILLed save, the one case the cleanup below cannot run.
    import tempfile  # here, not at the top: `rnnac complete` only loads, and starts faster without it

    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp's 0600 is too private for a model file
            np.savez(f, **entries)  # a file object, because a name would gain ".npz"
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp_name, path)
    except BaseException:  # KeyboardInterrupt too: never leave a stray temp file
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)  # makes the rename itself survive a power cut


def _entries(params: dict[str, np.ndarray], meta: dict[str, Any], optimizer_state: dict[str, np.ndarray],
             lexicon: LexiconData | None) -> dict[str, np.ndarray]:
    """The named arrays of the .npz, after checking what the caller passed."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"checkpoint meta is missing {', '.join(missing)}")
    if set(params) != set(PARAM_NAMES):
        raise ValueError(f"checkpoint params must be exactly {', '.join(PARAM_NAMES)}, "
                         f"got {', '.join(sorted(params))}")
    params = {name: np.asarray(params[name]) for name in PARAM_NAMES}
    meta = {key: value for key, value in meta.items() if key != "lexicon"} | {"format_version": FORMAT_VERSION}
    problem = (_meta_problem(meta) or _params_problem({name: (p.shape, p.dtype) for name, p in params.items()}, meta)
               or _finite_problem(params))
    if problem:
        raise ValueError(f"cannot save checkpoint: {problem}")
    lexicon_entries = {}
    if lexicon is not None:
        lexicon_entries, meta["lexicon"] = _lexicon_entries(lexicon)
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint meta is not JSON-serialisable: {e}") from None
    opt = _optimizer_entries(optimizer_state, {name: p.shape for name, p in params.items()})
    return {**params, **opt, **lexicon_entries, "meta": np.array(meta_json)}


def _optimizer_entries(optimizer_state: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """The optimizer state as "opt." entries; ValueError for a name, dtype or shape a load would refuse."""
    opt = {}
    for name, value in optimizer_state.items():
        array = np.asarray(value)
        if not isinstance(name, str) or not name:
            raise ValueError(f"optimizer state name {name!r} is not a non-empty str")
        problem = _optimizer_problem(name, array.shape, array.dtype, shapes) or _finite_problem({name: array})
        if problem:
            raise ValueError(problem)
        opt[OPT_PREFIX + name] = array
    return opt


def _lexicon_entries(lexicon: LexiconData) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The lexicon's .npz entries and meta["lexicon"]; ValueError if it cannot be saved."""
    problem = lexicon._problem()
    if problem:
        raise ValueError(f"checkpoint lexicon: {problem}")
    try:
        text = "\n".join(lexicon.words).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("checkpoint lexicon: a word is not valid Unicode (a lone surrogate?)") from None
    counts = lexicon.counts.astype("<f8").tobytes()
    held_out = np.flatnonzero(lexicon.held_out).astype("<i4")  # (n_held_out,)
    entries = {"lexicon.words": np.frombuffer(zlib.compress(text), dtype=np.uint8),
               "lexicon.counts": np.frombuffer(zlib.compress(counts), dtype=np.uint8),
               "lexicon.held_out": held_out}
    summary = {"n_words": len(lexicon.words), "sha256": _lexicon_sha256(text, counts, held_out.tobytes()),
               "total_count": float(lexicon.counts.sum())}
    return entries, summary


def _lexicon_sha256(text: bytes, counts: bytes, held_out: bytes) -> str:
    """meta["lexicon"]["sha256"]: of the uncompressed words, counts and held-out indices, in that order."""
    import hashlib  # here: only checkpoints with a lexicon need it

    digest = hashlib.sha256(text)
    digest.update(counts)
    digest.update(held_out)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Best effort: flush a directory entry to disk (not possible on every OS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- what a checkpoint must be (shared by saving and loading) ------------------------------


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """Why `meta` cannot describe a model, or None: missing keys, wrong types, impossible values."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        return f"meta is missing {', '.join(missing)}"
    for key, (types, wanted) in META_TYPES.items():
        if key in meta and (isinstance(meta[key], bool) or not isinstance(meta[key], types)):
            return f"meta {key} {_shown(meta[key])} is not {wanted}"
    if not all(isinstance(meta["config"].get(section, {}), dict) for section in ("data", "model", "train", "output")):
        return "meta config is not a mapping of sections"
    chars, hidden_size, dtype = meta["chars"], meta["hidden_size"], meta["dtype"]
    if not all(isinstance(ch, str) and len(ch) == 1 for ch in chars) or len(set(chars)) != len(chars):
        return "meta chars must be a list of distinct single characters"
    control = next((ch for ch in chars if _is_control(ch)), None)
    if control is not None:
        return f"meta chars hold the control character U+{ord(control):04X}"
    if type(hidden_size) is not int or not 1 <= hidden_size <= MAX_HIDDEN_SIZE:
        return f"meta hidden_size {_shown(hidden_size)} is not an int from 1 to {MAX_HIDDEN_SIZE:,}"
    if dtype not in FLOAT_DTYPES:
        return f"meta dtype {_shown(dtype)} is not one of {', '.join(FLOAT_DTYPES)}"
    return None


def _param_shapes(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of the model `meta` describes (checked by _meta_problem)."""
    H, K = meta["hidden_size"], len(meta["chars"]) + 1
    return {"U": (H, K), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}


def _params_problem(arrays: dict[str, tuple[tuple, np.dtype]], meta: dict[str, Any]) -> str | None:
    """Why parameters of these (shape, dtype) cannot be the model `meta` describes, or None."""
    H, K = meta["hidden_size"], len(meta["chars"]) + 1
    for name, expected in _param_shapes(meta).items():
        shape, dtype = arrays[name]
        if shape != expected:
            return f"{name} has shape {shape}, expected {expected} (hidden_size {H}, {K} tokens)"
        if dtype != np.dtype(meta["dtype"]):
            return f"{name} has dtype {dtype}, meta says {meta['dtype']}"
    return None


def _optimizer_problem(name: str, shape: tuple, dtype: np.dtype, shapes: dict[str, tuple]) -> str | None:
    """Why `name` cannot be the optimizer state of parameters of `shapes`, or None: "t" is a 0-d
    integer (the step count), "<slot>.<parameter>" (m.U) an array of that parameter's shape."""
    if dtype.kind not in "biuf":  # strings and objects would need pickle or be lost
        return f"optimizer state {quote(name)} is not a numeric array (dtype {dtype})"
    if name == "t":
        return None if shape == () and dtype.kind in "iu" else f"optimizer state t is not a 0-d integer ({dtype} {shape})"
    slot, _, param = name.rpartition(".")
    if not slot or param not in shapes:
        return f"optimizer state {quote(name)} is neither t nor <slot>.<parameter>"
    if shape != shapes[param]:
        return f"optimizer state {quote(name)} has shape {shape}, expected {shapes[param]}, the shape of {param}"
    return None


def _finite_problem(arrays: dict[str, np.ndarray]) -> str | None:
    bad = next((name for name, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()), None)
    return None if bad is None else f"{bad} holds NaN or infinite values"


# --- loading -----------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`, checking it is whole and consistent.

    Raises CheckpointError, with a one-line message naming `path`, if the file is
    missing, not an npz, holds pickled objects, is not an rnnac checkpoint, comes
    from a newer format, has meta of the wrong types, parameters that disagree with
    its meta or are not finite, or a damaged lexicon; or if it claims more data than
    its size can honestly hold (a zip bomb).
    """
    with _open_npz(path) as npz:
        meta = _read_meta(npz)
        problem = _meta_problem(meta) or _layout_problem(npz, meta)
        if problem:
            raise _cannot_load(path, problem)
        params = {name: npz.read(name) for name in PARAM_NAMES}
        optimizer_state = {name[len(OPT_PREFIX):]: npz.read(name) for name in npz.members if name.startswith(OPT_PREFIX)}
        problem = _finite_problem(params) or _finite_problem(optimizer_state)
        if problem:
            raise _cannot_load(path, problem)
        lexicon = _read_lexicon(npz, meta) if meta["format_version"] >= 2 else None
    return Checkpoint(params, meta, optimizer_state, lexicon)


def _cannot_load(path: str | os.PathLike, reason: str) -> CheckpointError:
    return CheckpointError(f"cannot load checkpoint {_shown_path(path)}: {reason}")


def _shown_path(path: str | os.PathLike) -> str:
    """A path as a message shows it: as it is when short and printable, else through quote()."""
    text = str(path)
    return text if len(text) <= QUOTE_LIMIT and text.isprintable() else quote(text)


def _shown(value: Any) -> str:
    """A value read from a file as a message shows it: a str quoted, anything else as JSON; cut to ~80 characters."""
    if isinstance(value, str):
        return quote(value)
    text = json.dumps(value, default=repr)  # repr: a caller's meta may hold anything
    return text if len(text) <= QUOTE_LIMIT else quote(text)


@dataclass
class _Member:
    """One .npy entry of an .npz: its header read, its data not yet."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int  # where the data starts, after the .npy header

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


_NPY_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
# What zipfile, zlib and numpy's header parser raise for a damaged file (RuntimeError: an encrypted entry).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, RuntimeError)


class _Npz:
    """An .npz read with care: every entry's .npy header at opening, data only on request, and no
    more inflated data in all than max(64 MiB, 32 x the file's size)."""

    def __init__(self, path: str | os.PathLike, file):
        self.path = path
        self.zip = zipfile.ZipFile(file)
        infos = self.zip.infolist()
        allowed = max(INFLATE_FLOOR, INFLATE_RATIO * os.fstat(file.fileno()).st_size)
        self.budget = allowed - sum(info.file_size for info in infos)  # what the lexicon may still inflate
        if self.budget < 0:
            raise _cannot_load(path, f"its entries inflate to {allowed - self.budget:,} bytes, more than a file "
                                     f"of its size may ({allowed:,}; a zip bomb?)")
        self.members: dict[str, _Member] = {}
        for info in infos:
            self._add(info)

    def _add(self, info: zipfile.ZipInfo) -> None:
        """Read the .npy header of one entry, refusing anything but a plain array of the size the zip says."""
        name = info.filename.removesuffix(".npy")
        if name == info.filename:
            raise _cannot_load(self.path, "not an rnnac checkpoint (a zip with entries that are not arrays)")
        if name in self.members or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _cannot_load(self.path, f"not a valid .npz file (entry {quote(name)} is repeated or compressed "
                                          "in a way numpy never writes)")
        with self.zip.open(info) as f:
            read_header = _NPY_HEADER_READERS.get(npy_format.read_magic(f))
            if read_header is None:
                raise _cannot_load(self.path, f"entry {quote(name)} is not a .npy array numpy writes (version 1 or 2)")
            member = _Member(info, *read_header(f), offset=f.tell())
        if member.dtype.hasobject:  # an object array, which only pickle can rebuild
            raise _cannot_load(self.path, "it holds pickled objects, which rnnac refuses to load")
        if info.file_size != member.offset + member.nbytes:
            raise _cannot_load(self.path, f"not a valid .npz file (entry {quote(name)} is {info.file_size:,} bytes, "
                                          f"its header says {member.offset + member.nbytes:,})")
        self.members[name] = member

    def read_bytes(self, name: str) -> bytes:
        """The data of entry `name`, exactly the bytes its header announced (checked against the zip)."""
        member = self.members[name]
        with self.zip.open(member.info) as f:
            f.seek(member.offset)
            data = f.read(member.nbytes)  # reads to the end of the entry, so zipfile checks its CRC
        if len(data) != member.nbytes:
            raise EOFError(name)
        return data

    def read(self, name: str) -> np.ndarray:
        """Entry `name` as a fresh, writable array."""
        member = self.members[name]
        array = np.frombuffer(bytearray(self.read_bytes(name)), dtype=member.dtype)
        return array.reshape(member.shape, order="F" if member.fortran_order else "C")


@contextlib.contextmanager
def _open_npz(path: str | os.PathLike):
    """An _Npz of the file at `path`; CheckpointError if it is missing, unreadable or not an .npz."""
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise _cannot_load(path, "no such file") from None
    except IsADirectoryError:
        raise _cannot_load(path, "it is a directory") from None
    except OSError as e:
        raise _cannot_load(path, e.strerror or "it cannot be read") from None
    with file:
        try:
            magic = file.read(6)
            if magic.startswith(b"\x93NUMPY"):
                raise _cannot_load(path, "not a valid .npz file: a single .npy array, which is not an rnnac checkpoint")
            if magic[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # what np.load takes for a zip
                raise _cannot_load(path, "not a valid .npz file (truncated or corrupt?)")
            yield _Npz(path, file)
        except _DAMAGED:
            raise _cannot_load(path, "not a valid .npz file (truncated or corrupt?)") from None


def _read_meta(npz: _Npz) -> dict[str, Any]:
    """The JSON object stored as a 0-d string array, read after checking the entries are there."""
    missing = [name for name in ("meta", *PARAM_NAMES) if name not in npz.members]
    if missing:
        raise _cannot_load(npz.path, f"not an rnnac checkpoint (no {', '.join(missing)})")
    member = npz.members["meta"]
    if member.shape != () or member.dtype.kind != "U":
        raise _cannot_load(npz.path, "not an rnnac checkpoint (meta is not a string)")
    if member.nbytes > META_LIMIT:
        raise _cannot_load(npz.path, f"meta is {member.nbytes:,} bytes, more than the {META_LIMIT:,} a checkpoint's may be")
    try:
        meta = json.loads(npz.read("meta").item())
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise _cannot_load(npz.path, "meta is not valid JSON") from None
    if not isinstance(meta, dict):
        raise _cannot_load(npz.path, "meta is not a JSON object")
    _check_version(npz.path, meta)
    return meta


def _check_version(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """CheckpointError unless this rnnac reads meta's format_version."""
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise _cannot_load(path, f"unknown format_version {_shown(version)}")
    if version > FORMAT_VERSION:
        raise _cannot_load(path, f"written by a newer rnnac (format {version}); "
                                 f"this one reads up to {FORMAT_VERSION}")


def _layout_problem(npz: _Npz, meta: dict[str, Any]) -> str | None:
    """Why the entries' headers do not fit the model `meta` describes, or None; nothing is read."""
    shapes = _param_shapes(meta)
    problems = (_optimizer_problem(name[len(OPT_PREFIX):], member.shape, member.dtype, shapes)
                for name, member in npz.members.items() if name.startswith(OPT_PREFIX))
    return (_params_problem({name: (m.shape, m.dtype) for name, m in npz.members.items()}, meta)
            or next((problem for problem in problems if problem), None))


# --- the lexicon, on loading -------------------------------------------------------------


def _read_lexicon(npz: _Npz, meta: dict[str, Any]) -> LexiconData | None:
    """The lexicon of a format-2 checkpoint, checked whole (checksum, sizes, order), or None if it has none."""
    if "lexicon" not in meta and not any(name in npz.members for name in LEXICON_ENTRIES):
        return None
    problem = _lexicon_layout_problem(npz, meta.get("lexicon"))
    if problem:
        raise _cannot_load(npz.path, problem)
    summary = meta["lexicon"]
    n = summary["n_words"]
    text = _inflate(npz, "lexicon.words", LEXICON_BYTES_PER_WORD * n + 4096)
    counts = _inflate(npz, "lexicon.counts", 8 * n)
    held_out = npz.read_bytes("lexicon.held_out")
    if _lexicon_sha256(text, counts, held_out) != summary["sha256"]:
        raise _cannot_load(npz.path, "the lexicon's sha256 does not match (the file is damaged)")
    lexicon, problem = _decode_lexicon(text, counts, held_out, n)
    if not problem and not math.isclose(summary["total_count"], lexicon.counts.sum(), rel_tol=1e-9, abs_tol=1e-9):
        problem = f"meta lexicon total_count {_shown(summary['total_count'])} is not the sum of its counts"
    if problem:
        raise _cannot_load(npz.path, f"lexicon: {problem}")
    return lexicon


def _lexicon_layout_problem(npz: _Npz, summary: Any) -> str | None:
    """Why meta["lexicon"] and the lexicon entries' headers do not fit together, or None; nothing is read."""
    missing = [name for name in LEXICON_ENTRIES if name not in npz.members]
    if missing or not isinstance(summary, dict):
        return f"the lexicon is incomplete (no {', '.join(missing) or 'meta lexicon'})"
    n, digest, total = summary.get("n_words"), summary.get("sha256"), summary.get("total_count")
    if type(n) is not int or not 0 <= n <= MAX_LEXICON_WORDS:
        return f"meta lexicon n_words {_shown(n)} is not an int from 0 to {MAX_LEXICON_WORDS:,}"
    if not isinstance(digest, str) or type(total) not in NUMBER:
        return "meta lexicon needs sha256 (a string) and total_count (a number)"
    words, counts, held_out = (npz.members[name] for name in LEXICON_ENTRIES)
    if not (words.dtype == counts.dtype == np.uint8 and len(words.shape) == len(counts.shape) == 1):
        return "lexicon.words and lexicon.counts must be 1-d uint8 arrays"
    if held_out.dtype != np.dtype("<i4") or len(held_out.shape) != 1 or held_out.shape[0] > n:
        return f"lexicon.held_out must be at most {n:,} int32 indices, not {held_out.dtype} {held_out.shape}"
    return None


def _inflate(npz: _Npz, name: str, limit: int) -> bytes:
    """The zlib stream in entry `name`, inflated to at most `limit` bytes (and the file's inflation budget)."""
    limit = min(limit, npz.budget)
    inflater = zlib.decompressobj()
    data = inflater.decompress(npz.read_bytes(name), limit + 1)  # one byte more than allowed tells "too much"
    if len(data) > limit or not inflater.eof or inflater.unused_data:
        raise _cannot_load(npz.path, f"{name} is not one zlib stream of at most {limit:,} bytes")
    npz.budget -= len(data)
    return data


def _decode_lexicon(text: bytes, counts: bytes, held_out: bytes, n: int) -> tuple[LexiconData | None, str | None]:
    """The LexiconData the checked bytes hold, or why they cannot be one."""
    try:
        words = text.decode("utf-8").split("\n") if n or text else []
    except UnicodeDecodeError:
        return None, "the words are not UTF-8"
    if len(words) != n or len(counts) != 8 * n:
        return None, f"{len(words):,} words and {len(counts) // 8:,} counts, meta says {n:,} words"
    index = np.frombuffer(held_out, dtype="<i4")  # (n_held_out,)
    if index.size and (index[0] < 0 or index[-1] >= n or (np.diff(index) <= 0).any()):
        return None, f"held_out is not increasing indices below {n:,}"
    mask = np.zeros(n, dtype=bool)  # (N,)
    mask[index] = True
    lexicon = LexiconData(words, np.frombuffer(counts, dtype="<f8").astype(np.float64), mask)
    return lexicon, _words_problem(words) or _counts_problem(lexicon.counts)


# --- using a checkpoint ------------------------------------------------------------------


def load_model(path: str | os.PathLike):
    """(RNN, Vocab, lowercase, Checkpoint) from a checkpoint, ready for inference; lowercase is
    the case folding the model was trained with. CheckpointError if it cannot be used."""
    from rnnac.model import ACTIVATIONS, RNN

    ckpt = load_checkpoint(path)
    activation = ckpt.meta["activation"]
    if activation not in ACTIVATIONS:
        raise _cannot_load(path, f"activation {_shown(activation)} is not one of {', '.join(ACTIVATIONS)}")
    model = RNN(ckpt.params, activation)
    lowercase = ckpt.meta["config"].get("data", {}).get("lowercase", True)
    return model, vocab_from_meta(ckpt.meta), bool(lowercase), ckpt


def resolve_checkpoint(path: str | os.PathLike | None = None) -> Path:
    """The checkpoint to use: `path`, else $RNNAC_CHECKPOINT, else the bundled model."""
    if path:
        return Path(path)
    if os.environ.get("RNNAC_CHECKPOINT"):
        return Path(os.environ["RNNAC_CHECKPOINT"])
    if not BUNDLED_MODEL.exists():
        raise CheckpointError("no bundled model; train one (`make model`, or `rnnac train configs/default.yaml`) "
                              "and pass it with -c/--checkpoint or $RNNAC_CHECKPOINT")
    return BUNDLED_MODEL


def load_for_inference(path: str | os.PathLike | None = None):
    """(model, vocab, lowercase, meta) from `resolve_checkpoint(path)`; CheckpointError if unusable."""
    model, vocab, lowercase, ckpt = load_model(resolve_checkpoint(path))
    return model, vocab, lowercase, ckpt.meta


def describe(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """What `rnnac info` shows: vocabulary, sizes, parameter count, training state, lexicon, config."""
    path = resolve_checkpoint(path)
    model, vocab, _, ckpt = load_model(path)
    meta, lexicon = ckpt.meta, ckpt.lexicon
    facts = {"path": str(path), "format_version": meta["format_version"], "chars": "".join(vocab.chars),
             "vocab_size": len(vocab), "hidden_size": model.hidden_size, "activation": model.activation,
             "dtype": str(model.dtype), "parameters": model.n_params(), "step": meta["step"],
             "epoch": meta["epoch"], "best_val_loss": meta["best_val_loss"],
             "lexicon_words": None if lexicon is None else len(lexicon.words),
             "lexicon_held_out": None if lexicon is None else int(lexicon.held_out.sum())}
    if "mixture_lambda" in meta:
        facts["mixture_lambda"] = meta["mixture_lambda"]
    return facts | {"config": meta["config"]}


def export_for_inference(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a checkpoint, lexicon included, without its optimizer state (a third of the size
    for Adam's two moments), for shipping a model that will only complete words."""
    ckpt = load_checkpoint(src)
    save_checkpoint(dst, ckpt.params, ckpt.meta, lexicon=ckpt.lexicon)
    return Path(dst)
