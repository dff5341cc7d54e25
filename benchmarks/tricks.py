"""What each of the engine's speed tricks buys on this machine: the trick on against the plain alternative, per case.

    python benchmarks/tricks.py                           # every trick, RNN/LSTM/GRU at tiny, small, medium, large
    python benchmarks/tricks.py --tricks tanh_gates --sizes small --rounds 7 --json /tmp/tricks.json

Each (trick, case) runs in a fresh worker process (native BLAS, 2 threads, as bench_recurrent.py) that builds the
benchmark's layer (float32, one layer, bench_recurrent's sizes and inputs) and times its training step and its
inference forward with the trick on and off, alternated (on, off, on, off, ...) for ``--rounds`` rounds, each
round the median of a few iterations; the table shows the median over rounds of on / off (below 1: the trick
pays). The plain alternatives are written here, not in the package, and swapped in by patching:

  tanh_gates    the gate block activated by one np.tanh, sigmoid = 0.5 + 0.5 tanh(x / 2), the 1/2 folded into the
                weights; against one np.exp with the -1 / -2 factors folded in (the single-exp activation:
                1 / (1 + exp(-x)) and 2 / (1 + exp(-2x)) - 1)
  prescale      the 1/2 of the tanh form folded into the weight rows once per sequence, against a multiply per step
  expit         (reference point) the plain functions: scipy.special.expit on the sigmoid blocks, np.tanh on the tanh
                blocks, no weight scaling
  chunked_coef  backward's coefficients computed for a cache-sized block of steps at a time (CHUNK_BYTES), against
                all T steps at once
  step_views    per-step views and their Step records made once before the loops, against both made at each step
  none          the control: "off" is the same code as "on", so its on/off shows the measurement's own spread
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_recurrent as br  # noqa: E402

TRICKS = ("tanh_gates", "prescale", "expit", "chunked_coef", "step_views", "none")
KINDS = ("RNN", "LSTM", "GRU")


# ------------------------------------------------------------------------------------------------------------
# the plain alternatives (trick off), installed by patching minirnn's modules in the worker
# ------------------------------------------------------------------------------------------------------------
class _ExpActivation:
    """The single-exp activation: sigmoid = 1 / (1 + exp(-x)), tanh = 2 / (1 + exp(-2x)) - 1, with the -1 / -2
    folded into the weights (``input_scale``); four calls over the block."""

    def __init__(self, pattern, H, dtype):
        import numpy as np
        blocks = lambda s, t: np.repeat(np.array([s if p == "s" else t for p in pattern], dtype=dtype), H)
        self.input_scale = blocks(-1.0, -2.0)
        self._all_s = "T" not in pattern
        self._num = np.asarray(1.0, dtype=dtype) if self._all_s else blocks(1.0, 2.0)
        self._shift = None if self._all_s else blocks(0.0, -1.0)
        self._one = np.ones((), dtype=dtype)

    def __call__(self, a):
        import numpy as np
        np.exp(a, out=a)                                 # may overflow to inf, the exact limit: see worker
        np.add(a, self._one, out=a)
        np.divide(self._num, a, out=a)
        if self._shift is not None:
            np.add(a, self._shift, out=a)
        return a


class _UnscaledTanh:
    """The tanh form without folding the 1/2 into the weights: a multiply by it at every step first."""

    def __init__(self, pattern, H, dtype):
        from minirnn.functional import GateActivation
        self._inner = GateActivation(pattern, H, dtype)
        self.input_scale = None
        self._half = self._inner.input_scale

    def __call__(self, a):
        import numpy as np
        np.multiply(a, self._half, out=a)
        return self._inner(a)


class _Expit:
    """scipy.special.expit on the sigmoid blocks and np.tanh on the tanh blocks, per block, no scaling."""

    def __init__(self, pattern, H, dtype):
        self.pattern, self.H, self.input_scale = pattern, H, None

    def __call__(self, a):
        import numpy as np
        from scipy.special import expit
        H = self.H
        for j, p in enumerate(self.pattern):
            blk = a[:, j * H:(j + 1) * H]
            (expit if p == "s" else np.tanh)(blk, out=blk)
        return a


def _install_activation(cls):
    from minirnn import kernels

    cache = {}

    def gate_activation(pattern, H, dtype):
        key = (pattern, H, str(dtype))
        if key not in cache:
            cache[key] = cls(pattern, H, dtype)
        return cache[key]
    kernels.gate_activation = gate_activation
    kernels._gru_scale.cache_clear()

    if cls in (_UnscaledTanh, _Expit):                   # no factor folded into the weights
        kernels.LSTMKernel.input_scale = lambda self, H, dtype: None
        kernels.GRUKernel.input_scale = lambda self, H, dtype: None


class _LazySteps:
    """Per-step views made when the loop asks for them (a[t, :b] at step t), instead of a list made before."""

    def __init__(self, sch, a, start=0):
        self.sch, self.a, self.start = sch, a, start

    def __getitem__(self, t):
        if isinstance(t, slice):                         # steps t0..t1-1 of a backward block, still lazy
            return _LazySteps(self.sch, self.a, self.start + t.indices(len(self))[0])
        sch, a, t = self.sch, self.a, t + self.start
        if a.ndim == 2:
            return a[sch.offsets[t]:sch.offsets[t + 1]]
        return a[t, :sch.active[t]]

    def __len__(self):
        return self.sch.T - self.start


class _LazyRecords:
    """engine's Step records made when the loop reaches step t (from lazy views), instead of all before the loop."""

    def __init__(self, columns):
        self.columns = [c if hasattr(c, "__getitem__") else None for c in columns]   # repeat(None): no field
        self.n = min(len(c) for c in self.columns if c is not None)

    def __getitem__(self, t):
        from minirnn import engine
        return engine.Step(*(None if c is None else c[t] for c in self.columns))

    def __iter__(self):
        return (self[t] for t in range(self.n))

    def __len__(self):
        return self.n


