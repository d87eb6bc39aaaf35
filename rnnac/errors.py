"""Errors a user can cause. The CLI prints them as one line, `Error: ...`, and exits 1."""


QUOTE_LIMIT = 80  # characters of user input an error message repeats


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """repr(text), cut to about `limit` characters: a 5 MB bad line must not make a 5 MB message.

    quote("abc") -> "'abc'";  quote("x" * 1000) -> "'xxx...xxx' (1,000 characters)"
    """
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text):,} characters)"


class RnnacError(Exception):
    """Base class of every error rnnac raises on purpose."""


class DataError(RnnacError):
    """A word list cannot be read, or holds nothing to train on."""


class UnknownCharError(DataError):
    """A word holds a character the vocabulary does not know."""

    def __init__(self, word: str, char: str):
        super().__init__(f"{quote(word)} holds {char!r}, which is not in the vocabulary")
        self.word = word
        self.char = char


class ConfigError(RnnacError):
    """A config file or override is invalid."""


class CheckpointError(RnnacError):
    """A checkpoint is missing, corrupt, foreign or of an unsupported format."""


class TrainingDiverged(RnnacError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(RnnacError):
    """Ctrl-C: the run saved last.npz and stopped; `--resume` continues it."""

    def __init__(self, step: int, path):
        super().__init__(f"interrupted at step {step}; saved {path}")
        self.step, self.path = step, path


class RunExistsError(RnnacError):
    """The output folder already holds a run that neither --resume nor --force was given for."""


class MissingExtraError(RnnacError):
    """An optional feature needs a package that is not installed (a pip extra)."""


class OutputError(RnnacError):
    """A result (a picture, a file) cannot be written."""
