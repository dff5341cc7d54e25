"""Linear, Embedding and Dropout: finite differences, torch cross-checks, initialisation and dtypes.

Each backward is checked by central differences (float64) and against torch's autograd (float64 to 1e-9,
float32 to 1e-5); the torch parts skip when torch cannot be imported.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minirnn as mr
from helpers import assert_close, randomize

# ------------------------------------------------------------------------------------------------------------
# Finite differences
# ------------------------------------------------------------------------------------------------------------
@given(st.integers(1, 7), st.integers(1, 7), st.lists(st.integers(1, 4), max_size=2), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_linear_gradcheck(in_f, out_f, lead, bias, seed):
    rng = np.random.default_rng(seed)
    m = mr.Linear(in_f, out_f, bias=bias, dtype=np.float64, rng=rng)
    randomize(m, rng)
    x = rng.uniform(-2, 2, tuple(lead) + (in_f,))
    report = mr.gradcheck(m, (x,))
    assert report, str(report)
    assert {"inputs[0]", "weight"} <= set(report.checked)
    assert ("bias" in report.checked) == bias


@given(st.integers(1, 9), st.integers(1, 6), st.lists(st.integers(1, 4), min_size=0, max_size=2),
       st.integers(0, 2**32 - 1))
def test_embedding_gradcheck(n, dim, shape, seed):
    """Repeated indices must add up; the FD check runs without padding_idx (the padding row is tested below)."""
    rng = np.random.default_rng(seed)
    m = mr.Embedding(n, dim, dtype=np.float64, rng=rng)
    idx = rng.integers(0, n, size=tuple(shape))
    report = mr.gradcheck(m, (idx,))
    assert report, str(report)
    assert report.checked == ["weight"]


def test_embedding_repeated_indices_accumulate_and_padding_row_gets_no_gradient():
    m = mr.Embedding(5, 3, padding_idx=1, dtype=np.float64, rng=0)
    np.testing.assert_array_equal(m.weight.data[1], 0.0)
    idx = np.array([[1, 2, 2], [4, 1, 2]])
    y = m(idx)
    np.testing.assert_array_equal(y[idx == 1], 0.0)
    dy = np.arange(18, dtype=np.float64).reshape(2, 3, 3) + 1.0
    assert m.backward(dy) is None
    g = m.weight.grad
    np.testing.assert_array_equal(g[1], 0.0)                       # padding row: no gradient
    np.testing.assert_array_equal(g[2], dy[0, 1] + dy[0, 2] + dy[1, 2])
    np.testing.assert_array_equal(g[4], dy[1, 0])
    np.testing.assert_array_equal(g[[0, 3]], 0.0)
    # negative padding_idx counts from the end, as torch's
    assert mr.Embedding(5, 3, padding_idx=-1, rng=0).padding_idx == 4


def test_dropout_eval_is_identity_and_passes_gradcheck():
    rng = np.random.default_rng(0)
    d = mr.Dropout(0.5, rng=1)
    d.eval()
    x = rng.uniform(-2, 2, (3, 4))
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(x * 3), x * 3)
    report = mr.gradcheck(d, (x,))
    assert report, str(report)
    assert report.checked == ["inputs[0]"]


def test_dropout_training_mask_scaling_and_consistent_backward():
    rng = np.random.default_rng(0)
    p = 0.3
    d = mr.Dropout(p, rng=1)
    x = rng.uniform(0.5, 2.0, (200, 50))                     # no zeros: the mask can be read off y / x
    y = d(x)
    ratio = y / x
    kept = ratio != 0
    np.testing.assert_allclose(ratio[kept], 1.0 / (1.0 - p), rtol=1e-15)
    assert abs((~kept).mean() - p) < 0.02, "about a fraction p of the entries is dropped"
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(d.backward(dy), dy * ratio, rtol=1e-15)   # the very mask of the forward
    # two forwards, two backwards (LIFO): each backward uses its own forward's mask
    y1, y2 = d(x), d(x)
    assert not np.array_equal(y1, y2)
    np.testing.assert_allclose(d.backward(dy), dy * (y2 / x), rtol=1e-15)
    np.testing.assert_allclose(d.backward(dy), dy * (y1 / x), rtol=1e-15)
    assert not d._cache


def test_dropout_training_gradcheck_with_a_fixed_mask():
    class Fixed(mr.Module):
        def __init__(self):
            super().__init__()
            self.d = mr.Dropout(0.5)

        def forward(self, x):
            self.d.rng = np.random.default_rng(3)       # the same mask on every call
            return self.d(x)

        def backward(self, dy):
            return self.d.backward(dy)

    x = np.random.default_rng(1).uniform(-2, 2, (4, 5))
    f = Fixed()
    y = f(x)
    f.clear_cache()
    assert np.any(y == 0) and np.any(y != 0)
    assert mr.gradcheck(f, (x,))


def test_dropout_p_zero_is_identity_in_training():
    d = mr.Dropout(0.0)
    x = np.ones((3, 3))
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(x), x)


# ------------------------------------------------------------------------------------------------------------
# Initialisation and dtypes
# ------------------------------------------------------------------------------------------------------------
def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    m = mr.Linear(64, 200, rng=0)
    bound = 1 / np.sqrt(64)
    for p in (m.weight.data, m.bias.data):
        assert np.all(np.abs(p) <= bound)
    w = m.weight.data
    assert w.max() > 0.95 * bound and w.min() < -0.95 * bound          # fills the interval
    assert abs(w.mean()) < 0.02 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound            # the std of U(-b, b)
    assert abs(m.bias.data.std() - bound / np.sqrt(3)) < 0.2 * bound


def test_embedding_init_is_standard_normal_with_zero_padding_row():
    m = mr.Embedding(400, 50, padding_idx=7, rng=0)
    w = np.delete(m.weight.data, 7, axis=0)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02
    np.testing.assert_array_equal(m.weight.data[7], 0.0)


@pytest.mark.parametrize("make", [lambda **k: mr.Linear(3, 2, **k), lambda **k: mr.Embedding(4, 3, **k)],
                         ids=["Linear", "Embedding"])
def test_layer_dtypes(make):
    m = make(rng=0)
    assert all(p.dtype == np.float32 for p in m.parameters()), "float32 by default, as torch"
    m64 = make(rng=0, dtype=np.float64)
    assert all(p.dtype == np.float64 for p in m64.parameters())
    x = np.ones((2, 3)) if isinstance(m, mr.Linear) else np.array([0, 3])
    y = m64(x)
    assert y.dtype == np.float64
    m64.backward(np.ones_like(y))
    assert all(p.grad.dtype == np.float64 for p in m64.parameters())
    y32 = m(x.astype(np.float32) if isinstance(m, mr.Linear) else x)
    assert y32.dtype == np.float32
    m.backward(np.ones_like(y32))
    assert all(p.grad.dtype == np.float32 for p in m.parameters())


def test_seeded_layers_are_reproducible():
    for make in (lambda r: mr.Linear(5, 4, rng=r), lambda r: mr.Embedding(6, 3, rng=r)):
        a, b, c = make(np.random.default_rng(9)), make(np.random.default_rng(9)), make(np.random.default_rng(10))
        for (n, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
            np.testing.assert_array_equal(pa.data, pb.data)
            assert not np.array_equal(pa.data, pc.data), n
    mr.manual_seed(4)
    a = mr.Linear(5, 4)
    mr.manual_seed(4)
    b = mr.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


# ------------------------------------------------------------------------------------------------------------
# torch cross-checks
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("lead", [(), (4,), (3, 2)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias, lead, dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(lead) + bias)
    m = mr.Linear(5, 3, bias=bias, dtype=dtype, rng=rng)
    randomize(m, rng)
    tm = torch.nn.Linear(5, 3, bias=bias).to(torch.float64 if dtype == np.float64 else torch.float32)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    x = rng.uniform(-2, 2, lead + (5,)).astype(dtype)
    dy = rng.standard_normal(lead + (3,)).astype(dtype)
    y = m(x)
    dx = m.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    (yt * torch.from_numpy(dy)).sum().backward()
    assert y.dtype == dtype and dx.dtype == dtype
    assert_close(y, yt.detach().numpy(), tol, "y")
    assert_close(dx, xt.grad.numpy(), tol, "dx")
    tg = dict(tm.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(tg)
    for n, p in m.named_parameters():
        assert_close(p.grad, tg[n].grad.numpy(), tol, n)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx, dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    tm = torch.nn.Embedding(6, 4, padding_idx=padding_idx).to(torch.float64 if dtype == np.float64 else torch.float32)
    m = mr.Embedding(6, 4, padding_idx=padding_idx, dtype=dtype, rng=rng)
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})   # torch -> ours, unchanged
    if padding_idx is not None:
        np.testing.assert_array_equal(m.weight.data[padding_idx], 0.0)
    idx = np.array([[0, 2, 5, 2], [5, 5, 1, 2], [3, 4, 0, 0]])      # repeats, the padding row (2 and 5) used
    dy = rng.standard_normal(idx.shape + (4,)).astype(dtype)
    y = m(idx)
    m.backward(dy)
    yt = tm(torch.from_numpy(idx))
    (yt * torch.from_numpy(dy)).sum().backward()
    assert_close(y, yt.detach().numpy(), tol, "y")
    assert_close(m.weight.grad, tm.weight.grad.numpy(), tol, "weight grad")
    # ours -> torch, unchanged
    randomize(m, rng)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    with mr.no_grad():
        assert_close(m(idx), tm(torch.from_numpy(idx)).detach().numpy(), tol, "y after ours -> torch")
