"""How rnnac scales with the size of its word list: 10k to 1M entries, beside marisa-trie.

    python3 bench/scale.py [--sizes 10000,100000,300000,1000000] [--quick] [--out bench/results/scale.md]

For each size, in a temporary folder: the list is written (up to 50,000 entries the first rows of
the bundled data/words.tsv, with their counts; beyond, that many synthetic package names without
counts from bench/synthetic_names.py, seed 0), a small model is trained on it with `rnnac train
LIST` (H = 64, 300 steps: training is not what is measured, but its whole wall time is shown),
and then, with the run's best.npz (which carries the list as its lexicon):

- lambda fit: the seconds of rnnac.inference.mixture.fit_for_list, the call with which training
  ends, timed again here in-process on the run's word list and split;
- build / load: Completer.load(best.npz) and its whole Lexicon, in this process: built from the
  words, and read as the finished run stored it beside them (LexiconData.trie), median of 3 each;
- serve: `rnnac serve -c best.npz --port 0` started, GET /complete polled until it answers:
  the seconds from start to the first answer, and VmRSS (/proc/PID/status) then and once /info
  says the whole lexicon is ready (the server reads or builds it in the background);
- cold complete: the wall time of `rnnac complete -c best.npz PREFIX`, median of 7 after a warm-up;
- stream: realistic prefixes (the first 4 characters of words drawn from the list by count, or
  uniformly from a flat list; the whole word if shorter), 10,000 of them piped to
  `rnnac complete -c best.npz -`, the whole process timed (start-up included), median of 3; and
  steady, the prefixes after the first 20 over the time they add to a stream of those 20 (which
  pays start-up and reading the whole lexicon);
- typo: the first 2,000 of them the same way with `--max-edits 1`;
- evaluate: `rnnac evaluate SAMPLE -c best.npz`, its peak RSS (GNU time's %M: see measured) and wall
  time. SAMPLE is the whole list up to --eval-words entries (10,000), else that many entries
  drawn from it: the model's split, its lexicon and the baselines' training words are still the
  whole list's (evaluate rebuilds them from the checkpoint), only the words scored are fewer, as
  scoring every word of a 1M list completes every prefix of every word;
- marisa-trie, the reference: marisa_trie.Trie of the same entries, its build time, save and
  load (mmap) times, file size, and microseconds per lookup of the first 5 keys below each of
  the same 10,000 prefixes.

Growth: serve RSS per million entries is (serve RSS - the RSS of `rnnac serve` with the same
H = 64 model without a lexicon) / entries, and build and load times per million entries are
build / load over entries; between 100k and 1M each should change by less than 2x.
Commands run as `python -m rnnac` from this source tree (PYTHONPATH), not the installed script.
Writes bench/results/scale.md. Needs the bench and serve extras (marisa-trie, uvicorn) and GNU
time (/usr/bin/time, Debian's `time`) for the peak RSS of each command.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SIZES, QUICK_SIZES = (10_000, 100_000, 300_000, 1_000_000), (10_000, 100_000)
BUNDLED_UP_TO = 50_000  # lists up to this size are the first rows of data/words.tsv; longer ones synthetic names
TRAIN_SETTINGS = ("model.hidden_size=64", "train.max_steps=300", "train.batch_size=64", "train.eval_every=300",
                  "train.eval_words=2000")
STREAM_PREFIXES, TYPO_PREFIXES, COLD_RUNS, STREAM_RUNS = 10_000, 2_000, 7, 3
TARGETS = {"serve_mib": "<= 150", "first_answer_s": "<= 1", "cold_ms": "<= 250", "stream": ">= 3,000", "typo": ">= 500",
           "evaluate_mib": "<= 1,024", "lambda_s": "<= 10"}
RNNAC = [sys.executable, "-m", "rnnac"]
# Bytecode is cached as an installed package's is: PYTHONDONTWRITEBYTECODE would compile rnnac at every start.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
SETTLED = 20  # prefixes that start a stream: more than a first call searches parts of the list for (FEW_PREFIXES)

sys.path.insert(0, str(ROOT / "bench"))
from synthetic_names import generate  # noqa: E402  (the shipped generator, beside this file)


@dataclass
class Listing:
    """A word list as written for one size: its file, entries and counts (None: a flat list)."""

    path: Path
    words: list[str]
    counts: np.ndarray | None  # (N,)


@dataclass
class Row:
    """The figures of one size; None where not measured."""

    size: int
    counted: bool
    train_s: float
    train_mib: float
    lambda_s: float
    build_s: tuple[float, float]  # from the words, read as stored
    serve_mib: float  # once the lexicon is built
    serve_first_mib: float  # at the first answer, while it is built
    first_answer_s: float
    cold_ms: float
    stream: tuple[float, float]  # prefixes/s: whole process, steady (after start-up and the lexicon's build)
    typo: tuple[float, float]
    evaluate_mib: float
    evaluate_s: float
    marisa: dict


def write_list(size: int, folder: Path) -> Listing:
    """The list of `size` entries for the benchmark, written into `folder`."""
    if size <= BUNDLED_UP_TO:
        rows = [line.split("\t") for line in (ROOT / "data" / "words.tsv").read_text().splitlines()[:size]]
        listing = Listing(folder / f"words{size}.tsv", [w for w, _ in rows], np.array([float(c) for _, c in rows]))
    else:
        listing = Listing(folder / f"names{size}.txt", generate(size, seed=0), None)
    write_words(listing.path, listing.words, listing.counts)
    return listing


def write_words(path: Path, words: list[str], counts: np.ndarray | None) -> None:
    """One word a line, or word<TAB>count lines when there are counts."""
    if counts is None:
        path.write_text("".join(w + "\n" for w in words))
    else:
        path.write_text("".join(f"{w}\t{c:.0f}\n" for w, c in zip(words, counts)))


def draw_prefixes(listing: Listing, n: int, seed: int = 0) -> list[str]:
    """n prefixes as typed: words drawn by count (uniformly from a flat list), their first 4 characters."""
    rng = np.random.default_rng(seed)
    p = None if listing.counts is None else listing.counts / listing.counts.sum()
    return [listing.words[i][:4] for i in rng.choice(len(listing.words), size=n, p=p)]


def measured(cmd: list[str], stdin: Path | None = None, stdout: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of cmd run to its end; CalledProcessError if it fails.

    The peak is GNU time's (%M), whose own child starts small: os.wait4's ru_maxrss would count
    this process's pages, which a child holds between fork and exec (Linux keeps that high-water
    mark), and this process holds a whole list and its trie."""
    with open(stdin or os.devnull, "rb") as source, open(stdout or os.devnull, "wb") as sink, \
            tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        process = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, *cmd], stdin=source, stdout=sink, env=ENV)
        seconds = time.perf_counter() - start
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, cmd)
        return seconds, int(peak.read().split()[-1]) / 1024  # %M is in KiB


