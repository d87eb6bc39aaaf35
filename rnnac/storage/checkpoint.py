"""Checkpoints: parameters, optimizer state, the word list and a JSON description in one .npz
file; finding the one to use (a path, $RNNAC_CHECKPOINT or the bundled model) and describing it.

No pickle anywhere: every entry is a plain numeric array, and the description is a
JSON string stored as a 0-d unicode array under "meta". Entries:

    U (H, K), W (H, H), b (H,), V (K, H), c (K,)   the parameters, one float dtype
    opt.<name>                                     optimizer state: opt.<slot>.<parameter> (the
                                                   parameter's shape, e.g. opt.m.U) and opt.t (0-d int)
    lexicon.words (bytes,) uint8                   the UTF-8 of "\\n".join(words) (zlib'd in format 2)
    lexicon.counts (bytes,) uint8                  zlib of the counts, float64 little-endian
    lexicon.held_out (n_held_out,) int32           indices of the validation words, increasing
    lexicon.rnn_logp (n_words,) float32            optional: each word's log P_rnn under these parameters
                                                   (-inf where the model cannot spell it), which
                                                   bounds the search where counts tie
    lexicon.trie.<name> (length,)                  optional: the trie of those words (Lexicon.arrays,
                                                   TRIE_ARRAYS), so that loading reads it instead of
                                                   building it; checked when first read (trie_problem)
    meta                                           JSON: format_version, chars, activation,
                                                   hidden_size, dtype, config, step, epoch,
                                                   best_val_loss, rng_state; with a lexicon,
                                                   lexicon = {n_words, sha256, total_count, text_bytes,
                                                   nfc, lower, unaccented, chars, longest, and with
                                                   a trie trie = {chars, lowercase, fold_accents,
                                                   skipped, total, longest}}
                                                   (lexicon.py: lexicon_entries, StoredTrie)

H is the hidden size, K the vocabulary size including the boundary id 0, so
K == len(meta["chars"]) + 1. Format 1 is format 2 without the lexicon; format 2 is format 3
with the words zlib'd (a cold start reads format 3's without inflating them). The lexicon's sha256
is over the uncompressed words bytes, counts bytes and held_out bytes, in that order.

A save is atomic: a crash (even SIGKILL) leaves either the old file or the new one at the
path, never a torn mix. A load trusts nothing in the file: it reads every entry's .npy header
(npz.py), checks it against meta, and only then reads data, so a crafted file costs no more
memory than the model it claims to be. lexicon.py writes and decodes the lexicon's entries.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnac.engine.model import ACTIVATIONS, FLOAT_DTYPES, PARAM_NAMES, RNN
from rnnac.engine.vocab import Vocab, is_control
from rnnac.errors import QUOTE_LIMIT, CheckpointError, quote, shown
from rnnac.storage.atomic import replace_atomically
from rnnac.storage.folding import Folding
from rnnac.storage.lexicon import (LEXICON_ENTRIES, OPTIONAL_TRIE_ARRAYS, RNN_LOGP_ENTRY, TRIE_ARRAYS, TRIE_ENTRY_PREFIX,
                                   WORD_STARTS_ARRAYS, WORD_STARTS_ENTRY_PREFIX, LexiconData, StoredTrie, StoredWordStarts,
                                   deferred_problem, lexicon_entries, read_lexicon, trie_problem, word_starts_problem)
from rnnac.storage.npz import Npz, NpzError, open_npz

FORMAT_VERSION = 3
BUNDLED_MODEL = Path(__file__).parent.parent / "models" / "en.npz"  # the fallback model, trained by `make model`
BUNDLED_NAME = "bundled"  # what -c or train.init_from may say for it
REQUIRED_META = ("chars", "activation", "hidden_size", "dtype", "config",
                 "step", "epoch", "best_val_loss", "rng_state")
OPT_PREFIX = "opt."

# What a file may claim before it is refused unread:
META_LIMIT = 16 * 2**20  # bytes of meta
MAX_HIDDEN_SIZE = 2**16
MAX_LEXICON_WORDS = 10**7

DEFAULT_LAMBDA = 0.5  # the lexicon's weight for a checkpoint that stores none (see TrainedModel.mixture_lambda)

NUMBER, NULL = (int, float), type(None)
META_TYPES = {  # key: (the JSON types it may have, how a message says so); bool is never an int here
    "chars": ((list,), "a list"), "config": ((dict,), "a mapping"), "activation": ((str,), "a string"),
    "step": ((int, NULL), "an int or null"), "epoch": ((int, NULL), "an int or null"),
    "best_val_loss": ((*NUMBER, NULL), "a number or null"), "rng_state": ((dict, NULL), "a mapping or null"),
    "mixture_lambda": ((*NUMBER, NULL), "a number or null"), "mixture_fit": ((str, NULL), "a string or null"),
    "lexicon_edits": ((dict, NULL), "a mapping or null"),
}


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
    replace_atomically(path, lambda f: np.savez(f, **entries))  # a file object, because a name would gain ".npz"


def _entries(params: dict[str, np.ndarray], meta: dict[str, Any], optimizer_state: dict[str, np.ndarray],
             lexicon: LexiconData | None) -> dict[str, np.ndarray]:
    """The named arrays of the .npz, after checking what the caller passed."""
    params, meta = _checked_model(params, meta)
    lexicon_arrays = {}
    if lexicon is not None:
        lexicon_arrays, meta["lexicon"] = lexicon_entries(lexicon)
    opt = _optimizer_entries(optimizer_state, {name: p.shape for name, p in params.items()})
    return {**params, **opt, **lexicon_arrays, "meta": np.array(_meta_json(meta))}


def _checked_model(params: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(the parameters as arrays, meta as saved: its lexicon summary left out, format_version set);
    ValueError if they cannot describe one model."""
    _check_names(params, meta)
    params = {name: np.asarray(params[name]) for name in PARAM_NAMES}
    meta = {key: value for key, value in meta.items() if key != "lexicon"} | {"format_version": FORMAT_VERSION}
    problem = (_meta_problem(meta) or _params_problem({name: (p.shape, p.dtype) for name, p in params.items()}, meta)
               or _finite_problem(params))
    if problem:
        raise ValueError(f"cannot save checkpoint: {problem}")
    return params, meta


