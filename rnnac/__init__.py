"""rnnac: character-level autocompletion with a vanilla RNN, trained by exact BPTT in NumPy.

The public API is imported on first use, so `import rnnac` (and `rnnac --help`) does not
pay for NumPy until something needs it.
"""

import importlib

__version__ = "0.2.0"

_EXPORTS = {  # name -> the module that defines it
    "Batch": "rnnac.engine.vocab",
    "Completer": "rnnac.inference.completer",
    "Lexicon": "rnnac.storage.lexicon",
    "RNN": "rnnac.engine.model",
    "RnnacError": "rnnac.errors",
    "Vocab": "rnnac.engine.vocab",
    "make_batch": "rnnac.engine.vocab",
    "sample": "rnnac.inference.sampling",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rnnac' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return __all__
