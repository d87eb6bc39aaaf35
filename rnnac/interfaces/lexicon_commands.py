"""`rnnac lexicon`: change a checkpoint's word list without retraining (rnnac.inference.live).

Each changing command writes a new checkpoint (-o FILE) or rewrites its own in place
(--in-place, the old one kept as .bak); the journal's edits (accepts, a server's changes) come
with it. `list` and `diff` read.
"""

from __future__ import annotations

import math

import click

from rnnac.errors import DataError

WRITE_HELP = "Write the changed checkpoint to FILE."
IN_PLACE_HELP = "Rewrite the checkpoint itself (its old version kept as CHECKPOINT.bak)."


def output_options(command):
    command = click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help=WRITE_HELP)(command)
    return click.option("--in-place", is_flag=True, help=IN_PLACE_HELP)(command)


def _checkpoint_option(command):
    from rnnac.interfaces.cli import checkpoint_option

    return checkpoint_option(command)


@click.group()
def lexicon():
    """Change a model's word list without retraining.

    The model (RNN) is never changed; its word list, the lexicon completion ranks by, is. Words
    are written as in the list (a word folding with another, cafe and Café, adds a written form
    of the same completion). Accepted completions (`rnnac complete --accept WORD`, serve's
    POST /accept) are kept in a journal beside the checkpoint until `compact` writes them in.

    \b
    Examples:
      rnnac lexicon add new-products.csv -c runs/shop --in-place
      rnnac lexicon set "Café Royal" 500 -c runs/shop --in-place
      rnnac lexicon list -c runs/shop | sort -t$'\\t' -k2 -gr | head
      rnnac lexicon diff runs/shop/best.npz.bak runs/shop/best.npz
    """


def _write(checkpoint, edits: list[dict], output, in_place: bool, what: str) -> None:
    from rnnac.inference.live import edited_checkpoint
    from rnnac.storage.checkpoint import BUNDLED_MODEL, resolve_checkpoint

    if (output is None) == (not in_place):
        raise click.UsageError("give -o FILE or --in-place" if output is None else "give -o FILE or --in-place, not both")
    source = resolve_checkpoint(checkpoint)
    if in_place and source.resolve() == BUNDLED_MODEL.resolve():
        raise DataError("the bundled model is not changed in place; write a copy with -o FILE")
    target, n, absent = edited_checkpoint(source, edits, output)
    for word in absent[:20]:
        click.echo(f"Warning: {word!r} is not in the list; nothing to {what}", err=True)
    if len(absent) > 20:
        click.echo(f"Warning: {len(absent) - 20:,} more words are not in the list", err=True)
    click.echo(f"Wrote {target}: {n:,} edit{'s' if n != 1 else ''}", err=True)


def _list_edits(path: str, op: str) -> list[dict]:
    from rnnac.storage.wordlist import read_word_list

    words = read_word_list(path, lowercase=False, format="auto")
    if op == "remove":
        return [{"op": "remove", "word": word} for word in words.written]
    return [{"op": "add", "word": word, "count": float(count)} for word, count in zip(words.written, words.counts.tolist())]


@lexicon.command()
@click.argument("wordlist", metavar="FILE")
@_checkpoint_option
@output_options
def add(wordlist, checkpoint, output, in_place):
    """Add the words of FILE with their counts (1 each in a plain list; a word already in the
    list gets the count added). A word with a character the model cannot spell is refused,
    each named: it could never be completed."""
    _write(checkpoint, _list_edits(wordlist, "add"), output, in_place, "add")


@lexicon.command()
@click.argument("wordlist", metavar="FILE")
@_checkpoint_option
@output_options
def remove(wordlist, checkpoint, output, in_place):
    """Remove the words of FILE (one a line; counts, if any, are ignored)."""
    _write(checkpoint, _list_edits(wordlist, "remove"), output, in_place, "remove")


def _count(value: str, name: str, positive: bool) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise click.BadParameter(f"{value!r} is not a {'positive' if positive else 'non-negative'} number", param_hint=name)
    return number


@lexicon.command(name="set")
@click.argument("word")
@click.argument("count", metavar="COUNT")
@_checkpoint_option
@output_options
def set_count(word, count, checkpoint, output, in_place):
    """Set WORD's count to COUNT (WORD joins the list if new)."""
    _write(checkpoint, [{"op": "set", "word": word, "count": _count(count, "COUNT", False)}], output, in_place, "set")


@lexicon.command()
@click.argument("word")
@click.argument("factor", metavar="FACTOR")
@_checkpoint_option
@output_options
def boost(word, factor, checkpoint, output, in_place):
    """Multiply WORD's count by FACTOR (above 0; below 1 lowers it)."""
    _write(checkpoint, [{"op": "boost", "word": word, "factor": _count(factor, "FACTOR", True)}], output, in_place,
           "boost")


@lexicon.command()
@_checkpoint_option
@output_options
def compact(checkpoint, output, in_place):
    """Write the journal's edits (accepted completions, a server's changes) into the checkpoint."""
    _write(checkpoint, [], output, in_place, "compact")


@lexicon.command(name="list")
@_checkpoint_option
def list_words(checkpoint):
    """Print the list as TSV, word<TAB>count, in word order: the journal's edits applied, as
    completion sees it (`rnnac lexicon add` reads it back)."""
    from rnnac.inference.completer import Completer

    stored = Completer.load(checkpoint).lexicon_words
    if stored is None:
        raise DataError("this model carries no word list (trained before rnnac 0.2)")
    stored.check()
    click.echo("".join(f"{word}\t{count:g}\n" for word, count in zip(stored.words, stored.counts.tolist())), nl=False)


@lexicon.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
def diff(a, b):
    """What changed from checkpoint A's list to B's (journals applied), TSV in word order:
    `+ word count` (only in B), `- word count` (only in A), `~ word count-in-A count-in-B`."""
    from rnnac.inference.completer import Completer
    from rnnac.storage.lexedit import diff as changes

    lists = []
    for path in (a, b):
        stored = Completer.load(path).lexicon_words
        if stored is None:
            raise DataError(f"{path} carries no word list (trained before rnnac 0.2)")
        stored.check()
        lists.append(stored)
    lines = []
    for change, word, was, now in changes(*lists):
        numbers = [f"{x:g}" for x in (was, now) if x is not None]
        lines.append("\t".join([change, word, *numbers]) + "\n")
    click.echo("".join(lines), nl=False)

