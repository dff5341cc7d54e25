"""The shapes of RNN, RNNCell, LSTM and LSTMCell: a torch.nn shapes tutorial, written with minirnn.

Every line prints what the tutorial's torch program prints (a module, or the shapes of its results), with
NumPy shape tuples in place of torch.Size. Sizes: a sequence of 10 steps, batch 3, 100 input features.

Run:  python examples/shapes_tour.py      (exits 1 if a shape or a module's printout differs)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

from minirnn import LSTM, RNN, LSTMCell, RNNCell, manual_seed, no_grad  # noqa: E402

failures = []


def show(label, *arrays, expect):
    """Print the shapes and check them against what the torch program gives."""
    shapes = tuple(a.shape for a in arrays)
    print(f"{label:<28}", *shapes)
    if shapes != expect:
        failures.append(f"{label}: got {shapes}, expected {expect}")


def show_module(module, expect):
    """Print a module as torch does and check the text against torch's repr of the same module."""
    print(module)
    if repr(module) != expect:
        failures.append(f"repr: got {module!r}, torch prints {expect}")


def main():
    manual_seed(0)
    rng = np.random.default_rng(0)

    rnn = RNN(input_size=100, hidden_size=20, num_layers=1)
    show_module(rnn, "RNN(100, 20)")
    x = rng.standard_normal((10, 3, 100)).astype(np.float32)          # (seq_len, batch, input_size)
    out, h = rnn(x, np.zeros((1, 3, 20), dtype=np.float32))            # h0: (num_layers, batch, hidden)
    show("out, h", out, h, expect=((10, 3, 20), (1, 3, 20)))

    rnn = RNN(input_size=100, hidden_size=20, num_layers=4)
    show_module(rnn, "RNN(100, 20, num_layers=4)")
    out, h = rnn(x, np.zeros((4, 3, 20), dtype=np.float32))
    show("out, h (4 layers)", out, h, expect=((10, 3, 20), (4, 3, 20)))

    print("rnn by cell")
    cell1 = RNNCell(100, 20)
    h1 = np.zeros((3, 20), dtype=np.float32)
    for xt in x:                                  # one time step at a time: xt (batch, input_size)
        h1 = cell1(xt, h1)
    show("h1", h1, expect=((3, 20),))

    cell1 = RNNCell(100, 30)                      # layer 1's hidden size is layer 2's input size
    cell2 = RNNCell(30, 20)
    h1 = np.zeros((3, 30), dtype=np.float32)
    h2 = np.zeros((3, 20), dtype=np.float32)
    for xt in x:
        h1 = cell1(xt, h1)
        h2 = cell2(h1, h2)
    show("h2 (two stacked cells)", h2, expect=((3, 20),))

    print("Lstm")
    lstm = LSTM(input_size=100, hidden_size=20, num_layers=4)
    show_module(lstm, "LSTM(100, 20, num_layers=4)")
    out, (h, c) = lstm(x)                         # h0, c0 default to zeros
    show("out, h, c", out, h, c, expect=((10, 3, 20), (4, 3, 20), (4, 3, 20)))

    print("one layer lstm")
    cell = LSTMCell(input_size=100, hidden_size=20)
    h = np.zeros((3, 20), dtype=np.float32)
    c = np.zeros((3, 20), dtype=np.float32)
    for xt in x:
        h, c = cell(xt, [h, c])
    show("h, c", h, c, expect=((3, 20), (3, 20)))

    print("two layer lstm")
    cell1 = LSTMCell(input_size=100, hidden_size=30)
    cell2 = LSTMCell(input_size=30, hidden_size=20)
    h1, c1 = np.zeros((3, 30), dtype=np.float32), np.zeros((3, 30), dtype=np.float32)
    h2, c2 = np.zeros((3, 20), dtype=np.float32), np.zeros((3, 20), dtype=np.float32)
    for xt in x:
        h1, c1 = cell1(xt, [h1, c1])
        h2, c2 = cell2(h1, [h2, c2])
    show("h2, c2", h2, c2, expect=((3, 20), (3, 20)))

    if failures:
        print("FAILED: shapes differ from torch's:\n  " + "\n  ".join(failures))
        return 1
    print("all shapes match torch's")
    return 0


def cli(argv=None):
    fail = "a shape or a module's printout differs from torch's"
    _cli.parser(__doc__, goal=False, fail=fail).parse_args(argv)      # only --help: nothing to choose
    with no_grad():                               # nothing is trained: keep no caches for backward
        return main()


if __name__ == "__main__":
    sys.exit(_cli.run(cli))
