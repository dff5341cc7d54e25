"""minirnn against torch: a training step and an inference forward of RNN, LSTM and GRU, float32, 2 threads.

    python benchmarks/bench_recurrent.py                    # the full table (several minutes)
    python benchmarks/bench_recurrent.py --quick            # smoke run: tiny sizes, one repeat
    python benchmarks/bench_recurrent.py --cases lstm --repeats 5 --json /tmp/lstm.json
    python benchmarks/bench_recurrent.py --baseline ../base  # A/B against another checkout, in the same run
    python benchmarks/bench_recurrent.py --threads 1 --clock cpu ...   # A/B on a loaded machine (CPU time)

What is measured, per case:
  train  one training step: zero the grads, forward over the whole sequence, backward with the gradients of
         every parameter, of x and of h0 (and c0), given random dout and dh_n (for the name classifier: the
         whole model, Embedding -> bidirectional 2-layer GRU with lengths -> Linear, and the cross-entropy loss).
  infer  the forward alone, under no_grad (torch.no_grad / minirnn.no_grad).
  mem    peak memory of the first full-size training step: the increase of the process's resident-set high-water
         mark (getrusage ru_maxrss) over the step, after the libraries are loaded, the model, the inputs and a
         tiny warm-up step exist. The same measure for both sides; it sees pages actually touched, counts
         allocator slack and freshly paged-in code, and is rounded to pages. For minirnn, ``np_peak`` is
         tracemalloc's exact peak of the NumPy (and Python) allocations during one training step.

Each side runs in its own subprocess worker (a fresh interpreter per case and round), alternating
minirnn, torch, minirnn, torch, ...; a worker reports the median of its timed iterations and the table shows
the median over the rounds. Both sides get OMP/OPENBLAS/MKL_NUM_THREADS=2 and torch.set_num_threads(2) (--threads),
and native BLAS kernels (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the workers' environment); the
BLAS library and kernel in use are in the table's header and the JSON. A third worker, "floor", times only the
step's own matrix products at their real shapes (see gemm_floor): "x floor" is minirnn / that. With --baseline,
a fourth times another checkout's minirnn in the same alternation: "vs base" is this checkout / that one.
The ratio is minirnn / torch (below 1: minirnn is faster). Results go to --json (default
benchmarks/results/latest.json), rewritten after every case (``complete`` false until the end). Every worker
imports minirnn afresh from this checkout: run a long benchmark from a copy if the code may change meanwhile.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THREADS = int(os.environ.get("MINIRNN_BENCH_THREADS", "2"))     # set by --threads for the workers
# "wall" (perf_counter) or "cpu" (this process's CPU time: on a loaded machine, with --threads 1, it counts only
# the step's own work; a 2-thread BLAS spins while it waits, so use cpu only with one thread)
CLOCK = os.environ.get("MINIRNN_BENCH_CLOCK", "wall")
SIZES = {  # (T, B, I, H)
    "tiny": (20, 1, 16, 32),
    "small": (50, 32, 64, 128),
    "medium": (100, 64, 128, 256),
    "large": (100, 64, 512, 512),
}
NAMES_CSV = os.path.join(ROOT, "..", "shared", "data", "names_train.csv.gz")


def build_cases(quick: bool) -> list[dict]:
    cases = []
    sizes = {"tiny": SIZES["tiny"]} if quick else SIZES
    for kind in ("RNN", "LSTM", "GRU"):
        for size, (T, B, I, H) in sizes.items():
            cases.append(dict(name=f"{kind.lower()}-{size}", kind=kind, T=T, B=B, I=I, H=H, layers=1, bidir=False))
    bi_size = "tiny" if quick else "small"
    T, B, I, H = SIZES[bi_size]
    for kind in ("RNN", "LSTM", "GRU"):
        cases.append(dict(name=f"{kind.lower()}-{bi_size}-2layer-bidir", kind=kind, T=T, B=B, I=I, H=H, layers=2,
                          bidir=True))
    cases.append(dict(name="name-classifier" + ("-quick" if quick else ""), kind="classifier", T=20,
                      B=16 if quick else 256, I=100, H=100, layers=2, bidir=True))
    return cases


# ------------------------------------------------------------------------------------------------------------
# inputs shared by both sides (same seed, same numbers)
# ------------------------------------------------------------------------------------------------------------
def make_inputs(case: dict):
    import numpy as np

    rng = np.random.default_rng(1234)
    if case["kind"] == "classifier":
        return make_classifier_batch(case["B"], rng)
    T, B, I, H, L = case["T"], case["B"], case["I"], case["H"], case["layers"]
    D = 2 if case["bidir"] else 1
    f32 = np.float32
    return dict(
        x=rng.standard_normal((T, B, I)).astype(f32),
        h0=rng.standard_normal((L * D, B, H)).astype(f32),
        c0=rng.standard_normal((L * D, B, H)).astype(f32),
        dout=rng.standard_normal((T, B, D * H)).astype(f32),
        dhn=rng.standard_normal((L * D, B, H)).astype(f32),
        dcn=rng.standard_normal((L * D, B, H)).astype(f32),
    )


def make_classifier_batch(B: int, rng):
    """B surnames (from the shared names data when present, else lengths drawn like them), ASCII codes."""
    import numpy as np

    names = []
    if os.path.exists(NAMES_CSV):
        with gzip.open(NAMES_CSV, "rt", encoding="utf-8") as f:
            names = [line.split(",")[0] for line in f if line.strip()]
    if names:
        pick = [names[i] for i in rng.choice(len(names), size=B, replace=False)]
        pick[0] = max(names, key=len)[:20]                 # the longest name sets T, as in a real batch
        seqs = [[min(ord(ch), 127) for ch in n] for n in pick]
    else:
        lengths = np.clip(np.round(rng.normal(7, 2.2, size=B)), 2, 20).astype(int)
        lengths[0] = 20
        seqs = [list(rng.integers(1, 128, size=n)) for n in lengths]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    T = int(lengths.max())
    x = np.zeros((B, T), dtype=np.int64)
    for b, s in enumerate(seqs):
        x[b, : len(s)] = s
    y = rng.integers(0, 18, size=B).astype(np.int64)
    return dict(x=x, lengths=lengths, y=y)


# ------------------------------------------------------------------------------------------------------------
# the two sides: each returns (train_step, infer) closures
# ------------------------------------------------------------------------------------------------------------
def minirnn_side(case: dict, inp: dict):
    import numpy as np

    import minirnn as mr                                    # the checkout run_worker put first on PYTHONPATH
    from minirnn.functional import log_softmax

    if case["kind"] == "classifier":
        emb = mr.Embedding(128, 100, rng=0)
        gru = mr.GRU(100, 100, num_layers=2, bidirectional=True, rng=1)
        fc = mr.Linear(200, 18, rng=2)
        x, lengths, y = inp["x"], inp["lengths"], inp["y"]
        B = x.shape[0]
        params = list(emb.parameters()) + list(gru.parameters()) + list(fc.parameters())

        def forward():
            e = emb(x.T)                                    # (T, B, 100)
            _, h_n = gru(e, lengths=lengths)                # (4, B, 100)
            return fc(np.concatenate([h_n[-2], h_n[-1]], axis=1))

        def train():
            for p in params:
                p.grad = None
            logits = forward()
            logp = log_softmax(logits, axis=1)
            loss = -logp[np.arange(B), y].mean()            # cross-entropy, mean over the batch
            dlogits = np.exp(logp)
            dlogits[np.arange(B), y] -= 1.0
            dlogits /= B
            dfeat = fc.backward(dlogits)
            dh_n = np.zeros((4, B, 100), dtype=np.float32)
            dh_n[-2], dh_n[-1] = dfeat[:, :100], dfeat[:, 100:]
            dx, _ = gru.backward(None, dh_n)
            emb.backward(dx)
            return float(loss)

        def infer():
            with mr.no_grad():
                return forward()

        return train, infer

    cls = {"RNN": mr.RNN, "LSTM": mr.LSTM, "GRU": mr.GRU}[case["kind"]]
    m = cls(case["I"], case["H"], num_layers=case["layers"], bidirectional=case["bidir"], dtype=np.float32, rng=0)
    lstm = case["kind"] == "LSTM"
    hx = (inp["h0"], inp["c0"]) if lstm else inp["h0"]
    dstate = (inp["dhn"], inp["dcn"]) if lstm else inp["dhn"]
    x, dout = inp["x"], inp["dout"]

    def train():
        m.zero_grad()
        m(x, hx)
        return m.backward(dout, dstate)

    def infer():
        with mr.no_grad():
            return m(x, hx)

    return train, infer


def torch_side(case: dict, inp: dict):
    import torch
    import torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    if case["kind"] == "classifier":
        emb = nn.Embedding(128, 100)
        gru = nn.GRU(100, 100, 2, bidirectional=True)
        fc = nn.Linear(200, 18)
        loss_fn = nn.CrossEntropyLoss()
        x, lengths, y = (torch.from_numpy(inp[k]) for k in ("x", "lengths", "y"))
        params = list(emb.parameters()) + list(gru.parameters()) + list(fc.parameters())

        def forward():
            e = emb(x.t())
            packed = pack_padded_sequence(e, lengths, enforce_sorted=False)
            _, h_n = gru(packed)
            return fc(torch.cat([h_n[-2], h_n[-1]], dim=1))

        def train():
            for p in params:
                p.grad = None
            loss = loss_fn(forward(), y)
            loss.backward()
            return float(loss)

        def infer():
            with torch.no_grad():
                return forward()

        return train, infer

    cls = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[case["kind"]]
    m = cls(case["I"], case["H"], num_layers=case["layers"], bidirectional=case["bidir"])
    lstm = case["kind"] == "LSTM"
    x = torch.from_numpy(inp["x"]).requires_grad_()
    h0 = torch.from_numpy(inp["h0"]).requires_grad_()
    c0 = torch.from_numpy(inp["c0"]).requires_grad_()
    dout, dhn, dcn = (torch.from_numpy(inp[k]) for k in ("dout", "dhn", "dcn"))
    leaves = [x, h0, c0]

    def train():
        m.zero_grad(set_to_none=True)
        for t in leaves:
            t.grad = None
        if lstm:
            out, (hn, cn) = m(x, (h0, c0))
            torch.autograd.backward([out, hn, cn], [dout, dhn, dcn])
        else:
            out, hn = m(x, h0)
            torch.autograd.backward([out, hn], [dout, dhn])

    def infer():
        with torch.no_grad():
            return m(x, (h0, c0)) if lstm else m(x, h0)

    return train, infer



# ------------------------------------------------------------------------------------------------------------
# the GEMM shape floor: the step's own matrix products at their real shapes, timed as the engine calls them
# ------------------------------------------------------------------------------------------------------------
def case_batch_sizes(case: dict, inp: dict) -> list[int]:
    """Active rows per time step: B at every step, or (the classifier, with lengths) how many are longer than t."""
    if case["kind"] != "classifier":
        return [case["B"]] * case["T"]
    lengths = inp["lengths"]
    return [int((lengths > t).sum()) for t in range(int(lengths.max()))]


def gemm_floor(case: dict, inp: dict):
    """(train, infer) closures that run only the matrix products of the layer's training step (and of its forward),
    per layer and direction, with the shapes, layouts and ``out=`` buffers the engine uses (float32):

        forward    GX = X @ W_ih.T                 (N, I) x (I, GH)       N = sum of the active rows per step
                   T x  gh = h_prev @ W_hh.T       (b_t, H) x (H, GH)
        backward   T x  dh_prev = dgh @ W_hh       (b_t, GH) x (GH, H)
                   dX = dGX @ W_ih ; dW_ih = dGX.T @ X ; dW_hh = dGH.T @ H_prev

    Nothing else: no bias, no pointwise work, no Python beyond the loop. minirnn's time over this is what its
    pointwise work and call overhead cost."""
    import numpy as np

    G = {"RNN": 1, "LSTM": 4, "GRU": 3, "classifier": 3}[case["kind"]]
    H, D, L = case["H"], 2 if case["bidir"] else 1, case["layers"]
    active = case_batch_sizes(case, inp)
    N, Bmax = sum(active), max(active)
    rng = np.random.default_rng(0)
    f32 = np.float32
    runs = []
    for layer in range(L):
        I = case["I"] if layer == 0 else D * H
        for _ in range(D):
            W_ih = rng.standard_normal((G * H, I)).astype(f32)
            W_hh = rng.standard_normal((G * H, H)).astype(f32)
            X = rng.standard_normal((N, I)).astype(f32)
            A = np.empty((N, G * H), f32)
            Hs = rng.standard_normal((N, H)).astype(f32)
            dX, dh = np.empty((N, I), f32), np.empty((Bmax, H), f32)
            off = np.cumsum([0] + active)
            a_t = [A[off[t]:off[t + 1]] for t in range(len(active))]
            h_t = [Hs[off[t]:off[t + 1]] for t in range(len(active))]
            dh_t = [dh[:b] for b in active]
            runs.append((W_ih, W_hh, X, A, Hs, dX, a_t, h_t, dh_t))

    def infer():
        for W_ih, W_hh, X, A, Hs, dX, a_t, h_t, dh_t in runs:
            np.matmul(X, W_ih.T, out=A)
            W_hhT = W_hh.T
            for a, h in zip(a_t, h_t):
                np.matmul(h, W_hhT, out=a)

    def train():
        infer()
        for W_ih, W_hh, X, A, Hs, dX, a_t, h_t, dh_t in runs:
            for a, dh in zip(reversed(a_t), reversed(dh_t)):
                np.matmul(a, W_hh, out=dh)
            np.matmul(A, W_ih, out=dX)
            A.T @ X
            A.T @ Hs

    return train, infer


def blas_kernel() -> str:
    """The BLAS library and the CPU kernel it runs (threadpoolctl, a benchmark-only dependency), e.g.
    'openblas 0.3.31 SkylakeX, 2 threads'."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    import numpy  # noqa: F401  (loads the BLAS)
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}, {i.get('num_threads')} "
                     f"threads" for i in libs) or "unknown"

