"""Checkpoints: parameters, optimizer state and a JSON description in one .npz file; finding
the one to use (a path, $RNNAC_CHECKPOINT or the bundled model) and describing it.

No pickle anywhere: every entry is a plain numeric array, and the description is a
JSON string stored as a 0-d unicode array under "meta". Entries:

    U (H, K), W (H, H), b (H,), V (K, H), c (K,)   the parameters, one float dtype
    opt.<name>                                     optimizer state, e.g. opt.m.U, opt.t
    meta                                           JSON: format_version, chars, activation,
                                                   hidden_size, dtype, config, step, epoch,
                                                   best_val_loss, rng_state

H is the hidden size, K the vocabulary size including the boundary id 0, so
K == len(meta["chars"]) + 1. A save is atomic: a crash (even SIGKILL) leaves either
the old file or the new one at the path, never a torn mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnac.data import Vocab
from rnnac.model import FLOAT_DTYPES, PARAM_NAMES
from rnnac.errors import CheckpointError

FORMAT_VERSION = 1
BUNDLED_MODEL = Path(__file__).parent / "models" / "en.npz"  # the fallback model, trained by `make model`
REQUIRED_META = ("chars", "activation", "hidden_size", "dtype", "config",
                 "step", "epoch", "best_val_loss", "rng_state")
OPT_PREFIX = "opt."


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns.

    optimizer_state is the flat dict `Optimizer.state_dict()` gave ({"m.U": ..., "t": 0-d
    array}), or {} when none was saved.
    """

    params: dict[str, np.ndarray]
    meta: dict[str, Any]
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)


def vocab_from_meta(meta: dict[str, Any]) -> Vocab:
    """The vocabulary a checkpoint was trained with: `chars[i]` is token id i + 1."""
    return Vocab(meta["chars"])