def train(listing: Listing, folder: Path) -> tuple[float, float, Path]:
    """(wall seconds, peak RSS MiB, best.npz) of `rnnac train LIST` with the small settings."""
    run = folder / "run"
    overrides = [arg for setting in (*TRAIN_SETTINGS, f"output.dir={run}") for arg in ("--set", setting)]
    seconds, mib = measured([*RNNAC, "train", str(listing.path), *overrides, "--force", "--quiet"])
    return seconds, mib, run / "best.npz"


def lambda_fit_seconds(checkpoint: Path) -> float:
    """Seconds of fit_for_list on the checkpoint's model and the word list and split it was trained on."""
    from rnnac.inference.mixture import fit_for_list
    from rnnac.storage.checkpoint import load_trained
    from rnnac.training.config import Config
    from rnnac.training.data import load_data

    trained = load_trained(checkpoint)
    data = load_data(Config.from_dict(trained.meta["config"]))
    start = time.perf_counter()
    fit_for_list(trained.model, data.vocab, data.words, data.counts, data.held_out)
    return time.perf_counter() - start


def build_seconds(checkpoint: Path) -> tuple[float, float]:
    """Seconds to load the checkpoint and have its whole Lexicon in this process: (built from the
    words, read as stored beside them), each the median of 3."""
    from rnnac.inference.completer import Completer

    def timed(stored: bool) -> float:
        start = time.perf_counter()
        completer = Completer.load(checkpoint)
        if not stored:
            completer.lexicon_words.trie = None
        _ = completer.lexicon  # built or read when first asked for
        return time.perf_counter() - start

    return tuple(statistics.median(timed(stored) for _ in range(3)) for stored in (False, True))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def lexicons_built(info_url: str) -> bool:
    """Whether every model `rnnac serve` serves at that /info has its whole lexicon built, or none."""
    with urllib.request.urlopen(info_url, timeout=60) as answer:
        models = json.load(answer)["models"].values()
    return all(m["lexicon_built"] or m["lexicon_words"] is None for m in models)


