"""The rnnac command line: a thin shell over the library. Each command parses, calls, prints."""

from __future__ import annotations

import click

from rnnac import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnac")
def cli():
    """Character-level autocompletion with a vanilla RNN trained by exact BPTT."""


def main():
    cli()
