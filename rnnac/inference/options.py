"""The rules for options that go together, kept once for the Python API, the CLI and the server.

A rule broken is an OptionError. Its message names each option in braces, so that each interface
spells the names its own way (`spelled`): the CLI as flags (--known-only), the server as its
parameters (known_only), Python as its keywords (str(error)). The CLI answers it as a usage error
(exit 2), the server with a 400.
"""

from __future__ import annotations

import string
from collections.abc import Callable

from rnnac.errors import RnnacError

# The largest sizes a query may ask for, the same in the Python API, the CLI and the server: each
# bounds what one prefix's search allocates (its frontier, answers and spelled words grow with k,
# the beam and max_length), so no query can take the machine's memory.
MAX_K = 1000  # completions per prefix, and the beam's width
MAX_LENGTH = 1000  # characters in a word, prefix included
ACCEPT_SHARE = 1e-4  # an accept's first increment, as a share of the list's total count (rnnac.inference.live)
DEFAULT_DECAY = 0.999  # each accept weighs 1 / decay times the one before (half of it 693 accepts later)
DEFAULT_NEW = 1  # invented strings a top k holds by default in the mixture with a counted list (Completer.default_new)
DEFAULT_MAX_LENGTH = 32  # the longest invented string without a word list to take it from (Completer.max_length)
MAX_BUDGET = 10**6  # node evaluations per prefix

MATCHES = ("prefix", "word-start")  # words that start with the typed text; lexicon entries with a word that does (wordstarts.py)

PYTHON_NAMES = {"lambda": "mixture_lambda", "mixture": "lexicon"}  # the keywords where they differ from the option's name


class OptionError(RnnacError, ValueError):
    """Options that do not go together, or that the model cannot honour.

    `template` is the message with each option as {name} and the model as {model}; `options` are
    the names it holds, in order.
    """

    def __init__(self, template: str, model: str = "the completer"):
        self.template = template
        self.options = [field for _, field, _, _ in string.Formatter().parse(template) if field and field != "model"]
        super().__init__(self.spelled(lambda name: PYTHON_NAMES.get(name, name), model))

    def spelled(self, option: Callable[[str], str], model: str) -> str:
        """The message with each option named option(name) and the model named `model`."""
        return self.template.format_map({**{name: option(name) for name in self.options}, "model": model})


def check_options(known_only: bool | None = None, open: bool = False, beam: int | None = None, max_edits: int = 0,
                  has_lexicon: bool | None = None, match: str = "prefix") -> None:
    """OptionError unless a completion's options go together. known_only True asks for the
    lexicon's words only, False for the mixture, None for the default (the mixture with a lexicon,
    else the model alone); `has_lexicon` says whether there is one (None: not known yet, unchecked);
    `match` is one of MATCHES."""
    if match not in MATCHES:
        shown = repr(str(match)[:20]).replace("{", "{{").replace("}", "}}")  # the message is a template
        raise OptionError(f"{{match}} must be {' or '.join(MATCHES)}, got {shown}")
    if known_only and open:
        raise OptionError("{known_only} and {open} cannot be used together")
    if beam and max_edits:
        raise OptionError("{beam} and {max_edits} cannot be used together: typo-tolerant search is exact only")
    if match == "word-start":
        if max_edits:
            raise OptionError("{match} word-start and {max_edits} cannot be used together: typos are forgiven in prefixes only")
        if beam:
            raise OptionError("{match} word-start and {beam} cannot be used together: word-start matching scores every match")
        if has_lexicon is False:
            raise OptionError("{match} word-start needs a lexicon: {model} carries none")
    if has_lexicon is False and not open and known_only is not None:
        if known_only:
            raise OptionError("{model} carries no lexicon: {known_only} needs one")
        raise OptionError("the mixture needs a lexicon: {model} carries none")


def check_score_options(mixture: bool, mixture_lambda: float | None, has_lexicon: bool | None = None,
                        own_lambda: float | None = None) -> None:
    """OptionError unless a word score's options go together: a lambda with the mixture only, and
    the mixture needs a lexicon, and a lambda below 1 (at 1 a word off the lexicon is impossible).
    `has_lexicon` and `own_lambda` (the model's lambda) None: not known yet, unchecked."""
    if mixture_lambda is not None and not mixture:
        raise OptionError("{lambda} goes with {mixture}")
    if mixture and has_lexicon is False:
        raise OptionError("{model} carries no lexicon: {mixture} needs one")
    if mixture and mixture_lambda is None and own_lambda is not None and own_lambda >= 1.0:
        raise OptionError("{model} gives its lexicon all the weight: give {lambda} below 1 to score")
