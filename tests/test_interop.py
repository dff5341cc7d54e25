"""PyTorch interop: state dicts cross unchanged in both directions, through a checkpoint file too; minirnn never
imports torch; the example trains in torch and infers in a torch-free subprocess."""
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO_ROOT, subprocess_env

import minirnn

torch = pytest.importorskip("torch")
REPO = REPO_ROOT


def test_importing_minirnn_never_imports_torch():
    code = ("import sys, minirnn, minirnn.serialization, minirnn.checks, minirnn.optim, minirnn.losses; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env(), cwd=REPO)


PAIRS = [
    (lambda: torch.nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True),
     lambda: minirnn.RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True, dtype=np.float64, rng=0)),
    (lambda: torch.nn.GRU(3, 4, bias=False, batch_first=True),
     lambda: minirnn.GRU(3, 4, bias=False, batch_first=True, dtype=np.float64, rng=0)),
    (lambda: torch.nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True),
     lambda: minirnn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True, dtype=np.float64, rng=0)),
    (lambda: torch.nn.LSTMCell(3, 4), lambda: minirnn.LSTMCell(3, 4, dtype=np.float64, rng=0)),
    (lambda: torch.nn.GRUCell(3, 4), lambda: minirnn.GRUCell(3, 4, dtype=np.float64, rng=0)),
    (lambda: torch.nn.RNNCell(3, 4, nonlinearity="relu"),
     lambda: minirnn.RNNCell(3, 4, nonlinearity="relu", dtype=np.float64, rng=0)),
    (lambda: torch.nn.Linear(3, 4), lambda: minirnn.Linear(3, 4, dtype=np.float64, rng=0)),
    (lambda: torch.nn.Embedding(6, 3, padding_idx=1), lambda: minirnn.Embedding(6, 3, padding_idx=1,
                                                                               dtype=np.float64, rng=0)),
]


def _inputs(m, rng):
    if isinstance(m, minirnn.Embedding):
        return (rng.integers(0, 6, size=(4, 2)),)
    if isinstance(m, (minirnn.RNNCell, minirnn.GRUCell, minirnn.LSTMCell, minirnn.Linear)):
        return (rng.standard_normal((2, 3)),)
    return (rng.standard_normal((5, 2, 3)),)


def _first(out):
    while isinstance(out, tuple):
        out = out[0]
    return out


@pytest.mark.parametrize("make_torch, make_ours", PAIRS, ids=[str(i) for i in range(len(PAIRS))])
def test_state_dicts_cross_both_ways_through_a_checkpoint(tmp_path, make_torch, make_ours):
    torch.manual_seed(0)
    tm = make_torch().double()
    ours = make_ours()
    assert list(ours.state_dict()) == list(tm.state_dict())           # the same names, in the same order
    # torch -> file -> minirnn
    minirnn.save(minirnn.from_torch_state_dict(tm.state_dict()), tmp_path / "t.npz", source="torch")
    ours.load_state_dict(minirnn.load(tmp_path / "t.npz"))
    (x,) = _inputs(ours, np.random.default_rng(0))
    with minirnn.no_grad(), torch.no_grad():
        mine = _first(ours(x))
        theirs = _first(tm(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    # minirnn -> torch: the documented one-liner
    for p in ours.parameters():
        p.data[...] = np.random.default_rng(1).standard_normal(p.shape)
    back = make_torch().double()
    back.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ours.state_dict()[k])


def test_torch_tensors_load_directly():
    tm = torch.nn.GRU(3, 4)
    ours = minirnn.GRU(3, 4, rng=0)
    ours.load_state_dict(tm.state_dict())        # tensors (requires_grad) are taken through .detach().cpu().numpy()
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())


def test_the_interop_example_runs_inference_without_torch(tmp_path):
    script = os.path.join(REPO, "examples", "torch_interop.py")
    done = subprocess.run([sys.executable, script, "--out", str(tmp_path)], capture_output=True, text=True,
                          env=subprocess_env(), cwd=str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # per cell: float64 inference to 1e-6 (the bound) and float32 to 1e-5 (see the example's docstring),
    # and onnxruntime to 1e-5 when onnx and onnxruntime are installed
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        served = True
    except ImportError:
        served = False
    assert done.stdout.count("-> OK") == (6 if served else 4) and "MISMATCH" not in done.stdout
    assert done.stdout.count("onnxruntime: skipped") == (0 if served else 2)
    for cell in ("GRU", "LSTM"):
        assert f"{cell} float64: " in done.stdout and "(tolerance 1e-06)" in done.stdout
    assert done.stdout.count("torch not imported") == 2
    assert done.stdout.count("safetensors round trip identical: True") == 2
    for cell in ("gru", "lstm"):
        state = minirnn.load_torch(tmp_path / f"{cell}_classifier.pt")          # torch.save's own file
        assert list(state)[0] == "rnn.weight_ih_l0"
        ckpt = minirnn.load_checkpoint(tmp_path / f"{cell}_classifier.npz")
        assert ckpt.metadata["cell"] == cell and all(np.array_equal(state[k], v) for k, v in ckpt.state_dict.items())
        assert os.path.exists(tmp_path / f"{cell}_classifier.onnx") == served


def test_the_interop_example_command_line(tmp_path):
    script = os.path.join(REPO, "examples", "torch_interop.py")

    def run(*args):
        return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=subprocess_env(),
                              cwd=str(tmp_path), timeout=120)

    helped = run("--help")
    assert helped.returncode == 0 and "(default: both)" in helped.stdout and "(default: a temporary" in helped.stdout
    assert "Exit status: 0" in helped.stdout and "130 interrupted" in helped.stdout
    for bad in (["--out", "/proc/nope"], ["--cell", "rnn"], ["--frobnicate"]):
        done = run(*bad)
        assert done.returncode == 2 and done.stdout == "", bad
        assert len(done.stderr.strip().splitlines()) == 1 and "error:" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
