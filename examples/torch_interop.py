"""Train in PyTorch, run with nothing but NumPy: a GRU (and an LSTM) sequence classifier goes from torch to minirnn
through torch's own .pt file, and on to onnxruntime for serving.

1. PyTorch trains a small classifier (float features -> GRU/LSTM -> last hidden state -> Linear) for a few Adam
   steps on variable-length sequences (``pack_padded_sequence``), then ``torch.save(model.state_dict(), "x.pt")``.
   The same state dict also goes to a pickle-free ``.npz``:
   ``minirnn.save(minirnn.from_torch_state_dict(model.state_dict()), "x.npz")``.
2. A SUBPROCESS that never imports torch (it asserts that ``torch`` is not in ``sys.modules``) reads the ``.pt``
   with ``minirnn.load_torch`` (NumPy only: a restricted unpickler that runs nothing named in the file), checks it
   holds the same arrays as the ``.npz``, rebuilds the model from minirnn layers with the same attribute names
   (the sizes come from the weights' shapes), loads it strictly and classifies fresh sequences (minirnn's
   ``lengths=`` is ``pack_padded_sequence(..., enforce_sorted=False)``). It round-trips the weights through
   safetensors (``minirnn.save_safetensors`` / ``load_safetensors``: identical logits), and exports the model to
   ONNX (``minirnn.export_onnx``, ONNX's own GRU/LSTM operators) and serves it with onnxruntime; that step is
   skipped, with a message, when onnx or onnxruntime is not installed (``pip install "minirnn[onnx]"``).
3. The parent compares with torch: the same float32 weights run in float64 on both sides (minirnn:
   ``dtype=np.float64``, torch: ``model.double()``) must agree to 1e-6 (they agree to ~1e-15); in float32 both
   carry rounding errors of ~1e-6 of their own at |c| ~ 5 after 12 LSTM steps (each is printed against the float64
   result), so float32 agreement (minirnn and onnxruntime against torch) is checked at 1e-5. The predicted
   classes must be equal.

The way back is one line too: ``minirnn.save_torch(minirnn_model, "m.pt")``, then in torch
``torch_model.load_state_dict(torch.load("m.pt", weights_only=True))``.

Exit status: 0 every comparison within tolerance, 1 a mismatch, 2 bad arguments (or torch missing: the training
side needs it), 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minirnn  # noqa: E402

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

    def onnx_graph(self, g: minirnn.OnnxGraph, x: str, lengths: str) -> tuple[str, str]:
        """``forward`` once more, for ``minirnn.export_onnx``: the same lines on graph values."""
        _, state = g.module(self.rnn, x, None, lengths=lengths)
        h_n = state[0] if self.cell == "lstm" else state
        h_last = g.select(h_n, -1)
        return g.module(self.fc, h_last), h_last


def classifier_from_state(state: dict, dtype=np.float32) -> Classifier:
    """The model's sizes read off its weights: GRU gates 3 * H rows, LSTM 4 * H."""
    gates, input_size = state["rnn.weight_ih_l0"].shape
    hidden = state["rnn.weight_hh_l0"].shape[1]
    cell = {3: "gru", 4: "lstm"}[gates // hidden]
    model = Classifier(cell, input_size, hidden, state["fc.weight"].shape[0], dtype)
    model.load_state_dict(state)                                # strict: every name must match torch's
    return model.eval()


def onnx_step(model: Classifier, x: np.ndarray, lengths: np.ndarray, path: str) -> tuple[np.ndarray, str]:
    """Export to ONNX and serve with onnxruntime; (logits, note), or (None, why) without onnx/onnxruntime."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        return None, f"skipped: {e.name} is not installed (pip install 'minirnn[onnx]')"
    result = minirnn.export_onnx(model, path, (x, lengths), forward=model.onnx_graph, input_names=["x", "lengths"],
                                 output_names=["logits", "h_last"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"x": x.astype(np.float32), "lengths": lengths.astype(np.int64)})[0]
    return logits, f"served {os.path.basename(path)} (export check: max diff {result.max_abs_diff:.1e})"


def infer(pt_file: str, npz_file: str, inputs: str, output: str) -> None:
    """The subprocess: numpy + minirnn only."""
    state = minirnn.load_torch(pt_file)                         # torch's own file, read without torch
    npz = minirnn.load(npz_file)
    assert list(state) == list(npz) and all(np.array_equal(state[k], npz[k]) for k in npz), \
        "the .pt and the .npz hold different weights"
    with np.load(inputs, allow_pickle=False) as data:
        x, lengths = data["x"], data["lengths"]
    results = {}
    for dtype in (np.float32, np.float64):                      # float64: the trained float32 weights, upcast exactly
        model = classifier_from_state(state, dtype)
        with minirnn.no_grad():
            logits, h_last = model(x.astype(dtype), lengths)
        name = np.dtype(dtype).name
        results[f"logits_{name}"], results[f"h_{name}"] = logits, h_last
    model = classifier_from_state(state)
    st_file = os.path.splitext(pt_file)[0] + ".safetensors"
    minirnn.save_safetensors(model, st_file)
    again = classifier_from_state(minirnn.load_safetensors(st_file))
    with minirnn.no_grad():
        results["safetensors_same"] = np.array(np.array_equal(again(x, lengths)[0], results["logits_float32"]))
    logits_ort, note = onnx_step(model, x, lengths, os.path.splitext(pt_file)[0] + ".onnx")
    if logits_ort is not None:
        results["logits_onnxruntime"] = logits_ort
    assert "torch" not in sys.modules, "the inference process imported torch"
    np.savez(output, **results)
    print(f"  [subprocess, torch not imported] {model.cell.upper()} from {os.path.basename(pt_file)}: logits "
          f"{results['logits_float32'].shape} (float32 and float64); safetensors round trip identical: "
          f"{bool(results['safetensors_same'])}; onnxruntime: {note}")


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


def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


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

    pt_file = os.path.join(workdir, f"{cell}_classifier.pt")
    npz_file = os.path.join(workdir, f"{cell}_classifier.npz")
    torch.save(model.state_dict(), pt_file)
    minirnn.save(minirnn.from_torch_state_dict(model.state_dict()), npz_file, cell=cell,
                 trained_by="torch " + torch.__version__)
    inputs, output = os.path.join(workdir, f"{cell}_inputs.npz"), os.path.join(workdir, f"{cell}_outputs.npz")
    np.savez(inputs, x=xs, lengths=ls)
    print(f"{cell.upper()}: trained in torch (final loss {loss:.3f}), torch.save'd {list(model.state_dict())} "
          f"to {pt_file} (and {os.path.basename(npz_file)})")

    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--infer", pt_file, npz_file, inputs, output],
                           env=env)
    if child.returncode != 0:
        print(f"{cell.upper()}: the inference subprocess failed (exit status {child.returncode}) -> MISMATCH")
        return False
    with np.load(output, allow_pickle=False) as out:
        got = {k: out[k] for k in out.files}

    ok = bool(got["safetensors_same"])
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
    if "logits_onnxruntime" in got:
        lo = got["logits_onnxruntime"]
        d_torch, d_ours = maxdiff(lo, expected["logits_float32"]), maxdiff(lo, got["logits_float32"])
        same_classes = bool((lo.argmax(1) == expected["logits_float32"].argmax(1)).all())
        good = d_torch <= TOLERANCE_F32 and d_ours <= TOLERANCE_F32 and same_classes
        ok &= good
        print(f"{cell.upper()} onnxruntime: max |logit diff| vs torch = {d_torch:.2e}, vs minirnn = {d_ours:.2e} "
              f"(tolerance {TOLERANCE_F32:g}), same predicted classes: {same_classes} "
              f"-> {'OK' if good else 'MISMATCH'}")
    else:
        print(f"{cell.upper()} onnxruntime: skipped (onnx or onnxruntime not installed: pip install 'minirnn[onnx]')")
    return ok


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:   # one line, exit status 2 (argparse prints the usage too)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _writable_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot write to the directory {path!r} ({e.strerror})") from None
    return path


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__.split("\n")[0], epilog=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", choices=("gru", "lstm", "both"), default="both",
                        help="which classifier(s) (default: %(default)s)")
    parser.add_argument("--out", type=_writable_dir, default=None, metavar="DIR",
                        help="directory for the .pt, .npz, .safetensors and .onnx files (default: a temporary one, "
                             "removed at the end)")
    parser.add_argument("--infer", nargs=4, metavar=("PT", "NPZ", "INPUTS", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.infer:
        infer(*args.infer)
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"{parser.prog}: error: the training side needs torch (pip install 'minirnn[torch]')", file=sys.stderr)
        return 2
    cells = ("gru", "lstm") if args.cell == "both" else (args.cell,)
    if args.out:
        results = [run(c, args.out) for c in cells]
    else:
        with tempfile.TemporaryDirectory() as d:
            results = [run(c, d) for c in cells]
    return 0 if all(results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        if "--infer" not in sys.argv:           # the subprocess gets the Ctrl-C too: one message, the parent's
            print("interrupted", file=sys.stderr)
        sys.exit(130)
