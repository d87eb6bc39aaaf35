"""Load-test `rnnac serve` on loopback: latency and throughput of GET /complete at 1, 10 and 100
concurrent clients, and the server's memory over the longest run.

    python bench/serve.py [--checkpoint PATH] [--seconds 10] [--long-seconds 60] [--output PATH]

Starts `rnnac serve --port 0` (the bundled model unless --checkpoint) in a subprocess and drives
it from this process: each client is one keep-alive HTTP/1.1 connection sending
`GET /complete?q=PREFIX&k=5` requests one after another, PREFIX the first 1-4 characters of
words drawn from data/words.tsv (seeded). Each level runs for a fixed time, at most 200,000
requests: --seconds at 1 and 10 clients, --long-seconds at 100 (after 5 s of the same load as
a warm-up), during which the server's resident memory is read from /proc every 10 s. Latency is
from writing a request to reading its whole answer. The load generator shares the machine's cores with the server.
Writes bench/results/serve.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MAX_REQUESTS = 200_000
RSS_EVERY = 10.0  # seconds between readings of the server's memory
WARM_UP_SECONDS = 5.0  # at 100 clients, before the long run
TARGETS = {1: "median <= 2 ms, p99 <= 10 ms", 100: ">= 1,000/s, p99 <= 100 ms, no errors"}

sys.path.insert(0, str(ROOT / "tests"))
from conftest import rnnac_command  # noqa: E402


def prefixes(n: int, seed: int = 0) -> list[str]:
    words = [line.split("\t")[0] for line in (ROOT / "data" / "words.tsv").read_text().splitlines()]
    rng = random.Random(seed)
    return [w[: rng.randint(1, 4)] for w in (rng.choice(words) for _ in range(n))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def client(port: int, queries: list[str], deadline: float, latencies: list[float], errors: list[str]):
    """One keep-alive connection sending requests until the deadline or the end of `queries`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for q in queries:
            if time.perf_counter() >= deadline:
                break
            start = time.perf_counter()
            writer.write(f"GET /complete?q={quote(q)}&k=5 HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200") or b'"completions"' not in body:
                errors.append(head.split(b"\r\n")[0].decode())
    finally:
        writer.close()


async def level(port: int, clients: int, seconds: float, pool: list[str], pid: int | None = None):
    """(latencies in s, errors, wall s, the server's RSS in KiB every RSS_EVERY s if pid) of
    `clients` concurrent clients for `seconds`."""
    per_client = MAX_REQUESTS // clients
    latencies, errors, memory = [], [], []
    start = time.perf_counter()
    deadline = start + seconds

    async def watch():
        while time.perf_counter() < deadline:
            memory.append(rss_kib(pid))
            await asyncio.sleep(RSS_EVERY)

    offsets = [random.Random(i).randrange(len(pool)) for i in range(clients)]
    await asyncio.gather(*(client(port, (pool[o:] + pool[:o])[:per_client], deadline, latencies, errors)
                           for o in offsets), *([watch()] if pid else []))
    if pid:
        memory.append(rss_kib(pid))
    return latencies, errors, time.perf_counter() - start, memory


def start_server(checkpoint: str | None) -> tuple[subprocess.Popen, int]:
    cmd = [*rnnac_command(), "serve", "--port", "0", *(["-c", checkpoint] if checkpoint else [])]
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        process.kill()
        sys.exit(f"the server did not start: {line}{process.stderr.read()}")
    return process, int(match.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model to serve [default: the bundled one]")
    parser.add_argument("--seconds", type=float, default=10.0, help="each run at 1 and 10 clients")
    parser.add_argument("--long-seconds", type=float, default=60.0, help="the run at 100 clients")
    parser.add_argument("--output", default=str(RESULTS / "serve.md"))
    args = parser.parse_args()

    pool = prefixes(MAX_REQUESTS)
    process, port = start_server(args.checkpoint)
    rows, memory = [], None
    try:
        asyncio.run(level(port, 4, 2.0, pool))  # warm-up: connections, the batch sizing
        for clients, seconds in ((1, args.seconds), (10, args.seconds), (100, args.long_seconds)):
            if clients == 100:  # warm-up at full load: the arrays of the biggest batches, once
                asyncio.run(level(port, clients, WARM_UP_SECONDS, pool))
            latencies, errors, wall, readings = asyncio.run(level(port, clients, seconds, pool, process.pid))
            if clients == 100:
                memory = readings
            latencies.sort()
            rows.append((clients, len(latencies), len(latencies) / wall, 1000 * statistics.median(latencies),
                         1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], len(errors), wall))
            print(f"{clients} clients: {rows[-1][2]:,.0f}/s, median {rows[-1][3]:.2f} ms, p99 {rows[-1][4]:.2f} ms, "
                  f"{len(errors)} errors", file=sys.stderr)
    finally:
        process.terminate()
        process.wait(60)

    load = os.getloadavg()[0]
    lines = [
        "# rnnac serve: latency and throughput",
        "",
        (f"`rnnac serve` ({args.checkpoint or 'the bundled model'}), `GET /complete?q=PREFIX&k=5` over loopback, "
         "PREFIX the first 1-4 characters of random words; keep-alive HTTP/1.1 clients in one asyncio process "
         "on the same machine."),
        (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
         f"1-minute load average {load:.2f} at the end."),
        "",
        "| clients | requests | seconds | completions/s | median ms | p99 ms | errors | target |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        *(f"| {c} | {n:,} | {wall:.0f} | {rate:,.0f} | {median:.2f} | {p99:.2f} | {errors} | {TARGETS.get(c, '')} |"
          for c, n, rate, median, p99, errors, wall in rows),
        "",
        (f"Server resident memory over the {args.long_seconds:.0f} s run at 100 clients (after "
         f"{WARM_UP_SECONDS:.0f} s of it as a warm-up), every {RSS_EVERY:.0f} s: "
         + ", ".join(f"{kib / 1024:.1f}" for kib in memory)
         + f" MiB; {100 * (memory[-1] - memory[0]) / memory[0]:+.1f}% from start to end (target under +10%)."),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
