"""Where a training step's time goes: every NumPy / BLAS call of the engine and kernels, timed at its source line.

    python benchmarks/profile_step.py --kind LSTM --size small [--iters 5] [--json PATH]

One layer, float32, bench_recurrent.py's sizes and inputs, native BLAS, 2 threads. The step runs once plainly
(its median time is the total) and then with every ``np.*`` and ``scipy.linalg.blas.*`` call made by
minirnn/engine.py, kernels.py and functional.py wrapped by a timer, each call's time summed under its source line
(file:line, function). The table lists the lines by time (per step of the sequence, in microseconds), grouped as
GEMM (matmul, gemm) and pointwise; "overhead" is the plain step's time minus every timed call: Python, views,
attribute look-ups, the layer around the engine (the timers' own cost is not in it: it is measured out).
"""
from __future__ import annotations

import argparse
import json
import linecache
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_recurrent as br  # noqa: E402

GEMM_NAMES = {"matmul", "sgemm", "dgemm", "dot"}


def profile(kind: str, size: str, iters: int) -> dict:
    T, B, I, H = br.SIZES[size]
    case = dict(name=f"{kind.lower()}-{size}", kind=kind, T=T, B=B, I=I, H=H, layers=1, bidir=False)
    train, _ = br.minirnn_side(case, br.make_inputs(case))
    total = br.timed(train, iters, budget=3.0)
    lines: dict[tuple, list] = {}
    perf = time.process_time if br.CLOCK == "cpu" else time.perf_counter

    def timed(name, fn):
        def call(*args, **kwargs):
            f = sys._getframe(1)
            t0 = perf()
            r = fn(*args, **kwargs)
            dt = perf() - t0
            key = (os.path.basename(f.f_code.co_filename), f.f_lineno, name)
            rec = lines.get(key)
            if rec is None:
                lines[key] = [dt, 1]
            else:
                rec[0] += dt
                rec[1] += 1
            return r
        return call

    with br.numpy_calls_through(timed):
        train()                                          # warm-up
        lines.clear()
        for _ in range(iters):
            train()
    rows = []
    for (fname, lineno, name), (dt, n) in lines.items():
        src = linecache.getline(os.path.join(ROOT, "minirnn", fname), lineno).strip()
        rows.append(dict(where=f"{fname}:{lineno}", call=name, group="GEMM" if name in GEMM_NAMES else "pointwise",
                         us_per_step=1e6 * dt / iters / T, calls_per_step=n / iters / T, source=src))
    rows.sort(key=lambda r: -r["us_per_step"])
    timed_sum = sum(r["us_per_step"] for r in rows)
    total_us = 1e6 * total / T
    return dict(kind=kind, size=size, T=T, B=B, I=I, H=H, total_us_per_step=total_us, rows=rows,
                gemm_us_per_step=sum(r["us_per_step"] for r in rows if r["group"] == "GEMM"),
                pointwise_us_per_step=sum(r["us_per_step"] for r in rows if r["group"] == "pointwise"),
                rest_us_per_step=total_us - timed_sum, blas=br.blas_kernel())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="LSTM", choices=["RNN", "LSTM", "GRU"], help="cell kind (default LSTM)")
    ap.add_argument("--size", default="small", choices=list(br.SIZES), help="bench_recurrent's size (default small)")
    ap.add_argument("--iters", type=int, default=5, help="profiled training steps (default 5)")
    ap.add_argument("--threads", type=int, default=br.THREADS, help=f"BLAS threads (default {br.THREADS})")
    ap.add_argument("--clock", choices=["wall", "cpu"], default=br.CLOCK,
                    help="wall (default) or cpu: CPU time, for a loaded machine with --threads 1")
    ap.add_argument("--json", default=None, help="also write the profile here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.iters < 1 or args.threads < 1:
        ap.error(f"--iters, --threads: expected at least 1, got {args.iters}, {args.threads}")
    if not args.worker:                                  # run in a worker with the benchmark's environment
        import subprocess
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--kind", args.kind, "--size", args.size,
               "--iters", str(args.iters)] + (["--json", args.json] if args.json else [])
        return subprocess.run(cmd, env=br.worker_env(ROOT, args.threads, args.clock)).returncode
    p = profile(args.kind, args.size, args.iters)
    print(f"{p['kind']} {p['size']} (T={p['T']}, B={p['B']}, I={p['I']}, H={p['H']}) training step: "
          f"{p['total_us_per_step']:.1f} us per time step ({br.CLOCK} clock); BLAS: {p['blas']}; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  GEMM calls {p['gemm_us_per_step']:.1f} us, pointwise calls {p['pointwise_us_per_step']:.1f} us, "
          f"the rest (Python, views, the layer around the engine) {p['rest_us_per_step']:.1f} us")
    print(f"{'us/step':>8s} {'calls':>5s} {'group':9s} {'where':16s} source")
    for r in p["rows"]:
        print(f"{r['us_per_step']:8.2f} {r['calls_per_step']:5.2f} {r['group']:9s} {r['where']:16s} {r['source']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(p, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
