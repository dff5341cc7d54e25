"""A simple recurrent network (SRN) with every weight 1 and every bias 0, computed by hand and by minirnn.

Input sequence [1, 1], [1, 1], [2, 2]; hidden size 2; output y_t = [[1, 1], [1, 1]] h_t.

    1. no activation:  h_t = W x_t + U h_{t-1}         -> outputs 4, 12, 32
    2. tanh:           h_t = tanh(W x_t + U h_{t-1})   -> outputs 1.9281, 1.9985, 2.0000
    3. the same with minirnn.RNNCell (a loop over time) and minirnn.RNN (the whole sequence at once)

The tutorial this follows writes 1 and 2 in plain NumPy in float64; here they are an RNNCell in float64, so every
printed digit matches the tutorial's. The "no activation" cell is ``nonlinearity='relu'``: every pre-activation here is
positive, and relu is the identity on positive numbers. Part 3 uses float32, as torch does, printed to 4 places.

Run:  python examples/srn_fixed_weights.py      (exits 1 if any number differs from the tutorial's)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

from minirnn import RNN, Linear, RNNCell, no_grad  # noqa: E402

INPUTS = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])

# What the tutorial prints.
SEED_LINEAR = [4.0, 12.0, 32.0]
SEED_TANH = [1.9280551601516338, 1.9984510891336251, 1.9999753470497836]
SEED_TANH_4 = ["1.9281", "1.9985", "2.0000"]
SEED_HIDDEN_4 = ["0.9640", "0.9992"]           # hidden state printed before steps 1 and 2


def ones_and_zeros(module):
    """Weights 1, biases 0, as the tutorial's loop over named_parameters() with init.ones_/init.zeros_."""
    for name, param in module.named_parameters():
        param.data[...] = 1.0 if name.startswith("weight") else 0.0
    return module


def numpy_style(nonlinearity):
    """Parts 1 and 2: one step at a time, unbatched, float64 (the tutorial's NumPy loop)."""
    cell = ones_and_zeros(RNNCell(2, 2, nonlinearity=nonlinearity, dtype=np.float64))
    out = ones_and_zeros(Linear(2, 2, dtype=np.float64))
    state = np.zeros(2)
    ys = []
    print("inputs is", INPUTS.tolist())
    print("--------------------------------------")
    for x in INPUTS:
        print("inputs is ", x)
        print("state_t is ", state)
        state = cell(x, state)
        y = out(state)
        print("output_y is ", y[0], y[1])
        print("---------------")
        ys.append(y)
    return np.array(ys)


def with_rnncell():
    """Part 3a: RNNCell in a loop, batch 1, float32."""
    cell = ones_and_zeros(RNNCell(input_size=2, hidden_size=2))
    liner = ones_and_zeros(Linear(2, 2))
    seq = INPUTS.reshape(3, 1, 2).astype(np.float32)        # (seq_len, batch, input_size)
    hidden = np.zeros((1, 2), dtype=np.float32)
    outputs, hiddens = [], []
    for idx, x in enumerate(seq):
        print("=" * 20, idx, "=" * 20)
        print("Input :", x)
        print("hidden :", hidden)
        hiddens.append(hidden)
        hidden = cell(x, hidden)
        output = liner(hidden)
        print("output :", output)
        outputs.append(output)
    return np.array(outputs)[:, 0], np.array(hiddens)[1:, 0]


def with_rnn():
    """Part 3b: RNN over the whole sequence, h0 of shape (num_layers, batch, hidden)."""
    rnn = ones_and_zeros(RNN(input_size=2, hidden_size=2, num_layers=1))
    liner = ones_and_zeros(Linear(2, 2))
    inputs = INPUTS.reshape(3, 1, 2).astype(np.float32)
    out, hidden = rnn(inputs, np.zeros((1, 1, 2), dtype=np.float32))
    for t in range(3):
        print("Input :", inputs[t])
        print("hidden:", "0 0" if t == 0 else out[t - 1])
        print("Output:", liner(out[t]))
        print("--------------------------------------")
    return liner(out)[:, 0], out[:2, 0]


def fmt4(values):
    return [f"{v:.4f}" for v in np.ravel(values)]


def main(argv=None):
    _cli.parser(__doc__, goal=False, fail="a number differs from the tutorial's").parse_args(argv)  # only --help
    failures = []
    with no_grad():                                    # nothing here is trained, so cache nothing
        print("1. SRN without activation")
        linear = numpy_style("relu")
        print("\n2. SRN with tanh")
        tanh = numpy_style("tanh")
    with no_grad(), np.printoptions(precision=4, floatmode="fixed"):     # 4 decimals, as torch prints
        print("\n3. minirnn.RNNCell (torch.nn.RNNCell in the tutorial)")
        cell_out, cell_hidden = with_rnncell()
        print("\n3. minirnn.RNN (torch.nn.RNN in the tutorial)")
        rnn_out, rnn_hidden = with_rnn()

    if not np.array_equal(linear, np.repeat(np.array(SEED_LINEAR)[:, None], 2, axis=1)):
        failures.append(f"no activation: got {linear.tolist()}, the tutorial has {SEED_LINEAR} (both outputs)")
    if not np.allclose(tanh, np.repeat(np.array(SEED_TANH)[:, None], 2, axis=1), rtol=0, atol=1e-12):
        failures.append(f"tanh: got {tanh.tolist()}, the tutorial has {SEED_TANH}")
    for name, out, hidden in (("RNNCell", cell_out, cell_hidden), ("RNN", rnn_out, rnn_hidden)):
        if fmt4(out) != [s for s in SEED_TANH_4 for _ in range(2)]:
            failures.append(f"{name} outputs: got {fmt4(out)}, the tutorial prints {SEED_TANH_4} (both outputs)")
        if fmt4(hidden) != [s for s in SEED_HIDDEN_4 for _ in range(2)]:
            failures.append(f"{name} hidden: got {fmt4(hidden)}, the tutorial prints {SEED_HIDDEN_4}")

    print()
    if failures:
        print("FAILED: numbers differ from the tutorial's:\n  " + "\n  ".join(failures))
        return 1
    print("all numbers match the tutorial's: 4, 12, 32 without activation; 1.9281, 1.9985, 2.0000 with tanh")
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run(main))
