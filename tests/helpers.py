"""Shared test helpers: building layers of every kind, random states, error measures, and whole layers
(stacked, bidirectional, batch_first, unbatched, lengths) composed from minirnn.reference's one-layer,
one-direction loop: the plain oracle the engine is tested against, forward and backward.

Nothing here imports torch at module level: the finite-difference tests must run without it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np

import minirnn as mr

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this checkout first on the path, so that a subprocess tests the code
    under test even when another copy of minirnn is installed (or none is)."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_example(script: str, *args: Any, timeout: float = 120, path_first: Any = None) -> tuple[int, str, str]:
    """Run examples/<script> with ``args`` in a child (one BLAS thread, a RuntimeWarning is an error), from the
    checkout's root; ``path_first``: a folder searched before everything else (stand-in modules).
    Returns (exit code, stdout, stderr)."""
    env = subprocess_env(OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="error::RuntimeWarning")
    if path_first:
        env["PYTHONPATH"] = str(path_first) + os.pathsep + env["PYTHONPATH"]
    p = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "examples", script), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env)
    return p.returncode, p.stdout, p.stderr

# Every recurrent kind the sequence layers offer; "lstm_proj" is an LSTM with proj_size.
SEQ_KINDS = ["rnn_tanh", "rnn_relu", "rnn_sigmoid", "lstm", "lstm_proj", "gru"]
TORCH_SEQ_KINDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]          # torch has no sigmoid RNN
CELL_KINDS = ["rnncell_tanh", "rnncell_relu", "rnncell_sigmoid", "lstmcell", "grucell"]
TORCH_CELL_KINDS = ["rnncell_tanh", "rnncell_relu", "lstmcell", "grucell"]


def proj_for(H: int) -> int:
    """A projection size for an LSTM of hidden size H (needs H >= 2)."""
    return max(1, H // 2)


def make_seq(kind: str, I: int, H: int, L: int = 1, bi: bool = False, bf: bool = False, bias: bool = True,
             dtype=np.float64, rng: Any = 0, proj: int | None = None, dropout: float = 0.0) -> mr.Module:
    """A sequence layer of the given kind (see SEQ_KINDS)."""
    common = dict(num_layers=L, bias=bias, batch_first=bf, dropout=dropout, bidirectional=bi, dtype=dtype, rng=rng)
    if kind.startswith("rnn_"):
        return mr.RNN(I, H, nonlinearity=kind[4:], **common)
    if kind == "gru":
        return mr.GRU(I, H, **common)
    if kind == "lstm":
        return mr.LSTM(I, H, **common)
    if kind == "lstm_proj":
        return mr.LSTM(I, H, proj_size=proj if proj is not None else proj_for(H), **common)
    raise ValueError(kind)


def make_cell(kind: str, I: int, H: int, bias: bool = True, dtype=np.float64, rng: Any = 0) -> mr.Module:
    if kind.startswith("rnncell_"):
        return mr.RNNCell(I, H, bias=bias, nonlinearity=kind[8:], dtype=dtype, rng=rng)
    if kind == "lstmcell":
        return mr.LSTMCell(I, H, bias=bias, dtype=dtype, rng=rng)
    if kind == "grucell":
        return mr.GRUCell(I, H, bias=bias, dtype=dtype, rng=rng)
    raise ValueError(kind)


def randomize(module: mr.Module, rng: np.random.Generator, scale: float = 0.6) -> None:
    """Redraw every parameter: weights U(-scale, scale), biases bounded away from zero (|b| in [0.1, scale + 0.1]).

    Non-zero biases catch a bias that is ignored, used twice, or written into the wrong slot.
    """
    for name, p in module.named_parameters():
        if "bias" in name:
            v = rng.uniform(0.1, scale + 0.1, p.shape) * rng.choice([-1.0, 1.0], p.shape)
        else:
            v = rng.uniform(-scale, scale, p.shape)
        p.data = v.astype(p.dtype)


def is_lstm(m: mr.Module) -> bool:
    return getattr(m, "mode", None) == "LSTM"


def seq_state(m: mr.Module, rng: np.random.Generator, B: int | None, scale: float = 1.0) -> Any:
    """A random initial state for a sequence layer (B=None: unbatched)."""
    LD = m.num_layers * m.num_directions
    P = m.proj_size or m.hidden_size          # proj_size is 0 for every layer without a projection
    shp = (LD, P) if B is None else (LD, B, P)
    h = rng.uniform(-scale, scale, shp).astype(m.dtype)
    if is_lstm(m):
        cshp = (LD, m.hidden_size) if B is None else (LD, B, m.hidden_size)
        return h, rng.uniform(-scale, scale, cshp).astype(m.dtype)
    return h


def cell_state(c: mr.Module, rng: np.random.Generator, B: int | None, scale: float = 1.0) -> Any:
    shp = (c.hidden_size,) if B is None else (B, c.hidden_size)
    h = rng.uniform(-scale, scale, shp).astype(c.dtype)
    if is_lstm(c):
        return h, rng.uniform(-scale, scale, shp).astype(c.dtype)
    return h


def like(tree: Any, rng: np.random.Generator) -> Any:
    """Random standard-normal arrays with the shapes and dtypes of ``tree`` (an array or nested tuple)."""
    if isinstance(tree, (tuple, list)):
        return tuple(like(t, rng) for t in tree)
    if tree is None:
        return None
    a = np.asarray(tree)
    return rng.standard_normal(a.shape).astype(a.dtype)


def rel_err(a: Any, b: Any) -> float:
    """max |a - b| / max |b| (b the reference); shapes must agree."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != reference shape {b.shape}"
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def assert_close(a: Any, b: Any, tol: float, what: str) -> None:
    e = rel_err(a, b)
    assert e <= tol, f"{what}: relative error {e:.3g} > {tol:g}"


def flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, (tuple, list)):
        out = []
        for i, t in enumerate(tree):
            out += flatten(t, f"{prefix}[{i}]")
        return out
    return [(prefix, tree)]


def length_mask(lengths: Any, T: int, B: int, batch_first: bool) -> np.ndarray:
    """(T, B, 1) (or (B, T, 1)) with 1 where the step is within the sequence's length."""
    m = (np.arange(T)[:, None] < np.asarray(lengths)[None, :]).astype(np.float64)
    return (m.T if batch_first else m)[..., None]


# ------------------------------------------------------------------------------------------------------------
# minirnn.reference (one layer, one direction) composed into whole layers: the oracle for the engine
# ------------------------------------------------------------------------------------------------------------
def ref_params(params: dict, suffix: str = "") -> dict:
    """minirnn.reference's weight dict (weight_ih, ..., no layer suffix) from a state_dict's ``*{suffix}`` entries."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    return {n: np.asarray(params[n + suffix], dtype=np.float64) for n in names if n + suffix in params}


def reverse_within(a: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """(T, B, ...) with each sequence b's first lens[b] steps in reverse order, zeros past its length."""
    out = np.zeros_like(a)
    for b, n in enumerate(lens):
        out[:n, b] = a[n - 1::-1, b]
    return out


def relu_margin(p: dict, x: np.ndarray, h0: np.ndarray, out: np.ndarray, mask: np.ndarray) -> float:
    """min |pre-activation| over the real steps of one ReLU RNN direction (out: its states, in its time order)."""
    h_prev = np.concatenate([h0[None], out[:-1]])
    a = x @ p["weight_ih"].T + h_prev @ p["weight_hh"].T + p.get("bias_ih", 0.0) + p.get("bias_hh", 0.0)
    return float(np.min(np.abs(a[np.broadcast_to(mask, a.shape)]), initial=np.inf))


