"""A live word list on the bundled model: what changing it costs, and what learning gains.

    python bench/live.py [--output PATH]

Works on a copy of the bundled model (`rnnac lexicon compact -c bundled -o COPY`), in a
temporary folder; writes bench/results/live.md.

- lexicon add: `rnnac lexicon add` of 1,000 new words with counts (names from data/names.txt
  that the list lacks), the whole process, median of 5 runs.
- served accept: `rnnac serve --learn` in a subprocess; 300 POST /accept one after another on
  one keep-alive connection, each answered after its journal line is fsync'd; the latency of
  each from writing the request to reading the answer.
- cold complete: `rnnac complete -c COPY rec`, the whole process, median of 15 runs, without a
  journal and after 1,000 accepts in it (replayed at each start).
- personalisation: a user whose words are 200 favourites drawn from the list's long tail (ranks
  5,000 to 50,000), used with Zipf-like weights; 1,000 words drawn from them. The first 500 are
  accepted (rnnac.inference.live.accept, default increment and decay), then keystroke savings
  (top 5, as `rnnac evaluate` counts them: the word taken as soon as it shows, one key to take it)
  on the next 500, with and without the accepts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))
from conftest import rnnac_command  # noqa: E402


def run(*args: str) -> float:
    """Seconds one rnnac command takes, the whole process; it must succeed."""
    start = time.perf_counter()
    subprocess.run([*rnnac_command(), *args], check=True, capture_output=True)
    return time.perf_counter() - start


def new_words(known: set[str], n: int) -> list[str]:
    names = [line.strip() for line in (ROOT / "data" / "names.txt").read_text().splitlines()]
    return [w for w in dict.fromkeys(names) if w and w not in known and w.isalpha() and w.isascii()][:n]


def lexicon_add(copy: Path, folder: Path, known: set[str]) -> dict:
    words = new_words(known, 1000)
    listing = folder / "new.tsv"
    listing.write_text("".join(f"{w}\t{10 + i}\n" for i, w in enumerate(words)))
    times = [run("lexicon", "add", str(listing), "-c", str(copy), "-o", str(folder / "added.npz")) for _ in range(5)]
    return {"words": len(words), "median_s": statistics.median(times)}


def served_accepts(copy: Path, words: list[str]) -> dict:
    server = subprocess.Popen([*rnnac_command(), "serve", "-c", str(copy), "--port", "0", "--learn"],
                              stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)/", server.stderr.readline()).group(1))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies = []
        for word in words:
            body = json.dumps({"word": word, "prefix": word[:2]})
            start = time.perf_counter()
            connection.request("POST", "/accept", body, {"content-type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - start)
            assert answer.status == 200
        return {"n": len(latencies), "median_ms": 1000 * statistics.median(latencies),
                "p90_ms": 1000 * float(np.percentile(latencies, 90)), "max_ms": 1000 * max(latencies)}
    finally:
        server.terminate()
        server.wait(30)


def cold_complete(copy: Path) -> float:
    run("complete", "-c", str(copy), "rec")  # the file in the page cache, as for every later run
    return statistics.median(run("complete", "-c", str(copy), "rec") for _ in range(15))


def keystroke_savings(completer, words: list[str]) -> float:
    prefixes = sorted({w[:i] for w in words for i in range(1, len(w))})
    shown = {p: {c.word for c in r.completions} for p, r in zip(prefixes, completer.complete_many(prefixes, 5))}
    keys = sum(next((i + 1 for i in range(1, len(w)) if w in shown[w[:i]]), len(w) + 1) for w in words)
    return 1 - keys / sum(len(w) + 1 for w in words)


def personalisation(copy: Path, words_tsv: Path) -> dict:
    from rnnac.inference.completer import Completer
    from rnnac.inference.live import accept

    rng = np.random.default_rng(0)
    ranked = [line.split("\t")[0] for line in words_tsv.read_text().splitlines()]
    tail = [w for w in ranked[5000:50000] if w.isalpha() and len(w) >= 4]
    favourites = list(rng.choice(tail, size=200, replace=False))
    weights = 1.0 / np.arange(1, 201)
    used = [favourites[i] for i in rng.choice(200, size=1000, p=weights / weights.sum())]
    before, after = used[:500], used[500:]
    plain = Completer.load(copy)
    baseline = keystroke_savings(plain, after)
    learning = Completer.load(copy)
    start = time.perf_counter()
    for word in before:
        accept(learning, [(word, word[:2])])
    seconds = time.perf_counter() - start
    personal = keystroke_savings(learning, after)
    seen = sum(w in set(before) for w in after) / len(after)
    return {"baseline": baseline, "personal": personal, "accept_s": seconds / len(before), "seen_share": seen}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=RESULTS / "live.md")
    args = parser.parse_args(argv)
    from rnnac.storage.checkpoint import load_trained

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        copy = folder / "mine.npz"
        run("lexicon", "compact", "-c", "bundled", "-o", str(copy))
        known = set(load_trained(copy).lexicon.words)
        added = lexicon_add(copy, folder, known)
        cold_plain = cold_complete(copy)
        words_tsv = ROOT / "data" / "words.tsv"
        common = [line.split("\t")[0] for line in words_tsv.read_text().splitlines()[:3000]]
        served = served_accepts(copy, [w for w in common if w.isalpha()][:300])
        os.remove(str(copy) + ".journal")
        from rnnac.inference.completer import Completer
        from rnnac.inference.live import accept

        learning = Completer.load(copy)
        for i in range(1000):
            accept(learning, [(common[i % len(common)], common[i % len(common)][:2])])
        cold_learnt = cold_complete(copy)
        os.remove(str(copy) + ".journal")
        personal = personalisation(copy, words_tsv)
    load = os.getloadavg()[0]
    lines = [
        "# A live word list: the bundled model",
        "",
        "bench/live.py; its docstring says how each figure is taken.",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}; {time.strftime('%Y-%m-%d')}; 1-minute load average {load:.2f} at the end.",
        "",
        "| figure | measured | target |",
        "|---|---:|---|",
        f"| `rnnac lexicon add` of {added['words']:,} words (whole process, median of 5) | {added['median_s']:.2f} s | <= 1 s |",
        f"| served accept, median (p90, max) of {served['n']} | {served['median_ms']:.1f} ms ({served['p90_ms']:.1f}, "
        f"{served['max_ms']:.1f}) | <= 5 ms median |",
        f"| cold `rnnac complete rec`, no journal (median of 15) | {1000 * cold_plain:.0f} ms | |",
        f"| the same after 1,000 accepts in the journal | {1000 * cold_learnt:.0f} ms "
        f"({100 * (cold_learnt / cold_plain - 1):+.0f}%) | within 10% |",
        f"| keystroke savings on the next 500 words, unpersonalised | {100 * personal['baseline']:.1f}% | |",
        f"| the same after 500 accepts ({100 * personal['seen_share']:.0f}% of the next words accepted before) | "
        f"{100 * personal['personal']:.1f}% ({100 * (personal['personal'] - personal['baseline']):+.1f} points) "
        f"| >= +10 points |",
        f"| one accept in process (journal fsync'd) | {1000 * personal['accept_s']:.2f} ms | |",
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