def save_checkpoint(path: str | os.PathLike, params: dict[str, np.ndarray],
                    meta: dict[str, Any], optimizer_state: dict[str, np.ndarray] | None = None) -> None:
    """Write `params`, `meta` (+ format_version) and `optimizer_state` to `path` atomically.

    optimizer_state is a flat dict of numeric arrays (or scalars), as
    `Optimizer.state_dict()` makes it; each is stored as "opt." + its name. Raises
    ValueError for a caller's mistake (missing meta key, shapes that disagree with
    meta, values JSON or npz cannot hold); nothing is written then.
    """
    path = Path(path)
    entries = _entries(params, meta, optimizer_state or {})  # validate before touching disk
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits next to the target so os.replace is a rename within
    # one filesystem, which POSIX makes atomic. Its dot prefix hides leftovers of a
    # SIGKILLed save, the one case the cleanup below cannot run.
    import tempfile  # here, not at the top: `rnnac complete` only loads, and starts faster without it

    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 is too private for a model file
            np.savez(f, **entries)  # a file object, because a name would gain ".npz"
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp_name, path)
    except BaseException:  # KeyboardInterrupt too: never leave a stray temp file
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)  # makes the rename itself survive a power cut


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`, checking it is whole and consistent.

    Raises CheckpointError, with a one-line message naming `path`, if the file is
    missing, not an npz, holds pickled objects, is not an rnnac checkpoint, comes
    from a newer format, or has parameters that disagree with its meta.
    """
    entries = _read_entries(path)
    _check_entries(path, entries)
    meta = _parse_meta(path, entries.pop("meta"))
    _check_version(path, meta)
    params = {name: entries.pop(name) for name in PARAM_NAMES}
    problem = _inconsistency(params, meta)
    if problem:
        raise _cannot_load(path, problem)
    optimizer_state = {name[len(OPT_PREFIX):]: value for name, value in entries.items()
                       if name.startswith(OPT_PREFIX)}
    # Arrays np.load reads out of a zip are fresh, but say it rather than rely on it.
    params = {name: np.require(p, requirements="W") for name, p in params.items()}
    return Checkpoint(params, meta, optimizer_state)


def _cannot_load(path: str | os.PathLike, reason: str) -> CheckpointError:
    return CheckpointError(f"cannot load checkpoint {path}: {reason}")


def _read_entries(path: str | os.PathLike) -> dict[str, Any]:
    """Every entry of the .npz at `path`, read now; CheckpointError if it cannot be read."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise _cannot_load(path, "no such file") from None
    except IsADirectoryError:
        raise _cannot_load(path, "it is a directory") from None
    except (zipfile.BadZipFile, EOFError, ValueError, OSError):
        # ValueError is np.load's answer to anything that is neither .npz nor .npy
        raise _cannot_load(path, "not a valid .npz file (truncated or corrupt?)") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _cannot_load(path, "not an rnnac checkpoint (a single .npy array, not an .npz)")
    try:
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except ValueError as e:
        if "allow_pickle" in str(e):  # an object array, which only pickle can rebuild
            raise _cannot_load(path, "it holds pickled objects, which rnnac refuses to load") from None
        raise _cannot_load(path, "not a valid .npz file (truncated or corrupt?)") from None
    except (zipfile.BadZipFile, EOFError, OSError):
        raise _cannot_load(path, "not a valid .npz file (truncated or corrupt?)") from None


def _check_entries(path: str | os.PathLike, entries: dict[str, Any]) -> None:
    """CheckpointError unless the entries are arrays and include meta and every parameter."""
    if not all(isinstance(value, np.ndarray) for value in entries.values()):
        raise _cannot_load(path, "not an rnnac checkpoint (a zip with entries that are not arrays)")
    missing = [name for name in ("meta", *PARAM_NAMES) if name not in entries]
    if missing:
        raise _cannot_load(path, f"not an rnnac checkpoint (no {', '.join(missing)})")


def _parse_meta(path: str | os.PathLike, raw_meta: np.ndarray) -> dict[str, Any]:
    """The JSON object stored as a 0-d string array; CheckpointError if it is anything else."""
    if raw_meta.ndim != 0 or raw_meta.dtype.kind != "U":
        raise _cannot_load(path, "not an rnnac checkpoint (meta is not a string)")
    try:
        meta = json.loads(raw_meta.item())
    except ValueError:
        raise _cannot_load(path, "meta is not valid JSON") from None
    if not isinstance(meta, dict):
        raise _cannot_load(path, "meta is not a JSON object")
    return meta


def _check_version(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """CheckpointError unless this rnnac reads meta's format_version."""
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise _cannot_load(path, f"unknown format_version {version!r}")
    if version > FORMAT_VERSION:
        raise _cannot_load(path, f"written by a newer rnnac (format {version}); "
                                 f"this one reads up to {FORMAT_VERSION}")


def _entries(params: dict[str, np.ndarray], meta: dict[str, Any],
             optimizer_state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The named arrays of the .npz, after checking what the caller passed."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"checkpoint meta is missing {', '.join(missing)}")
    if set(params) != set(PARAM_NAMES):
        raise ValueError(f"checkpoint params must be exactly {', '.join(PARAM_NAMES)}, "
                         f"got {', '.join(sorted(params))}")
    params = {name: np.asarray(params[name]) for name in PARAM_NAMES}
    meta = {**meta, "format_version": FORMAT_VERSION}
    problem = _inconsistency(params, meta)
    if problem:
        raise ValueError(f"checkpoint params disagree with meta: {problem}")
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint meta is not JSON-serialisable: {e}") from None
    opt = {}
    for name, value in optimizer_state.items():
        array = np.asarray(value)
        if not isinstance(name, str) or not name:
            raise ValueError(f"optimizer state name {name!r} is not a non-empty str")
        if array.dtype.kind not in "biuf":  # strings and objects would need pickle or be lost
            raise ValueError(f"optimizer state {name} is not a numeric array (dtype {array.dtype})")
        opt[OPT_PREFIX + name] = array
    return {**params, **opt, "meta": np.array(meta_json)}


def _inconsistency(params: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
    """Why `params` cannot be the model `meta` describes, or None if they agree."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        return f"meta is missing {', '.join(missing)}"
    if not isinstance(meta["config"], dict) or not isinstance(meta["config"].get("data", {}), dict):
        return "meta config is not a mapping of sections"
    chars, hidden_size, dtype = meta["chars"], meta["hidden_size"], meta["dtype"]
    if (not isinstance(chars, list) or not all(isinstance(ch, str) and len(ch) == 1 for ch in chars)
            or len(set(chars)) != len(chars)):
        return "meta chars must be a list of distinct single characters"
    if type(hidden_size) is not int or hidden_size < 1:
        return f"meta hidden_size {hidden_size!r} is not a positive int"
    if dtype not in FLOAT_DTYPES:
        return f"meta dtype {dtype!r} is not one of {', '.join(FLOAT_DTYPES)}"
    H, K = hidden_size, len(chars) + 1
    expected = {"U": (H, K), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
    for name, shape in expected.items():
        if params[name].shape != shape:
            return (f"{name} has shape {params[name].shape}, expected {shape} "
                    f"(hidden_size {H}, {K} tokens)")
        if params[name].dtype != np.dtype(dtype):
            return f"{name} has dtype {params[name].dtype}, meta says {dtype}"
    return None


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


def load_model(path: str | os.PathLike):
    """(RNN, Vocab, lowercase, Checkpoint) from a checkpoint, ready for inference; lowercase is
    the case folding the model was trained with. CheckpointError if it cannot be used."""
    from rnnac.model import RNN

    ckpt = load_checkpoint(path)
    try:
        model = RNN(ckpt.params, ckpt.meta["activation"])
    except ValueError as e:  # e.g. an activation this rnnac does not know
        raise _cannot_load(path, str(e)) from None
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
    """What `rnnac info` shows: vocabulary, sizes, parameter count, training state, config."""
    path = resolve_checkpoint(path)
    model, vocab, _, meta = load_for_inference(path)
    return {"path": str(path), "format_version": meta["format_version"], "chars": "".join(vocab.chars),
            "vocab_size": len(vocab), "hidden_size": model.hidden_size, "activation": model.activation,
            "dtype": str(model.dtype), "parameters": model.n_params(), "step": meta["step"],
            "epoch": meta["epoch"], "best_val_loss": meta["best_val_loss"], "config": meta["config"]}


def export_for_inference(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a checkpoint without its optimizer state (a third of the size for Adam's two
    moments), for shipping a model that will only complete words."""
    ckpt = load_checkpoint(src)
    save_checkpoint(dst, ckpt.params, ckpt.meta)
    return Path(dst)