def _check_names(params: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """ValueError unless meta has every REQUIRED_META key and params are exactly the parameters."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"checkpoint meta is missing {', '.join(missing)}")
    if set(params) != set(PARAM_NAMES):
        raise ValueError(f"checkpoint params must be exactly {', '.join(PARAM_NAMES)}, "
                         f"got {', '.join(sorted(params))}")


def _meta_json(meta: dict[str, Any]) -> str:
    """meta as the JSON text the file stores; ValueError for a value JSON cannot hold."""
    try:
        return json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint meta is not JSON-serialisable: {e}") from None


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


# --- what a checkpoint must be (shared by saving and loading) ------------------------------


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """Why `meta` cannot describe a model, or None: missing keys, wrong types, impossible values."""
    return _meta_types_problem(meta) or _chars_problem(meta["chars"]) or _size_problem(meta["hidden_size"], meta["dtype"])


def _meta_types_problem(meta: dict[str, Any]) -> str | None:
    """Why `meta` lacks a key or holds one of the wrong JSON type, or None."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        return f"meta is missing {', '.join(missing)}"
    for key, (types, wanted) in META_TYPES.items():
        if key in meta and (isinstance(meta[key], bool) or not isinstance(meta[key], types)):
            return f"meta {key} {shown(meta[key])} is not {wanted}"
    if meta.get("mixture_lambda") is not None and not 0.0 <= meta["mixture_lambda"] <= 1.0:
        return f"meta mixture_lambda {shown(meta['mixture_lambda'])} is not in [0, 1]"
    if not all(isinstance(meta["config"].get(section, {}), dict) for section in ("data", "model", "train", "output")):
        return "meta config is not a mapping of sections"
    return None


def _chars_problem(chars: list) -> str | None:
    """Why meta's `chars` cannot be a vocabulary, or None."""
    if not all(isinstance(ch, str) and len(ch) == 1 for ch in chars) or len(set(chars)) != len(chars):
        return "meta chars must be a list of distinct single characters"
    control = next((ch for ch in chars if is_control(ch)), None)
    if control is not None:
        return f"meta chars hold the control character U+{ord(control):04X}"
    return None


def _size_problem(hidden_size: Any, dtype: Any) -> str | None:
    """Why meta's hidden_size or dtype cannot be a model's, or None."""
    if type(hidden_size) is not int or not 1 <= hidden_size <= MAX_HIDDEN_SIZE:
        return f"meta hidden_size {shown(hidden_size)} is not an int from 1 to {MAX_HIDDEN_SIZE:,}"
    if dtype not in FLOAT_DTYPES:
        return f"meta dtype {shown(dtype)} is not one of {', '.join(FLOAT_DTYPES)}"
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


def load_checkpoint(path: str | os.PathLike, verify_lexicon: bool = True) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`, checking it is whole and consistent.

    Raises CheckpointError, with a one-line message naming `path`, if the file is
    missing, not an npz, holds pickled objects, is not an rnnac checkpoint, comes
    from a newer format, has meta of the wrong types, parameters that disagree with
    its meta or are not finite, or a damaged lexicon; or if it claims more data than
    its size can honestly hold (a zip bomb). verify_lexicon=False leaves the lexicon's checksum
    and order to LexiconData.check, for a reader of a few of its words.
    """
    try:
        with open_npz(path) as npz:
            return _read(npz, path, verify_lexicon)
    except NpzError as e:  # its message is the reason, as _cannot_load words it
        raise _cannot_load(path, str(e)) from None


def _read(npz: Npz, path: str | os.PathLike, verify_lexicon: bool = True) -> Checkpoint:
    """The checkpoint in the open file at `path`: meta and the entries' headers are checked before any data is read."""
    meta = _read_meta(npz, path)
    problem = _meta_problem(meta) or _layout_problem(npz, meta)
    if problem:
        raise _cannot_load(path, problem)
    params = {name: npz.read(name) for name in PARAM_NAMES}
    optimizer_state = {name[len(OPT_PREFIX):]: npz.read(name) for name in npz.members if name.startswith(OPT_PREFIX)}
    problem = _finite_problem(params) or _finite_problem(optimizer_state)
    if problem:
        raise _cannot_load(path, problem)
    lexicon = _read_lexicon(npz, meta, path, verify_lexicon) if meta["format_version"] >= 2 else None
    return Checkpoint(params, meta, optimizer_state, lexicon)


def _cannot_load(path: str | os.PathLike, reason: str) -> CheckpointError:
    return CheckpointError(f"cannot load checkpoint {_shown_path(path)}: {reason}")


def _shown_path(path: str | os.PathLike) -> str:
    """A path as a message shows it: as it is when short and printable, else through quote()."""
    text = str(path)
    return text if len(text) <= QUOTE_LIMIT and text.isprintable() else quote(text)


def _read_meta(npz: Npz, path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object stored as a 0-d string array, read after checking the entries are there."""
    missing = [name for name in ("meta", *PARAM_NAMES) if name not in npz.members]
    if missing:
        raise _cannot_load(path, f"not an rnnac checkpoint (no {', '.join(missing)})")
    member = npz.members["meta"]
    if member.shape != () or member.dtype.kind != "U":
        raise _cannot_load(path, "not an rnnac checkpoint (meta is not a string)")
    if member.nbytes > META_LIMIT:
        raise _cannot_load(path, f"meta is {member.nbytes:,} bytes, more than the {META_LIMIT:,} a checkpoint's may be")
    try:
        meta = json.loads(npz.read("meta").item())
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise _cannot_load(path, "meta is not valid JSON") from None
    if not isinstance(meta, dict):
        raise _cannot_load(path, "meta is not a JSON object")
    _check_version(path, meta)
    return meta


def _check_version(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """CheckpointError unless this rnnac reads meta's format_version."""
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise _cannot_load(path, f"unknown format_version {shown(version)}")
    if version > FORMAT_VERSION:
        raise _cannot_load(path, f"written by a newer rnnac (format {version}); "
                                 f"this one reads up to {FORMAT_VERSION}")


def _layout_problem(npz: Npz, meta: dict[str, Any]) -> str | None:
    """Why the entries' headers do not fit the model `meta` describes, or None; nothing is read."""
    shapes = _param_shapes(meta)
    problems = (_optimizer_problem(name[len(OPT_PREFIX):], member.shape, member.dtype, shapes)
                for name, member in npz.members.items() if name.startswith(OPT_PREFIX))
    return (_params_problem({name: (m.shape, m.dtype) for name, m in npz.members.items()}, meta)
            or next((problem for problem in problems if problem), None))


# --- the lexicon, on loading -------------------------------------------------------------


def _read_lexicon(npz: Npz, meta: dict[str, Any], path: str | os.PathLike, verify: bool = True) -> LexiconData | None:
    """The lexicon of a format-2 checkpoint, checked whole (checksum, sizes, order), or None if it
    has none. verify=False leaves the checksum and the order to LexiconData.check (read_lexicon)."""
    if "lexicon" not in meta and not any(name in npz.members for name in LEXICON_ENTRIES):
        return None
    summary = meta.get("lexicon")
    problem = _lexicon_layout_problem(npz, summary)
    if problem:
        raise _cannot_load(path, problem)
    lexicon, problem = read_lexicon(npz, summary, verify, words_zlib=meta["format_version"] < 3)
    if not problem and not math.isclose(summary["total_count"], lexicon.counts.sum(), rel_tol=1e-9, abs_tol=1e-9):
        problem = f"lexicon: meta lexicon total_count {shown(summary['total_count'])} is not the sum of its counts"
    if problem:
        raise _cannot_load(path, problem)
    if not verify:
        lexicon._deferred = lambda: _raise_if(path, deferred_problem(lexicon, summary["sha256"]))
    if "trie" in summary:
        problem = _trie_layout_problem(npz, summary["trie"])
        if problem:
            raise _cannot_load(path, f"lexicon trie: {problem}")
        K, n_words, identity = len(summary["trie"]["chars"]) + 1, summary["n_words"], npz.identity
        lexicon.trie = StoredTrie(summary["trie"], read=lambda: _read_trie(path, identity, n_words, K))
    if "wordstarts" in summary:
        facts = summary["wordstarts"]
        problem = _word_starts_layout_problem(npz, facts)
        if problem:
            raise _cannot_load(path, f"lexicon word starts: {problem}")
        identity = npz.identity
        lexicon.word_starts = StoredWordStarts(facts, read=lambda: _read_word_starts(path, identity, facts))
    return lexicon


def _word_starts_layout_problem(npz: Npz, facts: Any) -> str | None:
    """Why meta lexicon wordstarts and its entries' headers do not fit together, or None; nothing is read."""
    if (not isinstance(facts, dict) or type(facts.get("lowercase")) is not bool or type(facts.get("fold_accents")) is not bool
            or type(facts.get("stride")) is not int or facts["stride"] < 1 or type(facts.get("n_entries")) is not int
            or facts["n_entries"] < 0):
        return "meta lexicon wordstarts needs lowercase and fold_accents (true or false), stride (an int >= 1) and n_entries"
    stored = {name[len(WORD_STARTS_ENTRY_PREFIX):]: m for name, m in npz.members.items()
              if name.startswith(WORD_STARTS_ENTRY_PREFIX)}
    if set(stored) != set(WORD_STARTS_ARRAYS) or any(m.dtype.str != WORD_STARTS_ARRAYS[n] or len(m.shape) != 1
                                                     for n, m in stored.items()):
        return f"entries {', '.join(sorted(stored)) or 'none'} are not an index of word starts"
    return None


def _read_word_starts(path: str | os.PathLike, identity: tuple, facts: dict) -> dict[str, np.ndarray] | None:
    """The index of word starts in the checkpoint at `path`, checked (word_starts_problem), if it
    is still the file `identity` names; None once it has been replaced or removed."""
    arrays = _read_prefixed(path, identity, WORD_STARTS_ENTRY_PREFIX)
    if arrays is not None:
        _raise_if(path, (problem := word_starts_problem(arrays, facts)) and f"lexicon word starts: {problem}")
    return arrays


def _read_prefixed(path: str | os.PathLike, identity: tuple, prefix: str) -> dict[str, np.ndarray] | None:
    """The entries named prefix + NAME of the checkpoint at `path`, as {NAME: array}, if it is
    still the file `identity` names; None once it has been replaced or removed (a run saves anew)."""
    try:
        with open_npz(path) as npz:
            if npz.identity != identity:
                return None
            return {name[len(prefix):]: np.frombuffer(npz.read_bytes(name), dtype=member.dtype)
                    for name, member in npz.members.items() if name.startswith(prefix)}
    except NpzError as e:
        if str(e) == "no such file":
            return None
        raise _cannot_load(path, str(e)) from None


def _trie_layout_problem(npz: Npz, facts: Any) -> str | None:
    """Why meta lexicon trie and the trie's entries' headers do not fit together, or None; nothing is read."""
    if (not isinstance(facts, dict) or type(facts.get("chars")) is not str or type(facts.get("lowercase")) is not bool
            or type(facts.get("fold_accents", False)) is not bool
            or type(facts.get("skipped")) is not int or facts["skipped"] < 0 or type(facts.get("total")) not in NUMBER
            or not math.isfinite(facts["total"]) or facts["total"] < 0 or type(facts.get("longest")) is not int
            or facts["longest"] < 0):
        return ("meta lexicon trie needs chars (a string), lowercase (and optionally fold_accents) true or false, "
                "skipped and longest (ints >= 0) and total (a number >= 0)")
    stored = {name[len(TRIE_ENTRY_PREFIX):]: member for name, member in npz.members.items() if name.startswith(TRIE_ENTRY_PREFIX)}
    if not set(TRIE_ARRAYS) - set(OPTIONAL_TRIE_ARRAYS) <= set(stored) <= set(TRIE_ARRAYS):
        return f"entries {', '.join(sorted(stored)) or 'none'} are not a trie's"
    bad = next((name for name, m in stored.items() if m.dtype.str not in TRIE_ARRAYS[name] or len(m.shape) != 1), None)
    return bad and f"{TRIE_ENTRY_PREFIX}{bad} must be 1-d {' or '.join(TRIE_ARRAYS[bad])}"


def _read_trie(path: str | os.PathLike, identity: tuple, n_words: int, K: int) -> dict[str, np.ndarray] | None:
    """The trie's arrays in the checkpoint at `path`, checked (trie_problem), if it is still the
    file `identity` names; None once it has been replaced or removed (a run saves anew)."""
    arrays = _read_prefixed(path, identity, TRIE_ENTRY_PREFIX)
    if arrays is not None:
        _raise_if(path, (problem := trie_problem(arrays, n_words, K)) and f"lexicon trie: {problem}")
    return arrays


def _raise_if(path: str | os.PathLike, problem: str | None) -> None:
    if problem:
        raise _cannot_load(path, problem)


def _lexicon_layout_problem(npz: Npz, summary: Any) -> str | None:
    """Why meta["lexicon"] and the lexicon entries' headers do not fit together, or None; nothing is read."""
    missing = [name for name in LEXICON_ENTRIES if name not in npz.members]
    if missing or not isinstance(summary, dict):
        return f"the lexicon is incomplete (no {', '.join(missing) or 'meta lexicon'})"
    return _lexicon_summary_problem(summary) or _lexicon_headers_problem(npz, summary["n_words"])


def _lexicon_summary_problem(summary: dict[str, Any]) -> str | None:
    """Why meta["lexicon"] (n_words, sha256, total_count, text_bytes) is not a lexicon's summary, or None."""
    n, digest, total = summary.get("n_words"), summary.get("sha256"), summary.get("total_count")
    if type(n) is not int or not 0 <= n <= MAX_LEXICON_WORDS:
        return f"meta lexicon n_words {shown(n)} is not an int from 0 to {MAX_LEXICON_WORDS:,}"
    if not isinstance(digest, str) or type(total) not in NUMBER:
        return "meta lexicon needs sha256 (a string) and total_count (a number)"
    text_bytes = summary.get("text_bytes", 0)
    if type(text_bytes) is not int or text_bytes < 0:
        return f"meta lexicon text_bytes {shown(text_bytes)} is not a size in bytes"
    facts = {key: summary[key] for key in ("nfc", "lower", "unaccented") if key in summary}
    if any(type(value) is not bool for value in facts.values()) or type(summary.get("chars", "")) not in (str, type(None)):
        return "meta lexicon nfc, lower and unaccented must be true or false, and chars a string or null"
    if type(summary.get("longest", 0)) is not int or summary.get("longest", 0) < 0:
        return f"meta lexicon longest {shown(summary['longest'])} is not a number of characters"
    return None


def _lexicon_headers_problem(npz: Npz, n: int) -> str | None:
    """Why the lexicon entries' headers cannot hold a list of `n` words, or None."""
    words, counts, held_out = (npz.members[name] for name in LEXICON_ENTRIES)
    if not (words.dtype == counts.dtype == np.uint8 and len(words.shape) == len(counts.shape) == 1):
        return "lexicon.words and lexicon.counts must be 1-d uint8 arrays"
    if held_out.dtype != np.dtype("<i4") or len(held_out.shape) != 1 or held_out.shape[0] > n:
        return f"lexicon.held_out must be at most {n:,} int32 indices, not {held_out.dtype} {held_out.shape}"
    scores = npz.members.get(RNN_LOGP_ENTRY)
    if scores is not None and (scores.dtype != np.dtype("<f4") or scores.shape != (n,)):
        return f"{RNN_LOGP_ENTRY} must be {n:,} float32 log-probabilities, not {scores.dtype} {scores.shape}"
    return None


# --- using a checkpoint ------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    """What `load_trained` returns: a checkpoint ready for inference.

    folding is how the model was trained to read text (data.lowercase, and data.fold_accents:
    off in a checkpoint from before it existed); a bool is the case folding alone. checkpoint is
    the whole file as read (params, meta, optimizer state, lexicon); path the file it was read from.
    """

    model: RNN
    vocab: Vocab
    folding: Folding
    checkpoint: Checkpoint
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "folding", Folding.of(self.folding))

    @property
    def lowercase(self) -> bool:
        """The case folding the model was trained with (data.lowercase)."""
        return self.folding.lowercase

    @property
    def meta(self) -> dict[str, Any]:
        return self.checkpoint.meta

    @property
    def lexicon(self) -> LexiconData | None:
        """The word list the checkpoint carries; None in one from before checkpoints carried it."""
        return self.checkpoint.lexicon

    @property
    def mixture_lambda(self) -> float:
        """The lexicon's weight lambda this checkpoint completes with: the one training fitted and
        stored (meta mixture_lambda, in [0, 1] as load_checkpoint checks), else DEFAULT_LAMBDA.

        One rule for `rnnac complete`, `rnnac serve` and `rnnac evaluate`, so that a checkpoint
        answers the same in each and evaluate measures what users get. Fitting belongs to
        training, which stores the weight it fits (Trainer.fit_mixture); a checkpoint without
        one comes from a run cut short, or from before rnnac fitted it. A fit at evaluation
        could see the evaluated words, and would score a model no user runs.
        """
        stored = self.meta.get("mixture_lambda")
        return DEFAULT_LAMBDA if stored is None else float(stored)


def load_trained(path: str | os.PathLike | None = None, verify_lexicon: bool = True) -> TrainedModel:
    """The model of `resolve_checkpoint(path)`, ready for inference. CheckpointError if it cannot be
    used; verify_lexicon as for load_checkpoint."""
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path, verify_lexicon)
    activation = ckpt.meta["activation"]
    if activation not in ACTIVATIONS:
        raise _cannot_load(path, f"activation {shown(activation)} is not one of {', '.join(ACTIVATIONS)}")
    model = RNN(ckpt.params, activation)
    if not _first_step_is_finite(model):
        raise _cannot_load(path, f"its weights overflow {model.dtype} in the model's first step (the next character's "
                                 "log-probabilities are not finite)")
    return TrainedModel(model, vocab_from_meta(ckpt.meta), folding_from_config(ckpt.meta["config"]), ckpt, path)


def folding_from_config(config: dict[str, Any]) -> Folding:
    """How a checkpoint's model reads text, from its config (meta config): data.lowercase (true
    when absent) and data.fold_accents (false when absent: a model trained before accent
    folding existed reads accents as they are)."""
    data = config.get("data", {})
    return Folding(bool(data.get("lowercase", True)), bool(data.get("fold_accents", False)))


def _first_step_is_finite(model: RNN) -> bool:
    """Whether the model's first step, from a_0 = 0 on every token, gives finite log-probabilities.
    Finite weights can still overflow there (3e38 in float32: U x + b, then V a + c); such a model
    would answer every query with nothing, or NaN. A trained model's weights are far from it."""
    K, H = model.vocab_size, model.hidden_size
    with np.errstate(over="ignore", invalid="ignore"):
        _, logp = model.step(np.zeros((K, H), dtype=model.dtype), np.arange(K))  # (K, K)
    return bool(np.isfinite(logp).all())


def resolve_checkpoint(path: str | os.PathLike | None = None) -> Path:
    """The checkpoint to use: `path`, else $RNNAC_CHECKPOINT, else the bundled model. A run folder
    stands for its best.npz, and BUNDLED_NAME for the bundled model (unless a file has that name).

    resolve_checkpoint("runs/names") -> Path("runs/names/best.npz")

    A run folder without best.npz (a run stopped before its first validation) is a CheckpointError
    naming its last.npz, when it has one: a model that never validated is used only when asked for.
    """
    path = path or os.environ.get("RNNAC_CHECKPOINT") or None
    if path and (str(path) != BUNDLED_NAME or os.path.exists(path)):
        if not os.path.isdir(path):
            return Path(path)
        best, last = Path(path) / "best.npz", Path(path) / "last.npz"
        if not os.path.lexists(best) and os.path.lexists(last):
            raise CheckpointError(f"{path} has no best.npz yet (its run stopped before its first validation), but it has "
                                  f"{last}: use that checkpoint (-c {last}), or resume the run (rnnac train --resume {path})")
        return best
    if not BUNDLED_MODEL.exists():
        raise CheckpointError("no bundled model; train one (`make model`, or `rnnac train default`) "
                              "and pass it with -c/--checkpoint or $RNNAC_CHECKPOINT")
    return BUNDLED_MODEL


def describe(path: str | os.PathLike | None = None, verify_lexicon: bool = True) -> dict[str, Any]:
    """What `rnnac info` shows: vocabulary, sizes, parameter count, training state, lexicon, config
    (verify_lexicon as for load_checkpoint)."""
    trained = load_trained(path, verify_lexicon)
    model, vocab, meta, lexicon = trained.model, trained.vocab, trained.meta, trained.lexicon
    facts = {"path": str(trained.path), "format_version": meta["format_version"], "chars": "".join(vocab.chars),
             "vocab_size": len(vocab), "hidden_size": model.hidden_size, "activation": model.activation,
             "dtype": str(model.dtype), "parameters": model.n_params(), "step": meta["step"],
             "epoch": meta["epoch"], "best_val_loss": meta["best_val_loss"],
             "lexicon_words": None if lexicon is None else len(lexicon.words),
             "lexicon_held_out": None if lexicon is None else int(lexicon.held_out.sum())}
    if "mixture_lambda" in meta:
        facts["mixture_lambda"] = meta["mixture_lambda"]
    if meta.get("mixture_fit"):
        facts["mixture_fit"] = meta["mixture_fit"]
    if lexicon is not None:
        counts = lexicon.counts
        facts["lexicon_counts"] = "flat" if counts.size == 0 or counts.min() == counts.max() else "counted"
    return facts | {"config": meta["config"]}


def export_for_inference(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a checkpoint, lexicon included, without its optimizer state (a third of the size
    for Adam's two moments), for shipping a model that will only complete words. Its config
    keeps no folder of the machine that built it (see _portable_paths)."""
    ckpt = load_checkpoint(src)
    meta = {**ckpt.meta, "config": _portable_paths(ckpt.meta["config"])}
    save_checkpoint(dst, ckpt.params, meta, lexicon=ckpt.lexicon)
    return Path(dst)


def _portable_paths(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with data.path and output.dir relative to the working directory where
    they lie under it ("data/words.tsv", which resolves from the repository's root), else their
    last component alone ("default" for /home/me/runs/default)."""
    config = {section: dict(values) if isinstance(values, dict) else values for section, values in config.items()}
    cwd = Path.cwd()
    for section, key in (("data", "path"), ("output", "dir")):
        value = config.get(section, {}).get(key)
        if isinstance(value, str):
            path = Path(os.path.abspath(value))
            config[section][key] = path.relative_to(cwd).as_posix() if path.is_relative_to(cwd) else path.name
    return config
