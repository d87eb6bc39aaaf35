"""Time `rnnac complete`: cold start of one prefix, and prefixes per second through stdin.

Uses the bundled model (rnnac/models/en.npz) if it exists, else a freshly initialised H=256
model saved to a temporary file, and says so: an untrained model spreads its probability
thinly, so the exact search expands several times more nodes than with a trained one.

    python bench/complete.py [--runs 10] [--prefixes 10000] [--checkpoint PATH]

Cold start: the median wall time of `rnnac complete rec` in a fresh process, run as the
installed script, next to a bare `python -c "import numpy"` on the same machine. Throughput:
10,000 prefixes (the first 1-4 characters of words drawn uniformly from data/words.tsv, so
many repeat, as typed prefixes do) piped through `rnnac complete -` at top 5, the whole
process timed; and in-process, through `Completer.complete_many`, on the same prefixes and
on the distinct ones only. Writes bench/results/complete.md.
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

from rnnac.checkpoint import BUNDLED_MODEL as BUNDLED

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
COLD_TARGET_MS, RATE_TARGET = 200, 5000

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
    words = [line.split("\t")[0] for line in (ROOT / "data" / "words.tsv").read_text().splitlines()]
    rng = random.Random(seed)
    return [w[: rng.randint(1, 4)] for w in (rng.choice(words) for _ in range(n))]


def fresh_model(path: Path) -> None:
    import numpy as np

    import rnnac
    from rnnac.checkpoint import save_checkpoint

    chars = list("'abcdefghijklmnopqrstuvwxyz")
    model = rnnac.RNN.init(len(chars) + 1, 256, seed=0, dtype=np.float32)
    meta = {"chars": chars, "activation": "tanh", "hidden_size": 256, "dtype": "float32",
            "config": {"data": {"lowercase": True}}, "step": 0, "epoch": 0,
            "best_val_loss": None, "rng_state": {}}
    save_checkpoint(path, model.params, meta)


def in_process(checkpoint: str, prefixes: list[str]) -> tuple[float, float, float, int]:
    """(prefixes/s, distinct prefixes/s, mean expansions per distinct prefix, truncated)."""
    from rnnac.complete import Completer

    completer = Completer.load(checkpoint)
    completer.complete_many(prefixes[:100])  # warm-up: first-call costs, group sizing
    start = time.perf_counter()
    completer.complete_many(prefixes)
    rate = len(prefixes) / (time.perf_counter() - start)
    distinct = list(dict.fromkeys(prefixes))
    start = time.perf_counter()
    results = completer.complete_many(distinct)
    distinct_rate = len(distinct) / (time.perf_counter() - start)
    mean = statistics.mean(r.expansions for r in results)
    return rate, distinct_rate, mean, sum(r.truncated for r in results)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--checkpoint", default=None, help="model to time [default: the bundled one]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint:
            checkpoint, which = args.checkpoint, f"`{args.checkpoint}`"
        elif BUNDLED.exists():
            checkpoint, which = str(BUNDLED), "the bundled model (rnnac/models/en.npz)"
        else:
            checkpoint = str(Path(tmp) / "fresh.npz")
            fresh_model(Path(checkpoint))
            which = ("**no bundled model yet**: a freshly initialised, untrained H=256 model "
                     "(its flat distributions make the search expand many more nodes than a trained model's)")
        from rnnac.checkpoint import describe

        facts = describe(checkpoint)
        cmd = rnnac_command()
        print(f"model: {which}", file=sys.stderr)

        # 1. Cold start, as this environment runs it, and with bytecode caching allowed (as
        # after `pip install`, which compiles .pyc files; here PYTHONDONTWRITEBYTECODE may be set).
        cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        times = interleaved({
            "cold": ([*cmd, "complete", "rec", "-c", checkpoint], None),
            "cold_cached": ([*cmd, "complete", "rec", "-c", checkpoint], cached_env),
            "numpy": ([sys.executable, "-c", "import numpy"], None),
            "python": ([sys.executable, "-c", "pass"], None),
        }, args.runs)

        # 2. Throughput through a pipe, the whole process timed (start-up included).
        prefixes = make_prefixes(args.prefixes)
        listing = Path(tmp) / "prefixes.txt"
        listing.write_text("".join(p + "\n" for p in prefixes))
        piped = statistics.median(wall([*cmd, "complete", "-", "-c", checkpoint], 3, stdin=listing))
        rate, distinct_rate, mean_expansions, truncated = in_process(checkpoint, prefixes)

    def ms(times):
        return 1000 * statistics.median(times)

    n_distinct = len(set(prefixes))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# rnnac complete: speed",
        "",
        f"Model: {which}; H = {facts['hidden_size']}, K = {facts['vocab_size']}, {facts['dtype']}.",
        (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
         f"1-minute load average {load:.2f} when the run ended (other work slows wall times)."),
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| cold `rnnac complete rec`, median of {args.runs} | {ms(times['cold']):.0f} ms | <= {COLD_TARGET_MS} ms |",
        f"| same, bytecode cache allowed | {ms(times['cold_cached']):.0f} ms | |",
        (f"| for scale: `python -c \"import numpy\"` / `python -c pass` | "
         f"{ms(times['numpy']):.0f} ms / {ms(times['python']):.0f} ms | |"),
        (f"| `rnnac complete -` over {len(prefixes):,} prefixes, top 5, whole process | "
         f"{len(prefixes) / piped:,.0f} prefixes/s | >= {RATE_TARGET:,} |"),
        f"| in-process `complete_many`, same prefixes | {rate:,.0f} prefixes/s | |",
        f"| in-process, the {n_distinct:,} distinct prefixes only | {distinct_rate:,.0f} prefixes/s | |",
        "",
        (f"Exact search, top 5, budget 2000: {mean_expansions:.1f} node expansions per distinct prefix "
         f"on average; {truncated:,} of {n_distinct:,} stopped by the budget. Repeated prefixes are "
         "searched once per call."),
    ]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        lines.append("PYTHONDONTWRITEBYTECODE is set here, so the first cold-start row compiles rnnac's "
                     "modules on every run.")
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "complete.md").write_text(report)


if __name__ == "__main__":
    main()
