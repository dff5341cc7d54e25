"""Seconds per training epoch of the name classifier, minirnn against its PyTorch twin, 2 threads each.

    python benchmarks/name_classifier_epoch_time.py --train ../shared/data/names_train.csv.gz \
        --test ../shared/data/names_test.csv.gz [--rounds 3] [--epochs 3]

Runs ``examples/name_classifier.py`` and ``benchmarks/name_classifier_torch.py`` as whole processes with the same
arguments, alternating minirnn, torch, minirnn, ... for ``--rounds`` rounds. The example runs as it does by default:
its bidirectional GRU's reverse direction in a second process (``--processes 2``, one BLAS thread in each process);
``--one-process-too`` adds a third side in the same rounds, the example with ``--processes 1`` (2 BLAS threads). Each run prints the median of its
epochs' training seconds (evaluation excluded); this script prints the median over the rounds for each side and the
median of the per-round ratios minirnn / torch (below 1: minirnn is faster). Issue 4's goal is a ratio of at most 1.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = {"minirnn": os.path.join(ROOT, "examples", "name_classifier.py"),
            "torch": os.path.join(HERE, "name_classifier_torch.py")}


def run(side: str, data: list[str], epochs: int, threads: int, limit: int | None) -> float:
    args = [sys.executable, PROGRAMS[side.split(" ")[0]], *data, "--epochs", str(epochs)]
    if side.startswith("minirnn"):                # "minirnn" (the example's default: 2 processes), "minirnn 1"
        args += ["--goal", "0"] + (["--processes", "1"] if side == "minirnn 1" else [])
    else:
        args += ["--threads", str(threads)]
    if limit:
        args += ["--limit", str(limit)]
    n = str(threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    m = re.search(r"^median train seconds per epoch: (\d+\.\d+)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise SystemExit(f"{side} run failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return float(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (each run reports their median)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first LIMIT rows of each file (smoke runs)")
    ap.add_argument("--one-process-too", action="store_true",
                    help="also time the example with --processes 1 (its bidirectional GRU in one process), "
                         "as a third side in the same rounds")
    args = ap.parse_args(argv)
    for p in (args.train, args.test):
        if not os.path.exists(p):
            ap.error(f"no such file {p!r}")
    if args.rounds < 1 or args.epochs < 1 or args.threads < 1:
        ap.error("--rounds, --epochs and --threads must be at least 1")
    data = ["--train", args.train, "--test", args.test]
    sides = ["minirnn", "torch"] + (["minirnn 1"] if args.one_process_too else [])
    times: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(1, args.rounds + 1):
        for side in sides:
            times[side].append(run(side, data, args.epochs, args.threads, args.limit))
        print(f"round {r}: " + ", ".join(f"{side} {times[side][-1]:.2f} s" for side in sides) + " per epoch; ratio "
              + ", ".join(f"{side} / torch {times[side][-1] / times['torch'][-1]:.2f}" for side in sides
                          if side != "torch"), flush=True)
    summary = ", ".join(f"{side} {statistics.median(times[side]):.2f}" for side in sides)
    ratios = ", ".join(f"{side} / torch {statistics.median(m / t for m, t in zip(times[side], times['torch'])):.2f}"
                       for side in sides if side != "torch")
    print(f"median seconds per epoch: {summary}; ratio {ratios} (median of {args.rounds} rounds, {args.threads} "
          "threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
