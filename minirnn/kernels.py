"""Pointwise cell step kernels: the only place where the RNN, LSTM and GRU differ.

The costly matrix products live in ``engine.py``; a kernel sees one time step of b active sequences
(H hidden units, G gates, GH = G*H) and writes every result into arrays the engine preallocated:

    forward(a, gh, h_prev, c_prev, h, c, ws)           one step forward, in place
        a       (b, GH)   on entry  gx = W_ih x_t + b_ih (+ b_hh when folded, see ``separate_gh``)
                          on exit   the activated gates, kept on the tape for backward
        gh      (b, GH)   W_hh h_{t-1} (+ b_hh when not folded)
        h_prev  (b, H)    c_prev (b, H) or None
        h, c    (b, H)    outputs: the new state (c only for kinds with a cell state)
        ws      dict      scratch arrays of ``workspace(B, H, dtype)``, B >= b rows

    coefficients(A, K, S, tape)                         backward, vectorized over a chunk of n time steps
        Every factor of the step's Jacobian that does not depend on the incoming gradient, computed for
        n steps at once (few large NumPy calls instead of many small ones) and written in place of the
        activations in A (n, B, GH) and into K (n, B, coef_width * H); S (n, B, H) is scratch.
        ``tape`` holds the chunk's views: Hprev, Hnext (n, B, H), Cprev, Cnext (n, B, H), GH (n, B, GH).

    backward(dh, dc, a, k, dgh, ws)                     one step backward, in place
        dh      (b, H)    in: dL/dh_t (everything that reaches h_t)
                          out, when ``direct_dh``: the part of dL/dh_{t-1} that bypasses W_hh; else unused
        dc      (b, H)    in: dL/dc_t from step t+1; out: dL/dc_{t-1} (kinds with a cell state)
        a       (b, GH)   in: the step's coefficients; out: dL/d(gx)
        k       (b, coef_width * H)   the step's extra coefficients
        dgh     (b, GH)   out: dL/d(gh), only when ``separate_gh`` (else dL/d(gh) = dL/d(gx) = a)

Each kernel writes its equations once in ``forward`` and their derivatives once in ``coefficients`` and
``backward``. G is ``gates``: 1 for the RNN, 4 for the LSTM (torch's order i, f, g, o), 3 for the GRU (r, z, n).

Activations come from ``functional``: one ``np.tanh`` call activates a whole block of gates, sigmoid and tanh
alike, since sigmoid(x) = (1 + tanh(x / 2)) / 2 (measured faster here than scipy's expit or an exp-based
sigmoid; nothing can overflow).
"""
from __future__ import annotations

import numpy as np

from .functional import gate_activation, relu, sigmoid, tanh


class Kernel:
    name: str
    gates: int
    has_cell: bool = False
    # True when dL/d(gh) differs from dL/d(gx) (GRU: r multiplies W_hn h + b_hn). Otherwise gx and gh enter
    # only through their sum, so the engine folds b_hh into gx and needs a single gradient array.
    separate_gh: bool = False
    # True when h_{t-1} also reaches h_t other than through W_hh (GRU: h = ... + z * h_prev).
    direct_dh: bool = False
    coef_width: int = 0            # extra coefficient columns per step, in units of H

    def workspace(self, B: int, H: int, dtype) -> dict:
        return {}

    def forward(self, a, gh, h_prev, c_prev, h, c, ws):  # pragma: no cover - interface
        raise NotImplementedError

    def coefficients(self, A, K, S, tape):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dh, dc, a, k, dgh, ws):  # pragma: no cover - interface
        raise NotImplementedError


class _Elman(Kernel):
    """h = f(a), a = gx + gh. backward: dL/da = dh * f'(a), f' written in terms of h (kept on the tape as Hs)."""

    gates = 1

    def forward(self, a, gh, h_prev, c_prev, h, c, ws):
        np.add(a, gh, out=a)                          # a = gx + gh
        self.f(a, out=h)                              # h = f(a)

    def backward(self, dh, dc, a, k, dgh, ws):
        np.multiply(a, dh, out=a)                     # dL/da = dh * f'(a)


class TanhRNN(_Elman):
    """h = tanh(gx + gh)."""

    name = "tanh"
    f = staticmethod(tanh)

    def coefficients(self, A, K, S, tape):
        np.multiply(tape.Hnext, tape.Hnext, out=A)    # f'(a) = 1 - h^2
        np.subtract(1.0, A, out=A)


