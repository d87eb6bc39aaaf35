"""The rnnac command line: a thin shell over the library. Each command parses, calls, prints.

Library errors (RnnacError) become `Error: ...` on stderr with exit code 1; click's usage
errors exit 2. Heavy imports (numpy, yaml, tqdm) happen inside the commands that need them, so
`rnnac --help` prints at once and `rnnac complete` starts fast.

A flag means the same on every command: -c/--checkpoint (a checkpoint, or a run folder for its
best.npz; else $RNNAC_CHECKPOINT, else the bundled model), --format plain|tsv|json (--json is
--format json), -k/--top, -n/--count, -o/--output, -q/--quiet.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys

import click

from rnnac import __version__
from rnnac.errors import CheckpointError, RnnacError
from rnnac.inference.options import DEFAULT_DECAY, DEFAULT_NEW, MATCHES, MAX_BUDGET, MAX_K, MAX_LENGTH

MAX_SAMPLES = 10**9  # words `sample` draws: streamed, so bounded by patience, not memory
MAX_TYPO_WORDS = 10**6  # words `evaluate --typos` mistypes
CHECKPOINT_VARIABLE = "RNNAC_CHECKPOINT"
FROM_VARIABLE = "rnnac.checkpoint_from_variable"  # ctx.meta key: -c was not given, the variable was


class Group(click.Group):
    """Ends every command plainly, never with a traceback: a user's mistake (RnnacError), a system
    error (OSError) or running out of memory is one `Error:` line and exit 1; Ctrl-C exits 130
    quietly; a reader that leaves the pipe (`rnnac info | head -1`) ends the command quietly, exit 0."""

    def make_context(self, info_name, args, parent=None, **extra):  # --help and --version print from here
        return self._plainly(super().make_context, info_name, args, parent, **extra)

    def invoke(self, ctx):
        try:
            return self._plainly(super().invoke, ctx)
        except _CheckpointFailure as e:  # the user may not know the variable is set: name it
            if ctx.meta.get(FROM_VARIABLE):
                e.message = f"${CHECKPOINT_VARIABLE}: {e.message}"
            raise

    @staticmethod
    def _plainly(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except CheckpointError as e:
            raise _CheckpointFailure(str(e)) from None
        except RnnacError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:  # click would say "Aborted!" and exit 1
            raise SystemExit(130) from None
        except MemoryError as e:  # NumPy's says what it could not allocate
            raise click.ClickException(f"out of memory{f': {e}' if str(e) else ''}") from None
        except BrokenPipeError:  # click would exit 1
            _quiet_stdout()
            raise SystemExit(0) from None
        except OSError as e:  # a folder that cannot be made, a full disk: the system's words, one line
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None


class _CheckpointFailure(click.ClickException):
    """A CheckpointError on its way to stderr."""


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnac")
def cli():
    """Character-level autocompletion: train an RNN on a word list, complete prefixes.

    \b
    Examples:
      rnnac complete rec                  with the bundled English model
      rnnac train mylist.txt              one word a line; into runs/mylist
      rnnac complete -c runs/mylist ab    with the model just trained
      rnnac init mylist.txt -o my.yaml    its config, every field explained
      rnnac complete < prefixes.txt       one prefix a line, in input order

    Each command's --help has more examples.
    """


def _checkpoint(ctx, param, value):
    """-c/--checkpoint's callback: the path given, else $RNNAC_CHECKPOINT's (noted, so that an
    error names the variable), else None (the bundled model)."""
    if value is None and os.environ.get(CHECKPOINT_VARIABLE):
        value = os.environ[CHECKPOINT_VARIABLE]
        ctx.meta[FROM_VARIABLE] = True
    return value


def _finite(ctx, param, value):
    """A click callback: NaN and infinity pass FloatRange's checks, so refuse them here."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


checkpoint_option = click.option(
    "-c", "--checkpoint", type=click.Path(), default=None, callback=_checkpoint,
    help=f"Model: a checkpoint, or a run folder for its best.npz [default: ${CHECKPOINT_VARIABLE}, else the bundled model].")


def format_option(*choices: str, help: str):
    return click.option("--format", "fmt", type=click.Choice(choices), default="plain", show_default=True, help=help)


json_option = click.option("--json", "as_json", is_flag=True, help="The same as --format json.")


# --- train ---------------------------------------------------------------------------------


@cli.command()
@click.argument("target", metavar="WORDLIST|CONFIG|RUN|NAME")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config field (repeatable); `rnnac init` lists them all.")
@click.option("--init-from", metavar="CHECKPOINT", default=None,
              help="Start from a trained model (a checkpoint, a run folder, or `bundled`): train.init_from.")
@click.option("--resume", is_flag=True, help="Continue the run from its last.npz (TARGET: the run folder, or what started it).")
@click.option("--force", is_flag=True, help="Start over even if output.dir holds a run.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or log lines.")
@format_option("plain", "json", help="The summary on stdout: one line, or one JSON object.")
def train(target, overrides, init_from, resume, force, quiet, fmt):
    """Train a model on a word list, or as a config says.

    WORDLIST (.txt, .tsv, .csv, or any file that is not a YAML mapping: one word a line, a
    frequency list, or `history` output) trains with settings sized to it, which the log states,
    into runs/<list name>. CONFIG is a YAML config file. RUN is a run folder: the settings its
    run saved (run-config.yaml), --set applying on top. NAME is a shipped config (default, names,
    tiny, ...), which trains into runs/<name> here, or else a shipped word list (words, ...); a
    file of that name wins. Every config field, its meaning, range and default: `rnnac init` (or
    configs/default.yaml in the source).

    Ctrl-C, SIGTERM or SIGHUP saves last.npz and exits 130, 143 or 129; `--resume RUN`
    continues from it exactly, with the run's own settings.

    \b
    Examples:
      rnnac train mylist.txt
      rnnac train mylist.txt --set model.hidden_size=64 --set train.max_steps=5000
      rnnac train tiny
      rnnac train --resume runs/mylist --set train.max_steps=8000
    """
    import json

    from rnnac.errors import TrainingInterrupted
    from rnnac.training.quickstart import training_config
    from rnnac.training.trainer import run

    overrides = [*overrides, *([f"train.init_from={init_from}"] if init_from else [])]
    config, note = training_config(target, overrides)
    if note and not quiet:
        click.echo(note, err=True)
    try:
        summary = run(config, resume=resume, quiet=quiet, force=force)
    except TrainingInterrupted as e:
        import shlex

        again = shlex.join(["rnnac", "train", "--resume", _shown_path(e.path.parent)])  # its run-config.yaml has every setting
        how = "Interrupted" if e.signal_name == "SIGINT" else f"Stopped by {e.signal_name}"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            click.echo(f"{how} at step {e.step}; saved {e.path}. Resume with: {again}", err=True)
        _ignore_stop_signals()  # saved and said: the exit code stays the first signal's
        raise SystemExit(128 + e.signum) from None
    click.echo(json.dumps(summary.record) if fmt == "json" else summary.text)


