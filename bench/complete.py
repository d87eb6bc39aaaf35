"""Time `rnnac complete`: cold start of one prefix, and prefixes per second through stdin.

Uses the bundled model (rnnac/models/en.npz) if it exists, else a freshly initialised H=256
model saved to a temporary file, and says so: an untrained model spreads its probability
thinly, so the exact search expands several times more nodes than with a trained one.

    python bench/complete.py [--runs 10] [--prefixes 10000] [--checkpoint PATH]
                             [--lexicon data/words.tsv --lambda 0.9] [--output PATH]

Cold start: the median wall time of `rnnac complete rec` in a fresh process, run as the
installed script, next to a bare `python -c "import numpy"` on the same machine. Throughput:
10,000 prefixes (the first 1-4 characters of words drawn uniformly from data/words.tsv, so
many repeat, as typed prefixes do) piped through `rnnac complete -` at top 5, the whole
process timed; and in-process, through `Completer.complete_many`, on the same prefixes and
on the distinct ones only. The 1-4 character prefixes repeat the short ones and flatter the
rate, so both streams are timed on realistic prefixes too: the first 4 characters (the whole
word if shorter) of 10,000 words drawn by count, seeded. Typos: the same prefixes piped
through `rnnac complete - --max-edits 1`, and the median latency of one `complete(prefix, 5, max_edits=1)` call in a
running process, over the first 4 characters of 300 words drawn from data/words.tsv (with
--h256 CHECKPOINT, for that H = 256 model too). Writes bench/results/complete.md.

With --lexicon, the model is saved again to a temporary checkpoint that carries that word list
(with its counts) and meta mixture_lambda = --lambda, so `rnnac complete` ranks by the mixture
of lexicon and model (rnnac.inference.search); the cold start then includes building the lexicon's trie,
which is also timed alone. The model alone ("open") is timed in the same process for
comparison. Writes bench/results/complete_lexicon.md unless --output says otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from rnnac.storage.checkpoint import BUNDLED_MODEL as BUNDLED

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
COLD_TARGET_MS, RATE_TARGET, RATE_TARGET_MIXTURE = 200, 5000, 10_000
TYPO_RATE_TARGET, TYPO_LATENCY_MS, TYPO_LATENCY_H256_MS = 500, 10, 5  # --max-edits 1
REALISTIC_TYPED = 4  # characters typed in a realistic prefix

sys.path.insert(0, str(ROOT / "tests"))
from conftest import rnnac_command  # noqa: E402  (one definition, shared with the tests)


def wall(cmd: list[str], runs: int, env=None, stdin=None, warm_up: bool = True) -> list[float]:
    """Wall seconds of each of `runs` runs of cmd, after one untimed warm-up run."""
    times = []
    for i in range(runs + warm_up):
        start = time.perf_counter()
        with open(stdin or os.devnull, "rb") as source:
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, stdin=source)
        if i or not warm_up:
            times.append(time.perf_counter() - start)
    return times


def interleaved(commands: dict[str, tuple[list[str], dict | None]], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each command, the commands taking turns, so that a change in the
    machine's load during the runs touches them all alike."""
    for cmd, env in commands.values():
        wall(cmd, 0, env)  # warm-up: file caches, and .pyc files where they may be written
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, (cmd, env) in commands.items():
            times[name] += wall(cmd, 1, env, warm_up=False)
    return times


def make_prefixes(n: int, seed: int = 0) -> list[str]:
    """The first 1-4 characters (evenly) of n words drawn evenly from data/words.tsv: short
    prefixes repeat, which flatters a rate (complete_many searches a repeated prefix once)."""
    words = [line.split("\t")[0] for line in (ROOT / "data" / "words.tsv").read_text().splitlines()]
    rng = random.Random(seed)
    return [w[: rng.randint(1, 4)] for w in (rng.choice(words) for _ in range(n))]


def realistic_prefixes(n: int, seed: int = 0, typed: int = REALISTIC_TYPED) -> list[str]:
    """The first `typed` characters (the whole word if shorter) of n words drawn by their counts
    in data/words.tsv, as a user types them."""
    rows = [line.split("\t") for line in (ROOT / "data" / "words.tsv").read_text().splitlines()]
    words, counts = [r[0] for r in rows], [float(r[1]) for r in rows]
    return [w[:typed] for w in random.Random(seed).choices(words, weights=counts, k=n)]


