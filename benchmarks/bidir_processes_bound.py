"""How much faster could a bidirectional layer train with its two directions in two processes? (issue 4's open path)

    python benchmarks/bidir_processes_bound.py [--rounds 3] [--batches 40]

NumPy runs elementwise work on one core, and threads do not help at a time step's granularity: the GIL changes
hands at every ufunc call. The two directions of a bidirectional layer are independent within the layer, though,
so two *processes* can each take one direction, with one synchronisation per layer rather than per step. This
script measures the upper bound of that idea, with no inter-process traffic: the name classifier's GRU work
(2 layers, T=9, B=256, hidden 100, lengths 4-9; ``engine.forward`` then ``engine.backward`` per layer and
direction) for ``--batches`` batches,

    sequential  one process runs both directions, 2 BLAS threads
    two procs   two processes start together, each runs one direction with 1 BLAS thread; the slower one counts

alternating the two for ``--rounds`` rounds, and prints the medians and their ratio. A real implementation would
add the copies of x, out, dout and dx between the processes (about 2.7 MB per layer and direction per batch).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
T, B, H = 9, 256, 100


def worker(directions: int, batches: int) -> float:
    sys.path.insert(0, ROOT)
    import numpy as np
    from minirnn import engine, kernels
    rng = np.random.default_rng(0)
    weights = [engine.Weights(*(0.1 * rng.standard_normal(s).astype(np.float32)
                                for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))))
               for I in (H, 2 * H) for _ in range(directions)]
    xs = [rng.standard_normal((T, B, I)).astype(np.float32) for I in (H, 2 * H)]
    lengths = np.sort(rng.integers(4, T + 1, B))[::-1]
    batch_sizes = (np.arange(T)[:, None] < lengths[None, :]).sum(axis=1)
    h0 = np.zeros((B, H), np.float32)
    start = time.perf_counter()
    for _ in range(batches):
        for layer in range(2):
            for d in range(directions):
                w = weights[layer * directions + d]
                _, h_n, _, tape = engine.forward(kernels.GRU, w, xs[layer], h0, None, batch_sizes, True)
                engine.backward(kernels.GRU, w, tape, None, np.ones_like(h_n), None)
    return time.perf_counter() - start


def launch(directions: int, batches: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", str(directions),
                             "--batches", str(batches)], stdout=subprocess.PIPE, text=True, env=env)


def seconds(procs: list[subprocess.Popen]) -> float:
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker failed with exit {p.returncode}")
        out.append(float(stdout.strip().splitlines()[-1]))
    return max(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--worker", type=int, choices=[1, 2], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.batches < 1:
        ap.error("--rounds and --batches must be at least 1")
    if args.worker:
        print(f"{worker(args.worker, args.batches):.4f}")
        return 0
    seq, par = [], []
    for r in range(1, args.rounds + 1):
        seq.append(seconds([launch(2, args.batches, 2)]))
        par.append(seconds([launch(1, args.batches, 1), launch(1, args.batches, 1)]))
        print(f"round {r}: sequential {seq[-1]:.2f} s, two processes {par[-1]:.2f} s", flush=True)
    print(f"median over {args.rounds} rounds: sequential {statistics.median(seq):.2f} s, two processes "
          f"{statistics.median(par):.2f} s; sequential / two processes {statistics.median(seq) / statistics.median(par):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
