"""rnnac: character-level autocompletion with a vanilla RNN, trained by exact BPTT in NumPy."""

from rnnac.complete import Completer, Lexicon, sample
from rnnac.data import Batch, Vocab, make_batch
from rnnac.errors import RnnacError
from rnnac.model import RNN

__version__ = "0.1.0"
__all__ = ["Batch", "Completer", "Lexicon", "RNN", "RnnacError", "Vocab", "make_batch", "sample", "__version__"]