def _shown_path(path) -> str:
    """`path` relative to the working directory when it lies below it (runs/x), else as it is."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith(os.pardir) else relative


@cli.command()
@click.argument("wordlist", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="The config file to write [default: stdout].")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def init(wordlist, output, force):
    """Write a config with every field explained.

    Every field with its meaning, range and default; given WORDLIST, filled in for it: its path,
    the run folder runs/<list name>, and the settings `rnnac train WORDLIST` would size to it.
    Paths in the file are relative to the file's folder.

    \b
    Examples:
      rnnac init mylist.txt -o my.yaml && rnnac train my.yaml
      rnnac init > reference.yaml
    """
    from rnnac.training.quickstart import init_text, write_new_file

    text = init_text(wordlist, None if output == "-" else output)
    if output == "-":
        click.echo(text, nl=False)
        return
    write_new_file(output, text, force)
    click.echo(f"Wrote {output}; train with: rnnac train {output}", err=True)


# --- complete, sample, info --------------------------------------------------------------

@cli.command()
@click.argument("prefixes", nargs=-1, metavar="[PREFIX]...")
@checkpoint_option
@click.option("-k", "--top", default=5, show_default=True, type=click.IntRange(1, MAX_K), help="Completions per prefix.")
@format_option("plain", "tsv", "json", help="plain: one word a line; tsv and json: the records of the README's output format.")
@click.option("--header", is_flag=True, help="With --format tsv: first a row of the column names.")
@click.option("--beam", type=click.IntRange(1, MAX_K), default=None, help="Beam search of this width instead of the exact search.")
@click.option("--lexicon", type=click.Path(dir_okay=False), default=None,
              help="Complete only to the words of this list (or a shipped one: words, names, identifiers), weighed by its counts.")
@click.option("--lexicon-mode", type=click.Choice(["replace", "add"]), default="replace", show_default=True,
              help="add: the words of --lexicon join the model's own lexicon instead of replacing it.")
@click.option("--exclude", type=click.Path(dir_okay=False), default=None, help="Never propose the words of this list.")
@click.option("--known-only", is_flag=True, help="Only words of the lexicon (as --new 0).")
@click.option("--new", "max_new", type=click.IntRange(0, MAX_K), default=None,
              help="At most N invented strings (words not in the lexicon, shown with a trailing *) in each top k. "
                   "[default: 1 with a lexicon that has counts, 0 with a flat list (every count alike)]")
@click.option("--open", "open_vocab", is_flag=True, help="The model alone, without its lexicon.")
@click.option("--lambda", "mixture_lambda", type=click.FloatRange(0, 1), default=None, callback=_finite,
              help="Weight of the lexicon in the mixture [default: the one fitted in training].")
@click.option("--max-length", default=None, type=click.IntRange(1, MAX_LENGTH),
              help="Longest invented string (not a lexicon word), prefix included; lexicon words are never cut. "
                   "[default: the lexicon's longest word, 32 without one]")
@click.option("--budget", default=2000, show_default=True, type=click.IntRange(1, MAX_BUDGET), help="Node evaluations per prefix.")
@click.option("--skip-unknown", is_flag=True, help="Silently skip prefixes with characters the model does not know.")
@click.option("--max-edits", default=0, show_default=True, type=click.IntRange(0, 3),
              help="Typing errors a prefix may hold: substituted, extra, left out or swapped characters.")
@click.option("--edit-prob", "edit_probs", multiple=True, metavar="P|KIND=P",
              help="With --max-edits: the error rate per character (the kinds keep their shares), or one "
                   "kind's: sub, ins, del, trans. Repeatable. [default: 0.04: sub=0.016 ins=del=trans=0.008]")
@click.option("--keyboard", type=click.Choice(["qwerty", "none"]), default="qwerty", show_default=True,
              help="With --max-edits: substitutions favour neighbouring keys of this layout (none: all alike).")
@click.option("--match", type=click.Choice(MATCHES), default="prefix", show_default=True,
              help="word-start: the lexicon's entries with a word starting with each word typed, in order "
                   "(sam s24: Samsung Galaxy S24); words are split at spaces and - _ / .")
@click.option("--accept", "accepted", metavar="WORD", default=None,
              help="Learn that WORD was picked (typed from PREFIX, if given): its count grows, in the checkpoint's "
                   "journal (rnnac lexicon compact writes it in). Completes nothing.")
@click.option("--increment", type=click.FloatRange(0, min_open=True), default=None, callback=_finite,
              help="With --accept: what the first accept adds to a count [default: the list's mean count, at least 1/10,000 of its total].")
@click.option("--decay", type=click.FloatRange(0, 1, min_open=True), default=None,
              help=f"With --accept: each accept weighs 1/decay times the one before, so recent picks weigh more "
                   f"[default: {DEFAULT_DECAY}].")
def complete(prefixes, checkpoint, top, fmt, header, beam, lexicon, lexicon_mode, exclude, known_only, max_new, open_vocab,
             mixture_lambda, max_length, budget, skip_unknown, max_edits, edit_probs, keyboard, match, accepted, increment,
             decay):
    """Complete prefixes to the most probable whole words.

    The TOP most probable whole words starting with each PREFIX, best first. Words are ranked
    by a mixture of the lexicon the model carries (its training list, with counts) and the model
    itself, so known words come first and new ones still appear. The search is exact unless
    --budget stops it (a warning on stderr says so).

    Stdin: with `-`, or with no PREFIX when stdin is not a terminal (a pipe or a file), reads
    one prefix a line and answers each line as it arrives. Surrounding whitespace is stripped.

    Plain output marks an invented string, one not in the lexicon, with a trailing `*` (TSV and
    JSON say `known`); there are at most --new of them in a top k. A prefix that only invented
    strings could complete gets a note on stderr where --new is 0.

    Output lines up with the input: with several prefixes or stdin, plain lines are
    `prefix<TAB>word`; TSV gives each prefix its rows and JSON one object a line, in input
    order. A prefix holding a character the model does not know gets an `Error:` line on
    stderr and, in TSV and JSON, a record with the error in its place (exit code 1 at the end),
    unless --skip-unknown.

    With --match word-start, each PREFIX is one or more words, and the answers are the
    lexicon's entries (as it writes them) with words that start with them, in order, ranked by
    the same mixture and normalised over the entries that match: for lists of multi-word
    entries, such as product names or commands: `--match word-start 'sam s24'` finds Samsung
    Galaxy S24.

    \b
    Examples:
      rnnac complete rec
      rnnac complete -c runs/mylist -k 10 --format tsv --header ab ca
      rnnac complete --format json < prefixes.txt | jq -r '.completions[0].word'
      rnnac complete --max-edits 1 --format tsv wrold
    """

    from rnnac.inference.completer import Completer
    from rnnac.inference.options import check_options

    if accepted is not None:
        return _accept(checkpoint, accepted, prefixes, increment, DEFAULT_DECAY if decay is None else decay)
    if increment is not None or decay is not None:
        raise click.UsageError("--increment and --decay go with --accept")
    from_stdin = _reads_stdin(prefixes, sys.stdin)
    with _usage_errors():
        check_options(known_only, open_vocab, beam, max_edits, match=match)
    _check_header(header, fmt)
    typos = _typo_options(max_edits, edit_probs, keyboard)
    completer = Completer.load(checkpoint)
    options = {**_scoring_options(completer, lexicon, lexicon_mode, exclude, known_only, open_vocab, mixture_lambda, match),
               **typos, "new": max_new, "match": match}
    marked = options["lexicon"] is not None or completer.has_lexicon  # a lexicon tells invented strings apart
    why_known = None if open_vocab or not marked else (
        "--known-only" if known_only else "--lexicon FILE: its words only" if options["known_only"]
        else "--match word-start: lexicon entries only" if match == "word-start"
        else "--new 0" if max_new == 0 else "a list without counts: --new N allows invented strings"
        if max_new is None and completer.default_new(options["lexicon"]) == 0 else None)

    def answer(chunk: list[str]) -> tuple[str, bool]:
        results = completer.complete_many([p.strip() for p in chunk], top, max_length, budget, beam, **options)
        return _completion_lines(results, fmt, from_stdin or len(prefixes) > 1, skip_unknown, budget, top, marked,
                                 why_known)

    _stream(prefixes, from_stdin, TSV_COLUMNS if header else None, answer)


def _accept(checkpoint, word: str, prefixes: tuple[str, ...], increment: float | None, decay: float) -> None:
    """complete --accept: one accept into the checkpoint's journal."""
    from rnnac.inference.completer import Completer
    from rnnac.inference.live import accept

    if len(prefixes) > 1 or prefixes == ("-",):
        raise click.UsageError("--accept takes one PREFIX at most: the one WORD was typed from")
    if not word.strip():
        raise click.UsageError("--accept needs a word")
    completer = Completer.load(checkpoint)
    accept(completer, [(word, prefixes[0] if prefixes else "")], increment, decay)


