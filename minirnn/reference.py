"""The lesson: backpropagation through time (BPTT), written out by hand in plain NumPy.

Read this file top to bottom. Every recurrent cell of minirnn is here twice: a *step forward* that computes one
time step for a batch and returns ``(outputs, cache)``, and a *step backward* that takes the gradients of those
outputs and the cache and walks the same lines in reverse order. Forward lines carry a number, ``(3)``; the
backward line that differentiates forward line (3) carries the same number and quotes it. Then one loop runs a
cell over a whole sequence (``layer_forward``) and one loop runs back through time (``layer_backward``).

Nothing here is in place, pre-scaled, chunked or packed: this is the math, not the machine. minirnn's fast
engine (``engine.py``, ``kernels.py``) computes the same numbers and is tested equal to this file to about 1e-12
in float64 (``tests/test_reference.py``); this file is itself tested against finite differences and against
PyTorch, so it is the oracle that needs no torch.

Shapes
    B batch, I input features, H hidden units, T time steps, P = H (P = proj_size for an LSTM with a projection).
    The weights are a dict ``p`` with torch's names and layouts, the names of ``torch.nn.LSTM(...)``'s
    ``named_parameters()`` without the ``_l0`` suffix:
        weight_ih (G*H, I)   weight_hh (G*H, P)   bias_ih, bias_hh (G*H,), both absent (or None) for bias=False
        weight_hr (P, H)     the LSTM's projection (torch's proj_size), absent otherwise
    G gate blocks are stacked along the first axis: 1 (RNN), 4 (LSTM, torch's order i, f, g, o), 3 (GRU: r, z, n).

The cells (torch.nn's equations; sigmoid(a) = 1 / (1 + exp(-a)); * is elementwise; gx and gh are (B, G*H))
    gx = x W_ih^T + b_ih         gh = h_prev W_hh^T + b_hh            (one block of H columns per gate)
    Elman RNN  h = f(gx + gh)    f = tanh, relu, or sigmoid (the classic SRN; beyond torch, which has tanh, relu)
    LSTM       i = sigmoid(gx_i + gh_i)   f = sigmoid(gx_f + gh_f)   g = tanh(gx_g + gh_g)   o = sigmoid(gx_o + gh_o)
               c = f * c_prev + i * g     h = o * tanh(c)            (with proj_size: h = (o * tanh(c)) W_hr^T)
    GRU        r = sigmoid(gx_r + gh_r)   z = sigmoid(gx_z + gh_z)
               n = tanh(gx_n + r * gh_n)  (r multiplies W_hn h_prev + b_hn, bias included, as torch)
               h = (1 - z) * n + z * h_prev

Backpropagation through time
    Unrolled over T steps, a recurrent layer is a T-deep feed-forward network whose steps share one set of
    weights. ``layer_forward`` runs t = 0 .. T-1 and keeps each step's cache. ``layer_backward`` runs
    t = T-1 .. 0 carrying dh = dL/dh_t, the gradient that reaches the state from everything after step t
    (it starts as dh_n, the gradient of the final state). At each step it
      1. adds dout[t], the loss's direct dependence on that step's output;
      2. calls the step backward, which gives dx[t] (for the layer below), dh_prev (the new carried dh,
         for step t-1) and the step's weight gradients;
      3. ADDS those weight gradients to the totals: the same weights were used at every step.
    After step 0 the carried dh is dh0, the gradient of the initial state. An LSTM carries dc = dL/dc_t too.

Lengths (what torch's pack_padded_sequence -> layer -> pad_packed_sequence computes)
    Sequence b has lengths[b] <= T real steps; the rest of x[:, b] is padding. With the mask m_t = t < lengths:
        out[t] = where(m_t, h_new, 0)          h_t = where(m_t, h_new, h_{t-1})
    so outputs past a length are 0 and an ended sequence's state stops changing: h_n is the state after its
    own last step. Backward differentiates those two lines: the step gets where(m_t, dh + dout[t], 0), an
    ended sequence hands its dh to step t-1 untouched, padding gets dx = 0 and adds nothing to any weight
    gradient. (A padded step is still computed and then discarded, so padding must be finite. torch takes a
    PackedSequence instead; minirnn's ``lengths=`` is its own shortcut to the same numbers.)

Layers and directions are composition, not new math. Layer k's input is layer k-1's output (both directions'
outputs concatenated). The reverse direction of a bidirectional layer is this same loop run on every sequence
reversed within its own length (x[len-1], ..., x[0]), its output reversed back the same way.

Example (one LSTM layer, two sequences of lengths 3 and 1 in a batch padded to T = 3)
    >>> rng = np.random.default_rng(0)
    >>> I, H, B, T = 2, 3, 2, 3
    >>> p = {"weight_ih": rng.normal(size=(4 * H, I)), "weight_hh": rng.normal(size=(4 * H, H)),
    ...      "bias_ih": rng.normal(size=4 * H), "bias_hh": rng.normal(size=4 * H)}
    >>> x, h0, c0 = rng.normal(size=(T, B, I)), np.zeros((B, H)), np.zeros((B, H))
    >>> out, h_n, c_n, cache = layer_forward("LSTM", x, h0, p, c0=c0, lengths=[3, 1])
    >>> bool(np.all(out[1:, 1] == 0)), bool(np.all(h_n[1] == out[0, 1]))
    (True, True)
    >>> dx, dh0, dc0, grads = layer_backward(np.ones_like(out), np.zeros_like(h_n), cache, dc_n=np.zeros_like(c_n))
    >>> dx.shape, sorted(grads)
    ((3, 2, 2), ['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih'])
"""
from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-a)) with no overflow for large |a|: scipy.special.expit, imported at the first call (importing
    scipy.special takes longer than importing the rest of minirnn, and ``import minirnn`` imports this module)."""
    from scipy.special import expit
    return expit(a)


__all__ = ["affine", "affine_backward", "rnn_step_forward", "rnn_step_backward", "lstm_step_forward",
           "lstm_step_backward", "gru_step_forward", "gru_step_backward", "layer_forward", "layer_backward"]


def affine(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """y = x W^T + b.  x (B, n), W (m, n), b (m,) or None (no bias)  ->  y (B, m)."""
    return x @ W.T if b is None else x @ W.T + b


def affine_backward(dy: np.ndarray, x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> tuple:
    """The gradients of y = x W^T + b, given dy = dL/dy (B, m): dx (B, n), dW (m, n), db (m,) or None."""
    return dy @ W, dy.T @ x, (None if b is None else dy.sum(axis=0))


def _grads(dW_ih, dW_hh, db_ih, db_hh, dW_hr=None) -> dict:
    """The weight gradients as a dict with the names of ``p`` (no entry for an absent weight)."""
    g = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db_ih, "bias_hh": db_hh, "weight_hr": dW_hr}
    return {k: v for k, v in g.items() if v is not None}


# ----------------------------------------------------------------------------------------------------------------
# Elman RNN (tanh, relu, sigmoid)
# ----------------------------------------------------------------------------------------------------------------
def rnn_step_forward(x: np.ndarray, h_prev: np.ndarray, p: dict, nonlinearity: str = "tanh") -> tuple:
    """One step of the Elman RNN: h = f(x W_ih^T + b_ih + h_prev W_hh^T + b_hh).

    x (B, I), h_prev (B, H); p: weight_ih (H, I), weight_hh (H, H), bias_ih, bias_hh (H,) (absent: no bias);
    nonlinearity 'tanh', 'relu' or 'sigmoid' (the sigmoid is beyond torch, which offers tanh and relu).
    Returns h (B, H) and the cache for ``rnn_step_backward``.
    """
    a = (affine(x, p["weight_ih"], p.get("bias_ih"))              # (1) a = x W_ih^T + b_ih
         + affine(h_prev, p["weight_hh"], p.get("bias_hh")))      #       + h_prev W_hh^T + b_hh        (B, H)
    if nonlinearity == "tanh":
        h = np.tanh(a)                                            # (2) h = tanh(a)
    elif nonlinearity == "relu":
        h = np.maximum(a, 0.0)                                    # (2) h = relu(a)
    elif nonlinearity == "sigmoid":
        h = sigmoid(a)                                            # (2) h = sigmoid(a)
    else:
        raise ValueError(f"nonlinearity: expected 'tanh', 'relu' or 'sigmoid', got {nonlinearity!r}")
    return h, (x, h_prev, a, h, p, nonlinearity)


def rnn_step_backward(dh: np.ndarray, cache: tuple) -> tuple:
    """The gradients of one ``rnn_step_forward``, given dh = dL/dh (B, H) and its cache.

    Returns dx (B, I), dh_prev (B, H) and grads, a dict with the keys and shapes of p.
    """
    x, h_prev, a, h, p, nonlinearity = cache
    if nonlinearity == "tanh":
        da = dh * (1.0 - h * h)                                   # (2) h = tanh(a):     tanh'(a) = 1 - h^2
    elif nonlinearity == "relu":
        da = dh * (a > 0)                                         # (2) h = relu(a):     1 where a > 0, else 0 (as torch)
    else:
        da = dh * h * (1.0 - h)                                   # (2) h = sigmoid(a):  sigmoid'(a) = h (1 - h)
    dx, dW_ih, db_ih = affine_backward(da, x, p["weight_ih"], p.get("bias_ih"))               # (1) x W_ih^T + b_ih
    dh_prev, dW_hh, db_hh = affine_backward(da, h_prev, p["weight_hh"], p.get("bias_hh"))     # (1) h_prev W_hh^T + b_hh
    return dx, dh_prev, _grads(dW_ih, dW_hh, db_ih, db_hh)


# ----------------------------------------------------------------------------------------------------------------
# LSTM (torch.nn.LSTM's cell, gates i, f, g, o; optional projection W_hr, torch's proj_size)
# ----------------------------------------------------------------------------------------------------------------
def lstm_step_forward(x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, p: dict) -> tuple:
    """One step of the LSTM, gates in torch's order (i, f, g, o).

    x (B, I), h_prev (B, P), c_prev (B, H); p: weight_ih (4H, I), weight_hh (4H, P), bias_ih, bias_hh (4H,)
    (absent: no bias), weight_hr (P, H) only with a projection (torch's proj_size; without it P = H).
    Returns h (B, P), c (B, H) and the cache for ``lstm_step_backward``.
    """
    H = c_prev.shape[1]
    a = (affine(x, p["weight_ih"], p.get("bias_ih"))              # (1) a = x W_ih^T + b_ih
         + affine(h_prev, p["weight_hh"], p.get("bias_hh")))      #       + h_prev W_hh^T + b_hh        (B, 4H)
    i = sigmoid(a[:, :H])                                         # (2) input gate   i = sigmoid(a_i)
    f = sigmoid(a[:, H:2 * H])                                    # (3) forget gate  f = sigmoid(a_f)
    g = np.tanh(a[:, 2 * H:3 * H])                                # (4) candidate    g = tanh(a_g)
    o = sigmoid(a[:, 3 * H:])                                     # (5) output gate  o = sigmoid(a_o)
    c = f * c_prev + i * g                                        # (6) c = f * c_prev + i * g
    tc = np.tanh(c)                                               # (7) tc = tanh(c)
    h_raw = o * tc                                                # (8) h_raw = o * tanh(c)             (B, H)
    W_hr = p.get("weight_hr")
    h = h_raw if W_hr is None else h_raw @ W_hr.T                 # (9) h = h_raw W_hr^T (else h = h_raw)
    return h, c, (x, h_prev, c_prev, i, f, g, o, tc, h_raw, p)


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache: tuple) -> tuple:
    """The gradients of one ``lstm_step_forward``, given dh = dL/dh (B, P), dc = dL/dc (B, H) and its cache.

    Returns dx (B, I), dh_prev (B, P), dc_prev (B, H) and grads, a dict with the keys and shapes of p.
    """
    x, h_prev, c_prev, i, f, g, o, tc, h_raw, p = cache
    W_hr = p.get("weight_hr")
    dW_hr = None if W_hr is None else dh.T @ h_raw                # (9) h = h_raw W_hr^T
    dh_raw = dh if W_hr is None else dh @ W_hr
    do = dh_raw * tc                                              # (8) h_raw = o * tc
    dtc = dh_raw * o
    dc = dc + dtc * (1.0 - tc * tc)                               # (7) tc = tanh(c): c reaches L via h and c_next
    df, dc_prev, di, dg = dc * c_prev, dc * f, dc * g, dc * i     # (6) c = f * c_prev + i * g
    da = np.concatenate([di * i * (1.0 - i),                      # (2) i = sigmoid(a_i)
                         df * f * (1.0 - f),                      # (3) f = sigmoid(a_f)
                         dg * (1.0 - g * g),                      # (4) g = tanh(a_g)
                         do * o * (1.0 - o)], axis=1)             # (5) o = sigmoid(a_o)
    dx, dW_ih, db_ih = affine_backward(da, x, p["weight_ih"], p.get("bias_ih"))               # (1) x W_ih^T + b_ih
    dh_prev, dW_hh, db_hh = affine_backward(da, h_prev, p["weight_hh"], p.get("bias_hh"))     # (1) h_prev W_hh^T + b_hh
    return dx, dh_prev, dc_prev, _grads(dW_ih, dW_hh, db_ih, db_hh, dW_hr)


# ----------------------------------------------------------------------------------------------------------------
# GRU (torch.nn.GRU's cell, gates r, z, n)
# ----------------------------------------------------------------------------------------------------------------
def gru_step_forward(x: np.ndarray, h_prev: np.ndarray, p: dict) -> tuple:
    """One step of the GRU in torch's exact form: n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn)).

    x (B, I), h_prev (B, H); p: weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh (3H,) (absent: no bias).
    Returns h (B, H) and the cache for ``gru_step_backward``.
    """
    H = h_prev.shape[1]
    gx = affine(x, p["weight_ih"], p.get("bias_ih"))              # (1) gx = x W_ih^T + b_ih            (B, 3H)
    gh = affine(h_prev, p["weight_hh"], p.get("bias_hh"))         # (2) gh = h_prev W_hh^T + b_hh       (B, 3H)
    r = sigmoid(gx[:, :H] + gh[:, :H])                            # (3) reset gate   r = sigmoid(gx_r + gh_r)
    z = sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])                  # (4) update gate  z = sigmoid(gx_z + gh_z)
    n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])                # (5) candidate    n = tanh(gx_n + r * gh_n)
    h = (1.0 - z) * n + z * h_prev                                # (6) h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, gh, r, z, n, p)


def gru_step_backward(dh: np.ndarray, cache: tuple) -> tuple:
    """The gradients of one ``gru_step_forward``, given dh = dL/dh (B, H) and its cache.

    Returns dx (B, I), dh_prev (B, H) and grads, a dict with the keys and shapes of p.
    """
    x, h_prev, gh, r, z, n, p = cache
    H = h_prev.shape[1]
    dn, dz, dh_direct = dh * (1.0 - z), dh * (h_prev - n), dh * z  # (6) h = (1 - z) * n + z * h_prev
    dan = dn * (1.0 - n * n)                                      # (5) n = tanh(a_n), a_n = gx_n + r * gh_n
    dr, dgh_n = dan * gh[:, 2 * H:], dan * r
    daz = dz * z * (1.0 - z)                                      # (4) z = sigmoid(gx_z + gh_z)
    dar = dr * r * (1.0 - r)                                      # (3) r = sigmoid(gx_r + gh_r)
    dgh = np.concatenate([dar, daz, dgh_n], axis=1)               # (2) gh = h_prev W_hh^T + b_hh
    dh_prev, dW_hh, db_hh = affine_backward(dgh, h_prev, p["weight_hh"], p.get("bias_hh"))
    dgx = np.concatenate([dar, daz, dan], axis=1)                 # (1) gx = x W_ih^T + b_ih
    dx, dW_ih, db_ih = affine_backward(dgx, x, p["weight_ih"], p.get("bias_ih"))
    return dx, dh_prev + dh_direct, _grads(dW_ih, dW_hh, db_ih, db_hh)


# ----------------------------------------------------------------------------------------------------------------
# The loop: one layer, one direction, forward in time; and back through time
# ----------------------------------------------------------------------------------------------------------------
def layer_forward(mode: str, x: np.ndarray, h0: np.ndarray, p: dict, c0: np.ndarray | None = None,
                  lengths=None, nonlinearity: str = "tanh") -> tuple:
    """Run one cell over a batch of sequences: one layer, one direction, t = 0 .. T-1.

    mode 'RNN' (with ``nonlinearity`` 'tanh', 'relu' or 'sigmoid'), 'LSTM' or 'GRU'; x (T, B, I); h0 (B, P);
    c0 (B, H), LSTM only; p the weights as for the step; lengths (B,) ints in 1..T, or None (all T steps).
    Returns out (T, B, P) the state after every step (0 past a sequence's length); h_n (B, P) and c_n (B, H)
    (None but for the LSTM), each sequence's state after its own last step; and the cache for ``layer_backward``.
    """
    if mode not in ("RNN", "LSTM", "GRU"):
        raise ValueError(f"mode: expected 'RNN', 'LSTM' or 'GRU', got {mode!r}")
    T, B = x.shape[0], x.shape[1]
    lens = np.full(B, T) if lengths is None else np.asarray(lengths)
    mask = (np.arange(T)[:, None] < lens[None, :])[:, :, None]    # (T, B, 1): True where step t is real
    h, c, out, caches = h0, c0, [], []
    for t in range(T):
        if mode == "LSTM":
            h_new, c_new, cache = lstm_step_forward(x[t], h, c, p)
            c = np.where(mask[t], c_new, c)                       # c_t = where(m_t, c_new, c_{t-1})
        elif mode == "GRU":
            h_new, cache = gru_step_forward(x[t], h, p)
        else:
            h_new, cache = rnn_step_forward(x[t], h, p, nonlinearity)
        h = np.where(mask[t], h_new, h)                           # h_t = where(m_t, h_new, h_{t-1}): ended ones keep h
        out.append(np.where(mask[t], h_new, 0.0))                 # out[t] = where(m_t, h_new, 0)
        caches.append(cache)
    return np.stack(out), h, c, (mode, mask, caches)


def layer_backward(dout: np.ndarray, dh_n: np.ndarray, cache: tuple, dc_n: np.ndarray | None = None) -> tuple:
    """Backpropagation through time: the gradients of one ``layer_forward``, walking t = T-1 .. 0.

    dout (T, B, P) = dL/dout (entries past a length are ignored, as torch's pad_packed_sequence drops them);
    dh_n (B, P) = dL/dh_n; dc_n (B, H) = dL/dc_n, LSTM only; cache from ``layer_forward``.
    Returns dx (T, B, I) (0 past a length), dh0 (B, P), dc0 (B, H) (None but for the LSTM) and grads, a dict
    with the keys and shapes of p: each weight's gradient summed over all steps.
    """
    mode, mask, caches = cache
    dh, dc, dxs, grads = dh_n, dc_n, [None] * len(caches), {}
    for t in reversed(range(len(caches))):
        m = mask[t]
        dh_new = np.where(m, dh + dout[t], 0.0)                   # out[t] = where(m_t, h_new, 0) and
        dh_keep = np.where(m, 0.0, dh)                            #   h_t = where(m_t, h_new, h_{t-1})
        if mode == "LSTM":
            dxs[t], dh_prev, dc_prev, g = lstm_step_backward(dh_new, np.where(m, dc, 0.0), caches[t])
            dc = dc_prev + np.where(m, 0.0, dc)                   # c_t = where(m_t, c_new, c_{t-1})
        elif mode == "GRU":
            dxs[t], dh_prev, g = gru_step_backward(dh_new, caches[t])
        else:
            dxs[t], dh_prev, g = rnn_step_backward(dh_new, caches[t])
        dh = dh_prev + dh_keep                                    # the carried dL/dh_{t-1}
        for name, v in g.items():                                 # one set of weights at every step: gradients add
            grads[name] = grads[name] + v if name in grads else v
    return np.stack(dxs), dh, dc, grads
