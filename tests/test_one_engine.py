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
@pytest.mark.parametrize("T, B", [(1, 1), (5, 3), (12, 40)])
def test_packed_and_padded_tapes_agree(monkeypatch, name, make_cell, make_layer, kernel, T, B):
    """With lengths the engine keeps its tapes packed (active rows only) when padding is a large share, else padded
    (T, B, ...). Forcing either layout gives the same outputs, dx and parameter gradients (float64, 2 layers, both
    directions), and the packed run's tapes really are packed."""
    rng = np.random.default_rng(T * 100 + B)
    x = rng.standard_normal((T, B, 3))
    lengths = rng.integers(1, T + 1, B)
    dout = rng.standard_normal((T, B, 8))
    results = []
    for packed in (False, True):
        monkeypatch.setattr(engine, "_use_packed", lambda bs, T_, B_, packed=packed: packed and bs is not None)
        layer = make_layer(num_layers=2, bidirectional=True, rng=np.random.default_rng(0))
        out, _ = layer(x, lengths=lengths)
        tapes = layer._cache[-1][0]
        ragged = not (lengths == T).all()                  # all lengths T: no lengths at all, nothing to pack
        assert all(t.packed == (packed and ragged) for t in tapes)
        if packed and ragged:
            assert all(t.A.shape[0] == int(lengths.sum()) for t in tapes)
        dx, _ = layer.backward(dout)
        results.append([out, dx] + [p.grad.copy() for p in layer.parameters()])
    for padded_run, packed_run in zip(*results):
        np.testing.assert_allclose(packed_run, padded_run, rtol=1e-11, atol=1e-12)