def _completion_lines(results, fmt: str, show_prefix: bool, skip_unknown: bool, budget: int, top: int,
                      marked: bool = False, why_known: str | None = None) -> tuple[str, bool]:
    """`complete`'s lines for some results (_format; plain words not in the lexicon `marked` with a
    *), and whether any failed; says on stderr which failed (unless skip_unknown: then they are
    left out), which the budget cut short, and, where only lexicon words may be proposed
    (`why_known` says why), which found none."""
    out, failed = [], False
    for result in results:
        if result.error:
            if skip_unknown:
                continue
            failed = True
            click.echo(f"Error: {result.error}", err=True)
        elif result.truncated:
            click.echo(f"Warning: {result.prefix!r}: the search stopped at --budget {budget}; "
                       f"these may not be the exact top {top}", err=True)
        elif why_known and not result.completions:
            click.echo(f"Note: {result.prefix!r}: no word of the lexicon starts so ({why_known})", err=True)
        out.append(_format(result, fmt, show_prefix, marked))
    return "".join(out), failed


def _check_header(header: bool, fmt: str) -> None:
    if header and fmt != "tsv":
        raise click.UsageError("--header goes with --format tsv")


@contextlib.contextmanager
def _usage_errors():
    """An OptionError (rnnac.inference.options) as a usage error (exit 2), naming the options as flags."""
    from rnnac.inference.options import OptionError

    try:
        yield
    except OptionError as e:
        raise click.UsageError(e.spelled(lambda name: f"--{name.replace('_', '-')}", "this model")) from None


def _typo_options(max_edits: int, edit_probs: tuple[str, ...], keyboard: str) -> dict:
    """complete_many's max_edits and channel from the command's options; UsageError for a bad --edit-prob."""
    from rnnac.inference.typos import Channel

    try:
        channel = Channel.parse(edit_probs, keyboard)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    return {"max_edits": max_edits, "channel": channel}


def _reads_stdin(prefixes: tuple[str, ...], stdin, what: str = "PREFIX") -> bool:
    """Whether `complete` (or `score`) reads its prefixes (words) from stdin: given `-`, or no
    PREFIX and stdin is not a terminal. UsageError for no prefix at all, or `-` beside others."""
    items = f"{what.lower()}es" if what.endswith("X") else f"{what.lower()}s"
    if "-" in prefixes and len(prefixes) > 1:
        raise click.UsageError(f"- (read stdin) cannot be mixed with other {items}")
    if prefixes == ("-",) or (not prefixes and not stdin.isatty()):
        return True
    if not prefixes:
        raise click.UsageError(f"give a {what}, or - to read {items} from stdin")
    return False


