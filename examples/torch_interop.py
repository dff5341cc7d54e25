"""Train in PyTorch, run in minirnn: a GRU (and an LSTM) sequence classifier moves between the two by its state_dict.

1. PyTorch trains a small classifier (embedding-free: float features -> GRU/LSTM -> last hidden state -> Linear)
   for a few Adam steps on variable-length sequences (``pack_padded_sequence``).
2. Its ``state_dict`` is exported, names unchanged, to a pickle-free ``.npz`` with minirnn::

       minirnn.save(minirnn.from_torch_state_dict(model.state_dict()), "classifier.npz", cell="gru", ...)

3. A SUBPROCESS that imports only numpy and minirnn (it asserts that ``torch`` is not in ``sys.modules``) rebuilds
   the same model from minirnn layers with the same attribute names, loads the checkpoint strictly and classifies
   the same sequences (minirnn's ``lengths=`` is ``pack_padded_sequence(..., enforce_sorted=False)``).
4. The parent compares with torch: the same float32 weights run in float64 on both sides (minirnn: ``dtype=np.float64``,
   torch: ``model.double()``) must agree to 1e-6 (they agree to ~1e-15); in float32 both carry rounding errors of
   ~1e-6 of their own at |c| ~ 5 after 12 LSTM steps (each is printed against the float64 result), so float32
   agreement is checked at 1e-5, the foundation's float32 tolerance. The predicted classes must be equal.

The way back is one line too: ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in
minirnn_model.state_dict().items()})``.

Run:  python examples/torch_interop.py [--cell gru|lstm|both] [--out DIR]     (exit status 1 on any mismatch)
"""
from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile

import numpy as np

import minirnn

INPUT_SIZE, HIDDEN_SIZE, NUM_CLASSES = 5, 16, 3
TOLERANCE = 1e-6          # float64 inference, minirnn vs torch
TOLERANCE_F32 = 1e-5      # float32 inference: two float32 implementations, each ~1e-6 from the exact result


class Classifier(minirnn.Module):
    """minirnn's copy of the torch model below: the same attribute names give the same state-dict names."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int, dtype=np.float32) -> None:
        super().__init__()
        self.cell = cell
        layer = minirnn.GRU if cell == "gru" else minirnn.LSTM
        self.rnn = layer(input_size, hidden_size, batch_first=True, dtype=dtype)
        self.fc = minirnn.Linear(hidden_size, num_classes, dtype=dtype)

    def forward(self, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, state = self.rnn(x, lengths=lengths)                 # x (B, T, input_size)
        h_n = state[0] if self.cell == "lstm" else state       # (num_layers, B, hidden_size)
        return self.fc(h_n[-1]), h_n[-1]                        # logits (B, num_classes), last state (B, hidden)


def infer(checkpoint: str, inputs: str, output: str) -> None:
    """The subprocess: numpy + minirnn only."""
    ckpt = minirnn.load(checkpoint)
    meta = ckpt.metadata
    with np.load(inputs, allow_pickle=False) as data:
        x, lengths = data["x"], data["lengths"]
    results = {}
    for dtype in (np.float32, np.float64):                      # float64: the trained float32 weights, upcast exactly
        model = Classifier(meta["cell"], meta["input_size"], meta["hidden_size"], meta["num_classes"], dtype)
        model.load_state_dict(ckpt.state_dict)                  # strict: every name must match torch's
        model.eval()
        with minirnn.no_grad():
            logits, h_last = model(x.astype(dtype), lengths)
        name = np.dtype(dtype).name
        results[f"logits_{name}"], results[f"h_{name}"] = logits, h_last
    assert "torch" not in sys.modules, "the inference process imported torch"
    np.savez(output, **results)
    print(f"  [subprocess, torch not imported] {meta['cell'].upper()} logits {logits.shape} (float32 and float64) "
          f"from {checkpoint}")


def make_data(rng: np.random.Generator, n: int, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class = which of three feature groups has the largest mean over the sequence's real steps."""
    x = rng.standard_normal((n, T, INPUT_SIZE)).astype(np.float32)
    lengths = rng.integers(2, T + 1, size=n)
    x[np.arange(T)[None, :] >= lengths[:, None]] = 0.0           # padding
    means = x.sum(axis=1) / lengths[:, None]
    y = np.stack([means[:, 0], means[:, 1:3].mean(axis=1), means[:, 3:].mean(axis=1)], axis=1).argmax(axis=1)
    return x, lengths, y