def reference_seq(m: mr.Module, x: np.ndarray, hx: Any = None, lengths: Any = None, dout: Any = None,
                  dstate: Any = None, params: dict | None = None) -> SimpleNamespace:
    """Sequence layer ``m``'s configuration (``params`` or m's state_dict) computed by minirnn.reference.

    Handles num_layers, bidirectional (the reverse direction runs on each sequence reversed within its length),
    batch_first, unbatched input, proj_size, h0 None (zeros) and lengths. No dropout. Returns a namespace with
    out and state (h_n or (h_n, c_n)) as the layer returns them, relu_margin (min |pre-activation| of a ReLU RNN,
    else inf) and, when ``dout`` is given (``dstate`` may be None: zeros), dx, dh0 (or (dh0, dc0)) and grads
    (state_dict name -> gradient).
    """
    params = m.state_dict() if params is None else params
    lstm, L, D, H = m.mode == "LSTM", m.num_layers, m.num_directions, m.hidden_size
    P = m.proj_size or H
    batched = x.ndim == 3

    def seq_first(a, batch_axis=1):      # the user's layout -> (T, B, ...) (states: (L*D, B, ...))
        a = np.asarray(a, dtype=np.float64)
        if not batched:
            return a[:, None]
        return np.swapaxes(a, 0, 1) if (m.batch_first and batch_axis == 1) else a

    def user_layout(a, batch_axis=1):
        if not batched:
            return a[:, 0]
        return np.swapaxes(a, 0, 1) if (m.batch_first and batch_axis == 1) else a

    xs = seq_first(x)
    T, B = xs.shape[:2]
    lens = np.full(B, T) if lengths is None else np.asarray(lengths, dtype=np.int64)
    mask = (np.arange(T)[:, None] < lens[None, :])[..., None]
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
    h0 = np.zeros((L * D, B, P)) if h0 is None else seq_first(h0, 0)
    c0 = (np.zeros((L * D, B, H)) if c0 is None else seq_first(c0, 0)) if lstm else None
    mode, nl = m.mode, m.nonlinearity
    caches, h_n, c_n, margin, inp = {}, [None] * (L * D), [None] * (L * D), np.inf, xs
    for layer in range(L):
        outs = []
        for d in range(D):
            k, sfx = layer * D + d, f"_l{layer}" + ("_reverse" if d else "")
            p = ref_params(params, sfx)
            xin = inp if d == 0 else reverse_within(inp, lens)
            o, h_n[k], c_n[k], caches[k] = mr.reference.layer_forward(
                mode, xin, h0[k], p, c0=c0[k] if lstm else None, lengths=lens, nonlinearity=nl)
            if mode == "RNN" and nl == "relu":
                margin = min(margin, relu_margin(p, xin, h0[k], o, mask))
            outs.append(o if d == 0 else reverse_within(o, lens))
        inp = np.concatenate(outs, axis=-1)
    res = SimpleNamespace(out=user_layout(inp), relu_margin=margin)
    hn, cn = user_layout(np.stack(h_n), 0), (user_layout(np.stack(c_n), 0) if lstm else None)
    res.state = (hn, cn) if lstm else hn
    if dout is None:
        return res

    dh_n, dc_n = (dstate if lstm else (dstate, None)) if dstate is not None else (None, None)
    dh_n = np.zeros((L * D, B, P)) if dh_n is None else seq_first(dh_n, 0)
    dc_n = (np.zeros((L * D, B, H)) if dc_n is None else seq_first(dc_n, 0)) if lstm else None
    dh0, dc0, grads, d_in = [None] * (L * D), [None] * (L * D), {}, seq_first(dout)
    for layer in reversed(range(L)):
        dx = 0.0
        for d in range(D):
            k, sfx = layer * D + d, f"_l{layer}" + ("_reverse" if d else "")
            dpart = d_in[..., d * P:(d + 1) * P]
            dx_d, dh0[k], dc0[k], g = mr.reference.layer_backward(
                dpart if d == 0 else reverse_within(dpart, lens), dh_n[k], caches[k],
                dc_n=dc_n[k] if lstm else None)
            dx = dx + (dx_d if d == 0 else reverse_within(dx_d, lens))
            grads.update({n + sfx: v for n, v in g.items()})
        d_in = dx
    res.dx, res.grads = user_layout(d_in), grads
    dh0_u = user_layout(np.stack(dh0), 0)
    res.dh0 = (dh0_u, user_layout(np.stack(dc0), 0)) if lstm else dh0_u
    return res


