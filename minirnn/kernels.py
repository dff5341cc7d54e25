"""Pointwise cell step kernels: the only place where the RNN, LSTM and GRU differ.

The costly matrix products live in ``engine.py``; a kernel sees one time step of b active sequences through a
``engine.Step`` ``s`` of views (H hidden units, G gates, GH = G*H) and writes every result in place:

    forward(s)             one step forward
        s.a      (b, GH)   in: a = gx + gh (gx = W_ih x_t + b_ih + b_hh); out: the activated gates (the tape's A)
        s.gh     (b, GH)   ``separate_gh`` kernels (GRU): a holds gx alone and gh = W_hh h_{t-1} + b_hh comes apart
        s.h_prev (b, P), s.c_prev (b, H) in; s.h, s.c, s.tc (b, H) out: the new state (h before the LSTM's
                  projection) and tanh(c) (c, tc: LSTM only)

    coefficients(c)        backward, vectorized over a block of m steps
        Every factor of the steps' Jacobians that does not depend on the incoming gradient, for m steps at once
        (a few large NumPy calls instead of many small ones), written in place of the activations in c.A
        (m, b, GH) (and of c.GH) and into c.K (m, b, coef_width * H); c.S (m, b, H) is scratch; c.Hprev,
        c.Hnext (m, b, P), c.Cprev, c.TC (m, b, H) are the tape's views of those steps.

    backward(s, dh, dc)    one step backward
        dh       (b, H)    in: dL/dh_t; out, for ``direct_dh`` kernels (GRU): the part of dL/dh_{t-1} that
                           bypasses W_hh (the engine adds dgh @ W_hh to it)
        dc       (b, H)    in: dL/dc_t; out: dL/dc_{t-1} (LSTM)
        s.a      in: the step's coefficients; out: dL/d(gx)     s.k: the step's extra coefficients
        s.gh     out: dL/d(gh) (``separate_gh`` only; else dL/d(gh) = dL/d(gx))

    finish_backward(dGX, dGH)   after the loop: complete dGX (N, GH) where backward left parts in dGH only

Each kernel writes its equations once in ``forward`` and their derivatives once in ``coefficients`` and
``backward``; ``reference.py`` has the same math as plain allocating NumPy. G is ``gates``: 1 for the RNN, 4 for
the LSTM (torch's order i, f, g, o), 3 for the GRU (r, z, n).

Gates are activated with ``functional.GateActivation``: one ``np.tanh`` call for a whole block of gates, with
sigmoid(x) = 0.5 + 0.5 tanh(x / 2). The x / 2 is folded into the weight rows of the sigmoid gates by the engine
once per sequence (``input_scale``), so ``a`` (and the GRU's gh) arrive halved on those gates.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .functional import gate_activation, relu, sigmoid


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

    def input_scale(self, H: int, dtype) -> np.ndarray | None:
        """(GH,) factor the engine folds into the weight rows (and so into gx and gh); None: none."""
        return None

    def finish_backward(self, dGX, dGH):
        """After the time loop: complete dGX (N, GH) as dL/d(gx) where ``backward`` left parts in dGH only."""

    def forward(self, s):  # pragma: no cover - interface
        raise NotImplementedError

    def coefficients(self, c):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, s, dh, dc):  # pragma: no cover - interface
        raise NotImplementedError


class _Elman(Kernel):
    """h = f(a), a = gx + gh. backward: dL/da = dh * f'(a), f' written in terms of h (kept on the tape as Hs)."""

    gates = 1

    def forward(self, s):
        self.f(s.a, out=s.h)                          # h = f(a)

    def backward(self, s, dh, dc):
        np.multiply(s.a, dh, out=s.a)                 # dL/da = dh * f'(a)


class TanhRNN(_Elman):
    """h = tanh(gx + gh)."""

    name = "tanh"
    f = np.tanh

    def coefficients(self, c):
        np.multiply(c.Hnext, c.Hnext, out=c.A)        # f'(a) = 1 - h^2
        np.subtract(1.0, c.A, out=c.A)


class ReluRNN(_Elman):
    """h = relu(gx + gh)."""

    name = "relu"
    f = staticmethod(relu)

    def coefficients(self, c):
        np.greater(c.Hnext, 0.0, out=c.A)             # f'(a) = 1 where a > 0 (0 at a = 0, torch's convention)


class SigmoidRNN(_Elman):
    """h = sigmoid(gx + gh): the classic Elman/SRN cell (beyond torch, which offers tanh and relu)."""

    name = "sigmoid"
    f = staticmethod(sigmoid)

    def coefficients(self, c):
        np.subtract(1.0, c.Hnext, out=c.A)            # f'(a) = h (1 - h)
        np.multiply(c.A, c.Hnext, out=c.A)


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

    def input_scale(self, H, dtype):
        return gate_activation("ssTs", H, np.dtype(dtype)).input_scale

    def forward(self, s):
        a, H = s.a, s.c.shape[-1]
        gate_activation("ssTs", H, a.dtype)(a)        # i, f, o = sigmoid(a_i, a_f, a_o); g = tanh(a_g): one block
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        np.multiply(f, s.c_prev, out=s.c)             # c = f * c_prev + i * g
        np.multiply(i, g, out=s.tmp)
        np.add(s.c, s.tmp, out=s.c)
        np.tanh(s.c, out=s.tc)                        # h = o * tanh(c)
        np.multiply(o, s.tc, out=s.h)

    def coefficients(self, c):
        A, K, S, H = c.A, c.K, c.S, c.K.shape[-1] // 2
        i, f, g, o = A[..., :H], A[..., H:2 * H], A[..., 2 * H:3 * H], A[..., 3 * H:]
        Kc, Kf_keep = K[..., :H], K[..., H:]
        np.copyto(Kf_keep, f)                         # f, for dc_prev = dc_t * f
        np.subtract(1.0, o, out=S)                    # K_o = tanh(c) * o (1 - o)
        np.multiply(S, o, out=S)
        np.multiply(S, c.TC, out=S)
        np.multiply(c.TC, c.TC, out=Kc)               # K_c = o (1 - tanh(c)^2)
        np.subtract(1.0, Kc, out=Kc)
        np.multiply(Kc, o, out=Kc)
        np.copyto(o, S)
        np.subtract(1.0, f, out=S)                    # K_f = c_prev * f (1 - f)
        np.multiply(f, S, out=f)
        np.multiply(f, c.Cprev, out=f)
        np.subtract(1.0, i, out=S)                    # K_i = g * i (1 - i)
        np.multiply(S, i, out=S)
        np.multiply(S, g, out=S)
        np.multiply(g, g, out=g)                      # K_g = i (1 - g^2)
        np.subtract(1.0, g, out=g)
        np.multiply(g, i, out=g)
        np.copyto(i, S)

    def backward(self, s, dh, dc):
        a, H = s.a, dc.shape[-1]
        Kc, f = s.k[:, :H], s.k[:, H:]
        np.multiply(dh, Kc, out=s.tmp)                # dc_t = dc + dh * o (1 - tanh(c)^2)
        np.add(dc, s.tmp, out=dc)
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
    Every one of these is dh times a gradient-independent coefficient, so a backward step is one multiply for
    all of dgh (b, 3, H) and one for dgx_n; dgx_rz = dgh_rz is copied into A once, after the loop:
        gh tape  <- K_gh = [(1 - z)(1 - n^2) gh_n r (1 - r),  (h_prev - n) z (1 - z),  (1 - z)(1 - n^2) r]
        n slot of A <- K_n = (1 - z)(1 - n^2)          K <- z
    """

    name, gates, separate_gh, direct_dh, coef_width = "gru", 3, True, True, 1

    def input_scale(self, H, dtype):
        return _gru_scale(H, np.dtype(dtype))

    def forward(self, s):
        a, gh, H = s.a, s.gh, s.h.shape[-1]
        rz, n = a[:, :2 * H], a[:, 2 * H:]
        np.add(rz, gh[:, :2 * H], out=rz)             # r, z = sigmoid(gx_rz + gh_rz): one block
        gate_activation("ss", H, a.dtype)(rz)
        r, z = rz[:, :H], rz[:, H:]
        np.multiply(r, gh[:, 2 * H:], out=s.tmp)      # n = tanh(gx_n + r * gh_n)
        np.add(n, s.tmp, out=n)
        np.tanh(n, out=n)
        np.subtract(s.h_prev, n, out=s.h)             # h = n + z * (h_prev - n)
        np.multiply(s.h, z, out=s.h)
        np.add(s.h, n, out=s.h)

    def coefficients(self, c):
        A, K, H = c.A, c.K, c.K.shape[-1]
        r, z, n = A[..., :H], A[..., H:2 * H], A[..., 2 * H:]
        Kr, Kz, Kn = c.GH[..., :H], c.GH[..., H:2 * H], c.GH[..., 2 * H:]   # Kn: holds gh_n on entry
        np.copyto(K, z)                               # z, for the direct part dh * z
        np.subtract(c.Hprev, n, out=Kz)               # K_z = (h_prev - n) z (1 - z)
        np.multiply(Kz, z, out=Kz)
        np.subtract(1.0, z, out=z)                    # (z slot holds 1 - z from here)
        np.multiply(Kz, z, out=Kz)
        np.multiply(n, n, out=n)                      # dn/dh = (1 - z)(1 - n^2), in the n slot
        np.subtract(1.0, n, out=n)
        np.multiply(n, z, out=n)
        np.subtract(1.0, r, out=Kr)                   # K_r = dn/dh * gh_n * r (1 - r)
        np.multiply(Kr, r, out=Kr)
        np.multiply(Kr, Kn, out=Kr)
        np.multiply(Kr, n, out=Kr)
        np.multiply(n, r, out=Kn)                     # K_hn = dn/dh * r (gh_n used up above)

    def backward(self, s, dh, dc):
        b, H = dh.shape
        dgh3 = s.gh.reshape(b, 3, H)                  # (b, 3, H) view of a C-contiguous (b, 3H) row block
        np.multiply(dgh3, dh[:, None, :], out=dgh3)   # dgh_r, dgh_z, dgh_n = dh * K_gh
        np.multiply(dh, s.a[:, 2 * H:], out=s.a[:, 2 * H:])  # dgx_n = dh * K_n
        np.multiply(dh, s.k, out=dh)                  # the direct part of dh_prev: dh * z

    def finish_backward(self, dGX, dGH):
        H = dGX.shape[-1] // 3
        np.copyto(dGX[..., :2 * H], dGH[..., :2 * H])  # dgx_r, dgx_z = dgh_r, dgh_z


@lru_cache(maxsize=64)
def _gru_scale(H: int, dtype: np.dtype) -> np.ndarray:
    scale = np.concatenate([gate_activation("ss", H, dtype).input_scale, np.ones(H, dtype)])   # n: unscaled
    scale.flags.writeable = False
    return scale


RNN_KERNELS = {"tanh": TanhRNN(), "relu": ReluRNN(), "sigmoid": SigmoidRNN()}
LSTM = LSTMKernel()
GRU = GRUKernel()


def by_name(name: str) -> Kernel:
    return {**RNN_KERNELS, LSTM.name: LSTM, GRU.name: GRU}[name]