def train_in_torch(cell: str, x: np.ndarray, lengths: np.ndarray, y: np.ndarray, steps: int = 40):
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    class TorchClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(INPUT_SIZE, HIDDEN_SIZE, batch_first=True)
            self.fc = nn.Linear(HIDDEN_SIZE, NUM_CLASSES)

        def forward(self, x, lengths):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed)
            h_n = state[0] if cell == "lstm" else state
            return self.fc(h_n[-1]), h_n[-1]

    torch.manual_seed(0)
    torch.set_num_threads(1)   # tiny tensors: threads only add overhead (and noise on a busy machine)
    model = TorchClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, lt, yt = torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(y)
    for step in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xt, lt)[0], yt)
        loss.backward()
        opt.step()
    model.eval()
    return model, loss.item()


def run(cell: str, workdir: str) -> bool:
    import torch

    rng = np.random.default_rng(1)
    x, lengths, y = make_data(rng, 64, 12)
    model, loss = train_in_torch(cell, x, lengths, y)
    xs, ls, ys = make_data(rng, 16, 12)                          # fresh sequences for the comparison
    expected = {}
    with torch.no_grad():
        for name, m, xt in (("float32", model, torch.from_numpy(xs)),
                            ("float64", copy.deepcopy(model).double(), torch.from_numpy(xs).double())):
            expected[f"logits_{name}"], expected[f"h_{name}"] = (t.numpy() for t in m(xt, torch.from_numpy(ls)))

    checkpoint = os.path.join(workdir, f"{cell}_classifier.npz")
    minirnn.save(minirnn.from_torch_state_dict(model.state_dict()), checkpoint, cell=cell, input_size=INPUT_SIZE,
                 hidden_size=HIDDEN_SIZE, num_classes=NUM_CLASSES, trained_by="torch " + torch.__version__)
    inputs, output = os.path.join(workdir, f"{cell}_inputs.npz"), os.path.join(workdir, f"{cell}_outputs.npz")
    np.savez(inputs, x=xs, lengths=ls)
    print(f"{cell.upper()}: trained in torch (final loss {loss:.3f}), saved {list(model.state_dict())} "
          f"to {checkpoint}")

    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--infer", checkpoint, inputs, output],
                   check=True, env=env)
    with np.load(output, allow_pickle=False) as out:
        got = {k: out[k] for k in out.files}

    def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))

    ok = True
    for name, tol in (("float64", TOLERANCE), ("float32", TOLERANCE_F32)):
        lg, h = got[f"logits_{name}"], got[f"h_{name}"]
        right_dtype = lg.dtype == h.dtype == np.dtype(name) and lg.shape == expected[f"logits_{name}"].shape
        d_h, d_logits = maxdiff(h, expected[f"h_{name}"]), maxdiff(lg, expected[f"logits_{name}"])
        same_classes = bool((lg.argmax(1) == expected[f"logits_{name}"].argmax(1)).all())
        good = right_dtype and d_h <= tol and d_logits <= tol and same_classes
        ok &= good
        extra = ""
        if name == "float32":   # how far each float32 run is from the float64 one: the rounding both carry
            extra = (f"; distance from float64: torch {maxdiff(expected['h_float32'], expected['h_float64']):.1e}, "
                     f"minirnn {maxdiff(h, got['h_float64']):.1e}")
        print(f"{cell.upper()} {name}: max |h diff| = {d_h:.2e}, max |logit diff| = {d_logits:.2e} "
              f"(tolerance {tol:g}), same predicted classes: {same_classes}{extra} -> {'OK' if good else 'MISMATCH'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", choices=("gru", "lstm", "both"), default="both")
    parser.add_argument("--out", help="directory for the checkpoint and arrays (default: a temporary one)")
    parser.add_argument("--infer", nargs=3, metavar=("CHECKPOINT", "INPUTS", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.infer:
        infer(*args.infer)
        return 0
    cells = ("gru", "lstm") if args.cell == "both" else (args.cell,)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        results = [run(c, args.out) for c in cells]
    else:
        with tempfile.TemporaryDirectory() as d:
            results = [run(c, d) for c in cells]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
