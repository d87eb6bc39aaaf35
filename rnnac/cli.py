"""The rnnac command line: a thin shell over the library. Each command parses, calls, prints.

Library errors (RnnacError) become `Error: ...` on stderr with exit code 1; click's usage
errors exit 2. Heavy imports (yaml, tqdm) happen inside the commands that need them, so
`rnnac complete` starts fast.
"""

from __future__ import annotations

import click

from rnnac import __version__
from rnnac.errors import RnnacError


class Group(click.Group):
    """Ends every command plainly, never with a traceback: a user's mistake (RnnacError), a system
    error (OSError) or running out of memory is one `Error:` line and exit 1; Ctrl-C exits 130
    quietly; a reader that leaves the pipe (`rnnac info | head -1`) ends the command quietly, exit 0."""

    def make_context(self, info_name, args, parent=None, **extra):  # --help and --version print from here
        return self._plainly(super().make_context, info_name, args, parent, **extra)

    def invoke(self, ctx):
        return self._plainly(super().invoke, ctx)

    @staticmethod
    def _plainly(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
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


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnac")
def cli():
    """Character-level autocompletion with a vanilla RNN trained by exact BPTT.

    \b
      rnnac train configs/default.yaml      train a model on a word list
      rnnac complete rec                    complete a prefix with the bundled model
      rnnac complete - < prefixes.txt       complete one prefix a line from a pipe
    """


# --- train (owned by the lead) ---------------------------------------------------------


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config field (repeatable).")
@click.option("--resume", is_flag=True, help="Continue the run from OUTPUT_DIR/last.npz.")
@click.option("--force", is_flag=True, help="Start over even if output.dir holds a run.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or log lines.")
def train(config, overrides, resume, force, quiet):
    """Train a model as CONFIG (YAML) says; checkpoints go to output.dir.

    Ctrl-C, SIGTERM or SIGHUP saves last.npz and exits 130, 143 or 129; `--resume` continues
    from it exactly.
    """
    from rnnac.config import load_config
    from rnnac.errors import TrainingInterrupted
    from rnnac.train import run

    try:
        summary = run(load_config(config, overrides), resume=resume, quiet=quiet, force=force)
    except TrainingInterrupted as e:
        import contextlib
        import shlex

        again = shlex.join(["rnnac", "train", config, *(x for o in overrides for x in ("--set", o)), "--resume"])
        how = "Interrupted" if e.signal_name == "SIGINT" else f"Stopped by {e.signal_name}"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            click.echo(f"{how} at step {e.step}; saved {e.path}. Resume with: {again}", err=True)
        raise SystemExit(128 + e.signum) from None
    click.echo(summary)


# --- end of train ------------------------------------------------------------------------


# --- complete, sample, info --------------------------------------------------------------

checkpoint_option = click.option(
    "-c", "--checkpoint", type=click.Path(dir_okay=False), default=None,
    help="Model to use [default: $RNNAC_CHECKPOINT, else the bundled model].")


@cli.command()
@click.argument("prefixes", nargs=-1, metavar="[PREFIX]...")
@checkpoint_option
@click.option("-k", "--top", default=5, show_default=True, type=click.IntRange(min=1), help="Completions per prefix.")
@click.option("--format", "fmt", type=click.Choice(["plain", "tsv", "json"]), default="plain", show_default=True,
              help="plain: one word a line; tsv and json: the records of the README's output format.")
@click.option("--beam", type=click.IntRange(min=1), default=None, help="Beam search of this width instead of the exact search.")
@click.option("--lexicon", type=click.Path(dir_okay=False), default=None,
              help="Complete only to the words of this list, weighed by its counts.")
@click.option("--lexicon-mode", type=click.Choice(["replace", "add"]), default="replace", show_default=True,
              help="add: the words of --lexicon join the model's own lexicon instead of replacing it.")
@click.option("--exclude", type=click.Path(dir_okay=False), default=None, help="Never propose the words of this list.")
@click.option("--known-only", is_flag=True, help="Only words of the lexicon.")
@click.option("--open", "open_vocab", is_flag=True, help="The model alone, without its lexicon.")
@click.option("--lambda", "mixture_lambda", type=click.FloatRange(0, 1), default=None,
              help="Weight of the lexicon in the mixture [default: the one fitted in training].")
@click.option("--max-length", default=32, show_default=True, type=click.IntRange(min=1), help="Longest word, prefix included.")
@click.option("--budget", default=2000, show_default=True, type=click.IntRange(min=1), help="Node expansions per prefix.")
@click.option("--skip-unknown", is_flag=True, help="Silently skip prefixes with characters the model does not know.")
def complete(prefixes, checkpoint, top, fmt, beam, lexicon, lexicon_mode, exclude, known_only, open_vocab,
             mixture_lambda, max_length, budget, skip_unknown):
    """The TOP most probable whole words starting with each PREFIX, best first.

    Words are ranked by a mixture of the lexicon the model carries (its training list, with
    counts) and the model itself, so known words come first and new ones still appear.
    With `-`, or no PREFIX and stdin not a terminal, reads one prefix a line and answers as
    lines arrive. With several prefixes (or stdin) plain lines are `prefix<TAB>word`.
    The search is exact unless the budget stops it (a warning on stderr says so).
    """
    import sys

    from rnnac.complete import Completer

    from_stdin = prefixes == ("-",) or (not prefixes and not sys.stdin.isatty())
    if not from_stdin and not prefixes:
        raise click.UsageError("give a PREFIX, or - to read prefixes from stdin")
    if "-" in prefixes and len(prefixes) > 1:
        raise click.UsageError("- (read stdin) cannot be mixed with other prefixes")
    if known_only and open_vocab:
        raise click.UsageError("--known-only and --open cannot be used together")
    completer = Completer.load(checkpoint)
    options = _scoring_options(completer, lexicon, lexicon_mode, exclude, known_only, open_vocab, mixture_lambda)
    chunks = _line_chunks(sys.stdin) if from_stdin else [list(prefixes)]
    show_prefix = from_stdin or len(prefixes) > 1
    failed = False
    try:
        for chunk in chunks:
            out = []
            for result in completer.complete_many(chunk, top, max_length, budget, beam, **options):
                if result.error:
                    if skip_unknown:
                        continue
                    failed = True
                    click.echo(f"Error: {result.error}", err=True)
                elif result.truncated:
                    click.echo(f"Warning: {result.prefix!r}: the search stopped at --budget {budget}; "
                               f"these may not be the exact top {top}", err=True)
                out.append(_format(result, fmt, show_prefix))
            sys.stdout.write("".join(out))
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()  # the reader left (`| head -1`): nothing more to say, and no traceback
        sys.exit(0)
    if failed:
        sys.exit(1)


def _scoring_options(completer, lexicon, lexicon_mode, exclude, known_only, open_vocab, mixture_lambda) -> dict:
    """complete_many's lexicon, mode, mixture_lambda and exclude from the command's options."""
    lex = completer.lexicon_from_file(lexicon, add=lexicon_mode == "add") if lexicon else None
    if lex is not None and lex.skipped:
        click.echo(f"Warning: {lex.skipped:,} lexicon words hold characters the model does not know; "
                   "they are never completed", err=True)
    if open_vocab:
        mode = "open"
    elif known_only or (lexicon and lexicon_mode == "replace"):
        mode = "known"  # --lexicon FILE alone: only the words of FILE
    else:
        mode = "mixture" if lex is not None or completer.lexicon is not None else "open"
    blocked = completer.lexicon_from_file(exclude) if exclude else None
    if mode != "open" and lex is None and completer.lexicon is None:
        raise click.UsageError("this model carries no lexicon: give one with --lexicon FILE")
    return {"lexicon": lex, "mode": mode, "mixture_lambda": mixture_lambda, "exclude": blocked}


TSV_COLUMNS = ("prefix", "rank", "word", "prob", "logprob", "known", "edits", "corrected", "error")


def _format(result, fmt: str, show_prefix: bool) -> str:
    """One prefix's answer as text lines: plain, TSV rows of TSV_COLUMNS, or one JSON object.
    A failed prefix is one record with its error (nothing in plain, whose errors go to stderr)."""
    import json
    import math

    if fmt == "json":
        if result.error:
            return json.dumps({"version": 1, "prefix": result.prefix, "error": result.error}, ensure_ascii=False) + "\n"
        words = [{"word": w, "prob": math.exp(lp), "logprob": lp, "known": known}
                 for (w, lp), known in zip(result.completions, result.known)]
        obj = {"version": 1, "prefix": result.prefix, "completions": words, "truncated": result.truncated}
        return json.dumps(obj, ensure_ascii=False) + "\n"
    if fmt == "tsv":
        if result.error:
            return f"{result.prefix}\t\t\t\t\t\t\t\t{result.error}\n"
        return "".join(f"{result.prefix}\t{rank}\t{w}\t{math.exp(lp):.6g}\t{lp:.6f}\t{str(known).lower()}"
                       f"\t0\t{result.prefix}\t\n"
                       for rank, ((w, lp), known) in enumerate(zip(result.completions, result.known), start=1))
    lead = f"{result.prefix}\t" if show_prefix else ""
    return "".join(f"{lead}{w}\n" for w, _ in result.completions)


def _line_chunks(stream, max_lines: int = 2048):
    """Lists of lines (without their ends) as they arrive on `stream`.

    A terminal gives one line at a time. A pipe or file gives all that is ready without
    waiting (reading stops once max_lines are in hand), so a pipeline gets answers while it
    is still writing, and a big file is read in large chunks.
    """
    import io
    import os
    import select

    try:
        fd = stream.fileno()
    except (AttributeError, io.UnsupportedOperation):  # not a real file (click's CliRunner)
        fd = None
    if fd is None or stream.isatty():
        chunk = []
        for line in stream:
            chunk.append(line.rstrip("\r\n"))
            if len(chunk) >= max_lines or fd is not None:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        return
    pending = b""
    while True:
        data = os.read(fd, 1 << 16)  # waits for the writer, returns what it has
        if not data:
            break
        pending += data
        lines = pending.split(b"\n")
        while len(lines) <= max_lines and select.select([fd], [], [], 0)[0]:
            more = os.read(fd, 1 << 16)
            if not more:
                break
            pending += more
            lines = pending.split(b"\n")
        pending = lines.pop()
        if lines:
            yield [line.rstrip(b"\r").decode("utf-8", "replace") for line in lines]
    if pending:
        yield [pending.rstrip(b"\r").decode("utf-8", "replace")]


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush finds no closed pipe."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _finite(ctx, param, value):
    """A click callback: NaN and infinity pass FloatRange's checks, so refuse them here."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


@cli.command()
@checkpoint_option
@click.option("-n", "count", default=10, show_default=True, type=click.IntRange(min=0), help="How many words.")
@click.option("-t", "--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0), callback=_finite,
              help="Below 1 sharper, above 1 more varied; 0 always the most likely character.")
@click.option("--prefix", default="", help="Every word starts with this.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed for repeatable samples.")
@click.option("--max-length", default=32, show_default=True, type=click.IntRange(min=1), help="Longest word, prefix included.")
def sample(checkpoint, count, temperature, prefix, seed, max_length):
    """Generate words from the model, one a line."""
    from rnnac.checkpoint import load_for_inference
    from rnnac.sampling import sample as sample_words

    if len(prefix) > max_length:
        raise click.BadParameter(f"{len(prefix)} characters, more than --max-length {max_length}", param_hint="--prefix")
    model, vocab, lowercase, _ = load_for_inference(checkpoint)
    words = sample_words(model, vocab, count, temperature, prefix, seed, max_length, lowercase)
    click.echo("".join(f"{w}\n" for w in words), nl=False)


@cli.command()
@click.argument("checkpoint", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def info(checkpoint, as_json):
    """Describe CHECKPOINT [default: $RNNAC_CHECKPOINT, else the bundled model]."""
    import json

    from rnnac.checkpoint import describe

    facts = describe(checkpoint)
    if as_json:
        click.echo(json.dumps(facts, indent=2, ensure_ascii=False))
        return
    for key, value in facts.items():
        if key == "config":
            for name, field_value in _flatten(value):
                click.echo(f"config.{name}: {json.dumps(field_value)}")
        else:
            click.echo(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")


def _flatten(tree: dict, parent: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{parent}{key}.")
        else:
            yield f"{parent}{key}", value


# evaluate.BASELINES, written out so that `rnnac --help` need not import NumPy (a test checks they agree)
BASELINES = ("trie", "ngram", "kn")

# --- evaluate, plot ------------------------------------------------------------------------


@cli.command()
@click.argument("wordlist", type=click.Path(dir_okay=False, allow_dash=True))
@checkpoint_option
@click.option("--weighted", is_flag=True, help="Weigh each word by its TSV count (words as people type them).")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(BASELINES),
              help="Baselines to compare with (repeatable) [default: all].")
@click.option("--no-baselines", is_flag=True, help="Evaluate the model alone.")
@click.option("-k", "--top", default=5, show_default=True, type=click.IntRange(min=1), help="Completions considered.")
@click.option("--lambda", "mixture_lambda", type=click.FloatRange(0, 1), default=None,
              help="Weight of the lexicon in the mixture [default: the checkpoint's, else fitted].")
@click.option("--search", type=click.Choice(["exact", "known"]), default="exact", show_default=True,
              help="exact: the model's completions as `rnnac complete` finds them; known: the model "
                   "ranks only the training and evaluated words, as the baselines do.")
@click.option("--train-list", type=click.Path(dir_okay=False), default=None,
              help="The word list the model was trained on, if not where its config says.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure.")
def evaluate(wordlist, checkpoint, weighted, baselines, no_baselines, top, mixture_lambda, search, train_list, as_json):
    """Likelihood, completion accuracy and keystroke savings of a model over WORDLIST,
    beside a frequency trie and a character n-gram trained on the same split."""
    from rnnac.checkpoint import resolve_checkpoint
    from rnnac.evaluate import evaluate_checkpoint, format_table

    result = evaluate_checkpoint(
        wordlist, resolve_checkpoint(checkpoint), weighted=weighted, k=top, train_list=train_list,
        baselines=() if no_baselines else (baselines or BASELINES), search=search, mixture_lambda=mixture_lambda)
    click.echo(result.to_json() if as_json else format_table(result))


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="curve.png", show_default=True,
              help="The picture to write (PNG, SVG or PDF by its extension).")
def plot(run_dir, output):
    """Draw training and validation loss from RUN_DIR/metrics.jsonl."""
    from rnnac.plot import plot_run

    click.echo(plot_run(run_dir, output))


def main():
    """The `rnnac` script. Until training takes Ctrl-C over, the first Ctrl-C ends the command at
    once and quietly with exit code 130, and any further one while it unwinds is ignored."""
    import signal

    def interrupt_once(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started ignoring it (`&`, nohup)
        signal.signal(signal.SIGINT, interrupt_once)
    try:
        cli()
    except KeyboardInterrupt:  # one that came after click's handling, on the way out
        raise SystemExit(130) from None
