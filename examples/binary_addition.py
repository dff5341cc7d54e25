"""An RNN learns binary addition from 7-bit operands (8-bit sums), then adds 64-bit numbers exactly.

At step t the network reads bit t of a and of b (least-significant bit first) and emits bit t of a + b; the
carry lives in its hidden state. The tutorial this follows trains a sigmoid SRN (hidden 16, no biases) with
hand-written BPTT and SGD 0.1 on one example at a time (8 steps: operands below 128 have 7 bits, their sums 8),
10,000 times. Here the SRN is ``RNN(2, 16, nonlinearity='sigmoid')`` + ``Linear(16, 1)``, trained with
BCEWithLogitsLoss and Adam on batches of random pairs a, b in [0, 128). Training stops as soon as one batched
forward gets every one of the 16,384 sums (each of 8 bits) exactly right. Nothing in the weights depends on the
length, so the same network then adds 32-bit and 64-bit numbers (sums of 33 and 65 bits).

Every sequence is framed by a 0 + 0 step on each side: the last one lets the carry out (the sum has one bit more
than the operands); the first one starts each addition from a state the network computed itself -- the state it
is in after any 0 + 0 column of a long number -- rather than from h0 = 0, which it never visits again. Starting
from h0 = 0, about one seed in five learned all 8-bit sums yet got some long sums wrong.

Run:  python examples/binary_addition.py [--seed N]   (exits 1 unless it learns all 16,384 sums and adds every
      32-bit and 64-bit pair it tries exactly)
"""
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

from minirnn import RNN, Adam, BCEWithLogitsLoss, Linear, manual_seed, no_grad  # noqa: E402

TRAIN_BITS = 7                          # operands a, b in [0, 128): 16,384 pairs, sums of 8 bits


def encode(a, b, n_bits):
    """Lists of ints in [0, 2**n_bits), n_bits <= 64 -> (n_bits + 2, N, 2) float32: a 0 step, the bits of a and
    b least-significant first, a 0 step for the carry-out."""
    ab = np.array([a, b], dtype=np.uint64)                                   # (2, N)
    bits = (ab[None] >> np.arange(n_bits + 1, dtype=np.uint64)[:, None, None]) & np.uint64(1)   # (n_bits + 1, 2, N)
    x = np.zeros((n_bits + 2, len(a), 2), dtype=np.float32)
    x[1:] = bits.transpose(0, 2, 1)
    return x


def decode(logits):
    """(n_bits + 2, N, 1) logits -> N Python ints (a 64-bit sum needs 65 bits): bit t is [logit of step t+1 > 0]."""
    bits = (logits[1:, :, 0] > 0).astype(object)
    return list(np.array([1 << t for t in range(len(bits))], dtype=object) @ bits)


def add(rnn, fc, a, b, n_bits):
    """The network's a + b for lists of ints below 2**n_bits, in one batched forward."""
    with no_grad():
        out, _ = rnn(encode(a, b, n_bits))
        return decode(fc(out))


def train(seed, hidden=16, batch=128, lr=0.05, max_steps=2000, log_every=25, log=print):
    """Train until all 16,384 sums a + b, a, b < 128, are exact. Returns (rnn, fc, steps, fraction exact)."""
    start = time.perf_counter()
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    rnn = RNN(2, hidden, nonlinearity="sigmoid")
    fc = Linear(hidden, 1)                                                   # one logit per step: the sum's bit
    criterion = BCEWithLogitsLoss()
    optimizer = Adam([*rnn.parameters(), *fc.parameters()], lr=lr)

    n = 1 << TRAIN_BITS
    a, b = np.divmod(np.arange(n * n), n)                                    # every pair
    X_all = encode(a.tolist(), b.tolist(), TRAIN_BITS)                       # (9, 16384, 2)
    Y_all = encode((a + b).tolist(), [0] * (n * n), TRAIN_BITS)[:, :, :1]    # the sums' bits (9, 16384, 1)

    def all_exact():
        with no_grad():
            out, _ = rnn(X_all)
            return float(((fc(out) > 0) == Y_all).all(axis=(0, 2)).mean())

    right, losses = 0, []
    for step in range(1, max_steps + 1):
        idx = rng.integers(0, n * n, size=batch)
        X, Y = X_all[:, idx], Y_all[:, idx]
        out, _ = rnn(X)
        logits = fc(out)                                                     # (9, batch, 1)
        losses.append(criterion(logits, Y))
        optimizer.zero_grad()
        rnn.backward(fc.backward(criterion.backward()))
        optimizer.step()
        batch_right = int(((logits > 0) == Y).all(axis=(0, 2)).sum())
        right += batch_right
        if step % log_every == 0:
            log(f"step {step:4d}  loss {np.mean(losses):.4f}  exact sums in the last {log_every} batches "
                f"{right / (log_every * batch):7.2%}  {time.perf_counter() - start:5.2f} s")
            right, losses = 0, []
        if batch_right == batch:            # checking all pairs costs ~20 steps: only once a whole batch is right
            exact = all_exact()
            log(f"step {step:4d}  a whole batch right; all {n * n} sums: {exact:.2%} exact")
            if exact == 1.0:
                return rnn, fc, step, exact
    return rnn, fc, step, all_exact()


def main(argv=None):
    parser = _cli.parser(__doc__)
    parser.add_argument("--seed", type=_cli.seed, default=0,
                        help="seed for the initial weights, the batches and the tests")
    parser.add_argument("--hidden", type=_cli.positive_int, default=16, help="hidden units (the tutorial's 16)")
    parser.add_argument("--batch", type=_cli.positive_int, default=128, help="pairs per training step")
    parser.add_argument("--lr", type=_cli.positive_float, default=0.05, help="Adam's learning rate")
    parser.add_argument("--max-steps", type=_cli.positive_int, default=2000,
                        help="give up after this many steps (training stops earlier once every sum is exact)")
    _cli.add_require_goal(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()

    rnn, fc, steps, exact = train(args.seed, args.hidden, args.batch, args.lr, args.max_steps)
    if exact < 1.0:
        message = f"only {exact:.2%} of the 16,384 sums exact after {steps} steps (--max-steps {args.max_steps})"
        if _cli.goal_checked(args, {"max_steps": args.max_steps}, parser, argv):
            print(f"FAILED: {message}")
            return 1
        print(f"not learned yet: {message}; not checked (fewer steps than the default "
              f"{parser.get_default('max_steps')}; add --require-goal to check it)")
        return 0
    print(f"learned all 16384 sums in {steps} steps ({steps * args.batch} examples) "
          f"in {time.perf_counter() - start:.2f} s")

    rng = random.Random(args.seed)
    failed = []
    for bits in (32, 64):
        top = (1 << bits) - 1
        a = [top, top] + [rng.getrandbits(bits) for _ in range(1000)]        # two hard cases, then random pairs
        b = [1, top] + [rng.getrandbits(bits) for _ in range(1000)]          # a carry through every bit; all carry
        sums = add(rnn, fc, a, b, bits)
        for x, y, s in list(zip(a, b, sums))[:4]:
            print(f"  {x} + {y} = {s}" + ("" if s == x + y else f"  WRONG, the sum is {x + y}"))
        right = sum(s == x + y for x, y, s in zip(a, b, sums))
        print(f"{bits}-bit numbers: {right}/{len(a)} sums exact")
        if right < len(a):
            failed.append(f"{len(a) - right} of {len(a)} {bits}-bit sums wrong")
    print(f"total {time.perf_counter() - start:.2f} s")
    if failed:
        print("FAILED: the network does not add long numbers exactly: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run(main))
