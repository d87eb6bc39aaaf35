"""How many threads NumPy's BLAS (OpenBLAS) may use, changed at run time.

Small GEMMs, like the in-loop W a_{t-1} of a small model, run faster on one thread than on
two: OpenBLAS's threads cost more to wake than the work is worth. NumPy has no API for this,
so we call OpenBLAS's own setter through ctypes. Where the library cannot be found (another
BLAS, or not Linux), every call here does nothing and BLAS keeps its own default.

Performance notes: auto_threads' threshold is from 2 cores with K = 30: one thread wins at
H*H*B = 64^3 (H 64, B 64), two win from 96*96*48 up.
"""

from __future__ import annotations

import contextlib
import ctypes
import re

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = tuple(name.replace("set_", "get_") for name in _SETTERS)


def _find_openblas():
    """(setter, getter) from the OpenBLAS that NumPy loaded, or (None, None)."""
    import numpy  # noqa: F401  (loads its BLAS, so that it shows in our memory map)

    try:
        with open("/proc/self/maps") as maps:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())))
    except OSError:
        return None, None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in zip(_SETTERS, _GETTERS):
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                return getattr(lib, set_name), getattr(lib, get_name)
    return None, None


_set, _get = _find_openblas()


def get_threads() -> int | None:
    """The threads OpenBLAS uses now, or None where it was not found."""
    return _get() if _get else None


def set_threads(n: int) -> None:
    """Let OpenBLAS use n threads (nothing where it was not found)."""
    if _set:
        _set(int(n))


def auto_threads(hidden_size: int, batch_size: int) -> int | None:
    """Threads for a training step, judged by its (B, H) x (H, H) in-loop GEMM: one while that is
    small (H*H*B <= 64^3), else None, BLAS's default (all cores)."""
    return 1 if hidden_size * hidden_size * batch_size <= 64**3 else None


@contextlib.contextmanager
def limit(n: int | None):
    """Use n BLAS threads inside the block (None: leave BLAS alone)."""
    before = get_threads()
    if n is None or before is None or n == before:
        yield
        return
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)
