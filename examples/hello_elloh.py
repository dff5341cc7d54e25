"""Learn to turn "hello" into "elloh" with an RNN whose hidden state is carried from one epoch into the next.

The model: RNN(5, 8, batch_first=True) over the one-hot characters of "hello" (batch 1, 5 steps, 5 features),
then Linear(8, 5) at every step; CrossEntropyLoss over the 5 steps, Adam (lr 0.1), 200 epochs, a line every 20.
Then the sequence predicted from a fresh (zero) state.

The characters: the vocabulary is list("hello"), as written, so "l" appears twice and its index is the later one
(h 0, e 1, l 3, o 4; index 2 is never used as an input or a target). "hello" -> "elloh" asks for "l" after the
first "l" and "o" after the second: the same input, two answers, so the network must use its hidden state.

The hidden state carried across epochs, and torch's ``hidden = hidden.detach()``: in torch, the final state of
epoch k is the initial state of epoch k+1, and detach() cuts the graph there, so that epoch k+1's backward stops at
its own first step instead of running back through every earlier epoch. minirnn has no graph to cut: the carried
state is a plain array, and each ``rnn.backward`` runs back through the one forward call it belongs to. The
gradient with respect to that call's initial state, dh0, comes back from ``rnn.backward``, and not sending it
anywhere is the cut. (To *not* cut, you would have to keep epoch k's forward cached and call its backward with
dh0 as its dh_n: BPTT across epochs is something you write, not something that happens by accident.)

Exits 1 unless the prediction from a fresh state is "elloh" (see --help for when the check is made).

    python examples/hello_elloh.py [--epochs 200] [--seed 0] [--plot loss.png]
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

import minirnn  # noqa: E402
from minirnn import RNN, Adam, CrossEntropyLoss, Linear, Module  # noqa: E402

char_set = list("hello")
char_to_idx = {c: i for i, c in enumerate(char_set)}       # {'h': 0, 'e': 1, 'l': 3, 'o': 4}
idx_to_char = {i: c for i, c in enumerate(char_set)}       # {0: 'h', 1: 'e', 2: 'l', 3: 'l', 4: 'o'}
input_str, target_str = "hello", "elloh"
input_data = [char_to_idx[c] for c in input_str]
target_data = [char_to_idx[c] for c in target_str]
inputs = np.eye(len(char_set), dtype=np.float32)[input_data]   # (5, 5): seq_len x input_size, one-hot
targets = np.array(target_data)                                  # (5,)
input_size = output_size = len(char_set)


class RNNModel(Module):
    """x (batch, seq_len, input_size), hidden (1, batch, hidden_size) or None -> logits (batch, seq_len, output),
    the final hidden state (1, batch, hidden_size)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = RNN(input_size, hidden_size, batch_first=True)
        self.fc = Linear(hidden_size, output_size)

    def forward(self, x: np.ndarray, hidden: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        out, hidden = self.rnn(x, hidden)
        return self.fc(out), hidden

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Back through this call only; returns dh0 (1, batch, hidden_size), the gradient at its initial state."""
        _, dh0 = self.rnn.backward(self.fc.backward(dlogits), None)
        return dh0


def train(epochs: int = 200, lr: float = 0.1, hidden_size: int = 8, seed: int = 0, log=print):
    """Returns (model, per-epoch losses)."""
    minirnn.manual_seed(seed)
    model = RNNModel(input_size, hidden_size, output_size)
    criterion = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=lr)
    losses = []
    hidden = None                                   # the first epoch starts from zeros
    for epoch in range(epochs):
        optimizer.zero_grad()
        outputs, hidden = model(inputs[None], hidden)        # (1, 5, 5); hidden (1, 1, 8) goes on to the next epoch
        loss = criterion(outputs.reshape(-1, output_size), targets)
        dh0 = model.backward(criterion.backward().reshape(outputs.shape))
        del dh0                                     # torch's hidden.detach(): epoch k's gradient stops at its h0
        optimizer.step()
        losses.append(loss)
        if (epoch + 1) % 20 == 0:
            log(f"Epoch [{epoch + 1}/{epochs}], Loss: {loss:.4f}")
    return model, losses


def predict(model: RNNModel) -> str:
    """The predicted characters for "hello" from a fresh (zero) state."""
    with minirnn.no_grad():
        test_output, _ = model(inputs[None], None)
    predicted = test_output.argmax(axis=2).squeeze(0)
    return "".join(idx_to_char[int(i)] for i in predicted)


def main(argv: list[str] | None = None) -> int:
    p = _cli.parser(__doc__)
    p.add_argument("--epochs", type=_cli.positive_int, default=200, help="training epochs (one pass over 'hello')")
    p.add_argument("--lr", type=_cli.positive_float, default=0.1, help="Adam's learning rate")
    p.add_argument("--hidden", type=_cli.positive_int, default=8, help="hidden units")
    p.add_argument("--seed", type=_cli.seed, default=0, help="seed for the initial weights")
    _cli.add_require_goal(p)
    p.add_argument("--plot", metavar="PNG", type=_cli.writable_path, default=None,
                   help="save the training-loss curve here (needs matplotlib)")
    args = p.parse_args(argv)
    _cli.need_matplotlib(p, args.plot)

    model, losses = train(args.epochs, args.lr, args.hidden, args.seed)
    predicted = predict(model)
    print("Input sequence: ", input_str)
    print("Predicted sequence: ", predicted)
    if args.plot:
        _cli.plot_losses(args.plot, losses)
        print(f"saved the loss curve to {args.plot}")
    if predicted != target_str:
        if _cli.goal_checked(args, {"epochs": args.epochs}, p, argv):
            print(f"missed the goal: predicted {predicted!r}, not {target_str!r}", file=sys.stderr)
            return 1
        print(f"not {target_str!r} yet (not checked: {args.epochs} epochs instead of {p.get_default('epochs')}; "
              "add --require-goal to check it)")
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run(main))