def install(trick: str, on: bool) -> None:
    """Put the package in the state 'trick on' (as shipped) or 'off' (the plain alternative)."""
    import importlib

    import minirnn
    from minirnn import engine, functional, kernels
    for m in (functional, kernels, engine):
        importlib.reload(m)
    # recurrent.py holds the kernel objects of the reloaded module's classes: rebind them by name
    from minirnn import recurrent
    importlib.reload(recurrent)
    importlib.reload(minirnn)
    if on:
        return
    if trick == "tanh_gates":
        _install_activation(_ExpActivation)
    elif trick == "prescale":
        _install_activation(_UnscaledTanh)
    elif trick == "expit":
        _install_activation(_Expit)
    elif trick == "chunked_coef":
        engine.CHUNK_BYTES = 1 << 62
    elif trick == "step_views":
        original = engine._Schedule.steps

        def steps(self, a):
            return original(self, a) if a is None else _LazySteps(self, a)
        engine._Schedule.steps = steps
        engine._Schedule.before_after = lambda self, S: (steps(self, S[:-1]), steps(self, S[1:]))
        engine._records = lambda *columns: _LazyRecords(columns)
    elif trick != "none":
        raise ValueError(f"trick: expected one of {', '.join(TRICKS)}, got {trick!r}")


def worker(trick: str, case: dict, rounds: int, iters: int) -> dict:
    import numpy as np
    np.seterr(over="ignore")                             # the single-exp variant's exp may overflow (as base did)
    inp = br.make_inputs(case)
    rows = {True: {"train": [], "infer": []}, False: {"train": [], "infer": []}}
    check = {}
    for r in range(rounds):
        for on in (True, False):
            install(trick, on)
            train, infer = br.minirnn_side(case, inp)
            if r == 0:                                   # both variants compute the same numbers
                check[on] = [np.asarray(x) for x in _flatten(train())]
            rows[on]["train"].append(br.timed(train, iters, budget=1.0))
            rows[on]["infer"].append(br.timed(infer, iters, budget=1.0))
    diff = max(float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))
               for a, b in zip(check[True], check[False]))
    out = {"case": case["name"], "trick": trick, "max_rel_diff": diff, "blas": br.blas_kernel()}
    for what in ("train", "infer"):
        on_s, off_s = statistics.median(rows[True][what]), statistics.median(rows[False][what])
        ratios = [a / b for a, b in zip(rows[True][what], rows[False][what])]
        out.update({f"{what}_on_s": on_s, f"{what}_off_s": off_s, f"{what}_ratio": statistics.median(ratios)})
    return out


def _flatten(x):
    if isinstance(x, (tuple, list)):
        for y in x:
            yield from _flatten(y)
    elif x is not None:
        yield x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tricks", default=",".join(TRICKS), help=f"comma-separated subset of {','.join(TRICKS)}")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of RNN,LSTM,GRU")
    ap.add_argument("--sizes", default=",".join(br.SIZES), help=f"comma-separated subset of {','.join(br.SIZES)}")
    ap.add_argument("--rounds", type=int, default=5, help="alternated (on, off) rounds per worker (default 5)")
    ap.add_argument("--iters", type=int, default=5, help="timed iterations per round, at most (default 5)")
    ap.add_argument("--threads", type=int, default=br.THREADS, help=f"BLAS threads (default {br.THREADS})")
    ap.add_argument("--clock", choices=["wall", "cpu"], default=br.CLOCK,
                    help="wall (default) or cpu: the worker's CPU time, for a loaded machine with --threads 1")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "tricks.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.case), args.rounds, args.iters)))
        return 0
    tricks = [t.strip() for t in args.tricks.split(",") if t.strip()]
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for name, got, allowed in (("--tricks", tricks, TRICKS), ("--kinds", kinds, KINDS), ("--sizes", sizes, br.SIZES)):
        bad = [g for g in got if g not in allowed]
        if bad or not got:
            ap.error(f"{name}: expected a comma-separated subset of {','.join(allowed)}, got {','.join(got)!r}")
    if args.rounds < 1 or args.iters < 1 or args.threads < 1:
        ap.error(f"--rounds, --iters, --threads: expected at least 1, got {args.rounds}, {args.iters}, "
                 f"{args.threads}")
    cases = [c for c in br.build_cases(False) if c["layers"] == 1 and c["kind"] in kinds
             and c["name"].split("-")[1] in sizes]
    results = []
    print(f"{'trick':13s} {'case':12s} | {'train on/off':>12s} {'infer on/off':>12s} | {'max rel diff':>12s}")
    for trick in tricks:
        for case in cases:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", trick, "--case", json.dumps(case),
                   "--rounds", str(args.rounds), "--iters", str(args.iters)]
            proc = subprocess.run(cmd, env=br.worker_env(ROOT, args.threads, args.clock), capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{trick:13s} {case['name']:12s} | {r['train_ratio']:12.3f} {r['infer_ratio']:12.3f} | "
                  f"{r['max_rel_diff']:12.1e}", flush=True)
    blas = results[0]["blas"] if results else None
    print(f"on/off = time with the trick / time with the plain alternative (median over {args.rounds} alternated "
          f"rounds); BLAS: {blas}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        command = " ".join(["python", "benchmarks/tricks.py"] + (argv if argv is not None else sys.argv[1:]))
        json.dump({"command": command,
                   "rounds": args.rounds, "iters": args.iters, "threads": args.threads, "clock": args.clock,
                   "blas": blas, "load_avg": os.getloadavg(),
                   "results": results}, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
