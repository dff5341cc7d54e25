"""The one recurrence engine: forward and BPTT of one layer in one direction, for every cell kind.

Only the recurrent product is inside the time loop; the input projection and every weight gradient are
whole-sequence matrix products. What differs between the RNN, LSTM and GRU is the pointwise ``kernel``
(see ``kernels.py``). Direction, stacking, dropout and lengths are handled by the caller (``recurrent.py``)
by permuting time (and sorting the batch by length) around this engine, so it only ever runs forward in time.

Shapes (T time steps, B batch, I input features, H hidden, G gates, GH = G*H, P projection size, P = H without):

    X       (T, B, I)     input, in the order the recurrence visits it
    W_ih    (GH, I)       W_hh (GH, P)     b_ih, b_hh (GH,) or None     W_hr (P, H) or None (LSTM proj_size)
    h0      (B, P)        c0 (B, H) for kinds with a cell state
    batch_sizes  (T,) ints, non-increasing, or None: at step t only sequences 0 .. batch_sizes[t]-1 are active
                  (the caller sorts sequences longest first, as ``pack_padded_sequence`` does); a sequence's
                  outputs past its length are 0 and h_n (c_n) is its state at its own last step
    out     (T, B, P)     h_t of every step

Memory and speed (all float32 when the weights are): everything is preallocated before the loops and the loops
only write into it (``out=``). The tape's arrays are filled in place: A (T, B, GH) the activated gates, the
states Hs (T+1, B, P) (and the LSTM's Cs and tanh(c), TC), and for the GRU the recurrent products GH (T, B, GH);
with lengths, A and GH (and the tape's X) are packed, (N, ...) with only the active rows (see ``Tape``). Backward
turns A into dL/d(gx) and GH into dL/d(gh) in place (a tape is back-propagated once), computing the
gradient-independent Jacobian factors for a cache-sized chunk of steps at a time.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .kernels import Kernel

# Backward computes the kernel's coefficients for as many steps as fit in this many bytes of A (L2-sized).
CHUNK_BYTES = 1 << 19


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
    """What the backward pass needs from one forward run (consumed by it: A and GH become gradients).

    With ``batch_sizes`` (lengths), X, A and GH are packed: only the active rows, step after step (N =
    sum(batch_sizes) rows, torch's packed data), so padding costs neither memory nor work in the whole-sequence
    products; step t is the contiguous row block offsets[t]:offsets[t+1] (the batch is sorted longest first, so a
    step's active rows are a prefix of the previous step's). The states stay padded (T+1, B, ...), zero past a
    sequence's end, because the layer returns them as its padded output."""

    X: np.ndarray                   # (T, B, I) C-contiguous, or (N, I) packed
    A: np.ndarray                   # (T, B, GH) or (N, GH): activated gates
    GH: np.ndarray | None           # (T, B, GH) or (N, GH): recurrent products, only for kernels with separate_gh
    Hs: np.ndarray                  # (T+1, B, P)  states h_0 .. h_T as seen by the next step (always padded)
    Cs: np.ndarray | None           # (T+1, B, H)
    TC: np.ndarray | None           # (T, B, H)    tanh(c_t), kept by forward rather than recomputed in backward
    Hraw: np.ndarray | None         # (T, B, H)    un-projected o * tanh(c), only with W_hr
    batch_sizes: np.ndarray | None  # (T,)

    @property
    def packed(self) -> bool:
        return self.batch_sizes is not None

    @property
    def T(self) -> int:
        return self.Hs.shape[0] - 1

    @property
    def B(self) -> int:
        return self.Hs.shape[1]


def _active(batch_sizes: np.ndarray | None, T: int, B: int) -> list[int]:
    return [B] * T if batch_sizes is None else [int(b) for b in batch_sizes]


def _steps(a: np.ndarray, active: list[int]) -> list[np.ndarray]:
    """The views a[t, :active[t]] for every step t, made before the loop (``list(a)`` makes them fastest) so
    the loop body is only the step's NumPy calls: at tiny sizes building views costs as much as a call."""
    if active[-1] == a.shape[1]:                    # active is non-increasing: all B rows at every step
        return list(a[:len(active)])
    return [a[t, :b] for t, b in enumerate(active)]


def _pack(a: np.ndarray, active: list[int]) -> np.ndarray:
    """(T, B, ...) -> (sum(active), ...): the active rows of every step, step after step (torch's packed data).
    Active rows are a prefix of each step's block (sorted batch), so this is T block copies, no index array."""
    return np.concatenate([a[t, :b] for t, b in enumerate(active)])


def _unpack(packed: np.ndarray, active: list[int], B: int) -> np.ndarray:
    """The inverse of ``_pack``: (sum(active), ...) -> (T, B, ...), zeros past each step's active rows."""
    out = np.zeros((len(active), B) + packed.shape[1:], dtype=packed.dtype)
    start = 0
    for t, b in enumerate(active):
        out[t, :b] = packed[start:start + b]
        start += b
    return out


def _offsets(active: list[int]) -> list[int]:
    """Start row of every step in packed order, and the total: [0, a_0, a_0 + a_1, ..., N]."""
    out = [0]
    for b in active:
        out.append(out[-1] + b)
    return out


def _step_views(a: np.ndarray, active: list[int], packed: bool) -> list[np.ndarray]:
    """The per-step views of a tape array: of packed rows (step t is the contiguous block of its active rows),
    or of a (T, B, ...) array (see _steps)."""
    if not packed:
        return _steps(a, active)
    off = _offsets(active)
    return [a[off[t]:off[t + 1]] for t in range(len(active))]


def _chunks(active: list[int], n: int, equal_widths: bool) -> list[tuple[int, int]]:
    """Step ranges (t0, t1) of at most n steps covering 0..T, last first. With ``equal_widths`` every range's steps
    have the same number of active rows, so that a range of packed rows is one (m, b, ...) block."""
    out, t1 = [], len(active)
    while t1 > 0:
        t0 = max(0, t1 - n)
        while equal_widths and active[t0] != active[t1 - 1]:     # active is non-increasing
            t0 += 1
        out.append((t0, t1))
        t1 = t0
    return out


def forward(kernel: Kernel, w: Weights, X: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
            batch_sizes: np.ndarray | None = None, keep_tape: bool = True
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Tape | None]:
    """Run the recurrence over X (T, B, I), or with ``batch_sizes`` over X already packed (N, I), as ``_pack``
    makes it (the reverse direction's input is gathered that way, with no padded copy). Returns out (T, B, P),
    h_n (B, P), c_n (B, H) or None, and the tape (None when ``keep_tape`` is false: inference keeps no per-step
    buffers it does not need). A packed X is kept on the tape as it is: the caller must not change it."""
    X = np.ascontiguousarray(X)
    if X.ndim == 2:
        T, B, I = len(batch_sizes), h0.shape[0], X.shape[1]
    else:
        T, B, I = X.shape
    GH, P = w.W_hh.shape
    H = GH // kernel.gates
    dt = X.dtype
    active = _active(batch_sizes, T, B)
    # The kernel may want its gate pre-activations scaled (GateActivation: sigmoid/tanh from one exp). Scaling the
    # weight rows once is exact (powers of two) and cheaper than a multiply per step or a pass over A.
    scale = kernel.input_scale(H, dt)
    W_ih, W_hh, b_ih, b_hh = w.W_ih, w.W_hh, w.b_ih, w.b_hh
    if scale is not None:
        W_ih, W_hh = W_ih * scale[:, None], W_hh * scale[:, None]
        if b_ih is not None:
            b_ih, b_hh = b_ih * scale, b_hh * scale
    # every input projection in one GEMM (with lengths: over the packed rows, and A stays packed, see Tape);
    # b_hh joins b_ih unless the kernel needs gh on its own (GRU)
    b_step = b_hh if kernel.separate_gh else None
    bias = b_ih if kernel.separate_gh or b_ih is None else b_ih + b_hh
    packed = batch_sizes is not None
    if packed:
        if X.ndim == 3:
            X = _pack(X, active)
        A = X @ W_ih.T
    else:
        A = np.matmul(X.reshape(T * B, I), W_ih.T).reshape(T, B, GH)
    if bias is not None:
        A += bias
    new = np.empty if batch_sizes is None else np.zeros   # rows past a length stay 0 (outputs, gradients)
    Hs = new((T + 1, B, P), dtype=dt)
    Hs[0] = h0
    Cs = TC = None
    ws = kernel.workspace(B, H, dt)
    if kernel.has_cell:
        Cs = new((T + 1, B, H), dtype=dt)
        Cs[0] = c0
        TC = np.empty((T, B, H), dtype=dt) if keep_tape else None
    GHt = np.empty(A.shape, dtype=dt) if kernel.separate_gh and keep_tape else None
    gh_step = ws.get("gh") if ws.get("gh") is not None else np.empty((B, GH), dtype=dt)
    Hraw = None
    if w.W_hr is not None:
        Hraw = new((T, B, H), dtype=dt) if keep_tape else np.empty((1, B, H), dtype=dt)
    W_hhT = W_hh.T
    W_hrT = w.W_hr.T if w.W_hr is not None else None
    # every per-step view made before the loop: the loop itself only calls (see _steps)
    a_t, hp_t, hn_t = _step_views(A, active, packed), _steps(Hs[:-1], active), _steps(Hs[1:], active)
    if GHt is not None:
        gh_t = _step_views(GHt, active, packed)
    else:                                                        # one scratch row block, reused every step
        gh_t = [gh_step] * T if active[-1] == B else [gh_step[:b] for b in active]
    cp_t, cn_t = (_steps(Cs[:-1], active), _steps(Cs[1:], active)) if Cs is not None else ([None] * T,) * 2
    if TC is not None:
        tc_t = _steps(TC, active)
    else:                                                        # inference: one scratch block (or no cell)
        tc_t = [ws["tc"][:b] for b in active] if Cs is not None else [None] * T
    hk_t = hn_t                                                  # where the kernel writes h (or h_raw)
    if Hraw is not None:
        hk_t = _steps(Hraw, active) if keep_tape else [Hraw[0, :b] for b in active]
    # GateActivation's exp may overflow to inf, its exact limit (errstate costs about a tiny step: only if needed)
    with np.errstate(over="ignore") if scale is not None else contextlib.nullcontext():
        for t in range(T):
            gh = gh_t[t]
            np.matmul(hp_t[t], W_hhT, out=gh)                    # the only sequential product
            if b_step is not None:
                np.add(gh, b_step, out=gh)
            kernel.forward(a_t[t], gh, hp_t[t], cp_t[t], hk_t[t], cn_t[t], tc_t[t], ws)
            if W_hrT is not None:
                np.matmul(hk_t[t], W_hrT, out=hn_t[t])           # LSTM projection: h = W_hr (o * tanh(c))
    if batch_sizes is None:
        h_n = Hs[T]
        c_n = Cs[T] if Cs is not None else None
    else:                                                        # each sequence's state at its own last step
        lengths = (np.asarray(batch_sizes)[:, None] > np.arange(B)).sum(axis=0)
        h_n = Hs[lengths, np.arange(B)]
        c_n = Cs[lengths, np.arange(B)] if Cs is not None else None
    tape = Tape(X, A, GHt, Hs, Cs, TC, Hraw, batch_sizes) if keep_tape else None
    return Hs[1:], h_n, c_n, tape


def backward(kernel: Kernel, w: Weights, tape: Tape, dout: np.ndarray | None, dh_n: np.ndarray | None,
             dc_n: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Grads]:
    """BPTT through one forward run. Returns dX (T, B, I), dh0 (B, P), dc0 (B, H) or None, and the weight grads.

    dout (T, B, P) or None: dL/d(out) (entries past a sequence's length are ignored); dh_n, dc_n or None."""
    X, A, Hs, Cs = tape.X, tape.A, tape.Hs, tape.Cs
    T, B, I = tape.T, tape.B, X.shape[-1]
    GH, P = w.W_hh.shape
    H = GH // kernel.gates
    dt = X.dtype
    active = _active(tape.batch_sizes, T, B)
    dGH = tape.GH if kernel.separate_gh else A                  # dL/d(gh), in place of gh (or the same as dgx)
    dh = np.zeros((B, P), dtype=dt) if dh_n is None else np.array(dh_n, dtype=dt)
    dc = None
    if kernel.has_cell:
        dc = np.zeros((B, H), dtype=dt) if dc_n is None else np.array(dc_n, dtype=dt)
    dHproj = dhraw = None
    if w.W_hr is not None:
        dHproj = (np.empty if tape.batch_sizes is None else np.zeros)((T, B, P), dtype=dt)
        dhraw = np.empty((B, H), dtype=dt)
    ws = kernel.workspace(B, H, dt)
    tmp = np.empty((B, P), dtype=dt) if kernel.direct_dh else None
    n = max(1, min(T, CHUNK_BYTES // max(1, B * GH * dt.itemsize)))
    K = np.empty((n, B, kernel.coef_width * H), dtype=dt)
    S = np.empty((n, B, H), dtype=dt)
    dh_t = [dh[:b] for b in active]
    dout_t = _steps(dout, active) if dout is not None else None
    dc_t = [dc[:b] for b in active] if dc is not None else [None] * T
    packed = tape.packed
    off = _offsets(active)

    def block(a: np.ndarray, t0: int, t1: int, b: int) -> np.ndarray:
        """Steps t0..t1-1, rows :b, as an (m, b, ...) view (packed: the steps all have b active rows)."""
        return a[off[t0]:off[t1]].reshape(t1 - t0, b, a.shape[-1]) if packed else a[t0:t1, :b]

    a_t, dgh_t = _step_views(A, active, packed), _step_views(dGH, active, packed)
    tmp_t = [tmp[:b] for b in active] if tmp is not None else None
    dhraw_t = [dhraw[:b] for b in active] if dhraw is not None else None
    W_hh = w.W_hh
    for t0, t1 in _chunks(active, n, equal_widths=packed):
        m = t1 - t0
        b0 = active[t0]                                          # every step of a chunk has b0 active rows
        chunk = SimpleNamespace(Hprev=Hs[t0:t1, :b0], Hnext=Hs[t0 + 1:t1 + 1, :b0],
                                GH=None if tape.GH is None else block(tape.GH, t0, t1, b0),
                                Cprev=None if Cs is None else Cs[t0:t1, :b0],
                                TC=None if tape.TC is None else tape.TC[t0:t1, :b0])
        kernel.coefficients(block(A, t0, t1, b0), K[:m, :b0], S[:m, :b0], chunk)   # gradient-independent, m steps
        k_t = _steps(K[:m], active[t0:t1])
        for t in range(t1 - 1, t0 - 1, -1):
            g = dh_t[t]                                          # dL/dh_t of the active rows, in dh
            if dout_t is not None:
                np.add(g, dout_t[t], out=g)                      # out_t = h_t
            dk = g
            if dHproj is not None:
                dHproj[t, :active[t]] = g
                dk = np.matmul(g, w.W_hr, out=dhraw_t[t])        # back through h = W_hr h_raw
            kernel.backward(dk, dc_t[t], a_t[t], k_t[t - t0], dgh_t[t], ws)
            if tmp_t is not None:                                # dh_prev = (dh * z) + dgh @ W_hh
                np.matmul(dgh_t[t], W_hh, out=tmp_t[t])
                np.add(g, tmp_t[t], out=g)
            else:
                np.matmul(dgh_t[t], W_hh, out=g)                 # back through gh = W_hh h_{t-1}
    # every weight gradient is one GEMM over all T*B rows, or over the packed rows only, after the loop
    if packed:                                                   # A, GH and X are packed already
        dGX2, dGH2, X2, Hprev2 = A, dGH, X, _pack(Hs[:-1], active)
    else:
        dGX2, dGH2, X2, Hprev2 = (a.reshape(T * B, a.shape[-1]) for a in (A, dGH, X, Hs[:-1]))
    kernel.finish_backward(dGX2, dGH2)
    db_ih = dGX2.sum(axis=0) if w.b_ih is not None else None
    grads = Grads(
        W_ih=dGX2.T @ X2,
        W_hh=dGH2.T @ Hprev2,
        b_ih=db_ih,
        b_hh=(dGH2.sum(axis=0) if dGH is not A else db_ih.copy()) if w.b_hh is not None else None,
        W_hr=(dHproj.reshape(T * B, P).T @ tape.Hraw.reshape(T * B, H)) if dHproj is not None else None,
    )
    if packed:
        dX = _unpack(dGX2 @ w.W_ih, active, B)
    else:
        dX = (dGX2 @ w.W_ih).reshape(T, B, I)
    return dX, dh, dc, grads