def fresh_model(path: Path) -> None:
    import numpy as np

    import rnnac
    from rnnac.storage.checkpoint import save_checkpoint

    chars = list("'abcdefghijklmnopqrstuvwxyz")
    model = rnnac.RNN.init(len(chars) + 1, 256, seed=0, dtype=np.float32)
    meta = {"chars": chars, "activation": "tanh", "hidden_size": 256, "dtype": "float32",
            "config": {"data": {"lowercase": True}}, "step": 0, "epoch": 0,
            "best_val_loss": None, "rng_state": {}}
    save_checkpoint(path, model.params, meta)


def in_process(checkpoint: str, prefixes: list[str], open_search: bool = False) -> tuple[float, float, float, int]:
    """(prefixes/s, distinct prefixes/s, mean node evaluations per distinct prefix, truncated)."""
    from rnnac.inference.completer import Completer

    completer = Completer.load(checkpoint)
    completer.complete_many(prefixes[:100], open=open_search)  # warm-up: first-call costs, group sizing
    start = time.perf_counter()
    completer.complete_many(prefixes, open=open_search)
    rate = len(prefixes) / (time.perf_counter() - start)
    distinct = list(dict.fromkeys(prefixes))
    evaluations, start = completer.evaluations, time.perf_counter()
    results = completer.complete_many(distinct, open=open_search)
    distinct_rate = len(distinct) / (time.perf_counter() - start)
    mean = (completer.evaluations - evaluations) / len(distinct)
    return rate, distinct_rate, mean, sum(r.truncated for r in results)


def typo_latency_ms(checkpoint: str, n: int = 300, seed: int = 1) -> tuple[float, float, int]:
    """(median, 90th percentile) ms of one complete(prefix, 5, max_edits=1) call in a running
    process, over 4-character prefixes of words drawn evenly from data/words.tsv; H."""
    from rnnac.inference.completer import Completer

    words = [line.split("\t")[0] for line in (ROOT / "data" / "words.tsv").read_text().splitlines()]
    rng = random.Random(seed)
    prefixes = [w[:4] for w in rng.sample([w for w in words if len(w) > 4], n)]
    completer = Completer.load(checkpoint)
    for p in prefixes[:5]:  # warm-up: the lexicon's trie, the channel's costs
        completer.complete(p, 5, max_edits=1)
    times = []
    for p in prefixes:
        start = time.perf_counter()
        completer.complete(p, 5, max_edits=1)
        times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[int(0.9 * len(times))], completer.model.hidden_size


def with_lexicon(checkpoint: str, word_list: str, mixture_lambda: float, path: Path) -> None:
    """Save the model of `checkpoint` again at `path`, carrying `word_list` as its lexicon."""
    import inspect

    import numpy as np

    from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
    from rnnac.storage.wordlist import read_word_list

    if "lexicon" not in inspect.signature(save_checkpoint).parameters:
        sys.exit("this rnnac's checkpoints cannot carry a lexicon: --lexicon needs checkpoint format 2")
    from rnnac.storage.lexicon import LexiconData

    listing = read_word_list(word_list, lowercase=False)
    lexicon = LexiconData.from_unsorted(listing.words, listing.counts, np.zeros(len(listing.words), dtype=bool))
    ckpt = load_checkpoint(checkpoint)
    save_checkpoint(path, ckpt.params, {**ckpt.meta, "mixture_lambda": mixture_lambda}, lexicon=lexicon)


