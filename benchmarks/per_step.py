"""What one more time step costs at tiny sizes (B=1, I=16, H=32, float32, 2 threads), minirnn against torch.

    python benchmarks/per_step.py [--repeats 5] [--json PATH]

At tiny sizes a step's arithmetic is a few thousand flops, so its cost is the per-call work of the framework:
Python, argument checking, dispatch. Measured as a slope, so that everything paid once per sequence cancels:

    per step = (time at T=220 - time at T=20) / 200

for inference (forward under no_grad) and a training step (forward + backward, dout over every output), for
RNN (tanh), LSTM and GRU. Each side runs in its own process, alternating minirnn, torch, minirnn, ...; each worker
reports medians of its timed iterations and the table shows the medians over the rounds. minirnn's workers also
count the NumPy function calls (``np.*``: ufuncs, matmul, ...) the engine and the kernels make per step, the
same slope on call counts; array methods (``a.reshape``) and slicing are not counted.

torch 2.13 runs its CPU LSTM (not its RNN or GRU) through oneDNN's fused RNN primitive, inference and training:
one call for the whole sequence. ``--torch-onednn off`` measures torch's own per-step path for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KINDS = ("RNN", "LSTM", "GRU")
B, I, H = 1, 16, 32
T_SHORT, T_LONG = 20, 220


def _time(fn, budget: float = 0.4, max_iters: int = 200) -> float:
    fn()                                            # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < budget and len(times) < max_iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _minirnn_steps(kind: str):
    sys.path.insert(0, ROOT)
    import numpy as np
    import minirnn
    rng = np.random.default_rng(0)
    layer = getattr(minirnn, kind)(I, H, rng=rng)

    def run(T: int, train: bool) -> None:
        x = xs[T]
        if not train:
            with minirnn.no_grad():
                layer(x)
            return
        layer.zero_grad()
        out, _ = layer(x)
        layer.backward(np.ones_like(out))
    xs = {T: rng.standard_normal((T, B, I)).astype(np.float32) for T in (T_SHORT, T_LONG)}
    return run


def _torch_steps(kind: str):
    import torch
    torch.set_num_threads(2)
    if os.environ.get("PER_STEP_TORCH_ONEDNN") == "off":    # torch's own per-step path instead of oneDNN's RNN
        torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    layer = getattr(torch.nn, kind)(I, H)
    xs = {T: torch.randn(T, B, I) for T in (T_SHORT, T_LONG)}
    xs_grad = {T: x.clone().requires_grad_(True) for T, x in xs.items()}

    def run(T: int, train: bool) -> None:
        if not train:
            with torch.no_grad():
                layer(xs[T])
            return
        layer.zero_grad()
        x = xs_grad[T]
        x.grad = None
        out, _ = layer(x)
        out.backward(torch.ones_like(out))
    return run


def _count_calls(kind: str) -> dict:
    """``np.*`` calls made by minirnn's engine, kernels and functional per time step (slope over T), counted by
    wrapping those modules' ``np``."""
    sys.path.insert(0, HERE)                        # bench_recurrent.py beside this file, however this one was loaded
    from bench_recurrent import numpy_calls_through
    run = _minirnn_steps(kind)
    counter = {"n": 0}

    def counted(name, fn):
        def call(*args, **kwargs):
            counter["n"] += 1
            return fn(*args, **kwargs)
        return call

    counts = {}
    with numpy_calls_through(counted):
        for train in (False, True):
            run(T_SHORT, train)                     # warm-up: caches filled once per process are not per step
            per_T = {}
            for T in (T_SHORT, T_LONG):
                counter["n"] = 0
                run(T, train)
                per_T[T] = counter["n"]
            counts["train" if train else "infer"] = (per_T[T_LONG] - per_T[T_SHORT]) / (T_LONG - T_SHORT)
    return counts


def worker(side: str, kind: str) -> dict:
    run = _minirnn_steps(kind) if side == "minirnn" else _torch_steps(kind)
    res = {}
    for train in (False, True):
        t = {T: _time(lambda: run(T, train)) for T in (T_SHORT, T_LONG)}
        res["train" if train else "infer"] = (t[T_LONG] - t[T_SHORT]) / (T_LONG - T_SHORT)
    if side == "minirnn":
        res["calls"] = _count_calls(kind)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="rounds of (minirnn, torch) workers per kind")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: RNN,LSTM,GRU")
    ap.add_argument("--no-torch", action="store_true", help="time minirnn alone")
    ap.add_argument("--torch-onednn", choices=["on", "off"], default="on",
                    help="off: torch without oneDNN (torch.backends.mkldnn.enabled = False), whose fused RNN "
                         "primitive runs torch's CPU LSTM by default; RNN and GRU never use it")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "per_step.json"))
    ap.add_argument("--worker", choices=["minirnn", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.kind)))
        return 0
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    bad = sorted(set(kinds) - set(KINDS))
    if bad or not kinds:
        ap.error(f"--kinds: expected a comma-separated subset of {','.join(KINDS)}, got {args.kinds!r}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    sides = ["minirnn"] if args.no_torch else ["minirnn", "torch"]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}  # native BLAS
    env.update(OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), PER_STEP_TORCH_ONEDNN=args.torch_onednn)
    results = {}
    print(f"per time step, B={B} I={I} H={H} float32, slope between T={T_SHORT} and T={T_LONG}; "
          f"median of {args.repeats} alternated rounds; torch's oneDNN {args.torch_onednn}")
    print(f"{'kind':5s} {'infer us':>9s} {'torch':>7s} {'ratio':>6s}   {'train us':>9s} {'torch':>7s} {'ratio':>6s}"
          f"   numpy calls/step (infer, train)")
    for kind in kinds:
        rounds = {s: [] for s in sides}
        for _ in range(args.repeats):
            for side in sides:
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", side, "--kind", kind],
                                     capture_output=True, text=True, env=env, check=False)
                if out.returncode != 0:
                    print(out.stderr, file=sys.stderr)
                    return 1
                rounds[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
        row = {"calls": rounds["minirnn"][0]["calls"]}
        for side in sides:
            for what in ("infer", "train"):
                row[f"{side}_{what}_us"] = 1e6 * statistics.median(r[what] for r in rounds[side])
        line = f"{kind:5s}"
        for what in ("infer", "train"):
            m = row[f"minirnn_{what}_us"]
            if "torch" in sides:
                t = row[f"torch_{what}_us"]
                row[f"{what}_ratio"] = m / t
                line += f" {m:9.1f} {t:7.1f} {m / t:6.2f}  "
            else:
                line += f" {m:9.1f} {'-':>7s} {'-':>6s}  "
        line += f" {row['calls']['infer']:.0f}, {row['calls']['train']:.0f}"
        print(line, flush=True)
        results[kind] = row
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"B": B, "I": I, "H": H, "T": [T_SHORT, T_LONG], "repeats": args.repeats,
                   "torch_onednn": args.torch_onednn, "results": results}, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