# ------------------------------------------------------------------------------------------------------------
# worker: one side, one or more cases, in this (fresh) process
# ------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def numpy_calls_through(wrap):
    """Inside the block every ``np.*`` call that minirnn's engine, kernels and functional make goes through
    ``wrap(name, fn)``, which returns the function to call instead (per_step.py counts, profile_step.py times)."""
    from minirnn import engine, functional, kernels

    class Proxy:
        def __init__(self, module):
            self._module = module

        def __getattr__(self, name):
            obj = getattr(self._module, name)
            return obj if not callable(obj) or isinstance(obj, type) else wrap(name, obj)

    saved = [(m, m.np) for m in (engine, functional, kernels)]
    try:
        for m, np_module in saved:
            m.np = Proxy(np_module)
        yield
    finally:
        for m, np_module in saved:
            m.np = np_module


def maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def timed(fn, iters: int, budget: float, warmup: int = 1) -> float:
    clock = time.process_time if CLOCK == "cpu" else time.perf_counter
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < iters and (len(times) < 3 or time.perf_counter() - start < budget):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def second_process_hwm() -> int:
    """The resident-set high-water mark of minirnn's second process (``--direction-processes 2``), 0 without one."""
    import minirnn
    try:                                             # this checkout: the machinery subpackage
        from minirnn.machinery import second_process
        worker = second_process._process
    except ImportError:                              # an older checkout (--baseline)
        worker = getattr(getattr(minirnn, "direction_process", None), "_worker", None)
    if worker is None:
        return 0
    with open(f"/proc/{worker.proc.pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def high_water_bytes(side: str) -> int:
    """This process's resident-set high-water mark, plus that of minirnn's second process when there is one."""
    return maxrss_bytes() + (second_process_hwm() if side in ("minirnn", "base") else 0)


def set_processes(mr, n: int) -> None:
    if hasattr(mr, "set_direction_processes"):
        mr.set_direction_processes(n)


def worker(side: str, cases: list[dict], iters: int, budget: float, processes: int = 1) -> list[dict]:
    """side: "minirnn" (this checkout), "base" (minirnn of --baseline's checkout), "torch", or "floor"."""
    if side == "floor":
        out = []
        for case in cases:
            train, infer = gemm_floor(case, make_inputs(case))
            out.append(dict(case=case["name"], side=side, train_s=timed(train, iters, budget),
                            infer_s=timed(infer, iters, budget), mem_bytes=None, np_peak_bytes=None,
                            blas=blas_kernel()))
        return out
    mini = side in ("minirnn", "base")
    make = minirnn_side if mini else torch_side
    if mini:
        import minirnn as mr                         # run_worker puts the side's checkout first on PYTHONPATH
        if hasattr(mr, "machinery"):                 # (an older checkout tunes malloc at import)
            mr.machinery.keep_freed_memory()         # steady steps reuse their pages (benchmarks/README.md)
    results = []
    for n, case in enumerate(cases):
        if mini:
            set_processes(mr, processes if case["bidir"] else 1)
        inp = make_inputs(case)
        train, infer = make(case, inp)
        # warm-up at the tiny size so lazily loaded code does not count as the step's memory
        tiny = dict(case, **({"B": 2} if case["kind"] == "classifier" else dict(T=2, B=1, I=4, H=4)))
        t_train, t_infer = make(tiny, make_inputs(tiny))
        t_train()
        t_infer()
        gc.collect()
        mem = None
        if n == 0:                                   # the high-water mark is only meaningful for the first case
            before = high_water_bytes(side)
            train()
            mem = high_water_bytes(side) - before
        np_peak = None
        if mini:
            import tracemalloc

            train()
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            train()
            np_peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
        t_tr = timed(train, iters, budget)
        t_inf = timed(infer, iters, budget)
        results.append(dict(case=case["name"], side=side, train_s=t_tr, infer_s=t_inf, mem_bytes=mem,
                            np_peak_bytes=np_peak, blas=blas_kernel()))
    if mini:
        set_processes(mr, 1)
    return results


# Set on some machines for old OpenBLAS builds: they force the AVX2 (Haswell) kernels on newer CPUs, which is not
# how NumPy runs on a user's machine. The benchmark workers run without them (tests and CI keep them).
FORCED_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def worker_env(checkout: str = ROOT, threads: int | None = None, clock: str | None = None) -> dict:
    """The environment of a benchmark worker: native BLAS kernels, ``threads`` threads, ``checkout``'s minirnn
    first on the path."""
    env = {k: v for k, v in os.environ.items() if k not in FORCED_BLAS_VARS}
    threads = THREADS if threads is None else threads
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINIRNN_BENCH_THREADS"):
        env[var] = str(threads)
    env["MINIRNN_BENCH_CLOCK"] = clock or CLOCK
    env["PYTHONPATH"] = checkout + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_worker(side: str, cases: list[dict], iters: int, budget: float, processes: int = 1,
               baseline: str | None = None, threads: int | None = None, clock: str | None = None) -> list[dict]:
    env = worker_env(baseline if side == "base" else ROOT, threads, clock)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--worker-cases", json.dumps(cases),
           "--iters", str(iters), "--budget", str(budget), "--direction-processes", str(processes)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} worker failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    return proc.returncode == 0