def lexicon_build_ms(checkpoint: str, runs: int) -> tuple[list[float], list[float], int, int]:
    """Building the checkpoint's Lexicon `runs` + 1 times in this process: (wall ms of each, CPU
    ms of each (what other work on the machine does not inflate), its words, its trie nodes).
    The first build is the one `rnnac complete` pays: fresh memory costs page faults."""
    from rnnac.storage.checkpoint import load_trained
    from rnnac.storage.lexicon import Lexicon

    trained = load_trained(checkpoint)
    vocab, folding, ckpt = trained.vocab, trained.folding, trained.checkpoint
    wall_times, cpu_times = [], []
    for _ in range(runs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        lexicon = Lexicon(ckpt.lexicon.words, vocab, folding, ckpt.lexicon.counts)
        wall_times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
    return [1000 * t for t in wall_times], [1000 * t for t in cpu_times], len(ckpt.lexicon.words), lexicon.n_nodes


def pick_model(args, tmp: str) -> tuple[str, str]:
    """(checkpoint to time, how the report names it)."""
    if args.checkpoint:
        return args.checkpoint, f"`{args.checkpoint}`"
    if BUNDLED.exists():
        return str(BUNDLED), "the bundled model (rnnac/models/en.npz)"
    checkpoint = str(Path(tmp) / "fresh.npz")
    fresh_model(Path(checkpoint))
    return checkpoint, ("**no bundled model yet**: a freshly initialised, untrained H=256 model "
                        "(its flat distributions make the search expand many more nodes than a trained model's)")


def cold_starts(cmd: list[str], checkpoints: dict[str, str], runs: int, tmp: str) -> dict[str, list[float]]:
    """Cold start, as this environment runs it, and with bytecode caching allowed (as after
    `pip install`, which compiles .pyc files; here PYTHONDONTWRITEBYTECODE may be set)."""
    cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached_env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
    commands = {}
    for name, checkpoint in checkpoints.items():
        commands[name] = ([*cmd, "complete", "rec", "-c", checkpoint], None)
        commands[name + "_cached"] = ([*cmd, "complete", "rec", "-c", checkpoint], cached_env)
    commands["numpy"] = ([sys.executable, "-c", "import numpy"], None)
    commands["python"] = ([sys.executable, "-c", "pass"], None)
    return interleaved(commands, runs)


def ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def report(args, which, facts, times, prefixes, piped, rates, lexicon_facts, realistic) -> str:
    """The markdown tables."""
    n_distinct = len(set(prefixes))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.lexicon:
        scoring = f"mixture, lambda = {args.mixture_lambda}, lexicon `{args.lexicon}`"
    elif facts.get("lexicon_words"):
        scoring = (f"mixture with the {facts['lexicon_words']:,} words the checkpoint carries, "
                   f"lambda = {facts.get('mixture_lambda', 0.5):.3f}")
    else:
        scoring = "model alone"
    lines = [
        "# rnnac complete: speed",
        "",
        f"Model: {which}; H = {facts['hidden_size']}, K = {facts['vocab_size']}, {facts['dtype']}. Scoring: {scoring}.",
        (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
         f"1-minute load average {load:.2f} when the run ended (other work slows wall times)."),
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| cold `rnnac complete rec`, median of {args.runs} | {ms(times['cold']):.0f} ms | <= {COLD_TARGET_MS} ms |",
        f"| same, bytecode cache allowed | {ms(times['cold_cached']):.0f} ms | |",
    ]
    if lexicon_facts:
        wall_ms, cpu_ms, n_words, n_nodes = lexicon_facts
        lines += [
            f"| same, the model without its lexicon (bytecode cache allowed) | {ms(times['plain_cached']):.0f} ms | |",
            (f"| building the lexicon's trie ({n_words:,} words, {n_nodes:,} nodes) in-process, wall / CPU: "
             f"first, then median of {args.runs} more | {wall_ms[0]:.1f} / {cpu_ms[0]:.1f} ms, "
             f"{statistics.median(wall_ms[1:]):.1f} / {statistics.median(cpu_ms[1:]):.1f} ms | < 30 ms |"),
        ]
    rate_target = f">= {RATE_TARGET_MIXTURE:,}" if args.lexicon or facts.get("lexicon_words") else f">= {RATE_TARGET:,}"
    lines += [
        (f"| for scale: `python -c \"import numpy\"` / `python -c pass` | "
         f"{ms(times['numpy']):.0f} ms / {ms(times['python']):.0f} ms | |"),
        (f"| `rnnac complete -` over {len(prefixes):,} prefixes, top 5, whole process | "
         f"{len(prefixes) / piped:,.0f} prefixes/s | {rate_target} |"),
        (f"| same, {_realistic(realistic)} | {len(realistic.prefixes) / realistic.piped:,.0f} prefixes/s | |"),
    ]
    for mode, (rate, distinct_rate, _, _) in rates.items():
        label = "" if mode is None else f", {mode} (the model alone)"
        lines += [f"| in-process `complete_many`, same prefixes{label} | {rate:,.0f} prefixes/s | |",
                  f"| in-process, the {n_distinct:,} distinct prefixes only{label} | {distinct_rate:,.0f} prefixes/s | |"]
    _, _, mean_evaluations, truncated = rates[None]
    lines += [
        "",
        (f"Exact search, top 5, budget 2000: {mean_evaluations:.1f} node expansions per distinct prefix "
         f"on average; {truncated:,} of {n_distinct:,} stopped by the budget. Repeated prefixes are "
         "searched once per call."),
    ]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        lines.append("PYTHONDONTWRITEBYTECODE is set here, so the first cold-start row compiles rnnac's "
                     "modules on every run.")
    return "\n".join(lines) + "\n"


def typo_report(n_prefixes: int, piped: float, latencies, h256: str | None, realistic) -> str:
    lines = ["", "## Typo-tolerant completion (`--max-edits 1`)", "", "| measure | result | target |", "|---|---|---|",
             (f"| `rnnac complete - --max-edits 1` over the same {n_prefixes:,} prefixes (1-4 characters), "
              f"whole process | {n_prefixes / piped:,.0f} prefixes/s | |"),
             (f"| same, {_realistic(realistic)} | {len(realistic.prefixes) / realistic.typo_piped:,.0f} prefixes/s "
              f"| >= {TYPO_RATE_TARGET} |")]
    for (median, p90, H), name in zip(latencies, ["the model above", f"`{h256}`"]):
        target = TYPO_LATENCY_MS if name == "the model above" else TYPO_LATENCY_H256_MS
        lines.append(f"| one `complete(prefix, 5, max_edits=1)` in a running process, 4 characters typed, {name} "
                     f"(H = {H}): median / 90th percentile of 300 | {median:.1f} / {p90:.1f} ms | <= {target} ms median |")
    return "\n".join(lines) + "\n"


class Realistic(NamedTuple):
    """Throughput on realistic prefixes (realistic_prefixes): whole-process medians, seconds."""

    prefixes: list[str]
    piped: float  # `rnnac complete -`
    typo_piped: float  # `rnnac complete - --max-edits 1`


def _realistic(realistic: Realistic) -> str:
    return (f"{len(realistic.prefixes):,} realistic prefixes ({REALISTIC_TYPED} characters of words drawn by count, "
            f"whole word if shorter; {len(set(realistic.prefixes)):,} distinct)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--checkpoint", default=None, help="model to time [default: the bundled one]")
    parser.add_argument("--lexicon", default=None, help="word list the model carries as its lexicon (mixture scoring)")
    parser.add_argument("--lambda", dest="mixture_lambda", type=float, default=0.9, help="the lexicon's weight [0.9]")
    parser.add_argument("--h256", default=None, help="an H = 256 checkpoint to time --max-edits 1 latency on too")
    parser.add_argument("--output", default=None, help="report file [bench/results/complete.md, or complete_lexicon.md]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, which = pick_model(args, tmp)
        plain, lexicon_facts = checkpoint, None
        if args.lexicon:
            checkpoint = str(Path(tmp) / "with_lexicon.npz")
            with_lexicon(plain, args.lexicon, args.mixture_lambda, Path(checkpoint))
            lexicon_facts = lexicon_build_ms(checkpoint, args.runs)
        from rnnac.storage.checkpoint import describe

        facts = describe(checkpoint)
        cmd = rnnac_command()
        print(f"model: {which}", file=sys.stderr)
        times = cold_starts(cmd, {"cold": checkpoint, **({"plain": plain} if args.lexicon else {})}, args.runs, tmp)

        # Throughput through a pipe, the whole process timed (start-up included).
        prefixes = make_prefixes(args.prefixes)
        listing = Path(tmp) / "prefixes.txt"
        listing.write_text("".join(p + "\n" for p in prefixes))
        piped = statistics.median(wall([*cmd, "complete", "-", "-c", checkpoint], 3, stdin=listing))
        rates = {None: in_process(checkpoint, prefixes)}
        if args.lexicon:
            rates["open"] = in_process(checkpoint, prefixes, open_search=True)
        typo_piped = statistics.median(wall([*cmd, "complete", "-", "--max-edits", "1", "-c", checkpoint], 3, stdin=listing))
        drawn = realistic_prefixes(args.prefixes)
        real_listing = Path(tmp) / "realistic.txt"
        real_listing.write_text("".join(p + "\n" for p in drawn))
        realistic = Realistic(
            drawn, statistics.median(wall([*cmd, "complete", "-", "-c", checkpoint], 3, stdin=real_listing)),
            statistics.median(wall([*cmd, "complete", "-", "--max-edits", "1", "-c", checkpoint], 3, stdin=real_listing)))
        latencies = [typo_latency_ms(checkpoint)] + ([typo_latency_ms(args.h256)] if args.h256 else [])

    text = report(args, which, facts, times, prefixes, piped, rates, lexicon_facts, realistic)
    text += typo_report(len(prefixes), typo_piped, latencies, args.h256, realistic)
    print(text)
    output = Path(args.output) if args.output else RESULTS / ("complete_lexicon.md" if args.lexicon else "complete.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)


if __name__ == "__main__":
    main()
