"""rnnac: character-level autocompletion with a vanilla RNN, trained by exact BPTT in NumPy."""

from rnnac.data import Batch, Vocab, make_batch
from rnnac.errors import RnnacError
from rnnac.model import RNN

__version__ = "0.1.0"
__all__ = ["Batch", "RNN", "RnnacError", "Vocab", "make_batch", "__version__"]