class ReluRNN(_Elman):
    """h = relu(gx + gh)."""

    name = "relu"
    f = staticmethod(relu)

    def coefficients(self, A, K, S, tape):
        np.greater(tape.Hnext, 0.0, out=A)            # f'(a) = 1 where a > 0 (0 at a = 0, torch's convention)


class SigmoidRNN(_Elman):
    """h = sigmoid(gx + gh): the classic Elman/SRN cell (beyond torch, which offers tanh and relu)."""

    name = "sigmoid"
    f = staticmethod(sigmoid)

    def coefficients(self, A, K, S, tape):
        np.subtract(1.0, tape.Hnext, out=A)           # f'(a) = h (1 - h)
        np.multiply(A, tape.Hnext, out=A)


class LSTMKernel(Kernel):
    """torch.nn.LSTM's cell, gates in torch's order (i, f, g, o) along the last axis.

        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)     a = gx + gh  (b, 4H)
        c = f * c_prev + i * g
        h = o * tanh(c)

    Backward, with dc_t = dc (from step t+1) + dh * o * (1 - tanh(c)^2):
        da_i = dc_t * g * i (1 - i)      da_f = dc_t * c_prev * f (1 - f)      da_g = dc_t * i * (1 - g^2)
        da_o = dh * tanh(c) * o (1 - o)  dc_prev = dc_t * f
    The coefficients (K_i, K_f, K_g, K_o) replace (i, f, g, o) on the tape; K holds [o (1 - tanh(c)^2), f].
    """

    name, gates, has_cell, coef_width = "lstm", 4, True, 2

    def workspace(self, B, H, dtype):
        return {"gh": np.empty((B, 4 * H), dtype), "ig": np.empty((B, H), dtype), "tc": np.empty((B, H), dtype),
                "gates": gate_activation("ssTs", H, dtype)}

    def forward(self, a, gh, h_prev, c_prev, h, c, ws):
        H = c.shape[-1]
        np.add(a, gh, out=a)                          # a = gx + gh
        ws["gates"](a)                                # i, f, o = sigmoid(a_i, a_f, a_o); g = tanh(a_g): one block
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        ig, tc = ws["ig"][:len(a)], ws["tc"][:len(a)]
        np.multiply(f, c_prev, out=c)                 # c = f * c_prev + i * g
        np.multiply(i, g, out=ig)
        np.add(c, ig, out=c)
        np.tanh(c, out=tc)                            # h = o * tanh(c)
        np.multiply(o, tc, out=h)

    def coefficients(self, A, K, S, tape):
        H = K.shape[-1] // 2
        i, f, g, o = A[..., :H], A[..., H:2 * H], A[..., 2 * H:3 * H], A[..., 3 * H:]
        Kc, Kf_keep = K[..., :H], K[..., H:]
        np.copyto(Kf_keep, f)                         # f, for dc_prev = dc_t * f
        np.tanh(tape.Cnext, out=Kc)                   # tanh(c), recomputed rather than stored
        np.subtract(1.0, o, out=S)                    # K_o = tanh(c) * o (1 - o)
        np.multiply(S, o, out=S)
        np.multiply(S, Kc, out=S)
        np.multiply(Kc, Kc, out=Kc)                   # K_c = o (1 - tanh(c)^2)
        np.subtract(1.0, Kc, out=Kc)
        np.multiply(Kc, o, out=Kc)
        np.copyto(o, S)
        np.subtract(1.0, f, out=S)                    # K_f = c_prev * f (1 - f)
        np.multiply(f, S, out=f)
        np.multiply(f, tape.Cprev, out=f)
        np.subtract(1.0, i, out=S)                    # K_i = g * i (1 - i)
        np.multiply(S, i, out=S)
        np.multiply(S, g, out=S)
        np.multiply(g, g, out=g)                      # K_g = i (1 - g^2)
        np.subtract(1.0, g, out=g)
        np.multiply(g, i, out=g)
        np.copyto(i, S)

    def backward(self, dh, dc, a, k, dgh, ws):
        H = dc.shape[-1]
        Kc, f = k[:, :H], k[:, H:]
        tmp = ws["ig"][:len(a)]
        np.multiply(dh, Kc, out=tmp)                  # dc_t = dc + dh * o (1 - tanh(c)^2)
        np.add(dc, tmp, out=dc)
        a_ifg = a.reshape(len(a), 4, H)[:, :3]        # (b, 3, H) view: a is a C-contiguous (b, 4H) block
        np.multiply(a_ifg, dc[:, None, :], out=a_ifg)  # da_i, da_f, da_g = dc_t * (K_i, K_f, K_g)
        np.multiply(a[:, 3 * H:], dh, out=a[:, 3 * H:])  # da_o = dh * K_o
        np.multiply(dc, f, out=dc)                    # dc_prev = dc_t * f


