"""The one recurrence engine: forward and BPTT of one layer in one direction, for every cell kind.

The code is DESIGN.md's pseudo-code; what differs between the RNN, LSTM and GRU is the pointwise ``kernel``
(``kernels.py``), and the plain version of the same math is ``reference.py``:

    forward:   GX = X @ W_ih.T + b                         every input projection in one GEMM
               for t = 0 .. T-1:
                   a_t = GX[t] + h_{t-1} @ W_hh.T           the only sequential product
                   h_t (c_t) = kernel.forward(step t)       pointwise; the activated gates stay on the tape
    backward:  for t = T-1 .. 0 (a block of steps at a time: kernel.coefficients first, see below):
                   dh_t += dout[t]
                   dGX[t], dGH[t], dc_{t-1} = kernel.backward(step t, dh_t, dc_t)
                   dh_{t-1} = dGH[t] @ W_hh                 (+ the kernel's direct part, GRU)
               dW_ih = dGX.T @ X   dW_hh = dGH.T @ H_prev   dX = dGX @ W_ih   db = column sums

Direction, stacking, dropout and lengths are the caller's (``recurrent.py``): it permutes time (and sorts the batch
by length) around this engine, so the engine only ever runs forward in time.

Shapes (T time steps, B batch, I input features, H hidden, G gates, GH = G*H, P projection size, P = H without):

    X       (T, B, I)     input, in the order the recurrence visits it (or packed, (N, I), see ``Tape``)
    W_ih    (GH, I)       W_hh (GH, P)     b_ih, b_hh (GH,) or None     W_hr (P, H) or None (LSTM proj_size)
    h0      (B, P)        c0 (B, H) for kinds with a cell state
    batch_sizes  (T,) ints, non-increasing, or None: at step t only sequences 0 .. batch_sizes[t]-1 are active
                  (the caller sorts sequences longest first, as ``pack_padded_sequence`` does); a sequence's
                  outputs past its length are 0 and h_n (c_n) is its state at its own last step
    out     (T, B, P)     h_t of every step

The machine under the pseudo-code (what each part buys is measured in benchmarks/README.md): buffers are allocated
before the loops, which only write into them (``out=``); the per-step views are made before the loop too (a
``Step`` per time step); the kernels fold their sigmoids' 1/2 into the weights (``Kernel.input_scale``); backward
computes the gradient-independent factors of each step's Jacobian for a block of steps at once
(``kernel.coefficients``), in place of the activations on the tape (a tape is back-propagated once).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import accumulate, repeat
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from .kernels import Kernel

# Backward computes the kernels' coefficients for as many steps as fit in this many bytes of A (cache-sized).
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


class Step(NamedTuple):
    """One time step's views of the engine's arrays: all a kernel reads and writes (b = the step's active rows).

        a       (b, GH)   forward:  in gx + gh (gx alone with ``separate_gh``), out the activated gates
                          backward: in the step's coefficients, out dL/d(gx)
        gh      (b, GH)   forward: W_hh h_prev + b_hh; backward: in its coefficients, out dL/d(gh)
                          (``separate_gh`` kernels only: for the others dL/d(gh) = dL/d(gx), and gh is a)
        h_prev  (b, P)    h (b, H): the state before and after (h before the projection W_hr)
        c_prev, c, tc (b, H) or None: the cell state before and after, and tanh(c)
        tmp     (b, H)    scratch
        k       (b, coef_width * H)   backward: the step's extra coefficients
    """

    a: np.ndarray
    gh: np.ndarray
    h_prev: np.ndarray | None
    h: np.ndarray | None
    c_prev: np.ndarray | None
    c: np.ndarray | None
    tc: np.ndarray | None
    tmp: np.ndarray | None
    k: np.ndarray | None


_new_step = partial(tuple.__new__, Step)   # a Step from a tuple of its fields, with no Python-level call


def _records(*columns: list) -> list[Step]:
    """One Step per time step from per-step lists of views given in Step's field order (one is made per time
    step, and at tiny sizes making them costs as much as the NumPy calls of a step)."""
    return list(map(_new_step, zip(*columns)))


class _Schedule:
    """Which rows every time step works on (all B, or with lengths the active prefix batch_sizes[t]), and the views
    that follow from it: per-step views made once before a loop, the whole-sequence (N, ...) views of the GEMMs."""

    def __init__(self, T: int, B: int, batch_sizes: np.ndarray | None) -> None:
        self.T, self.B, self.packed = T, B, batch_sizes is not None
        self.active = [B] * T if batch_sizes is None else [int(b) for b in batch_sizes]
        self.offsets = list(accumulate(self.active, initial=0))      # step t's rows in flat order: [o_t, o_t+1)

    def flat(self, a: np.ndarray) -> np.ndarray:
        """A (T, B, ...) array as the (N, ...) rows of the whole-sequence products: a reshape, or packed (a copy
        of the active rows, step after step, torch's packed data). An array already (N, ...) is returned as is."""
        if a.ndim == 2 or not self.packed:
            return a.reshape(-1, a.shape[-1])
        return np.concatenate([a[t, :b] for t, b in enumerate(self.active)])

    def unflat(self, rows: np.ndarray) -> np.ndarray:
        """The inverse of ``flat``: (N, ...) -> (T, B, ...), zeros past each step's active rows."""
        if not self.packed:
            return rows.reshape(self.T, self.B, rows.shape[-1])
        out = np.zeros((self.T, self.B, rows.shape[-1]), dtype=rows.dtype)
        for t, b in enumerate(self.active):
            out[t, :b] = rows[self.offsets[t]:self.offsets[t + 1]]
        return out

    def steps(self, a: np.ndarray | None) -> list:
        """The per-step views of ``a``: of a (T, B, ...) array a[t, :b] (``list(a)`` when every step has all B
        rows: the fastest way to make them), of an (N, ...) array of flat rows the step's row block."""
        if a is None:
            return [None] * self.T
        if a.ndim == 2:
            return [a[self.offsets[t]:self.offsets[t + 1]] for t in range(self.T)]
        if not self.packed:
            return list(a[:self.T])
        return [a[t, :b] for t, b in enumerate(self.active)]

    def before_after(self, S: np.ndarray) -> tuple[list, list]:
        """From states S (T+1, B, ...): the per-step views of the state before and after each step, S[t, :b] and
        S[t+1, :b] (with all B rows at every step one list of T+1 views serves both)."""
        if not self.packed:
            views = list(S)
            return views[:-1], views[1:]
        return self.steps(S[:-1]), self.steps(S[1:])

    def rows(self, a: np.ndarray | None) -> list:
        """Views of one (B, ...) buffer reused at every step: its first batch_sizes[t] rows."""
        if a is None:
            return [None] * self.T
        return [a] * self.T if not self.packed else [a[:b] for b in self.active]   # all B rows: the buffer itself

    def block(self, a: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Steps t0..t1-1 of a (T, B, ...) or flat (N, ...) array as one (t1 - t0, b, ...) view; the steps of a
        block (``blocks``) all have the same b active rows."""
        b = self.active[t0]
        if a.ndim == 2:
            return a[self.offsets[t0]:self.offsets[t1]].reshape(t1 - t0, b, a.shape[-1])
        return a[t0:t1, :b]

    def blocks(self, n: int) -> list[tuple[int, int]]:
        """Step ranges (t0, t1) of at most n steps with the same number of active rows, covering 0..T, last first."""
        out, t1 = [], self.T
        while t1 > 0:
            t0 = max(0, t1 - n)
            while self.active[t0] != self.active[t1 - 1]:       # active is non-increasing
                t0 += 1
            out.append((t0, t1))
            t1 = t0
        return out

    def last(self, S: np.ndarray) -> np.ndarray:
        """From states S (T+1, B, ...): every sequence's state after its own last step (B, ...)."""
        if not self.packed:
            return S[self.T]
        lengths = (np.asarray(self.active)[:, None] > np.arange(self.B)).sum(axis=0)
        return S[lengths, np.arange(self.B)]


def _scaled(kernel: Kernel, w: Weights, dtype) -> tuple[np.ndarray, ...]:
    """W_ih, W_hh, b_ih, b_hh with the kernel's per-gate factor folded into their rows (exact: powers of two)."""
    scale = kernel.input_scale(w.W_hh.shape[0] // kernel.gates, dtype)
    if scale is None:
        return w.W_ih, w.W_hh, w.b_ih, w.b_hh
    s = scale[:, None]
    return (w.W_ih * s, w.W_hh * s, None if w.b_ih is None else w.b_ih * scale,
            None if w.b_hh is None else w.b_hh * scale)


def forward(kernel: Kernel, w: Weights, X: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
            batch_sizes: np.ndarray | None = None, keep_tape: bool = True
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Tape | None]:
    """Run the recurrence over X (T, B, I), or with ``batch_sizes`` over X already packed (N, I), as
    ``_Schedule.flat`` makes it (the reverse direction's input is gathered that way, with no padded copy). Returns
    out (T, B, P), h_n (B, P), c_n (B, H) or None, and the tape (None when ``keep_tape`` is false: inference keeps
    no per-step buffers it does not need). A packed X is kept on the tape as it is: the caller must not change it."""
    X = np.ascontiguousarray(X)
    T = len(batch_sizes) if X.ndim == 2 else X.shape[0]
    B, dt = h0.shape[0], X.dtype
    GH, P = w.W_hh.shape
    H = GH // kernel.gates
    sch = _Schedule(T, B, batch_sizes)
    W_ih, W_hh, b_ih, b_hh = _scaled(kernel, w, dt)
    # b_hh joins b_ih in GX unless the kernel needs gh on its own (GRU: r multiplies W_hn h + b_hn)
    b_gx = b_ih if kernel.separate_gh or b_ih is None else b_ih + b_hh

    X_rows = sch.flat(X)                                         # (N, I): T*B rows, or the packed ones
    A = np.matmul(X_rows, W_ih.T)                                # GX, then the activated gates: (N, GH)
    if b_gx is not None:
        np.add(A, b_gx, out=A)
    if not sch.packed:
        A = A.reshape(T, B, GH)
    new = np.zeros if sch.packed else np.empty                   # rows past a length stay 0 (outputs, gradients)
    Hs, Cs = new((T + 1, B, P), dtype=dt), (new((T + 1, B, H), dtype=dt) if kernel.has_cell else None)
    Hs[0] = h0
    if Cs is not None:
        Cs[0] = c0
    # what backward needs, kept only with keep_tape; else one (B, ...) buffer reused at every step
    TC = GHs = Hraw = None
    if keep_tape:
        TC = np.empty((T, B, H), dtype=dt) if kernel.has_cell else None
        GHs = np.empty(A.shape, dtype=dt) if kernel.separate_gh else None
        Hraw = new((T, B, H), dtype=dt) if w.W_hr is not None else None
    steps = _forward_steps(sch, kernel, w, A, Hs, Cs, TC, GHs, Hraw, dt)
    W_hhT, W_hrT = W_hh.T, (w.W_hr.T if w.W_hr is not None else None)
    h_out = sch.steps(Hs[1:]) if W_hrT is not None else None      # the projection's output, per step

    for t, s in enumerate(steps):
        np.matmul(s.h_prev, W_hhT, out=s.gh)                     # the only sequential product
        if not kernel.separate_gh:
            np.add(s.a, s.gh, out=s.a)                           # a = gx + gh
        elif b_hh is not None:
            np.add(s.gh, b_hh, out=s.gh)                         # gh = h_prev @ W_hh.T + b_hh, kept apart
        kernel.forward(s)
        if W_hrT is not None:
            np.matmul(s.h, W_hrT, out=h_out[t])                  # LSTM projection: h = W_hr (o * tanh(c))

    c_n = sch.last(Cs) if Cs is not None else None
    tape = Tape(X if not sch.packed else X_rows, A, GHs, Hs, Cs, TC, Hraw, batch_sizes) if keep_tape else None
    return Hs[1:], sch.last(Hs), c_n, tape


def _forward_steps(sch: _Schedule, kernel: Kernel, w: Weights, A, Hs, Cs, TC, GHs, Hraw, dt) -> list[Step]:
    """Every step's views, made before the loop (at tiny sizes making a view costs as much as a NumPy call).
    Inference (no TC, GHs, Hraw: no tape) reuses one (B, ...) scratch buffer for them at every step."""
    B, GH = sch.B, w.W_hh.shape[0]
    H = GH // kernel.gates

    def kept_or_scratch(kept, width, needed):
        if kept is not None:
            return sch.steps(kept)
        return sch.rows(np.empty((B, width), dtype=dt)) if needed else [None] * sch.T

    a_t, (hp_t, h_t) = sch.steps(A), sch.before_after(Hs)
    if w.W_hr is not None:                                       # the kernel writes h_raw; h = W_hr h_raw is h_t
        h_t = kept_or_scratch(Hraw, H, True)
    gh_t = kept_or_scratch(GHs, GH, True)                        # kept only by separate_gh kernels
    tc_t = kept_or_scratch(TC, H, kernel.has_cell)
    cp_t, c_t = sch.before_after(Cs) if Cs is not None else ([None] * sch.T,) * 2
    tmp_t = sch.rows(np.empty((B, H), dtype=dt))
    return _records(a_t, gh_t, hp_t, h_t, cp_t, c_t, tc_t, tmp_t, repeat(None))


def backward(kernel: Kernel, w: Weights, tape: Tape, dout: np.ndarray | None, dh_n: np.ndarray | None,
             dc_n: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Grads]:
    """BPTT through one forward run. Returns dX (T, B, I), dh0 (B, P), dc0 (B, H) or None, and the weight grads.

    dout (T, B, P) or None: dL/d(out) (entries past a sequence's length are ignored); dh_n, dc_n or None."""
    T, B, dt = tape.T, tape.B, tape.X.dtype
    GH, P = w.W_hh.shape
    H = GH // kernel.gates
    sch = _Schedule(T, B, tape.batch_sizes)
    A = tape.A                                                   # coefficients, then dL/d(gx), in place
    dGH = tape.GH if kernel.separate_gh else A                   # dL/d(gh): in place of gh, or the same as dL/d(gx)
    # dh holds dL/dh_t of the step being back-propagated (its active rows), dc likewise dL/dc_t
    dh = np.zeros((B, P), dtype=dt) if dh_n is None else np.array(dh_n, dtype=dt)
    dc = (np.zeros((B, H), dtype=dt) if dc_n is None else np.array(dc_n, dtype=dt)) if kernel.has_cell else None
    a_t = sch.steps(A)
    gh_t = a_t if dGH is A else sch.steps(dGH)
    tmp_t = sch.rows(np.empty((B, H), dtype=dt))
    dh_t, dc_t, dout_t = sch.rows(dh), sch.rows(dc), (sch.steps(dout) if dout is not None else None)
    dHs = dh_raw_t = None
    if w.W_hr is not None:                                       # LSTM projection: dW_hr needs every step's dh
        dHs = (np.zeros if sch.packed else np.empty)((T, B, P), dtype=dt)
        dh_raw_t = sch.rows(np.empty((B, H), dtype=dt))
    n = max(1, min(T, CHUNK_BYTES // max(1, B * GH * dt.itemsize)))
    K = np.empty((n, B, kernel.coef_width * H), dtype=dt)
    scratch = np.empty((n, B, H), dtype=dt)

    for t0, t1 in sch.blocks(n):
        kernel.coefficients(_coefficient_block(sch, tape, A, K, scratch, t0, t1))
        k_t = list(K[:t1 - t0, :sch.active[t0]]) if K.shape[-1] else repeat(None)   # a block's steps: same rows
        no_state = (repeat(None),) * 5                        # h_prev, h, c_prev, c, tc: backward reads none
        steps = _records(a_t[t0:t1], gh_t[t0:t1], *no_state, tmp_t[t0:t1], k_t)
        for t in range(t1 - 1, t0 - 1, -1):
            s, g = steps[t - t0], dh_t[t]
            if dout_t is not None:
                np.add(g, dout_t[t], out=g)                      # out_t = h_t
            g_cell = g
            if dHs is not None:
                dHs[t, :sch.active[t]] = g
                g_cell = np.matmul(g, w.W_hr, out=dh_raw_t[t])   # back through h = W_hr h_raw
            kernel.backward(s, g_cell, dc_t[t])
            if kernel.direct_dh:                                 # g holds the kernel's direct part (GRU: dh * z)
                np.matmul(s.gh, w.W_hh, out=s.tmp)
                np.add(g, s.tmp, out=g)
            else:
                np.matmul(s.gh, w.W_hh, out=g)                   # dh_{t-1} = dgh @ W_hh

    dGX, dGH = A.reshape(-1, GH), dGH.reshape(-1, GH)            # (N, GH): all rows, or the packed ones
    kernel.finish_backward(dGX, dGH)
    db_ih = dGX.sum(axis=0) if w.b_ih is not None else None
    grads = Grads(
        W_ih=np.matmul(dGX.T, tape.X.reshape(-1, tape.X.shape[-1])),
        W_hh=np.matmul(dGH.T, sch.flat(tape.Hs[:-1])),
        b_ih=db_ih,
        b_hh=(dGH.sum(axis=0) if kernel.separate_gh else db_ih.copy()) if w.b_hh is not None else None,
        W_hr=np.matmul(dHs.reshape(T * B, P).T, tape.Hraw.reshape(T * B, H)) if dHs is not None else None,
    )
    return sch.unflat(np.matmul(dGX, w.W_ih)), dh, dc, grads


def _coefficient_block(sch: _Schedule, tape: Tape, A: np.ndarray, K: np.ndarray, scratch: np.ndarray,
                       t0: int, t1: int) -> SimpleNamespace:
    """Steps t0..t1-1 as (m, b, ...) views for ``kernel.coefficients``: A and GH (to overwrite with coefficients),
    K (m, b, coef_width * H) to fill, scratch S (m, b, H), and the tape's Hprev, Hnext, Cprev, TC."""
    m, b = t1 - t0, sch.active[t0]
    Hs, Cs = tape.Hs, tape.Cs
    return SimpleNamespace(A=sch.block(A, t0, t1), K=K[:m, :b], S=scratch[:m, :b],
                           GH=None if tape.GH is None else sch.block(tape.GH, t0, t1),
                           Hprev=Hs[t0:t1, :b], Hnext=Hs[t0 + 1:t1 + 1, :b],
                           Cprev=None if Cs is None else Cs[t0:t1, :b],
                           TC=None if tape.TC is None else tape.TC[t0:t1, :b])