# ------------------------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------------------------
def fmt_ms(s):
    return "-" if s is None else (f"{s * 1e3:8.2f}" if s < 10 else f"{s * 1e3:8.0f}")


def fmt_mb(b):
    return f"{'-':>6s}" if b is None else f"{b / 2**20:6.1f}"


def fmt_x(r):
    return f"{'-':>7s}" if r is None else f"{r:7.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one repeat, one process per side")
    ap.add_argument("--repeats", type=int, default=None, help="rounds of alternated workers per case (default 3)")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations per worker (at most; default 9)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of timed iterations per worker (at most; default 2.0)")
    ap.add_argument("--cases", default="", help="comma-separated substrings: run only the matching cases")
    ap.add_argument("--no-torch", action="store_true", help="time minirnn alone")
    ap.add_argument("--baseline", default=None, metavar="CHECKOUT",
                    help="also time the minirnn of another checkout (e.g. a pristine one of the previous commit), "
                         "alternated with this one in the same run: the 'vs base' column is this / that")
    ap.add_argument("--threads", type=int, default=THREADS, help=f"BLAS and torch threads (default {THREADS})")
    ap.add_argument("--clock", choices=["wall", "cpu"], default=CLOCK,
                    help="wall: elapsed time (default); cpu: the worker's CPU time, for A/B rounds on a loaded "
                         "machine with --threads 1 (a multi-threaded BLAS spins while it waits)")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--direction-processes", type=int, choices=[1, 2], default=1,
                    help="2: minirnn's bidirectional cases run the reverse direction in a second process "
                         "(minirnn.set_direction_processes); its memory is added to mem, not to np_peak")
    ap.add_argument("--worker", choices=["minirnn", "base", "torch", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-cases", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        out = worker(args.worker, json.loads(args.worker_cases), args.iters, args.budget, args.direction_processes)
        print(json.dumps(out))
        return 0
    if args.baseline is not None and not os.path.isfile(os.path.join(args.baseline, "minirnn", "__init__.py")):
        ap.error(f"--baseline: expected a checkout with minirnn/__init__.py, got {args.baseline!r}")
    if args.threads < 1:
        ap.error(f"--threads: expected at least 1, got {args.threads}")
    if args.repeats is not None and args.repeats < 1:
        ap.error(f"--repeats: expected at least 1, got {args.repeats}")

    repeats = args.repeats or (1 if args.quick else 3)
    iters = args.iters or (2 if args.quick else 9)
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 2.0)
    cases = build_cases(args.quick)
    if args.cases:
        keys = [k.strip() for k in args.cases.split(",") if k.strip()]
        cases = [c for c in cases if any(k in c["name"] for k in keys)]
    sides = ["minirnn"] + (["base"] if args.baseline else [])
    if args.no_torch or not torch_available():
        print("torch is not available (or --no-torch): timing minirnn alone", file=sys.stderr)
    else:
        sides.append("torch")
    sides.append("floor")

    runs: dict[tuple[str, str], list[dict]] = {}

    def med(case, side, key):
        vals = [r[key] for r in runs.get((case, side), []) if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    def ratio(a, b):
        return a / b if a is not None and b else None

    def table_rows(done):
        rows = []
        for c in done:
            row = dict(c)
            for side in ("minirnn", "base", "torch", "floor"):
                row[side] = {k: med(c["name"], side, k) for k in ("train_s", "infer_s", "mem_bytes", "np_peak_bytes")}
                row[side]["runs"] = len(runs.get((c["name"], side), []))
            for key in ("train_s", "infer_s", "mem_bytes"):
                what = key.replace("_s", "").replace("_bytes", "")
                row[what + "_ratio"] = ratio(row["minirnn"][key], row["torch"][key])
                row[what + "_vs_base"] = ratio(row["minirnn"][key], row["base"][key])
            for key in ("train_s", "infer_s"):
                row[key.replace("_s", "") + "_x_floor"] = ratio(row["minirnn"][key], row["floor"][key])
            rows.append(row)
        return rows

    versions = _versions(sides)
    blas = {}

    def write_json(rows, complete):
        if not args.json:
            return
        report = dict(
            command=" ".join([os.path.basename(sys.executable)] + [os.path.relpath(__file__, os.getcwd())]
                             + (argv if argv is not None else sys.argv[1:])),
            complete=complete, quick=args.quick, direction_processes=args.direction_processes, repeats=repeats,
            iters=iters, budget_s=budget, threads=args.threads, clock=args.clock, baseline=args.baseline, blas=blas,
            dropped_env=[v for v in FORCED_BLAS_VARS if v in os.environ],
            sides=sides, python=platform.python_version(), machine=platform.machine(), cpus=os.cpu_count(),
            load_avg=os.getloadavg(), versions=versions, cases=rows,
        )
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)

    groups = [cases] if args.quick else [[c] for c in cases]   # quick: one process per side for every case
    done = []
    for group in groups:
        for _ in range(repeats):
            for side in sides:                                    # A B C A B C ...
                for r in run_worker(side, group, iters, budget, args.direction_processes, args.baseline,
                                    args.threads, args.clock):
                    runs.setdefault((r["case"], side), []).append(r)
                    blas[side] = r["blas"]
        done += group
        if len(groups) > 1:                                       # a long run keeps what it has measured so far
            write_json(table_rows(done), complete=False)
    rows = table_rows(cases)

    print(f"BLAS: {blas.get('minirnn')} (native: {', '.join(FORCED_BLAS_VARS)} unset in the workers); "
          f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base_col = "base" in sides
    head = (f"{'case':28s} {'T,B,I,H':>16s} | {'train ms':>8s} {'floor':>8s} {'x floor':>7s} {'x torch':>7s}"
            + (f" {'vs base':>7s}" if base_col else "")
            + f" | {'infer ms':>8s} {'floor':>8s} {'x floor':>7s} {'x torch':>7s}"
            + (f" {'vs base':>7s}" if base_col else "")
            + f" | {'mem MB':>6s} {'torch':>6s} {'np_peak':>7s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        m, f = r["minirnn"], r["floor"]
        shape = f"{r['T']},{r['B']},{r['I']},{r['H']}"
        line = f"{r['name']:28s} {shape:>16s} |"
        for what in ("train", "infer"):
            line += (f" {fmt_ms(m[what + '_s'])} {fmt_ms(f[what + '_s'])} {fmt_x(r[what + '_x_floor'])}"
                     f" {fmt_x(r[what + '_ratio'])}" + (f" {fmt_x(r[what + '_vs_base'])}" if base_col else "") + " |")
        line += f" {fmt_mb(m['mem_bytes'])} {fmt_mb(r['torch']['mem_bytes'])} {fmt_mb(m['np_peak_bytes']):>7s}"
        print(line)
    print("x floor = minirnn / its GEMM shape floor (the step's matrix products alone, same run); x torch = minirnn / "
          "torch; vs base = minirnn / the --baseline checkout's (medians over rounds of each worker's median); "
          "mem = RSS high-water increase of the first training step; np_peak = tracemalloc peak of minirnn's step")

    write_json(rows, complete=True)
    if args.json:
        print(f"wrote {args.json}")
    return 0


def _versions(sides: list[str]) -> dict:
    import numpy
    import scipy

    v = dict(numpy=numpy.__version__, scipy=scipy.__version__)
    if "torch" in sides:
        proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                              capture_output=True, text=True)
        v["torch"] = proc.stdout.strip()
    return v


if __name__ == "__main__":
    sys.exit(main())
