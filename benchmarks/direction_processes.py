"""One training step of a bidirectional layer with its reverse direction in a second process, against one process.

    python benchmarks/direction_processes.py [--rounds 5] [--iters 15] [--kinds GRU,LSTM]

For each size (T, B, H; input size H, float32, one bidirectional layer): a training step (forward, then backward
with dout = 1) timed with ``minirnn.set_direction_processes(1)`` (2 BLAS threads) and ``(2)`` (one BLAS thread
in each of the two processes), alternating for ``--rounds`` rounds; each round takes the median of ``--iters``
steps, and the table shows the medians over the rounds and their ratio (below 1: two processes are faster).
``minirnn.machinery.runners.MIN_WORK`` is set to 0 here so that every size really uses the second process: the table is
what that threshold (on T * B * G * H, G the gates: RNN 1, GRU 3, LSTM 4) is chosen from.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

import minirnn as mr  # noqa: E402
from minirnn.machinery import runners  # noqa: E402

SIZES = [(20, 1, 32), (20, 4, 32), (20, 8, 64), (20, 16, 64), (30, 32, 64), (50, 32, 128), (9, 256, 100)]


def step_time(m, x: np.ndarray, iters: int) -> float:
    def step():
        out, _ = m(x)
        m.backward(np.ones_like(out))

    step()                                            # warm-up (and the second process's first arena)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--kinds", default="GRU,LSTM", help="comma-separated: RNN, GRU, LSTM")
    ap.add_argument("--sizes", type=int, default=len(SIZES), help="only the first SIZES sizes (smoke runs)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.iters < 1:
        ap.error("--rounds and --iters must be at least 1")
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in ("RNN", "GRU", "LSTM"):
            ap.error(f"--kinds: unknown kind {k!r} (expected RNN, GRU or LSTM)")
    threshold, runners.MIN_WORK = runners.MIN_WORK, 0
    mr.machinery.keep_freed_memory()
    rng = np.random.default_rng(0)
    print(f"{'kind':5s} {'T':>4s} {'B':>4s} {'H':>4s} {'T*B*G*H':>8s} | {'1 process ms':>12s} {'2 processes ms':>14s} "
          f"{'ratio':>5s}")
    try:
        for T, B, H in SIZES[:args.sizes]:
            x = rng.standard_normal((T, B, H)).astype(np.float32)
            for kind in kinds:
                m = getattr(mr, kind)(H, H, bidirectional=True, rng=1)
                work = T * B * m.kernel.gates * H
                times: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(args.rounds):
                    for n in (1, 2):
                        mr.set_direction_processes(n)
                        times[n].append(step_time(m, x, args.iters))
                one, two = statistics.median(times[1]), statistics.median(times[2])
                print(f"{kind:5s} {T:4d} {B:4d} {H:4d} {work:8d} | {one * 1e3:12.2f} {two * 1e3:14.2f} "
                      f"{two / one:5.2f}", flush=True)
    finally:
        mr.set_direction_processes(1)
    print(f"ratio = two processes / one (median of {args.rounds} rounds); minirnn uses the second process from "
          f"T*B*G*H >= {threshold}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