def _scoring_options(completer, lexicon, lexicon_mode, exclude, known_only, open_vocab, mixture_lambda,
                     match: str = "prefix") -> dict:
    """complete_many's lexicon, known_only, open, mixture_lambda and exclude from the command's options."""
    from rnnac.inference.options import check_options

    lex = _lexicon_file(completer, lexicon, lexicon_mode == "add") if lexicon else None
    if open_vocab:
        known_only = None
    elif lex is not None:
        known_only = known_only or lexicon_mode == "replace"  # --lexicon FILE alone: only the words of FILE
    else:
        known_only = known_only or None  # the completer's default: the mixture with its lexicon, else open
    blocked = completer.lexicon_from_file(exclude, allow_empty=True) if exclude else None  # empty: nothing excluded
    with _usage_errors():
        check_options(known_only, open_vocab, has_lexicon=lex is not None or completer.has_lexicon, match=match)
    return {"lexicon": lex, "known_only": known_only, "open": open_vocab, "mixture_lambda": mixture_lambda, "exclude": blocked}


def _lexicon_file(completer, path, add: bool):
    """The Lexicon of --lexicon, with a warning for the words it cannot complete."""
    from rnnac.inference.live import unspellable

    lex = completer.lexicon_from_file(path, add=add)
    if lex.skipped:
        named = unspellable(list(lex.written), completer.vocab, completer.folding)
        shown = ", ".join(map(repr, named[:5])) + (f" and {len(named) - 5:,} more" if len(named) > 5 else "")
        click.echo(f"Warning: {lex.skipped:,} lexicon words hold characters the model does not know, so they are "
                   f"never completed: {shown}", err=True)
    return lex


TSV_COLUMNS = ("prefix", "rank", "word", "prob", "logprob", "known", "edits", "corrected", "error", "match")


def _format(result, fmt: str, show_prefix: bool, marked: bool = False) -> str:
    """One prefix's answer as text lines: plain, TSV rows of TSV_COLUMNS, or one JSON object.
    Words as shown (the case typed); in plain, with `marked`, a word not in the lexicon ends in *.
    A failed prefix is one record with its error (nothing in plain, whose errors go to stderr)."""
    import json

    from rnnac.interfaces.records import completion_record

    if fmt == "json":
        return json.dumps(completion_record(result), ensure_ascii=False) + "\n"
    if fmt == "tsv":
        if result.error:
            return f"{result.prefix}\t\t\t\t\t\t\t\t{result.error}\t\n"
        return "".join(f"{result.prefix}\t{rank}\t{c.word}\t{c.prob:.6g}\t{c.logprob:.6f}\t{str(c.known).lower()}\t{c.edits}\t"
                       f"{c.corrected}\t\t{c.match}\n" for rank, c in enumerate(result.completions, start=1))
    lead = f"{result.prefix}\t" if show_prefix else ""
    return "".join(f"{lead}{c.word}{'*' if marked and not c.known else ''}\n" for c in result.completions)


def _stream(items: tuple[str, ...], from_stdin: bool, header: tuple[str, ...] | None, answer) -> None:
    """The output of a command that answers items (complete's prefixes, score's words): given as
    arguments, or read from stdin a chunk at a time (_line_chunks) and answered as they arrive.

    Writes the header row (column names, TSV) first, then each chunk's text as soon as
    answer(chunk) -> (text, any failed) has it. A reader that leaves the pipe (`| head -1`) ends
    the command quietly, exit 0; if any item failed, exit 1 at the end.
    """

    failed = False
    try:
        if header:
            sys.stdout.write("\t".join(header) + "\n")
        for chunk in _line_chunks(sys.stdin) if from_stdin else [list(items)]:
            text, chunk_failed = answer(chunk)
            failed = failed or chunk_failed
            sys.stdout.write(text)
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()  # nothing more to say, and no traceback
        sys.exit(0)
    if failed:
        sys.exit(1)


def _line_chunks(stream, max_lines: int = 2048):
    """Lists of lines (without their ends) as they arrive on `stream`.

    A terminal gives one line at a time. A pipe or file gives all that is ready without
    waiting (reading stops once max_lines are in hand), so a pipeline gets answers while it
    is still writing, and a big file is read in large chunks.
    """
    import io

    try:
        fd = stream.fileno()
    except (AttributeError, io.UnsupportedOperation):  # not a real file (click's CliRunner)
        fd = None
    if fd is None or stream.isatty():
        yield from _text_chunks(stream, max_lines if fd is None else 1)
    else:
        yield from _ready_chunks(fd, max_lines)


def _text_chunks(stream, max_lines: int):
    """Lists of up to max_lines lines of a text stream."""
    chunk = []
    for line in stream:
        chunk.append(line.rstrip("\r\n"))
        if len(chunk) >= max_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ready_chunks(fd: int, max_lines: int):
    """Lists of the lines of the file descriptor `fd` that are ready to read: each read waits for
    the writer, then takes what else is ready without waiting, until max_lines are in hand."""

    pending = b""
    while True:
        data = os.read(fd, 1 << 16)  # waits for the writer, returns what it has
        if not data:
            break
        lines = _read_ready(fd, pending + data, max_lines)
        pending = lines.pop()
        if lines:
            yield [line.rstrip(b"\r").decode("utf-8", "replace") for line in lines]
    if pending:
        yield [pending.rstrip(b"\r").decode("utf-8", "replace")]


