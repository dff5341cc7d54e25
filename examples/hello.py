"""Learn to turn "hello" into "ohlol", three ways, as the course's Lecture 12 does in torch.

    (a) RNNCell(4, 4) in a loop over one-hot characters, CrossEntropyLoss summed over the 5 steps, and
        backpropagation through time written out: one cell.backward per forward call, in reverse order.
    (b) RNN(4, 4) over the whole sequence at once.
    (c) Embedding(4, 10) -> RNN(10, 8, num_layers=2, batch_first=True) -> Linear(8, 4): a user Module whose
        backward calls its children's backward in reverse order.

In (a) and (b) the hidden state itself (4 tanh outputs in [-1, 1]) is read as the logits of the 4 characters,
as in the course. That tiny model does not reach "ohlol" in 15 epochs from every initialisation (torch, given
the same initial weights, follows the very same trajectory): over seeds 0..49, (a) gets there for 33, (b) for
27 and (c) for all 50. The default seed is one where all three do.

Run:  python examples/hello.py [--seed N]      (exits 1 unless every way ends predicting "ohlol")
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

from minirnn import RNN, Adam, CrossEntropyLoss, Embedding, Linear, Module, RNNCell, manual_seed  # noqa: E402

idx2char = ["e", "h", "l", "o"]
x_data = [1, 0, 2, 2, 3]                    # "hello"
y_data = [3, 1, 2, 3, 2]                    # "ohlol"
one_hot = np.eye(4, dtype=np.float32)
EPOCHS = 15


def report(idx, epoch, loss):
    text = "".join(idx2char[i] for i in idx)
    print(f"Predicted: {text}, Epoch [{epoch}/{EPOCHS}] loss={loss:.4f}")
    return text


def way_a_rnncell():
    print("(a) RNNCell, loss summed over the steps, BPTT by hand")
    inputs = one_hot[x_data].reshape(5, 1, 4)          # (seq_len, batch, input_size)
    labels = np.array(y_data).reshape(5, 1)            # one label (batch,) per step
    cell = RNNCell(input_size=4, hidden_size=4)
    criterion = CrossEntropyLoss()
    optimizer = Adam(cell.parameters(), lr=0.1)
    for epoch in range(1, EPOCHS + 1):
        optimizer.zero_grad()
        hidden = np.zeros((1, 4), dtype=np.float32)
        loss, idx = 0.0, []
        for x, label in zip(inputs, labels):           # forward: each call caches what its backward needs
            hidden = cell(x, hidden)
            loss += criterion(hidden, label)
            idx.append(int(hidden.argmax(axis=1)[0]))
        dh_next = np.zeros((1, 4), dtype=np.float32)
        for _ in range(len(inputs)):                   # backward: newest step first (LIFO)
            dh = criterion.backward() + dh_next        # h_t feeds loss_t and step t+1
            _, dh_next = cell.backward(dh)             # -> d/dx_t (unused), d/dh_{t-1}
        optimizer.step()
        text = report(idx, epoch, loss)
    return text


def way_b_rnn():
    print("(b) RNN over the whole sequence")
    inputs = one_hot[x_data].reshape(5, 1, 4)
    labels = np.array(y_data)
    rnn = RNN(input_size=4, hidden_size=4, num_layers=1)
    criterion = CrossEntropyLoss()
    optimizer = Adam(rnn.parameters(), lr=0.05)
    for epoch in range(1, EPOCHS + 1):
        optimizer.zero_grad()
        out, _ = rnn(inputs, np.zeros((1, 1, 4), dtype=np.float32))
        outputs = out.reshape(-1, 4)                   # (seq_len * batch, hidden_size)
        loss = criterion(outputs, labels)
        rnn.backward(criterion.backward().reshape(out.shape), None)   # dout, dh_n (unused)
        optimizer.step()
        text = report(outputs.argmax(axis=1), epoch, loss)
    return text


class Model(Module):
    """Embedding -> 2-layer RNN (batch_first) -> Linear, returning (batch * seq_len, num_class) logits."""

    def __init__(self):
        super().__init__()
        self.emb = Embedding(4, 10)
        self.rnn = RNN(input_size=10, hidden_size=8, num_layers=2, batch_first=True)
        self.fc = Linear(8, 4)

    def forward(self, x):
        hidden = np.zeros((2, x.shape[0], 8), dtype=np.float32)
        x = self.emb(x)                                # (batch, seq_len, embedding_size)
        x, _ = self.rnn(x, hidden)
        x = self.fc(x)                                 # (batch, seq_len, num_class)
        self.out_shape = x.shape
        return x.reshape(-1, 4)

    def backward(self, dy):
        dx = self.fc.backward(dy.reshape(self.out_shape))
        dx, _ = self.rnn.backward(dx, None)
        self.emb.backward(dx)                          # indices have no gradient: returns None


def way_c_embedding():
    print("(c) Embedding + 2-layer RNN + Linear")
    inputs = np.array([x_data])                        # (batch, seq_len) indices
    labels = np.array(y_data)
    model = Model()
    criterion = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=0.05)
    for epoch in range(1, EPOCHS + 1):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        model.backward(criterion.backward())
        optimizer.step()
        text = report(outputs.argmax(axis=1), epoch, loss)
    return text


def main(argv=None):
    parser = _cli.parser(__doc__, goal="goal: always checked (the run has the course's fixed 15 epochs)")
    parser.add_argument("--seed", type=_cli.seed, default=1, help="seed for the weight initialisation")
    args = parser.parse_args(argv)
    failed = []
    for way in (way_a_rnncell, way_b_rnn, way_c_embedding):
        manual_seed(args.seed)
        text = way()
        print()
        if text != "ohlol":
            failed.append(f"{way.__name__} ended with {text!r}")
    if failed:
        print("FAILED: not 'ohlol' after", EPOCHS, "epochs:", "; ".join(failed))
        return 1
    print("all three ways predict ohlol")
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run(main))