def serve(checkpoint: Path, prefix: str) -> tuple[float, float, float]:
    """(seconds from starting `rnnac serve` to its first answer to GET /complete, its RSS in MiB then,
    and its RSS once /info says the whole lexicon is built: the server builds it in the background)."""
    start = time.perf_counter()
    process = subprocess.Popen([*RNNAC, "serve", "-c", str(checkpoint), "--port", "0"], stderr=subprocess.PIPE,
                               text=True, env=ENV)
    try:
        line = process.stderr.readline()  # written once the models are loaded, just before listening
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            raise RuntimeError(f"rnnac serve did not start: {line}{process.stderr.read()}")
        url = f"http://127.0.0.1:{match.group(1)}/complete?q={prefix}&k=5"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=60) as answer:
                    if answer.status == 200:
                        break
            except urllib.error.URLError:  # not answering yet
                if process.poll() is not None:
                    raise RuntimeError(f"rnnac serve exited {process.returncode}: {process.stderr.read()}") from None
                time.sleep(0.01)
        first, rss_first = time.perf_counter() - start, rss_mib(process.pid)
        info = url.split("/complete")[0] + "/info"
        while not lexicons_built(info):
            time.sleep(0.05)
        return first, rss_first, rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(60)


def bare_serve_mib(checkpoint: Path, folder: Path) -> float:
    """RSS of `rnnac serve` with the model of `checkpoint` without its lexicon: what a list adds to starts here."""
    from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(checkpoint)
    bare = folder / "bare.npz"
    save_checkpoint(bare, ckpt.params, {k: v for k, v in ckpt.meta.items() if k not in ("mixture_lambda", "format_version")})
    return serve(bare, "a")[1]


def cold_ms(checkpoint: Path, prefix: str) -> float:
    """Median wall ms of `rnnac complete -c CHECKPOINT PREFIX`, COLD_RUNS runs after a warm-up."""
    cmd = [*RNNAC, "complete", "-c", str(checkpoint), prefix]
    measured(cmd)
    return 1000 * statistics.median(measured(cmd)[0] for _ in range(COLD_RUNS))


def stream_rate(checkpoint: Path, prefixes: list[str], folder: Path, *options: str) -> tuple[float, float]:
    """Prefixes per second through `rnnac complete -c CHECKPOINT - OPTIONS`, medians of STREAM_RUNS: of the
    whole process, and steady: the prefixes after the first SETTLED over the time they add to a stream of
    SETTLED (start-up, loading and the whole lexicon's build)."""
    cmd = [*RNNAC, "complete", "-c", str(checkpoint), "-", *options]
    seconds = {}
    for n in (SETTLED, len(prefixes)):
        listing = folder / "prefixes.txt"
        listing.write_text("".join(p + "\n" for p in prefixes[:n]))
        seconds[n] = statistics.median(measured(cmd, stdin=listing)[0] for _ in range(STREAM_RUNS))
    added = seconds[len(prefixes)] - seconds[SETTLED]
    return len(prefixes) / seconds[len(prefixes)], (len(prefixes) - SETTLED) / added if added > 0 else float("inf")