class GRUKernel(Kernel):
    """torch.nn.GRU's cell, gates in torch's order (r, z, n).

        r = sigmoid(gx_r + gh_r)
        z = sigmoid(gx_z + gh_z)
        n = tanh(gx_n + r * gh_n)          gh_n = W_hn h_prev + b_hn, so r also scales b_hn
        h = (1 - z) * n + z * h_prev

    Backward, with dn = dh (1 - z) (1 - n^2) the gradient of n's argument:
        dgx_n = dn    dgh_n = dn * r    dgx_r = dgh_r = dn * gh_n * r (1 - r)
        dgx_z = dgh_z = dh * (h_prev - n) * z (1 - z)       dh_prev = dh * z  (+ dgh @ W_hh, by the engine)
    The coefficients (K_r, K_z, K_n) = (gh_n r (1 - r), (h_prev - n) z (1 - z), (1 - z)(1 - n^2)) replace
    (r, z, n) on the tape; K holds [r, z].
    """

    name, gates, separate_gh, direct_dh, coef_width = "gru", 3, True, True, 2

    def workspace(self, B, H, dtype):
        return {"rgh": np.empty((B, H), dtype), "gates": gate_activation("ss", H, dtype)}

    def forward(self, a, gh, h_prev, c_prev, h, c, ws):
        H = h.shape[-1]
        rz, n = a[:, :2 * H], a[:, 2 * H:]
        np.add(rz, gh[:, :2 * H], out=rz)             # r, z = sigmoid(gx_rz + gh_rz): one block
        ws["gates"](rz)
        r, z = rz[:, :H], rz[:, H:]
        rgh = ws["rgh"][:len(a)]
        np.multiply(r, gh[:, 2 * H:], out=rgh)        # n = tanh(gx_n + r * gh_n)
        np.add(n, rgh, out=n)
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h)                 # h = n + z * (h_prev - n)
        np.multiply(h, z, out=h)
        np.add(h, n, out=h)

    def coefficients(self, A, K, S, tape):
        H = K.shape[-1] // 2
        r, z, n = A[..., :H], A[..., H:2 * H], A[..., 2 * H:]
        np.copyto(K, A[..., :2 * H])                  # r, z themselves
        np.subtract(1.0, r, out=S)                    # K_r = gh_n * r (1 - r)
        np.multiply(r, S, out=r)
        np.multiply(r, tape.GH[..., 2 * H:], out=r)
        np.subtract(tape.Hprev, n, out=S)             # K_z = (h_prev - n) * z (1 - z)
        np.multiply(S, z, out=S)
        np.multiply(n, n, out=n)                      # K_n = (1 - z) (1 - n^2)
        np.subtract(1.0, n, out=n)
        np.subtract(1.0, z, out=z)
        np.multiply(n, z, out=n)
        np.multiply(S, z, out=z)                      # (z slot holds 1 - z here)

    def backward(self, dh, dc, a, k, dgh, ws):
        H = dh.shape[-1]
        r, z = k[:, :H], k[:, H:]
        dn = a[:, 2 * H:]
        np.multiply(dh, dn, out=dn)                   # dgx_n = dh * K_n
        np.multiply(dn, r, out=dgh[:, 2 * H:])        # dgh_n = dgx_n * r
        np.multiply(dn, a[:, :H], out=a[:, :H])       # dgx_r = dgx_n * K_r
        np.multiply(dh, a[:, H:2 * H], out=a[:, H:2 * H])  # dgx_z = dh * K_z
        np.copyto(dgh[:, :2 * H], a[:, :2 * H])       # dgh_rz = dgx_rz
        np.multiply(dh, z, out=dh)                    # the direct part of dh_prev: dh * z


RNN_KERNELS = {"tanh": TanhRNN(), "relu": ReluRNN(), "sigmoid": SigmoidRNN()}
LSTM = LSTMKernel()
GRU = GRUKernel()
