"""Instructions per training step and per inference forward, this checkout against another (valgrind's count).

    python benchmarks/ab_instructions.py --baseline /path/to/pristine/checkout --cases tiny

On a shared machine, the time of a small step moves by 10-20% from one run to the next, which hides a change of a
few percent. The number of instructions a step executes does not move: it is counted by valgrind (callgrind, one
BLAS thread), so this A/B is exact for the work a change adds or removes (the Python around the NumPy calls, a
copy, a different number of calls). It does not see what costs time without instructions (cache misses, page
faults, threads waiting): for those, bench_recurrent.py's timed rounds are the measure. Each (side, case) runs
bench_recurrent's own step (the same layers and inputs) n and 3n times in two processes, with the garbage
collector off (a collection falls into one window and not the other), PYTHONHASHSEED=0 and, where ``setarch`` is
there, no address randomization (two runs of the same code then agree to about 1e-4; a change that moves the heap
layout moves the count by up to about 1%); per step =
(count(3n) - count(n)) / 2n, so start-up and warm-up cancel. Needs valgrind on PATH; exits 2 without it.

The count is of the code paths valgrind can run: a valgrind without AVX-512 (3.19 here) hides it from the CPU
check, so under it NumPy takes its AVX2 loops and OpenBLAS its Haswell kernels, not the SkylakeX ones a timed run
uses. The Python around the NumPy calls is counted exactly; which of two NumPy kernels is faster is not (the tanh
gate activation executes more instructions than base's exp-based one and takes less time).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_recurrent as br  # noqa: E402


def child(case_name: str, what: str, n: int) -> None:
    """In the counted process: n warm-up-free calls of the case's train or infer (the caller takes differences)."""
    case = next(c for c in br.build_cases(False) if c["name"] == case_name)
    import minirnn as mr
    if hasattr(mr, "machinery"):
        mr.machinery.keep_freed_memory()                 # as bench_recurrent's worker (an older checkout: at import)
    train, infer = br.minirnn_side(case, br.make_inputs(case))
    step = train if what == "train" else infer
    gc.collect()
    gc.disable()        # a collection lands in one count's window and not the other's: counted apart, it is noise
    for _ in range(n):
        step()


def count(checkout: str, case: str, what: str, n: int) -> int:
    # the same hashes and addresses in every process: dict probes and the alignment of each array (which sets the
    # length of NumPy's SIMD loops' scalar head and tail) would otherwise change the count from run to run
    env = dict(os.environ, PYTHONPATH=checkout, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
           "--child", case, what, str(n)]
    if shutil.which("setarch"):
        cmd = ["setarch", os.uname().machine, "-R"] + cmd          # -R: no address-space randomization
    err = subprocess.run(cmd, env=env, capture_output=True, text=True).stderr
    found = re.search(r"Collected : (\d+)", err)
    if not found:
        raise RuntimeError(f"valgrind gave no count for {case} {what} ({checkout}):\n{err[-2000:]}")
    return int(found.group(1))


def per_step(checkout: str, case: str, what: str, n: int) -> float:
    return (count(checkout, case, what, 3 * n) - count(checkout, case, what, n)) / (2 * n)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--baseline", required=True, metavar="CHECKOUT", help="the other checkout (e.g. a pristine one "
                    "of the previous commit); the ratio is this checkout / that")
    ap.add_argument("--cases", default="tiny",
                    help="comma-separated substrings of bench_recurrent's cases (rnn-small also matches its "
                         "2-layer bidirectional case, which takes long under valgrind)")
    ap.add_argument("--steps", type=int, default=10, help="n: each count runs n and 3n steps")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.baseline, "minirnn")):
        ap.error(f"argument --baseline: no minirnn/ in {args.baseline!r}")
    if shutil.which("valgrind") is None:
        print("ab_instructions.py: valgrind is not on PATH", file=sys.stderr)
        return 2
    wanted = [s for s in args.cases.split(",") if s]
    cases = [c["name"] for c in br.build_cases(False) if any(s in c["name"] for s in wanted)]
    if not cases:
        ap.error(f"argument --cases: no case matches {args.cases!r}")
    rows = []
    print(f"{'case':26s} {'train: this':>12s} {'base':>12s} {'ratio':>6s} | {'infer: this':>12s} {'base':>12s} "
          f"{'ratio':>6s}   (instructions per step)")
    for case in cases:
        row = {"case": case}
        for what in ("train", "infer"):
            this, base = per_step(ROOT, case, what, args.steps), per_step(args.baseline, case, what, args.steps)
            row[what] = {"this": this, "base": base, "ratio": this / base}
        rows.append(row)
        t, i = row["train"], row["infer"]
        print(f"{case:26s} {t['this']:12.0f} {t['base']:12.0f} {t['ratio']:6.3f} | {i['this']:12.0f} "
              f"{i['base']:12.0f} {i['ratio']:6.3f}", flush=True)
        if args.json:                                    # after every case: a stopped run keeps what it counted
            tmp = f"{args.json}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump({"command": " ".join(sys.argv), "baseline": os.path.abspath(args.baseline),
                           "steps": args.steps, "python": sys.version.split()[0], "cases": rows}, f, indent=1)
            os.replace(tmp, args.json)
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