def evaluate(listing: Listing, checkpoint: Path, folder: Path, cap: int) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of `rnnac evaluate` on the list, or `cap` entries drawn from it."""
    sample = listing.path
    if len(listing.words) > cap:
        rows = np.sort(np.random.default_rng(1).choice(len(listing.words), size=cap, replace=False))  # (cap,)
        sample = folder / f"sample{listing.path.suffix}"
        write_words(sample, [listing.words[i] for i in rows], None if listing.counts is None else listing.counts[rows])
    return measured([*RNNAC, "evaluate", str(sample), "-c", str(checkpoint), "--quiet", "--format", "json"],
                    stdout=folder / "evaluate.json")


def marisa(words: list[str], prefixes: list[str], folder: Path) -> dict:
    """marisa_trie.Trie of `words`: build s, save and load (mmap) ms, file MiB, microseconds per
    lookup of the first 5 keys below each prefix (median of 3 passes over `prefixes`)."""
    import marisa_trie

    start = time.perf_counter()
    trie = marisa_trie.Trie(words)
    build = time.perf_counter() - start
    path = folder / "names.marisa"
    start = time.perf_counter()
    trie.save(str(path))
    save = time.perf_counter() - start
    start = time.perf_counter()
    loaded = marisa_trie.Trie().mmap(str(path))
    load = time.perf_counter() - start
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for prefix in prefixes:
            list(itertools.islice(loaded.iterkeys(prefix), 5))
        passes.append(time.perf_counter() - start)
    return {"build_s": build, "save_ms": 1000 * save, "load_ms": 1000 * load, "file_mib": path.stat().st_size / 2**20,
            "lookup_us": 1e6 * statistics.median(passes) / len(prefixes)}


def measure(size: int, folder: Path, eval_cap: int, log) -> tuple[Row, Path]:
    """Every figure of one size (module docstring), and the run's best.npz."""
    listing = write_list(size, folder)
    prefixes = draw_prefixes(listing, STREAM_PREFIXES)
    log(f"{size:,}: training")
    train_s, train_mib, checkpoint = train(listing, folder)
    log(f"{size:,}: lambda fit, build, serve")
    lambda_s = lambda_fit_seconds(checkpoint)
    build_s = build_seconds(checkpoint)
    gc.collect()
    first_answer_s, serve_first_mib, serve_mib = serve(checkpoint, prefixes[0])
    log(f"{size:,}: cold complete, stream, typo")
    cold = cold_ms(checkpoint, prefixes[0])
    stream = stream_rate(checkpoint, prefixes, folder)
    typo = stream_rate(checkpoint, prefixes[:TYPO_PREFIXES], folder, "--max-edits", "1")
    log(f"{size:,}: evaluate, marisa-trie")
    evaluate_s, evaluate_mib = evaluate(listing, checkpoint, folder, eval_cap)
    reference = marisa(listing.words, prefixes, folder)
    row = Row(size, listing.counts is not None, train_s, train_mib, lambda_s, build_s, serve_mib, serve_first_mib, first_answer_s, cold,
              stream, typo, evaluate_mib, evaluate_s, reference)
    log(f"{size:,}: {row}")
    return row, checkpoint


