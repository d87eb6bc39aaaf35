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
    """Turns a user's mistake (RnnacError) into one line on stderr, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RnnacError as e:
            raise click.ClickException(str(e)) from None


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
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--resume", is_flag=True, help="Continue the run from OUTPUT_DIR/last.npz.")
@click.option("--force", is_flag=True, help="Start over even if output.dir holds a run.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or log lines.")
def train(config, overrides, resume, force, quiet):
    """Train a model as CONFIG (YAML) says; checkpoints go to output.dir.

    Ctrl-C saves last.npz and exits 130; `--resume` continues from it exactly.
    """
    from rnnac.config import load_config
    from rnnac.train import TrainingInterrupted, run

    try:
        summary = run(load_config(config, overrides), resume=resume, quiet=quiet, force=force)
    except TrainingInterrupted as e:
        again = " ".join(["rnnac train", config, *(f"--set {o}" for o in overrides), "--resume"])
        click.echo(f"Interrupted: {e}. Resume with: {again}", err=True)
        raise SystemExit(130) from None
    click.echo(summary)


# --- end of train ------------------------------------------------------------------------


def main():
    cli()
