"""Pointwise cell step kernels: the only place where the RNN, LSTM and GRU differ.

A kernel turns the two pre-activations of one time step into the new state, and back. The costly matrix
products live in ``engine.py``; a kernel sees only

    gx      (B, G*H)   W_ih x_t + b_ih     (computed for all t at once by the engine)
    gh      (B, G*H)   W_hh h_{t-1} + b_hh
    h_prev  (B, H)     previous hidden state (for the LSTM with a projection, the un-projected size is H)
    c_prev  (B, H)     previous cell state, or None for kinds without one

``forward(gx, gh, h_prev, c_prev) -> (h, c, saved)`` returns the new state and what backward needs.
``backward(dh, dc, saved, h_prev, c_prev) -> (dgx, dgh, dh_direct, dc_prev)`` returns
the gradients of both pre-activations, the part of dL/dh_prev that does not pass through W_hh
(None when there is none) and dL/dc_prev. The engine adds ``dgh @ W_hh`` to ``dh_direct``.
``dgx is dgh`` whenever the two pre-activations enter only through their sum (RNN, LSTM).

G is ``gates``: 1 for the RNN, 4 for the LSTM (torch's order i, f, g, o), 3 for the GRU (r, z, n).
"""
from __future__ import annotations

import numpy as np

from .functional import relu, sigmoid, tanh


class Kernel:
    name: str
    gates: int
    has_cell: bool = False
    # True when backward needs dL/d(gh) separately from dL/d(gx) (GRU: r multiplies W_hn h + b_hn).
    separate_gh: bool = False

    def forward(self, gx, gh, h_prev, c_prev):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dh, dc, saved, h_prev, c_prev):  # pragma: no cover - interface
        raise NotImplementedError


class TanhRNN(Kernel):
    """h = tanh(gx + gh)."""

    name, gates = "tanh", 1

    def forward(self, gx, gh, h_prev, c_prev):
        h = tanh(np.add(gx, gh, out=gh))             # h = tanh(a)
        return h, None, h

    def backward(self, dh, dc, h, h_prev, c_prev):
        da = dh * (1.0 - h * h)                       # dL/da = dh * (1 - h^2)
        return da, da, None, None


class ReluRNN(Kernel):
    """h = relu(gx + gh)."""

    name, gates = "relu", 1

    def forward(self, gx, gh, h_prev, c_prev):
        h = relu(np.add(gx, gh, out=gh))             # h = max(a, 0)
        return h, None, h

    def backward(self, dh, dc, h, h_prev, c_prev):
        da = dh * (h > 0)                             # dL/da = dh where a > 0
        return da, da, None, None


class SigmoidRNN(Kernel):
    """h = sigmoid(gx + gh): the classic Elman/SRN cell (beyond torch, which offers tanh and relu)."""

    name, gates = "sigmoid", 1

    def forward(self, gx, gh, h_prev, c_prev):
        h = sigmoid(np.add(gx, gh, out=gh))          # h = 1 / (1 + e^-a)
        return h, None, h

    def backward(self, dh, dc, h, h_prev, c_prev):
        da = dh * h * (1.0 - h)                       # dL/da = dh * h (1 - h)
        return da, da, None, None


class LSTMKernel(Kernel):
    """torch.nn.LSTM's cell, gates in torch's order (i, f, g, o) along the last axis.

        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)     a = gx + gh  (B, 4H)
        c = f * c_prev + i * g
        h = o * tanh(c)
    """

    name, gates, has_cell = "lstm", 4, True

    def forward(self, gx, gh, h_prev, c_prev):
        H = h_prev.shape[-1] if c_prev is None else c_prev.shape[-1]
        act = np.add(gx, gh, out=gh)                  # a (B, 4H), activated in place below
        sigmoid(act[:, : 2 * H], out=act[:, : 2 * H])  # i, f
        tanh(act[:, 2 * H : 3 * H], out=act[:, 2 * H : 3 * H])  # g
        sigmoid(act[:, 3 * H :], out=act[:, 3 * H :])  # o
        i, f, g, o = act[:, :H], act[:, H : 2 * H], act[:, 2 * H : 3 * H], act[:, 3 * H :]
        c = f * c_prev + i * g
        tc = tanh(c)
        h = o * tc
        return h, c, (act, tc)

    def backward(self, dh, dc, saved, h_prev, c_prev):
        act, tc = saved
        H = tc.shape[-1]
        i, f, g, o = act[:, :H], act[:, H : 2 * H], act[:, 2 * H : 3 * H], act[:, 3 * H :]
        dc_total = dh * o * (1.0 - tc * tc)           # through h = o * tanh(c)
        if dc is not None:
            dc_total += dc
        da = np.empty_like(act)
        np.multiply(dc_total * g, i * (1.0 - i), out=da[:, :H])                   # di * sigmoid'
        np.multiply(dc_total * c_prev, f * (1.0 - f), out=da[:, H : 2 * H])       # df * sigmoid'
        np.multiply(dc_total * i, 1.0 - g * g, out=da[:, 2 * H : 3 * H])          # dg * tanh'
        np.multiply(dh * tc, o * (1.0 - o), out=da[:, 3 * H :])                   # do * sigmoid'
        dc_prev = dc_total * f                        # through c = f * c_prev + ...
        return da, da, None, dc_prev


class GRUKernel(Kernel):
    """torch.nn.GRU's cell, gates in torch's order (r, z, n).

        r = sigmoid(gx_r + gh_r)
        z = sigmoid(gx_z + gh_z)
        n = tanh(gx_n + r * gh_n)          gh_n = W_hn h_prev + b_hn, so r also scales b_hn
        h = (1 - z) * n + z * h_prev
    """

    name, gates, separate_gh = "gru", 3, True

    def forward(self, gx, gh, h_prev, c_prev):
        H = h_prev.shape[-1]
        rz = sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])
        r, z = rz[:, :H], rz[:, H:]
        ghn = gh[:, 2 * H :]
        n = tanh(gx[:, 2 * H :] + r * ghn)
        h = n + z * (h_prev - n)
        return h, None, (rz, n, ghn)

    def backward(self, dh, dc, saved, h_prev, c_prev):
        rz, n, ghn = saved
        H = n.shape[-1]
        r, z = rz[:, :H], rz[:, H:]
        dgx = np.empty_like(rz, shape=(rz.shape[0], 3 * H))
        dgh = np.empty_like(dgx)
        dn_pre = dh * (1.0 - z) * (1.0 - n * n)       # through h = (1-z) n + z h_prev, n = tanh(.)
        dgx[:, 2 * H :] = dn_pre
        np.multiply(dn_pre, r, out=dgh[:, 2 * H :])   # n's argument holds r * gh_n
        np.multiply(dn_pre * ghn, r * (1.0 - r), out=dgx[:, :H])                  # dr * sigmoid'
        np.multiply(dh * (h_prev - n), z * (1.0 - z), out=dgx[:, H : 2 * H])      # dz * sigmoid'
        dgh[:, : 2 * H] = dgx[:, : 2 * H]
        return dgx, dgh, dh * z, None


RNN_KERNELS = {"tanh": TanhRNN(), "relu": ReluRNN(), "sigmoid": SigmoidRNN()}
LSTM = LSTMKernel()
GRU = GRUKernel()