def report(rows: list[Row], bare_mib: float, eval_cap: int) -> str:
    """The markdown tables of the results."""
    import numpy

    load = os.getloadavg()[0]
    lines = [
        "# rnnac at scale: word lists of 10k to 1M entries",
        "",
        (f"Lists: up to {BUNDLED_UP_TO:,} entries the first rows of data/words.tsv with counts, beyond that synthetic "
         "package names without counts (bench/synthetic_names.py, seed 0). Model: `rnnac train LIST` with "
         f"{', '.join(TRAIN_SETTINGS)}; the list is its lexicon. Stream: {STREAM_PREFIXES:,} prefixes (4 characters "
         f"of words drawn by count), whole process; typo: the first {TYPO_PREFIXES:,} with `--max-edits 1`. "
         f"Evaluate scores at most {eval_cap:,} entries drawn from the list (the split, lexicon and baselines "
         "are the whole list's). bench/scale.py's docstring says how each figure is taken."),
        (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
         f"NumPy {numpy.__version__}; {datetime.date.today()}; 1-minute load average {load:.2f} at the end."),
        "",
        ("| entries | counts | train s (peak MiB) | lambda fit s | build / load s | serve RSS MiB (at first answer) | serve start to "
         "first answer s | cold complete ms | stream prefixes/s (steady) | typo prefixes/s (steady) | "
         "evaluate peak MiB (s) |"),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.size:,} | {'yes' if r.counted else 'no'} | {r.train_s:.1f} ({r.train_mib:.0f}) | "
                     f"{r.lambda_s:.2f} | {r.build_s[0]:.2f} / {r.build_s[1]:.2f} | {r.serve_mib:.0f} ({r.serve_first_mib:.0f}) | "
                     f"{r.first_answer_s:.2f} | "
                     f"{r.cold_ms:.0f} | "
                     f"{r.stream[0]:,.0f} ({r.stream[1]:,.0f}) | {r.typo[0]:,.0f} ({r.typo[1]:,.0f}) | "
                     f"{r.evaluate_mib:.0f} ({r.evaluate_s:.0f}) |")
    t = TARGETS
    lines += [f"| target at 1M, no counts | | | {t['lambda_s']} | | {t['serve_mib']} | {t['first_answer_s']} | "
              f"{t['cold_ms']} | {t['stream']} | {t['typo']} | {t['evaluate_mib']} |",
              "",
              "## Growth, and marisa-trie on the same entries",
              "",
              (f"Serve RSS per million entries: (serve RSS - {bare_mib:.0f} MiB, `rnnac serve` with the same model "
               "without a lexicon) / entries. Build and load time per million entries: build / load over entries. "
               "marisa-trie: build, save, load by mmap, file size, and one lookup of the first 5 keys below "
               "each of the same prefixes."),
              "",
              ("| entries | serve MiB per M entries | build / load s per M entries | marisa build s | marisa save / load ms | "
               "marisa file MiB | marisa µs per lookup |"),
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m = r.marisa
        build, load = (seconds / r.size * 1e6 for seconds in r.build_s)
        lines.append(f"| {r.size:,} | {(r.serve_mib - bare_mib) / r.size * 1e6:,.0f} | {build:.2f} / {load:.2f} | "
                     f"{m['build_s']:.2f} | {m['save_ms']:.1f} / {m['load_ms']:.2f} | {m['file_mib']:.2f} | "
                     f"{m['lookup_us']:.1f} |")
    lines.append("| target | within 2x from 100k to 1M | within 2x from 100k to 1M | | | | |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="entries per list, comma-separated")
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(f'{s:,}' for s in QUICK_SIZES)} (a smoke run)")
    parser.add_argument("--eval-words", type=int, default=10_000, help="most entries evaluate scores [10,000]")
    parser.add_argument("--out", default=str(RESULTS / "scale.md"), help="report file [bench/results/scale.md]")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else [int(s) for s in args.sizes.split(",")]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows, bare_mib = [], None
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"rnnac-scale-{size}-") as tmp:
            row, checkpoint = measure(size, Path(tmp), args.eval_words, log)
            rows.append(row)
            if bare_mib is None:
                bare_mib = bare_serve_mib(checkpoint, Path(tmp))
        gc.collect()
    text = report(rows, bare_mib, args.eval_words)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
