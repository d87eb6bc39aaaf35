"""Time one training step (forward, full BPTT, SGD update) of rnnac against PyTorch.

Each measurement runs in its own process, rnnac and torch alternating, because NumPy's
OpenBLAS threads and torch's thread pool slow each other down in one process. Prints a
table of median chars/s (padding included), the ratio, and GFLOP/s against this machine's
measured float32 GEMM peak; writes it to bench/results/train_step.md.

    python bench/train_step.py [--rounds 5] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = [(64, 32, 12), (128, 64, 12), (256, 128, 16), (512, 256, 16)]  # (H, B, T)
K = 30
TARGETS = {64: 3.0, 128: 2.0, 256: 1.1, 512: 1.0}
RESULTS = Path(__file__).parent / "results"


def flops_per_step(H, B, T):
    return 6 * T * B * H * (H + K)


def make_data(B, T, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(T // 2, T, size=B)  # each word ends before T, then padding
    lengths[0] = T - 1
    inputs = rng.integers(1, K, size=(B, T))
    targets = np.roll(inputs, -1, axis=1)
    positions = np.arange(T)[None, :]
    inputs[:, 0] = 0
    targets[positions == lengths[:, None]] = 0
    mask = (positions <= lengths[:, None]).astype(np.float64)
    inputs[positions > lengths[:, None]] = 0
    targets[positions > lengths[:, None]] = 0
    return inputs, targets, mask


def run_rnnac(H, B, T, seconds):
    import numpy as np

    import rnnac
    from rnnac.engine.bptt import Engine

    inputs, targets, mask = make_data(B, T)
    batch = rnnac.Batch(inputs, targets, mask)
    model = rnnac.RNN.init(K, H, seed=0, dtype=np.float32)
    lr = np.float32(0.01)

    engine = Engine(model)

    def step():
        _, grads = engine.loss_and_grads(batch)
        for name, g in grads.items():
            g *= lr
            model.params[name] -= g  # the plain SGD update

    return time_steps(step, seconds)


def run_torch(H, B, T, seconds):
    import torch

    torch.manual_seed(0)
    inputs, targets, mask = make_data(B, T)
    x = torch.nn.functional.one_hot(torch.tensor(inputs.T.copy()), K).float()  # (T, B, K)
    y = torch.tensor(targets.T.copy()).reshape(-1)
    m = torch.tensor(mask.T.copy(), dtype=torch.float32).reshape(-1)
    rnn = torch.nn.RNN(K, H)
    head = torch.nn.Linear(H, K)
    opt = torch.optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        hidden, _ = rnn(x)  # (T, B, H)
        logits = head(hidden).reshape(-1, K)
        loss = (torch.nn.functional.cross_entropy(logits, y, reduction="none") * m).sum() / m.sum()
        loss.backward()
        opt.step()

    return time_steps(step, seconds)


def time_steps(step, seconds):
    """Steps per second: warm up, then the median of ~10 timed slices of the budget."""
    for _ in range(3):
        step()
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 10:
            step()
            n += 1
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def gemm_peak(seconds=1.0):
    """Best float32 GFLOP/s of a square NumPy GEMM, the machine's practical ceiling."""
    import numpy as np

    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        c = np.empty_like(a)
        np.dot(a, a, out=c)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            np.dot(a, a, out=c)
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def worker(args):
    if args.worker == "peak":
        print(json.dumps(gemm_peak()))
        return
    run = run_rnnac if args.worker == "rnnac" else run_torch
    H, B, T = args.size
    print(json.dumps(run(H, B, T, args.seconds) * B * T))  # chars/s, padding included


def measure(side, size, seconds):
    cmd = [sys.executable, __file__, "--worker", side, "--seconds", str(seconds)]
    if size:
        cmd += ["--size", *map(str, size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--worker", choices=["rnnac", "torch", "peak"])
    parser.add_argument("--size", type=int, nargs=3)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    peak = statistics.median(measure("peak", None, 1.0) for _ in range(3))
    rows = []
    for H, B, T in SIZES:
        rates = {"rnnac": [], "torch": []}
        for r in range(args.rounds):
            order = ("rnnac", "torch") if r % 2 == 0 else ("torch", "rnnac")
            for side in order:
                rates[side].append(measure(side, (H, B, T), args.seconds))
        ours, theirs = statistics.median(rates["rnnac"]), statistics.median(rates["torch"])
        gflops = flops_per_step(H, B, T) * ours / (B * T) / 1e9
        rows.append((H, B, T, ours, theirs, ours / theirs, TARGETS[H], gflops))
        print(f"H={H}: rnnac {ours:,.0f} chars/s, torch {theirs:,.0f} chars/s, ratio {ours / theirs:.2f}", file=sys.stderr)

    lines = [
        f"One training step (forward, full BPTT, SGD), K = {K}, float32, median of {args.rounds} alternating runs per side.",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}; float32 GEMM peak {peak:.1f} GFLOP/s (NumPy, measured).",
        "",
        "| H | B | T | rnnac chars/s | torch chars/s | rnnac / torch | target | rnnac GFLOP/s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for H, B, T, ours, theirs, ratio, target, gflops in rows:
        lines.append(
            f"| {H} | {B} | {T} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x | {target:.1f}x | {gflops:.1f} | {100 * gflops / peak:.0f}% |"
        )
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_step.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