def _read_ready(fd: int, pending: bytes, max_lines: int) -> list[bytes]:
    """`pending` and what else `fd` has ready, split at line ends (the last piece unfinished)."""
    import select

    lines = pending.split(b"\n")
    while len(lines) <= max_lines and select.select([fd], [], [], 0)[0]:
        more = os.read(fd, 1 << 16)
        if not more:
            break
        pending += more
        lines = pending.split(b"\n")
    return lines


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush finds no closed pipe."""

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


SCORE_COLUMNS = ("word", "nats_per_char", "logprob", "prob", "chars", "error")
SCORE_COLUMNS_BRIEF = tuple(c for c in SCORE_COLUMNS if c != "chars")  # without --chars


@cli.command()
@click.argument("words", nargs=-1, metavar="[WORD]...")
@checkpoint_option
@format_option("plain", "tsv", "json", help="plain: word<TAB>nats per character; tsv and json: the README's score records.")
@click.option("--header", is_flag=True, help="With --format tsv: first a row of the column names.")
@click.option("--mixture", is_flag=True, help="Score by the mixture of the model and its lexicon, as complete ranks words.")
@click.option("--lambda", "mixture_lambda", type=click.FloatRange(0, 1, max_open=True), default=None, callback=_finite,
              help="With --mixture: the lexicon's weight [default: the one fitted in training].")
@click.option("--chars", "per_char", is_flag=True, help="Also each character's surprisal, then the end's (nats).")
def score(words, checkpoint, fmt, header, mixture, mixture_lambda, per_char):
    """How probable the model finds whole words.

    For each WORD: nats per character (-log P(word) over its length + 1, the end included, as
    evaluate counts), log P(word) and P(word), by the model alone or with --mixture by the
    mixture `complete` ranks by. High nats per character: an unusual word for this model, a
    typo or an odd entry in a list. Reads words from stdin as complete reads prefixes. A word
    holding a character the model does not know gets an `Error:` line on stderr and a record
    with the error in TSV and JSON (exit code 1 at the end).

    \b
    Examples:
      rnnac score record rcerod
      rnnac score --format tsv - < list.txt | sort -t$'\\t' -k2 -g | tail
      rnnac score -c runs/names --chars --format json emma xqzt
    """

    from rnnac.inference.completer import Completer
    from rnnac.inference.options import check_score_options
    from rnnac.inference.score import score_words

    from_stdin = _reads_stdin(words, sys.stdin, what="WORD")
    _check_header(header, fmt)
    with _usage_errors():
        check_score_options(mixture, mixture_lambda)
    completer = Completer.load(checkpoint)
    with _usage_errors():
        check_score_options(mixture, mixture_lambda, completer.has_lexicon, completer.mixture_lambda)
    lexicon = completer.lexicon if mixture else None

    def answer(chunk: list[str]) -> tuple[str, bool]:
        chunk = [w.strip() for w in chunk if w.strip() or not from_stdin]  # a list's blank lines are no words
        return _score_lines(score_words(completer, chunk, lexicon, mixture_lambda), fmt, per_char)

    _stream(words, from_stdin, (SCORE_COLUMNS if per_char else SCORE_COLUMNS_BRIEF) if header else None, answer)


def _score_lines(results, fmt: str, per_char: bool) -> tuple[str, bool]:
    """`score`'s lines for some words' results (_format_score), and whether any failed; says on
    stderr which failed."""
    out, failed = [], False
    for result in results:
        if result.error:
            failed = True
            click.echo(f"Error: {result.error}", err=True)
        out.append(_format_score(result, fmt, per_char))
    return "".join(out), failed


def _format_score(result, fmt: str, per_char: bool) -> str:
    """One word's score as a plain line, a TSV row of SCORE_COLUMNS (chars only with --chars) or
    a JSON object; a word not scored is a record with its error (nothing in plain)."""
    import json
    import math

    from rnnac.interfaces.records import score_record

    if fmt == "json":
        return json.dumps(score_record(result, per_char), ensure_ascii=False) + "\n"
    if result.error:
        return f"{result.word}\t\t\t\t{chr(9) if per_char else ''}{result.error}\n" if fmt == "tsv" else ""
    chars = " ".join(f"{nats:.3f}" for nats in result.surprisal)
    if fmt == "tsv":
        extra = f"{chars}\t" if per_char else ""
        return f"{result.word}\t{result.nats_per_char:.6f}\t{result.logprob:.6f}\t{math.exp(result.logprob):.6g}\t{extra}\n"
    extra = "\t" + " ".join(f"{ch}:{nats:.2f}" for ch, nats in zip([*result.chars, "$"], result.surprisal)) if per_char else ""
    return f"{result.word}\t{result.nats_per_char:.3f}{extra}\n"


@cli.command()
@checkpoint_option
@click.option("-n", "--count", default=10, show_default=True, type=click.IntRange(0, MAX_SAMPLES), help="How many words.")
@click.option("-t", "--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0), callback=_finite,
              help="Below 1 sharper, above 1 more varied; 0 always the most likely character.")
@click.option("--prefix", default="", help="Every word starts with this.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed for repeatable samples.")
@click.option("--max-length", default=32, show_default=True, type=click.IntRange(1, MAX_LENGTH), help="Longest word, prefix included.")
@format_option("plain", "tsv", "json", help="plain and tsv: one word a line; json: one object a line.")
def sample(checkpoint, count, temperature, prefix, seed, max_length, fmt):
    """Generate new words from the model.

    Draws COUNT words, a character at a time, from the model alone (not its lexicon): words
    in the style of the list it learnt, often ones the list lacks.

    \b
    Examples:
      rnnac sample -n 20 --temperature 0.8 --seed 1
      rnnac sample -c runs/mylist --prefix ma --format json
    """
    import json

    from rnnac.inference.sampling import sample_chunks
    from rnnac.storage.checkpoint import load_trained

    if len(prefix) > max_length:
        raise click.BadParameter(f"{len(prefix)} characters, more than --max-length {max_length}", param_hint="--prefix")
    trained = load_trained(checkpoint)
    for words in sample_chunks(trained.model, trained.vocab, count, temperature, prefix, seed, max_length,
                               trained.folding):  # each chunk printed as soon as it is drawn
        if fmt == "json":
            click.echo("".join(json.dumps({"version": 1, "word": w}, ensure_ascii=False) + "\n" for w in words), nl=False)
        else:
            click.echo("".join(f"{w}\n" for w in words), nl=False)


@cli.command()
@click.argument("checkpoint_arg", metavar="[CHECKPOINT]", required=False, type=click.Path())
@checkpoint_option
@format_option("plain", "tsv", "json", help="plain: `key: value` lines; tsv: key<TAB>value; json: one object.")
@json_option
def info(checkpoint_arg, checkpoint, fmt, as_json):
    """Describe a model: vocabulary, sizes, lexicon, training.

    The model is CHECKPOINT or -c (a checkpoint, or a run folder for its best.npz), else
    $RNNAC_CHECKPOINT, else the bundled model. Config fields appear as config.SECTION.KEY.
    With a lexicon: lexicon_counts (counted, or flat: every count alike), new_default (what
    `complete --new` defaults to with it), mixture_lambda and mixture_fit (how training fitted
    it: by count, or for a flat list on what users type, with a floor for the RNN).

    \b
    Examples:
      rnnac info
      rnnac info -c runs/mylist --format json
    """
    import json

    from rnnac.storage.checkpoint import describe

    if checkpoint_arg is not None:
        ctx = click.get_current_context()
        if checkpoint is not None and not ctx.meta.pop(FROM_VARIABLE, False):
            raise click.UsageError("give the checkpoint once: as CHECKPOINT or with -c")
        checkpoint = checkpoint_arg
    facts = describe(checkpoint)
    if "lexicon_counts" in facts:  # what --new defaults to with it (Completer.default_new)
        facts["new_default"] = 0 if facts["lexicon_counts"] == "flat" else DEFAULT_NEW
    if as_json or fmt == "json":
        click.echo(json.dumps(facts, indent=2, ensure_ascii=False))
        return
    separator = "\t" if fmt == "tsv" else ": "
    click.echo("".join(f"{key}{separator}{value}\n" for key, value in _info_rows(facts)), nl=False)


def _info_rows(facts: dict) -> list[tuple[str, str]]:
    """(key, value) rows of a checkpoint's facts: strings as they are, other values as JSON, the
    config's fields flattened to config.SECTION.KEY."""
    import json

    config = facts.pop("config")
    return [*((key, value if isinstance(value, str) else json.dumps(value)) for key, value in facts.items()),
            *((f"config.{key}", json.dumps(value)) for key, value in _flatten(config))]


