"""examples/binary_addition.py against the NumPy tutorial program it follows, each a whole process.

The tutorial trains a sigmoid SRN with hand-written BPTT by 10,000 single-example SGD steps.

    python benchmarks/binary_addition_vs_seed.py               # 10 rounds: seeds 0..9 of the example
    python benchmarks/binary_addition_vs_seed.py --rounds 3 --seed-steps 7000

A round runs the seed program (its 10,000 single-example SGD steps; about 7,000 of them reach 100% on all pairs)
and then the example with ``--seed r``, alternating, and times each as a whole process (interpreter start-up,
imports and the example's checks of all 16,384 sums and of 32/64-bit sums included). Prints every round, the
medians, and the ratio seed / example (the median of the per-round ratios). Exits 1 if any example run failed.
The seed program below is the seed's code with its comments and printing left out; its arithmetic is unchanged.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED_PROGRAM = '''
import copy, numpy as np
np.random.seed(0)
def sigmoid(x):
    return 1 / (1 + np.exp(-x))
def sigmoid_output_to_derivative(output):
    return output * (1 - output)
int2binary = {}
binary_dim = 8
largest_number = pow(2, binary_dim)
binary = np.unpackbits(np.array([range(largest_number)], dtype=np.uint8).T, axis=1)
for i in range(largest_number):
    int2binary[i] = binary[i]
alpha, input_dim, hidden_dim, output_dim = 0.1, 2, 16, 1
synapse_0 = 2 * np.random.random((input_dim, hidden_dim)) - 1
synapse_1 = 2 * np.random.random((hidden_dim, output_dim)) - 1
synapse_h = 2 * np.random.random((hidden_dim, hidden_dim)) - 1
synapse_0_update = np.zeros_like(synapse_0)
synapse_1_update = np.zeros_like(synapse_1)
synapse_h_update = np.zeros_like(synapse_h)
for j in range(STEPS):
    a_int = np.random.randint(largest_number / 2); a = int2binary[a_int]
    b_int = np.random.randint(largest_number / 2); b = int2binary[b_int]
    c_int = a_int + b_int; c = int2binary[c_int]
    d = np.zeros_like(c)
    overallError = 0
    layer_2_deltas = list()
    layer_1_values = list()
    layer_1_values.append(np.zeros(hidden_dim))
    for position in range(binary_dim):
        X = np.array([[a[binary_dim - position - 1], b[binary_dim - position - 1]]])
        y = np.array([[c[binary_dim - position - 1]]]).T
        layer_1 = sigmoid(np.dot(X, synapse_0) + np.dot(layer_1_values[-1], synapse_h))
        layer_2 = sigmoid(np.dot(layer_1, synapse_1))
        layer_2_error = y - layer_2
        layer_2_deltas.append((layer_2_error) * sigmoid_output_to_derivative(layer_2))
        overallError += np.abs(layer_2_error[0])
        d[binary_dim - position - 1] = np.round(layer_2[0][0])
        layer_1_values.append(copy.deepcopy(layer_1))
    future_layer_1_delta = np.zeros(hidden_dim)
    for position in range(binary_dim):
        X = np.array([[a[position], b[position]]])
        layer_1 = layer_1_values[-position - 1]
        prev_layer_1 = layer_1_values[-position - 2]
        layer_2_delta = layer_2_deltas[-position - 1]
        layer_1_delta = (future_layer_1_delta.dot(synapse_h.T) + layer_2_delta.dot(synapse_1.T)) \\
            * sigmoid_output_to_derivative(layer_1)
        synapse_1_update += np.atleast_2d(layer_1).T.dot(layer_2_delta)
        synapse_h_update += np.atleast_2d(prev_layer_1).T.dot(layer_1_delta)
        synapse_0_update += X.T.dot(layer_1_delta)
        future_layer_1_delta = layer_1_delta
    synapse_0 += synapse_0_update * alpha
    synapse_1 += synapse_1_update * alpha
    synapse_h += synapse_h_update * alpha
    synapse_0_update *= 0
    synapse_1_update *= 0
    synapse_h_update *= 0
'''


def timed_run(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - t0, p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="rounds; round r runs the example with --seed r")
    ap.add_argument("--seed-steps", type=int, default=10000, help="SGD steps of the seed program (the seed's 10,000)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        seed_py = os.path.join(tmp, "seed_binary_addition.py")
        with open(seed_py, "w") as f:
            f.write(SEED_PROGRAM.replace("STEPS", str(args.seed_steps)))
        rows, failed = [], []
        for r in range(args.rounds):
            t_seed, p_seed = timed_run([sys.executable, seed_py])
            if p_seed.returncode != 0:
                print(p_seed.stderr, file=sys.stderr)
                return 2
            t_ex, p_ex = timed_run([sys.executable, os.path.join(ROOT, "examples", "binary_addition.py"),
                                    "--seed", str(r)])
            last = p_ex.stdout.strip().splitlines()[-1] if p_ex.stdout.strip() else p_ex.stderr.strip()[-200:]
            if p_ex.returncode != 0:
                failed.append(r)
            rows.append((t_seed, t_ex))
            print(f"round {r}: seed program {t_seed:6.2f} s   example --seed {r} {t_ex:5.2f} s "
                  f"(exit {p_ex.returncode}: {last})", flush=True)
    seed_med = statistics.median(s for s, _ in rows)
    ex_med = statistics.median(e for _, e in rows)
    ratio = statistics.median(s / e for s, e in rows)
    print(f"median: seed program ({args.seed_steps} steps) {seed_med:.2f} s, example {ex_med:.2f} s; "
          f"seed / example {ratio:.2f}x (median of {len(rows)} rounds)")
    print(f"example runs that reached 100% and added 32/64-bit numbers exactly: {len(rows) - len(failed)}/{len(rows)}"
          + (f" (failed seeds: {failed})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
