"""A/B cost of a change on small training steps (forward + backward): two checkouts alternated round by round.

    python benchmarks/ab_training_step.py /path/to/checkout_A /path/to/checkout_B --rounds 6 --budget 0.8

Each round runs every case in a fresh process per checkout (the order alternates), timing steps by CPU time
(``time.process_time``, one BLAS thread) so that a shared, loaded machine disturbs it less than wall time; the
minimum over the rounds is printed. Exits 0; it measures, it does not judge.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def case_seq(mr, kind, T, B, I, H):
    m = getattr(mr, kind)(I, H, rng=0)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)

    def step():
        out, _ = m(x)
        m.backward(np.ones_like(out))
    return step


def case_cell(mr, kind, T, B, I, H):
    m = getattr(mr, kind)(I, H, rng=0)
    xs = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    d = np.ones((B, H), np.float32)

    def step():
        s = None
        for t in range(T):
            s = m(xs[t], s)
        g = (d, d) if kind == "LSTMCell" else d
        for _ in range(T):
            _, g = m.backward(g)
    return step


def case_lm(mr, T, B, V, H):
    """char-LM shape: Embedding -> LSTM -> Linear on the LSTM's output."""
    emb, rnn, lin = mr.Embedding(V, 32, rng=0), mr.LSTM(32, H, rng=0), mr.Linear(H, V, rng=0)
    idx = np.random.default_rng(0).integers(0, V, (T, B))

    def step():
        out, _ = rnn(emb(idx))
        y = lin(out.reshape(-1, H))
        d = rnn.backward(lin.backward(np.ones_like(y)).reshape(out.shape))[0]
        emb.backward(d)
    return step


CASES = {
    "lstm T50 B32 I64 H128": lambda mr: case_seq(mr, "LSTM", 50, 32, 64, 128),
    "gru T20 B8 I16 H32": lambda mr: case_seq(mr, "GRU", 20, 8, 16, 32),
    "rnn T100 B64 I128 H64": lambda mr: case_seq(mr, "RNN", 100, 64, 128, 64),
    "lstmcell T30 B16 I32 H64": lambda mr: case_cell(mr, "LSTMCell", 30, 16, 32, 64),
    "char-lm T64 B32 V65 H256": lambda mr: case_lm(mr, 64, 32, 65, 256),
}


def worker(budget: float) -> None:
    import minirnn as mr
    res = {}
    for name, make in CASES.items():
        step = make(mr)
        for _ in range(3):
            step()
        best, end = float("inf"), time.perf_counter() + budget
        while time.perf_counter() < end:
            t0 = time.process_time()
            step()
            best = min(best, time.process_time() - t0)
        res[name] = best * 1e6
    print(json.dumps(res))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="checkout A (e.g. the base)")
    ap.add_argument("b", help="checkout B (e.g. the change)")
    ap.add_argument("--rounds", type=int, default=6, help="alternated rounds (default 6)")
    ap.add_argument("--budget", type=float, default=0.8, help="seconds of steps per case and round (default 0.8)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.budget)
        return 0
    out: dict[str, list] = {"a": [], "b": []}
    for r in range(args.rounds):
        for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
            env = dict(os.environ, PYTHONPATH=getattr(args, side), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
            p = subprocess.run([sys.executable, __file__, args.a, args.b, "--worker", "--budget", str(args.budget)],
                               env=env, capture_output=True, text=True, check=True)
            out[side].append(json.loads(p.stdout))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    for case in CASES:
        a, b = min(x[case] for x in out["a"]), min(x[case] for x in out["b"])
        print(f"{case:26s} A {a:9.0f} us   B {b:9.0f} us   B/A {b / a:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
