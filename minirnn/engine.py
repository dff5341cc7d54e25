"""The one recurrence engine: forward and BPTT of one layer in one direction, for every cell kind.

Only the recurrent product is inside the time loop; the input projection and every weight gradient are
whole-sequence matrix products. What differs between the RNN, LSTM and GRU is the pointwise ``kernel``
(see ``kernels.py``). Direction, stacking, dropout and lengths are handled by the caller (``recurrent.py``)
by permuting time before and after this engine, so this file only ever runs forward in time.

Shapes (T time steps, B batch, I input features, H hidden, G gates, P projection size, P = H without one):

    X       (T, B, I)     input, in the order the recurrence visits it
    W_ih    (G*H, I)      W_hh (G*H, P)     b_ih, b_hh (G*H,) or None     W_hr (P, H) or None (LSTM proj_size)
    h0      (B, P)        c0 (B, H) for kinds with a cell state
    mask    (T, B, 1)     1.0 where step t of sequence b is real, 0.0 past its length; None = all real
    out     (T, B, P)     h_t, zeroed where the mask is 0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .kernels import Kernel


@dataclass
class Weights:
    W_ih: np.ndarray
    W_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None
    W_hr: np.ndarray | None = None


@dataclass
class Grads:
    W_ih: np.ndarray
    W_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None
    W_hr: np.ndarray | None


@dataclass
class Tape:
    """What the backward pass needs from one forward run."""

    X: np.ndarray            # (T, B, I)
    Hs: np.ndarray           # (T+1, B, P)  states h_0 .. h_T as seen by the next step
    Cs: np.ndarray | None    # (T+1, B, H)
    Hraw: np.ndarray | None  # (T, B, H)    un-projected o * tanh(c), only with W_hr
    saved: list[Any]         # per step, what the kernel returned for its backward
    mask: np.ndarray | None  # (T, B, 1)


def forward(kernel: Kernel, w: Weights, X: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
            mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Tape]:
    """Run the recurrence over X. Returns out (T, B, P), h_T (B, P), c_T (B, H) or None, and the tape."""
    T, B, I = X.shape
    GX = (X.reshape(T * B, I) @ w.W_ih.T).reshape(T, B, -1)   # every input projection in one GEMM
    if w.b_ih is not None:
        GX += w.b_ih
    Hs = np.empty((T + 1,) + h0.shape, dtype=X.dtype)
    Hs[0] = h0
    Cs = None
    if kernel.has_cell:
        Cs = np.empty((T + 1,) + c0.shape, dtype=X.dtype)
        Cs[0] = c0
    Hraw = np.empty((T,) + c0.shape, dtype=X.dtype) if w.W_hr is not None else None
    saved = []
    for t in range(T):
        h_prev = Hs[t]
        gh = h_prev @ w.W_hh.T                                   # the only sequential product
        if w.b_hh is not None:
            gh += w.b_hh
        c_prev = Cs[t] if Cs is not None else None
        h, c, s = kernel.forward(GX[t], gh, h_prev, c_prev)
        saved.append(s)
        if Hraw is not None:
            Hraw[t] = h
            h = h @ w.W_hr.T                                     # LSTM projection: h = W_hr (o * tanh(c))
        if mask is None:
            Hs[t + 1] = h
            if Cs is not None:
                Cs[t + 1] = c
        else:                                                     # past its length a sequence keeps its state
            m = mask[t]
            Hs[t + 1] = h_prev + m * (h - h_prev)
            if Cs is not None:
                Cs[t + 1] = c_prev + m * (c - c_prev)
    out = Hs[1:] if mask is None else Hs[1:] * mask
    c_n = Cs[T] if Cs is not None else None
    return out, Hs[T], c_n, Tape(X, Hs, Cs, Hraw, saved, mask)


def backward(kernel: Kernel, w: Weights, tape: Tape, dout: np.ndarray | None, dh_n: np.ndarray | None,
             dc_n: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Grads]:
    """BPTT through one forward run. Returns dX (T, B, I), dh0 (B, P), dc0 (B, H) or None, and the weight grads."""
    X, Hs, Cs, mask = tape.X, tape.Hs, tape.Cs, tape.mask
    T, B, I = X.shape
    GH_width = w.W_hh.shape[0]
    dGX = np.empty((T, B, GH_width), dtype=X.dtype)
    dGH = np.empty_like(dGX) if kernel.separate_gh else dGX
    dHproj = np.empty((T,) + Hs.shape[1:], dtype=X.dtype) if w.W_hr is not None else None
    dh = np.zeros_like(Hs[0]) if dh_n is None else np.array(dh_n, dtype=X.dtype)
    dc = None
    if kernel.has_cell:
        dc = np.zeros_like(Cs[0]) if dc_n is None else np.array(dc_n, dtype=X.dtype)
    for t in range(T - 1, -1, -1):
        if dout is not None:
            dh = dh + (dout[t] if mask is None else dout[t] * mask[t])   # out_t = h_t (* mask)
        if mask is not None:                                   # h_t = h_{t-1} + m (h_new - h_{t-1})
            m = mask[t]
            dh_carry, dh = dh * (1.0 - m), dh * m
            if dc is not None:
                dc_carry, dc = dc * (1.0 - m), dc * m
        if dHproj is not None:
            dHproj[t] = dh
            dh = dh @ w.W_hr                                   # back through h = W_hr h_raw
        c_prev = Cs[t] if Cs is not None else None
        dgx, dgh, dh_direct, dc = kernel.backward(dh, dc, tape.saved[t], Hs[t], c_prev)
        dGX[t] = dgx
        if kernel.separate_gh:
            dGH[t] = dgh
        dh = dgh @ w.W_hh                                      # back through gh = W_hh h_{t-1}
        if dh_direct is not None:
            dh += dh_direct
        if mask is not None:
            dh += dh_carry
            if dc is not None:
                dc += dc_carry
    # every weight gradient is one GEMM over all T*B rows, after the loop
    dGX2 = dGX.reshape(T * B, -1)
    dGH2 = dGH.reshape(T * B, -1)
    grads = Grads(
        W_ih=dGX2.T @ X.reshape(T * B, I),
        W_hh=dGH2.T @ Hs[:-1].reshape(T * B, -1),
        b_ih=dGX2.sum(axis=0) if w.b_ih is not None else None,
        b_hh=dGH2.sum(axis=0) if w.b_hh is not None else None,
        W_hr=(dHproj.reshape(T * B, -1).T @ tape.Hraw.reshape(T * B, -1)) if dHproj is not None else None,
    )
    dX = (dGX2 @ w.W_ih).reshape(T, B, I)
    return dX, dh, dc, grads