def _flatten(tree: dict, parent: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{parent}{key}.")
        else:
            yield f"{parent}{key}", value


# --- serve ---------------------------------------------------------------------------------


@cli.command()
@click.option("-c", "--checkpoint", "checkpoints", multiple=True, metavar="[NAME=]CHECKPOINT",
              help=f"A model to serve (repeatable), named NAME or after its file or run folder; the first is the default "
                   f"[default: ${CHECKPOINT_VARIABLE}, else the bundled model].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8808, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free one).")
@click.option("--lexicon", "lexicons", multiple=True, metavar="[NAME=]FILE",
              help="Complete model NAME (the first, without NAME) only to the words of FILE, as complete --lexicon. Repeatable.")
@click.option("--lexicon-mode", "lexicon_modes", multiple=True, metavar="[NAME=]MODE",
              help="replace or add, for that model's --lexicon, as complete --lexicon-mode [default: replace].")
@click.option("--exclude", "excludes", multiple=True, metavar="[NAME=]FILE", help="Never propose the words of FILE to that model.")
@click.option("--learn", is_flag=True, help="POST /accept learns picked completions into the checkpoint's journal.")
@click.option("--increment", type=click.FloatRange(0, min_open=True), default=None, callback=_finite,
              help="With --learn: what the first accept adds to a count [default: the list's mean count, at least 1/10,000 of its total].")
@click.option("--decay", type=click.FloatRange(0, 1, min_open=True), default=None,
              help=f"With --learn: each accept weighs 1/decay times the one before [default: {DEFAULT_DECAY}].")
@click.option("--admin-token", envvar="RNNAC_ADMIN_TOKEN", default=None, metavar="TOKEN",
              help="POST /lexicon changes word lists for who sends this token [default: $RNNAC_ADMIN_TOKEN; unset: refused].")
def serve(checkpoints, host, port, lexicons, lexicon_modes, excludes, learn, increment, decay, admin_token):
    """Serve completions over HTTP, models kept loaded.

    A JSON API for editors, shells and web pages, answered in a few milliseconds: GET
    /complete?q=rec&k=5 (and the options of `complete`: max_edits, known_only, open, lambda,
    beam, budget, match, model), POST /complete with {"prefixes": [...]}, GET /score?w=word, GET /info,
    GET /health; and at / a page that completes as you type. Answers are the records of
    `--format json`. With --learn, POST /accept {"word", "prefix"} learns a picked completion;
    with an admin token, POST /lexicon {"edits": [...]} adds, removes, sets or boosts words (as
    `rnnac lexicon`); both are kept in the checkpoint's journal and apply to the next request.
    Concurrent requests are answered by one batched search. Listens on
    127.0.0.1 unless --host says otherwise; Ctrl-C or SIGTERM lets requests in flight finish,
    then exits. Needs the serve extra: pip install 'rnnac[serve]'.

    \b
    Examples:
      rnnac serve
      rnnac serve -c en=bundled -c names=runs/names --port 9000
      curl 'http://127.0.0.1:8808/complete?q=rec&k=3'
    """
    from rnnac.storage.checkpoint import resolve_checkpoint

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise click.ClickException("rnnac serve needs Starlette and uvicorn: pip install 'rnnac[serve]'") from None
    from rnnac.interfaces import serve as server

    if not learn and (increment is not None or decay is not None):
        raise click.UsageError("--increment and --decay go with --learn")
    models = {}
    for spec in checkpoints or [None]:
        name, path = _model_spec(spec)
        path = resolve_checkpoint(path)
        name = name or _model_name(path)
        if name in models:
            raise click.UsageError(f"two models named {name!r}: name them, -c NAME=CHECKPOINT")
        models[name] = server.Served.load(name, str(path))
    _serve_lists(models, lexicons, lexicon_modes, excludes, learn or admin_token is not None)
    learning = server.Learning(increment, DEFAULT_DECAY if decay is None else decay) if learn else None
    try:
        listener = server.bind(host, port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    import signal

    stopped_by = server.serve(models, listener, lambda line: click.echo(line, err=True), learning, admin_token)
    if stopped_by == signal.SIGINT:
        raise SystemExit(130)  # Ctrl-C, as every command answers it; SIGTERM, a service manager's stop: 0


def _serve_lists(models: dict, lexicons, modes, excludes, learning: bool) -> None:
    """Give each served model its --lexicon, --lexicon-mode and --exclude (Served.keywords)."""
    def by_model(values, option: str) -> dict:
        chosen = {}
        for value in values:
            name, _, rest = value.partition("=") if "=" in value and not os.path.exists(value) else ("", "", value)
            name = name or next(iter(models))
            if name not in models:
                raise click.BadParameter(f"{value!r}: no model named {name!r} is served", param_hint=option)
            if name in chosen:
                raise click.BadParameter(f"{name!r} given twice", param_hint=option)
            chosen[name] = rest
        return chosen

    files, mode_of, blocked = by_model(lexicons, "--lexicon"), by_model(modes, "--lexicon-mode"), by_model(excludes, "--exclude")
    for name, mode in mode_of.items():
        if mode not in ("replace", "add"):
            raise click.BadParameter(f"{mode!r} is not replace or add", param_hint="--lexicon-mode")
        if name not in files:
            raise click.UsageError(f"--lexicon-mode for model {name!r} goes with a --lexicon for it")
    for name, served in models.items():
        if name in files and learning:
            raise click.UsageError(f"model {name!r}: --learn and --admin-token change the checkpoint's own word list, "
                                   "which --lexicon replaces; serve it without --lexicon")
        mode = mode_of.get(name, "replace")
        served.keywords = {key: value for key, value in _scoring_options(
            served.completer, files.get(name), mode, blocked.get(name), False, False, None).items()
            if key in ("lexicon", "known_only", "exclude") and value is not None}


def _model_spec(spec: str | None) -> tuple[str | None, str | None]:
    """(name, path) of a -c value: NAME=CHECKPOINT, or CHECKPOINT (a path holding "=" is taken whole if it exists)."""
    if spec is None or "=" not in spec or os.path.exists(spec):
        return None, spec
    name, _, path = spec.partition("=")
    if not name or not path:
        raise click.BadParameter(f"{spec!r}: expected NAME=CHECKPOINT", param_hint="-c")
    return name, path


def _model_name(path) -> str:
    """A model's default name: its file's stem, or its run folder's name for best.npz and last.npz."""
    from pathlib import Path

    path = Path(path)
    return path.parent.name if path.stem in ("best", "last") and path.parent.name else path.stem


# evaluate.BASELINES, written out so that `rnnac --help` need not import NumPy (a test checks they agree)
BASELINES = ("trie", "ngram", "kn")

# --- evaluate, plot ------------------------------------------------------------------------


@cli.command()
@click.argument("wordlist", type=click.Path(dir_okay=False, allow_dash=True))
@checkpoint_option
@click.option("--weighted", is_flag=True, help="Weigh each word by its count in a frequency list (words as people type them).")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(BASELINES),
              help="Baselines to compare with (repeatable) [default: all].")
@click.option("--no-baselines", is_flag=True, help="Evaluate the model alone.")
@click.option("-k", "--top", default=5, show_default=True, type=click.IntRange(1, MAX_K), help="Completions considered.")
@click.option("--lambda", "mixture_lambda", type=click.FloatRange(0, 1), default=None, callback=_finite,
              help="Weight of the lexicon in the mixture [default: the one fitted in training].")
@click.option("--search", type=click.Choice(["exact", "known"]), default="exact", show_default=True,
              help="exact: the model's completions as `rnnac complete` finds them; known: the model "
                   "ranks only the training and evaluated words, as the baselines do.")
@click.option("--train-list", type=click.Path(dir_okay=False), default=None,
              help="The word list the model was trained on, if not where its config says.")
@format_option("plain", "tsv", "json",
               help="plain: the verdict, then tables; tsv: one row per model and subset of the words; "
                    "json: every figure, the verdict first.")
@json_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (there is none when stderr is not a terminal).")
@click.option("--typos", "typo_rate", type=click.FloatRange(0, 1), default=None,
              help="Run the typo benchmark instead: this share of drawn words gets one random edit.")
@click.option("--typo-words", default=2000, show_default=True, type=click.IntRange(1, MAX_TYPO_WORDS),
              help="With --typos: words drawn from WORDLIST (by count with --weighted).")
@click.option("--typed", default=4, show_default=True, type=click.IntRange(1, MAX_LENGTH),
              help="With --typos: characters typed, the edit among them.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="With --typos: the draws' seed.")
def evaluate(wordlist, checkpoint, weighted, baselines, no_baselines, top, mixture_lambda, search, train_list, fmt, as_json,
             quiet, typo_rate, typo_words, typed, seed):
    """Score a model on a word list beside simple baselines.

    First the verdict: rnnac (the mixture `rnnac complete` ranks by) against the baseline that
    saves the most keystrokes, on keystroke savings and top-k with 3 characters typed. Then
    likelihood (nats and bits per character), completion accuracy with 1 to 4 characters typed,
    and keystroke savings of the model over WORDLIST, beside a frequency trie and character
    n-grams trained on the same split; seen and held-out words apart. WORDLIST may name a
    shipped list (words, names, identifiers) when no file has that name. On a terminal, a bar says
    what it is doing, and while it scores a model, how many words and how long is left.

    \b
    With --typos RATE, the typo benchmark instead: words drawn from WORDLIST, a share RATE of
    them mistyped by one random edit in their first --typed characters, completed by the model
    without and with --max-edits 1 and by a frequency trie, exact and with Levenshtein-1 prefixes.

    \b
    Examples:
      rnnac evaluate words --weighted
      rnnac evaluate mylist.txt -c runs/mylist --format json
      rnnac evaluate words --weighted --typos 0.3
    """
    from rnnac.evaluation.evaluate import evaluate_checkpoint, format_table
    from rnnac.storage.checkpoint import resolve_checkpoint

    fmt = "json" if as_json else fmt
    _check_evaluation_flags(typo_rate is not None)
    if typo_rate is not None:
        from rnnac.evaluation.evaluate import typo_checkpoint
        from rnnac.evaluation.typobench import format_typo_table, typo_tsv

        report = typo_checkpoint(wordlist, resolve_checkpoint(checkpoint), typo_rate, weighted=weighted, k=top,
                                 n_words=typo_words, typed=typed, seed=seed, train_list=train_list,
                                 mixture_lambda=mixture_lambda)
        click.echo({"json": report.to_json, "tsv": lambda: typo_tsv(report), "plain": lambda: format_typo_table(report)}[fmt]())
        return

    with _stage_bar(quiet) as progress:
        result = evaluate_checkpoint(
            wordlist, resolve_checkpoint(checkpoint), weighted=weighted, k=top, train_list=train_list,
            baselines=() if no_baselines else (baselines or BASELINES), search=search, mixture_lambda=mixture_lambda,
            progress=progress)
    click.echo({"json": result.to_json, "tsv": lambda: _evaluation_tsv(result.to_dict()), "plain": lambda: format_table(result)}[fmt]())


def _check_evaluation_flags(typos: bool) -> None:
    """UsageError for `evaluate`'s flags given that do not go with (or without) --typos."""
    ctx = click.get_current_context()
    given = [flag for name, flag in (("baselines", "--baseline"), ("no_baselines", "--no-baselines"), ("search", "--search"),
                                     ("typo_words", "--typo-words"), ("typed", "--typed"), ("seed", "--seed"))
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if typos and set(given) & {"--baseline", "--no-baselines", "--search"}:
        raise click.UsageError(f"--typos runs its own contenders: drop {given[0]}")
    if not typos and given and given[-1] in ("--typo-words", "--typed", "--seed"):
        raise click.UsageError(f"{given[-1]} goes with --typos")


@contextlib.contextmanager
def _stage_bar(quiet: bool):
    """A progress bar on stderr, when it is a terminal, for evaluate's stages (its progress(Stage)):
    "[5/7] scoring rnn |####    | 12,000/29,494 words [00:10<00:14]", the words and the time left
    for a stage that scores words. It is cleared at the end, leaving stdout's results alone."""

    from tqdm import tqdm

    timed, counted = "{desc} [{elapsed}]", "{desc} |{bar:20}| {n:,}/{total:,} words [{elapsed}<{remaining}]"
    with tqdm(desc="reading the word lists and the model", file=sys.stderr, disable=quiet or not sys.stderr.isatty(),
              leave=False, bar_format=timed) as bar:
        shown = None  # the stage on the bar

        def progress(stage) -> None:
            nonlocal shown
            if stage.number != shown:  # a new stage: its own count and clock
                shown, bar.bar_format, bar.total = stage.number, counted if stage.words else timed, stage.words or None
                bar.set_description_str(f"[{stage.number}/{stage.stages}] {stage.what}", refresh=False)
                bar.reset()  # redraws the bar
            bar.update(stage.done - bar.n)  # redraws at most every 0.1 s; the time left from the recent pace

        yield progress


def _evaluation_tsv(report: dict) -> str:
    """`rnnac evaluate --format tsv`: one row per model and subset of the words (all, seen,
    held_out), with a header; top-1, top-k and MRR for each number of characters typed."""
    lengths, k = report["prefix_lengths"], report["k"]
    columns = ["model", "subset", "n_words", "nll_per_char", "bits_per_char", "perplexity", "keystroke_savings",
               *(f"{measure}_{n}_typed" for n in lengths for measure in ("top1", f"top{k}", "mrr"))]
    rows = [columns, *([model, subset, *_evaluation_values(scores, columns[2:7], lengths)]
                       for model, subsets in report["models"].items() for subset, scores in subsets.items())]
    return "\n".join("\t".join("" if v is None else str(v) for v in row) for row in rows)


def _evaluation_values(scores: dict, figures: list[str], lengths: list[int]) -> list:
    """One model's `figures` over one subset of the words, then top-1, top-k and MRR for each number
    of characters typed (None where it has none)."""
    typed = [scores["prefix"].get(n) or {} for n in lengths]
    return [*(scores[c] for c in figures), *(by_length.get(m) for by_length in typed for m in ("top1", "topk", "mrr"))]


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="curve.png", show_default=True,
              help="The picture to write (PNG, SVG or PDF by its extension).")
def plot(run_dir, output):
    """Draw a run's learning curves into a picture.

    Training loss (smoothed, the raw points faint) and validation loss in nats per character
    against the update step, from RUN_DIR/metrics.jsonl. Needs matplotlib: pip install 'rnnac[plot]'.

    \b
    Examples:
      rnnac plot runs/mylist
      rnnac plot runs/names -o names.svg
    """
    from rnnac.interfaces.plot import plot_run

    click.echo(plot_run(run_dir, output))


def _ignore_stop_signals() -> None:
    """Ignore Ctrl-C, SIGTERM and SIGHUP from here to the exit. (Python puts its own handlers back
    to the default action as it shuts down, when a SIGTERM would kill the process; an ignored
    signal stays ignored.)"""
    import signal

    from rnnac.training.trainer import STOP_SIGNALS

    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class _ClosedStream(io.TextIOBase):
    """Standard input or output that the shell closed (`<&-`, `>&-`), which Python gives as None:
    reading or writing it is an OSError naming it, which the command reports as one line."""

    def __init__(self, what: str):
        self.what = what

    def _closed(self, *args):
        raise OSError(errno.EBADF, f"{self.what} is closed")

    read = readline = write = fileno = _closed
    encoding, errors = "utf-8", "strict"

    @property
    def buffer(self):
        return self

    def isatty(self) -> bool:
        return False

    def flush(self) -> None:  # nothing is ever buffered, and the interpreter flushes on its way out
        pass


def _stand_in_for_closed_streams() -> None:
    """Give a standard stream the shell closed a stand-in: its descriptor is held by /dev/null, so
    that no file opened later (a checkpoint's temporary file) takes that number and receives what
    is meant for the stream; stdin and stdout become _ClosedStream, stderr a sink (2>&- asks for
    no messages, and the exit code still tells)."""
    for fd, name, what in ((0, "stdin", "standard input"), (1, "stdout", "standard output"), (2, "stderr", None)):
        try:
            os.fstat(fd)
        except OSError:
            held = os.open(os.devnull, os.O_RDWR)
            if held != fd:
                os.dup2(held, fd)
                os.close(held)
            if getattr(sys, name) is None:
                setattr(sys, name, _ClosedStream(what) if what else open(os.devnull, "w", encoding="utf-8"))


from rnnac.interfaces.lexicon_commands import lexicon  # noqa: E402  (it takes -c from above)

cli.add_command(lexicon)


def main():
    """The `rnnac` script. Until training takes Ctrl-C over, the first Ctrl-C ends the command at
    once and quietly with exit code 130, and any further one while it unwinds is ignored."""
    import signal

    _stand_in_for_closed_streams()

    def interrupt_once(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started ignoring it (`&`, nohup)
        signal.signal(signal.SIGINT, interrupt_once)
    try:
        cli()
    except KeyboardInterrupt:  # one that came after click's handling, on the way out
        raise SystemExit(130) from None
