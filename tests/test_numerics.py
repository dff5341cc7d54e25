"""Numerical safety and determinism.

* Extreme inputs (pre-activations ~1e5, logits +-1e4, and beyond) through every layer, loss and elementwise function:
  finite outputs and gradients, no RuntimeWarning (setup.cfg turns warnings into errors; here NumPy's floating-point
  flags raise too) and the right saturated values.
* NaN passes through the layers silently, as in torch: NaN in, NaN out, no exception, no warning.
* The same seed gives a bit-identical training run (model + dropout + loss + optimizer + clipping).
"""
import contextlib
import warnings

import numpy as np
import pytest
from scipy import special

import minirnn
from minirnn import functional as F

FLOATS = [np.float32, np.float64]


@contextlib.contextmanager
def strict_fp():
    """Overflow, invalid operations and division by zero raise; any warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


def _finite(*arrays):
    for a in arrays:
        if a is None:
            continue
        if isinstance(a, tuple):
            _finite(*a)
            continue
        assert np.all(np.isfinite(a)), f"non-finite values in an array of shape {np.shape(a)}"


# ---- elementwise functions ----------------------------------------------------------------------------------------
EXTREMES = [0.0, 1e-30, -1e-30, 1.0, -1.0, 17.0, -17.0, 40.0, -40.0, 88.8, -88.8, 710.0, -710.0, 1e4, -1e4, 1e5, -1e5,
            1e30, -1e30, 3e38, -3e38]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("use_out", [False, True])
def test_sigmoid_and_tanh_are_finite_bounded_and_saturate(dtype, use_out):
    x = np.array(EXTREMES + [np.inf, -np.inf], dtype=dtype)
    eps = np.finfo(dtype).eps
    with strict_fp():
        s = F.sigmoid(x, out=np.empty_like(x)) if use_out else F.sigmoid(x)
        t = F.tanh(x, out=np.empty_like(x)) if use_out else F.tanh(x)
        s_inplace = F.sigmoid_(x.copy())
    for y in (s, t, s_inplace):
        assert y.dtype == dtype and y.shape == x.shape
        _finite(y)
    np.testing.assert_array_equal(s, s_inplace)
    assert np.all((0 <= s) & (s <= 1)) and np.all((-1 <= t) & (t <= 1))
    ref = special.expit(x.astype(np.float64))
    assert np.max(np.abs(s - ref)) <= 2 * eps                         # absolute accuracy to the dtype's precision
    np.testing.assert_allclose(t, np.tanh(x.astype(np.float64)), rtol=2 * eps, atol=2 * eps)
    big = np.abs(x) >= 1e4
    np.testing.assert_array_equal(s[big], (x[big] > 0).astype(dtype))  # exactly 0 or 1 when saturated
    np.testing.assert_array_equal(t[big], np.sign(x[big]))
    assert s[0] == 0.5 and t[0] == 0.0
    np.testing.assert_allclose(F.sigmoid(-x), 1 - s, atol=2 * eps)     # symmetry


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_is_monotone_on_a_fine_grid(dtype):
    x = np.linspace(-60, 60, 200_001).astype(dtype)
    with strict_fp():
        s = F.sigmoid(x)
    assert np.all(np.diff(s) >= 0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_family_with_huge_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e30, 1e30, 3.0], [5.0, 5.0, 5.0], [-3e38, -3e38, -3e38]], dtype=dtype)
    with strict_fp():
        ls, sm, sp = F.log_softmax(x), F.softmax(x), F.softplus(x)
    _finite(ls, sm, sp)
    np.testing.assert_allclose(sm.sum(axis=1), 1, rtol=4 * np.finfo(dtype).eps)
    assert ls[0, 0] == 0 and ls[0, 1] == -2e4
    np.testing.assert_allclose(ls[2], np.log(1 / 3), rtol=1e-6)
    assert sp[0, 0] == 1e4 and sp[0, 1] == 0 and sp[1, 1] == dtype(1e30)


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_passes_through_the_functions(dtype):
    x = np.array([np.nan, 1.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (F.sigmoid, F.tanh, F.relu):   # (softplus = np.logaddexp warns on NaN; it is unused)
            y = f(x)
            assert np.isnan(y[0]) and np.isfinite(y[1])


# ---- layers --------------------------------------------------------------------------------------------------------
def _recurrent_layers(dtype):
    kw = dict(dtype=dtype)
    return [
        ("rnn-tanh", minirnn.RNN(3, 4, num_layers=2, **kw, rng=0)),
        ("rnn-relu", minirnn.RNN(3, 4, nonlinearity="relu", bidirectional=True, **kw, rng=1)),
        ("rnn-sigmoid", minirnn.RNN(3, 4, nonlinearity="sigmoid", **kw, rng=2)),
        ("gru", minirnn.GRU(3, 4, num_layers=2, bidirectional=True, **kw, rng=3)),
        ("lstm", minirnn.LSTM(3, 4, num_layers=2, **kw, rng=4)),
        ("lstm-proj", minirnn.LSTM(3, 5, proj_size=2, bidirectional=True, **kw, rng=5)),
    ]


def _cells(dtype):
    return [("rnncell-" + n, minirnn.RNNCell(3, 4, nonlinearity=n, dtype=dtype, rng=i))
            for i, n in enumerate(("tanh", "relu", "sigmoid"))] + [
        ("grucell", minirnn.GRUCell(3, 4, dtype=dtype, rng=7)), ("lstmcell", minirnn.LSTMCell(3, 4, dtype=dtype, rng=8))]


def _zero_grads(m):
    for p in m.parameters():
        p.grad = None


def _grads(m):
    return [p.grad for p in m.parameters()]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("scale", [1e5, -1e5, 1e4])
@pytest.mark.parametrize("use_lengths", [False, True])
def test_recurrent_layers_with_huge_preactivations(dtype, scale, use_lengths):
    rng = np.random.default_rng(0)
    x = (scale * rng.standard_normal((6, 3, 3))).astype(dtype)        # W_ih x ~ 1e5
    x[:, 0] = scale                                                     # one sequence far into saturation
    lengths = [6, 2, 4] if use_lengths else None
    for name, m in _recurrent_layers(dtype):
        _zero_grads(m)
        D = 2 if m.bidirectional else 1
        P = m.proj_size or m.hidden_size
        h0 = (0.9 * np.ones((m.num_layers * D, 3, P))).astype(dtype)
        with strict_fp():
            if isinstance(m, minirnn.LSTM):
                c0 = (1e3 * np.ones((m.num_layers * D, 3, m.hidden_size))).astype(dtype)
                out, (hn, cn) = m(x, (h0, c0), lengths=lengths)
                dx, (dh0, dc0) = m.backward(rng.standard_normal(out.shape).astype(dtype),
                                            (np.ones_like(hn), np.ones_like(cn)))
                _finite(cn, dc0)
            else:
                out, hn = m(x, h0, lengths=lengths)
                dx, dh0 = m.backward(rng.standard_normal(out.shape).astype(dtype), np.ones_like(hn))
        _finite(out, hn, dx, dh0, *_grads(m))
        if name in ("rnn-tanh", "gru"):
            assert np.all(np.abs(out) <= 1)
        if name == "rnn-sigmoid":
            assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("dtype", FLOATS)
def test_cells_with_huge_preactivations(dtype):
    rng = np.random.default_rng(1)
    x = (1e5 * rng.standard_normal((4, 3))).astype(dtype)
    for name, cell in _cells(dtype):
        with strict_fp():
            if name == "lstmcell":
                state = (np.ones((4, 4), dtype), (-1e4 * np.ones((4, 4))).astype(dtype))
                for _ in range(3):
                    state = cell(x, state)
                for _ in range(3):
                    dx, (dh, dc) = cell.backward((np.ones((4, 4), dtype), np.ones((4, 4), dtype)))
                _finite(state, dx, dh, dc)
            else:
                h = np.ones((4, 4), dtype)
                for _ in range(3):
                    h = cell(x, h)
                for _ in range(3):
                    dx, dh = cell.backward(np.ones((4, 4), dtype))
                _finite(h, dx, dh)
        _finite(*_grads(cell))


@pytest.mark.parametrize("dtype", FLOATS)
def test_feedforward_layers_with_huge_values(dtype):
    rng = np.random.default_rng(2)
    lin = minirnn.Linear(5, 3, dtype=dtype, rng=0)
    emb = minirnn.Embedding(7, 4, padding_idx=0, dtype=dtype, rng=0)
    emb.weight.data *= dtype(1e5)
    drop = minirnn.Dropout(0.5, rng=0)
    x = (1e5 * rng.standard_normal((2, 4, 5))).astype(dtype)
    with strict_fp():
        y = lin(x)
        dx = lin.backward((1e4 * np.ones(y.shape)).astype(dtype))
        e = emb(rng.integers(0, 7, size=(3, 6)))
        emb.backward(np.ones(e.shape, dtype))
        z = drop(x)
        dz = drop.backward(x)
    _finite(y, dx, e, z, dz, lin.weight.grad, lin.bias.grad, emb.weight.grad)


@pytest.mark.parametrize("dtype", FLOATS)
def test_losses_with_logits_of_1e4(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]], dtype=dtype)
    y = np.array([1, 0, 2])                                    # the worst targets: the least likely classes
    with strict_fp():
        for loss_fn in (minirnn.CrossEntropyLoss(), minirnn.CrossEntropyLoss(label_smoothing=0.1),
                        minirnn.CrossEntropyLoss(reduction="none")):
            loss = loss_fn(x, y)
            g = loss_fn.backward(None if np.ndim(loss) == 0 else np.ones_like(loss))
            _finite(np.asarray(loss), g)
        nll = minirnn.NLLLoss()
        loss = nll(F.log_softmax(x, axis=1), y)
        _finite(np.asarray(loss), nll.backward())
        assert loss == pytest.approx((2e4 + (2e4 + np.log(2)) + (1e4 + np.log(2))) / 3, rel=1e-6)
        bce = minirnn.BCEWithLogitsLoss(pos_weight=np.array([2.0, 1.0, 3.0], dtype))
        t = np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=dtype)
        loss = bce(x, t)
        _finite(np.asarray(loss), bce.backward())
        mse = minirnn.MSELoss()
        loss = mse(x, np.zeros_like(x))
        _finite(np.asarray(loss), mse.backward())


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_input_passes_through_silently(dtype):
    x = np.random.default_rng(3).standard_normal((5, 2, 3)).astype(dtype)
    x[2, 1, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, m in _recurrent_layers(dtype):
            out = m(x)[0]
            assert np.isnan(out[2:, 1]).any() and np.all(np.isfinite(out[:, 0]))   # sequence 0 untouched
            assert np.all(np.isfinite(out[:2, 1])) or m.bidirectional
            dx = m.backward(np.ones_like(out))[0]
            assert dx.shape == x.shape
        lin = minirnn.Linear(3, 2, dtype=dtype, rng=0)
        y = lin(x)
        assert np.isnan(y[2, 1]).all() and np.isfinite(y[0]).all()
        lin.backward(np.ones_like(y))


# ---- determinism --------------------------------------------------------------------------------------------------
def _training_run(seed, steps=4):
    """A small model with every random part (init, dropout between layers, Dropout) trained by Adam + clipping."""
    minirnn.manual_seed(seed)

    class Model(minirnn.Module):
        def __init__(self):
            super().__init__()
            self.emb = minirnn.Embedding(11, 6, padding_idx=0)
            self.rnn = minirnn.LSTM(6, 8, num_layers=2, dropout=0.3, batch_first=True, bidirectional=True)
            self.drop = minirnn.Dropout(0.2)
            self.fc = minirnn.Linear(16, 3)

        def forward(self, idx, lengths):
            out, _ = self.rnn(self.emb(idx), lengths=lengths)
            self._lengths = lengths
            last = out[np.arange(len(lengths)), np.asarray(lengths) - 1]
            self._shape = out.shape
            return self.fc(self.drop(last))

        def backward(self, dy):
            dlast = self.drop.backward(self.fc.backward(dy))
            dout = np.zeros(self._shape, dlast.dtype)
            dout[np.arange(len(self._lengths)), np.asarray(self._lengths) - 1] = dlast
            dx, _ = self.rnn.backward(dout)
            self.emb.backward(dx)

    model = Model()
    loss_fn = minirnn.CrossEntropyLoss()
    opt = minirnn.Adam(model.parameters(), lr=1e-2)
    data = np.random.default_rng(seed + 100)
    losses = []
    for _ in range(steps):
        lengths = data.integers(1, 7, size=5)
        idx = data.integers(1, 11, size=(5, 6)) * (np.arange(6)[None, :] < lengths[:, None])
        y = data.integers(0, 3, size=5)
        opt.zero_grad()
        loss = loss_fn(model(idx, lengths), y)
        model.backward(loss_fn.backward())
        minirnn.clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        losses.append(loss)
    blob = b"".join(v.tobytes() for v in model.state_dict().values())
    blob += np.array(losses).tobytes()
    blob += b"".join(v.tobytes() for s in opt.state_dict()["state"].values() for v in s.values()
                     if isinstance(v, np.ndarray))
    return blob


def test_the_same_seed_gives_a_bit_identical_training_run():
    first, second = _training_run(0), _training_run(0)
    assert first == second
    assert _training_run(1) != first            # and the seed matters
