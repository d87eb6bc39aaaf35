"""Errors a user can cause. The CLI prints them as one line, `Error: ...`, and exits 1."""

import signal

QUOTE_LIMIT = 80  # characters of user input an error message repeats


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """repr(text), cut to about `limit` characters: a 5 MB bad line must not make a 5 MB message.

    quote("abc") -> "'abc'";  quote("x" * 1000) -> "'xxx...xxx' (1,000 characters)"
    """
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text):,} characters)"


def shown(value) -> str:
    """A value read from a file or a config as a message shows it: a str quoted, anything else as
    JSON (repr where JSON cannot), cut like `quote`."""
    import json  # here: most messages never need it

    if isinstance(value, str):
        return quote(value)
    text = json.dumps(value, default=repr)
    return text if len(text) <= QUOTE_LIMIT else quote(text)


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
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP): the run saved last.npz and stopped; `--resume` continues it.
    `signum` is the signal; a shell reports such an exit as 128 + signum (130 for Ctrl-C)."""

    def __init__(self, step: int, path, signum: int = signal.SIGINT):
        self.step, self.path, self.signum = step, path, int(signum)
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name} at step {step}; saved {path}")


class RunExistsError(RnnacError):
    """The output folder already holds a run that neither --resume nor --force was given for."""


class RunLockedError(RnnacError):
    """Another rnnac process is training into the same output folder."""


class RunFolderError(RnnacError):
    """Where rnnac would write one of its own files in a run folder, there is a symbolic link or a
    non-file: rnnac writes through neither."""


class MemoryLimitError(RnnacError):
    """A run would need more memory than the machine has, or than the process may use."""


class MissingExtraError(RnnacError):
    """An optional feature needs a package that is not installed (a pip extra)."""


class OutputError(RnnacError):
    """A result (a picture, a file) cannot be written."""
