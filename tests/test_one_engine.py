"""The gated layers and the cells run on the one engine and the same pointwise kernels (issues 2 and 3).

Structural, not numerical: every cell and sequence layer of a kind holds the same kernel object, a cell call is one
``engine.forward`` over T = 1, a sequence layer calls ``engine.forward``/``engine.backward`` once per layer and
direction (the BPTT loop lives only in the engine), and the kind's kernel does every step of both.
"""
from __future__ import annotations

import numpy as np
import pytest

import minirnn as mr
from minirnn import engine, kernels, recurrent

KINDS = [
    ("tanh", lambda: mr.RNNCell(3, 4, dtype=np.float64), lambda **kw: mr.RNN(3, 4, dtype=np.float64, **kw),
     kernels.RNN_KERNELS["tanh"]),
    ("relu", lambda: mr.RNNCell(3, 4, nonlinearity="relu", dtype=np.float64),
     lambda **kw: mr.RNN(3, 4, nonlinearity="relu", dtype=np.float64, **kw), kernels.RNN_KERNELS["relu"]),
    ("sigmoid", lambda: mr.RNNCell(3, 4, nonlinearity="sigmoid", dtype=np.float64),
     lambda **kw: mr.RNN(3, 4, nonlinearity="sigmoid", dtype=np.float64, **kw), kernels.RNN_KERNELS["sigmoid"]),
    ("lstm", lambda: mr.LSTMCell(3, 4, dtype=np.float64), lambda **kw: mr.LSTM(3, 4, dtype=np.float64, **kw),
     kernels.LSTM),
    ("gru", lambda: mr.GRUCell(3, 4, dtype=np.float64), lambda **kw: mr.GRU(3, 4, dtype=np.float64, **kw),
     kernels.GRU),
]


class _Counter:
    """Wraps a callable attribute and counts its calls."""

    def __init__(self, monkeypatch, owner, name):
        self.calls = 0
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)


@pytest.mark.parametrize("kind, make_cell, make_seq, kernel", KINDS, ids=[k[0] for k in KINDS])
def test_cells_and_layers_share_the_kernel_and_the_engine(monkeypatch, kind, make_cell, make_seq, kernel):
    cell, seq = make_cell(), make_seq(num_layers=2, bidirectional=True)
    assert cell.kernel is kernel and seq.kernel is kernel
    fwd = _Counter(monkeypatch, recurrent.engine, "forward")
    bwd = _Counter(monkeypatch, recurrent.engine, "backward")
    kf = _Counter(monkeypatch, kernel, "forward")
    kb = _Counter(monkeypatch, kernel, "backward")
    assert recurrent.engine is engine

    rng = np.random.default_rng(0)
    T, B = 5, 2
    out = cell(rng.standard_normal((B, 3)))
    assert (fwd.calls, kf.calls) == (1, 1)                          # a cell is the engine over T = 1
    cell.backward(tuple(np.ones_like(o) for o in out) if isinstance(out, tuple) else np.ones_like(out))
    assert (bwd.calls, kb.calls) == (1, 1)

    fwd.calls = bwd.calls = kf.calls = kb.calls = 0
    out, _ = seq(rng.standard_normal((T, B, 3)))
    assert fwd.calls == 4                                           # one run per layer and direction
    assert kf.calls == 4 * T                                        # the kernel does every step
    seq.backward(np.ones_like(out))
    assert bwd.calls == 4 and kb.calls == 4 * T


def test_every_kind_is_the_engine_plus_a_kernel():
    """A kernel is pointwise: it owns no weights and no loop over time, only forward/coefficients/backward."""
    for k in (*kernels.RNN_KERNELS.values(), kernels.LSTM, kernels.GRU):
        assert isinstance(k, kernels.Kernel)
        for method in ("forward", "coefficients", "backward"):
            assert getattr(type(k), method) is not getattr(kernels.Kernel, method), (k.name, method)
    assert kernels.LSTM.gates == 4 and kernels.GRU.gates == 3 and kernels.RNN_KERNELS["tanh"].gates == 1


@pytest.mark.parametrize("name, make_cell, make_layer, kernel", KINDS, ids=[k[0] for k in KINDS])
@pytest.mark.parametrize("T, B", [(2, 1), (5, 3), (9, 7)])
def test_lengths_keep_packed_tapes_and_equal_one_sequence_at_a_time(name, make_cell, make_layer, kernel, T, B):
    """With lengths the tapes hold only the active rows (N = sum(lengths)), and a ragged batch computes what each
    sequence alone computes without lengths: outputs (zero past the end), h_n, dx, and the parameter gradients
    summed over the sequences (float64, 2 layers, both directions)."""
    rng = np.random.default_rng(T * 100 + B)
    x = rng.standard_normal((T, B, 3))
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = 1                                          # always ragged (all lengths T would need no lengths)
    dout = rng.standard_normal((T, B, 8))
    layer = make_layer(num_layers=2, bidirectional=True, rng=np.random.default_rng(0))
    out, state = layer(x, lengths=lengths)
    h_n = state[0] if isinstance(state, tuple) else state
    tapes = layer._cache[-1][0]
    assert all(t.packed and t.A.shape[0] == lengths.sum() and t.X.shape[0] == lengths.sum() for t in tapes)
    dx, _ = layer.backward(dout)
    grads = [p.grad.copy() for p in layer.parameters()]
    assert (out[lengths[None, :] <= np.arange(T)[:, None]] == 0).all()
    summed = [np.zeros_like(g) for g in grads]
    for b, n in enumerate(lengths):
        layer.zero_grad()
        out_b, state_b = layer(x[:n, b:b + 1])
        h_b = state_b[0] if isinstance(state_b, tuple) else state_b
        dx_b, _ = layer.backward(dout[:n, b:b + 1])
        np.testing.assert_allclose(out[:n, b:b + 1], out_b, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(h_n[:, b:b + 1], h_b, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dx[:n, b:b + 1], dx_b, rtol=1e-11, atol=1e-12)
        assert (dx[n:, b] == 0).all()
        for acc, p in zip(summed, layer.parameters()):
            acc += p.grad
    for g, s_ in zip(grads, summed):
        np.testing.assert_allclose(g, s_, rtol=1e-10, atol=1e-12)

