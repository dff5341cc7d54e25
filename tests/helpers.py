"""Shared test helpers: building layers of every kind, random states, error measures and a plain-Python
reference loop (written from torch.nn's docstring equations, one sequence and one time step at a time)
that runs on NumPy arrays or on torch tensors (then torch's autograd differentiates it).

Nothing here imports torch at module level: the finite-difference tests must run without it.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy import special

import minirnn as mr

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this checkout first on the path, so that a subprocess tests the code
    under test even when another copy of minirnn is installed (or none is)."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env

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
# The plain-Python reference loop (torch.nn's docstring equations), over NumPy or torch arrays
# ------------------------------------------------------------------------------------------------------------
class NumpyOps:
    """Array ops for the reference loop; also records how close any ReLU argument came to its kink at 0."""

    def __init__(self) -> None:
        self.relu_margin = np.inf

    sigmoid = staticmethod(special.expit)
    tanh = staticmethod(np.tanh)

    def relu(self, a):
        self.relu_margin = min(self.relu_margin, float(np.min(np.abs(a))))
        return np.maximum(a, 0.0)

    @staticmethod
    def zeros(n, like):
        return np.zeros(n, dtype=like.dtype)

    @staticmethod
    def stack(xs, axis=0):
        return np.stack(xs, axis=axis)

    @staticmethod
    def cat(xs):
        return np.concatenate(xs)

    @staticmethod
    def swap01(a):
        return np.swapaxes(a, 0, 1)


class TorchOps:
    def __init__(self) -> None:
        import torch

        self.t = torch

    def sigmoid(self, a):
        return self.t.sigmoid(a)

    def tanh(self, a):
        return self.t.tanh(a)

    def relu(self, a):
        return self.t.relu(a)

    def zeros(self, n, like):
        return self.t.zeros(n, dtype=like.dtype)

    def stack(self, xs, axis=0):
        return self.t.stack(xs, dim=axis)

    def cat(self, xs):
        return self.t.cat(xs)

    def swap01(self, a):
        return a.transpose(0, 1)


def ref_step(ops, mode: str, nonlinearity: str, x, h, c, W_ih, W_hh, b_ih, b_hh, W_hr):
    """One time step of one sequence (vectors). Returns (h, c)."""
    gx = W_ih @ x + (b_ih if b_ih is not None else 0.0)
    gh = W_hh @ h + (b_hh if b_hh is not None else 0.0)
    if mode == "RNN":
        f = {"tanh": ops.tanh, "relu": ops.relu, "sigmoid": ops.sigmoid}[nonlinearity]
        return f(gx + gh), None
    if mode == "LSTM":
        H = W_hh.shape[0] // 4
        a = gx + gh
        i, f, g, o = ops.sigmoid(a[:H]), ops.sigmoid(a[H:2 * H]), ops.tanh(a[2 * H:3 * H]), ops.sigmoid(a[3 * H:])
        c = f * c + i * g
        h = o * ops.tanh(c)
        if W_hr is not None:
            h = W_hr @ h
        return h, c
    H = W_hh.shape[0] // 3
    r = ops.sigmoid(gx[:H] + gh[:H])
    z = ops.sigmoid(gx[H:2 * H] + gh[H:2 * H])
    n = ops.tanh(gx[2 * H:] + r * gh[2 * H:])
    return (1 - z) * n + z * h, None


def reference_seq(m: mr.Module, params: dict, x, hx, lengths, ops):
    """Forward of sequence layer ``m``'s configuration with ``params`` (name -> array), one sequence at a time.

    Handles num_layers, bidirectional (the reverse direction starts at each sequence's own last step),
    batch_first, unbatched input, proj_size and lengths (outputs past a length are zero, h_n is the state at
    the sequence's own last step). No dropout. Returns (out, h_n) or (out, (h_n, c_n)).
    """
    mode, L, D, H = m.mode, m.num_layers, m.num_directions, m.hidden_size
    P = (m.proj_size or H) if mode == "LSTM" else H
    batched = x.ndim == 3
    if not batched:
        x = x[:, None]
    elif m.batch_first:
        x = ops.swap01(x)
    T, B = x.shape[0], x.shape[1]
    lens = [T] * B if lengths is None else [int(n) for n in lengths]
    h0, c0 = (hx if mode == "LSTM" else (hx, None)) if hx is not None else (None, None)
    if h0 is not None and not batched:
        h0 = h0[:, None]
        c0 = c0[:, None] if c0 is not None else None
    hn = [[None] * B for _ in range(L * D)]
    cn = [[None] * B for _ in range(L * D)]
    outs = []
    for b in range(B):
        n = lens[b]
        seq = [x[t, b] for t in range(n)]
        for layer in range(L):
            dir_outs = []
            for d in range(D):
                k = layer * D + d
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                W = [params.get(name + sfx) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]
                h = h0[k, b] if h0 is not None else ops.zeros(P, like=seq[0])
                c = None
                if mode == "LSTM":
                    c = c0[k, b] if c0 is not None else ops.zeros(H, like=seq[0])
                res = [None] * n
                for t in (range(n) if d == 0 else range(n - 1, -1, -1)):
                    h, c = ref_step(ops, mode, m.nonlinearity, seq[t], h, c, *W)
                    res[t] = h
                hn[k][b], cn[k][b] = h, c
                dir_outs.append(res)
            seq = [ops.cat([dir_outs[d][t] for d in range(D)]) if D > 1 else dir_outs[0][t] for t in range(n)]
        seq = seq + [ops.zeros(D * P, like=seq[0]) for _ in range(n, T)]
        outs.append(ops.stack(seq))
    out = ops.stack(outs, axis=1)                              # (T, B, D*P)
    h_n = ops.stack([ops.stack(hn[k]) for k in range(L * D)])  # (L*D, B, P)
    c_n = ops.stack([ops.stack(cn[k]) for k in range(L * D)]) if mode == "LSTM" else None
    if not batched:
        out, h_n = out[:, 0], h_n[:, 0]
        c_n = c_n[:, 0] if c_n is not None else None
    elif m.batch_first:
        out = ops.swap01(out)
    return (out, (h_n, c_n)) if mode == "LSTM" else (out, h_n)


def reference_cell(c: mr.Module, params: dict, x, hx, ops):
    """One step of cell ``c`` per batch row. Returns h or (h, c)."""
    mode, H = c.mode, c.hidden_size
    batched = x.ndim == 2
    xs = x if batched else x[None]
    h0, c0 = (hx if mode == "LSTM" else (hx, None)) if hx is not None else (None, None)
    W = [params.get(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] + [None]
    hs, cs = [], []
    for b in range(xs.shape[0]):
        h = ops.zeros(H, like=xs[b]) if h0 is None else (h0[b] if batched else h0)
        cc = None
        if mode == "LSTM":
            cc = ops.zeros(H, like=xs[b]) if c0 is None else (c0[b] if batched else c0)
        h, cc = ref_step(ops, mode, c.nonlinearity, xs[b], h, cc, *W)
        hs.append(h)
        cs.append(cc)
    h1 = ops.stack(hs) if batched else hs[0]
    if mode == "LSTM":
        return h1, (ops.stack(cs) if batched else cs[0])
    return h1


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