def reference_cell(c: mr.Module, x: np.ndarray, hx: Any = None, dout: Any = None,
                   params: dict | None = None) -> SimpleNamespace:
    """Cell ``c`` (``params`` or its state_dict) computed by minirnn.reference's step: a namespace with out
    (h or (h, c)), relu_margin and, when ``dout`` is given (h's gradient, or (dh, dc), either may be None),
    dx, dh0 (or (dh0, dc0)) and grads."""
    p = ref_params(c.state_dict() if params is None else params)
    lstm, H, batched = c.mode == "LSTM", c.hidden_size, x.ndim == 2
    two = (lambda a: np.asarray(a, dtype=np.float64)) if batched else (lambda a: np.asarray(a, np.float64)[None])
    one = (lambda a: a) if batched else (lambda a: a[0])
    xs = two(x)
    zeros = np.zeros((xs.shape[0], H))
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
    h0 = zeros if h0 is None else two(h0)
    margin = np.inf
    if lstm:
        h1, c1, cache = mr.reference.lstm_step_forward(xs, h0, zeros if c0 is None else two(c0), p)
        res = SimpleNamespace(out=(one(h1), one(c1)))
    else:
        step = mr.reference.gru_step_forward if c.mode == "GRU" else (
            lambda x_, h_, p_: mr.reference.rnn_step_forward(x_, h_, p_, c.nonlinearity))
        h1, cache = step(xs, h0, p)
        res = SimpleNamespace(out=one(h1))
        if c.mode == "RNN" and c.nonlinearity == "relu":
            margin = relu_margin(p, xs[None], h0, h1[None], np.ones((1, xs.shape[0], 1), bool))
    res.relu_margin = margin
    if dout is None:
        return res
    if lstm:
        dh, dc = dout if isinstance(dout, (tuple, list)) else (dout, None)
        dx, dh_prev, dc_prev, g = mr.reference.lstm_step_backward(
            zeros if dh is None else two(dh), zeros if dc is None else two(dc), cache)
        res.dh0 = (one(dh_prev), one(dc_prev))
    else:
        back = mr.reference.gru_step_backward if c.mode == "GRU" else mr.reference.rnn_step_backward
        dx, dh_prev, g = back(two(dout), cache)
        res.dh0 = one(dh_prev)
    res.dx, res.grads = one(dx), g
    return res


# ------------------------------------------------------------------------------------------------------------
# torch twins (torch imported only when called)
# ------------------------------------------------------------------------------------------------------------
def tdtype(dtype):
    """The torch dtype for a NumPy float dtype. Needs torch."""
    import torch

    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def torch_twin(m: mr.Module, load: bool = True) -> "torch.nn.Module":
    """The torch.nn layer with m's configuration (and m's parameters when ``load``). Needs torch."""
    import torch

    if isinstance(m, (mr.RNNCell, mr.LSTMCell, mr.GRUCell)):
        if isinstance(m, mr.RNNCell):
            tm = torch.nn.RNNCell(m.input_size, m.hidden_size, bias=m.bias, nonlinearity=m.nonlinearity)
        else:
            tm = (torch.nn.LSTMCell if isinstance(m, mr.LSTMCell) else torch.nn.GRUCell)(
                m.input_size, m.hidden_size, bias=m.bias)
    else:
        kw = dict(num_layers=m.num_layers, bias=m.bias, batch_first=m.batch_first, bidirectional=m.bidirectional)
        if m.mode == "RNN":
            tm = torch.nn.RNN(m.input_size, m.hidden_size, nonlinearity=m.nonlinearity, **kw)
        elif m.mode == "GRU":
            tm = torch.nn.GRU(m.input_size, m.hidden_size, **kw)
        else:
            tm = torch.nn.LSTM(m.input_size, m.hidden_size, proj_size=m.proj_size, **kw)
    tm = tm.to(tdtype(m.dtype))
    if load:
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    return tm
