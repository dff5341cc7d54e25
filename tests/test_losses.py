"""Losses: finite-difference gradchecks (hypothesis), float64/float32 cross-checks against torch's autograd,
extreme logits, the nan of an all-ignored mean, the backward contract, and input errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minirnn
from minirnn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss

REDUCTIONS = ["mean", "sum", "none"]


def rel_err(a, b) -> float:
    """max |a - b| / max |b| (an all-zero b compares absolutely); nan must sit in the same places."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.array_equal(np.isnan(a), np.isnan(b)), "nan in different places"
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300 if np.any(b) else 1.0))


def shapes_for(kind: str, N: int, C: int, d: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, class-index target shape) for unbatched (C,), batched (N, C) and spatial (N, C, d)."""
    return {"unbatched": ((C,), ()), "batched": ((N, C), (N,)), "spatial": ((N, C, d), (N, d))}[kind]


# ---- strategies -----------------------------------------------------------------------------------------------
@st.composite
def ce_case(draw, probs: bool = False):
    kind = draw(st.sampled_from(["unbatched", "batched", "spatial"]))
    N, C, d = draw(st.integers(1, 3)), draw(st.integers(2, 4)), draw(st.integers(1, 3))
    xshape, tshape = shapes_for(kind, N, C, d)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal(xshape) * draw(st.sampled_from([0.5, 2.0, 6.0]))
    weight = rng.uniform(0.2, 2.0, C) if draw(st.booleans()) else None
    smoothing = draw(st.sampled_from([0.0, 0.0, 0.1, 0.45, 1.0]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    if probs:
        t = rng.dirichlet(np.ones(C), size=int(np.prod(tshape, dtype=int)))            # rows sum to 1
        t = np.moveaxis(t.reshape(tshape + (C,)), -1, 1 if len(xshape) > 1 else 0)
        if draw(st.booleans()):
            t = t * rng.uniform(0.5, 1.5, t.shape)                                    # torch does not normalise
        return x, t, dict(weight=weight, reduction=reduction, label_smoothing=smoothing)
    t = rng.integers(0, C, tshape)
    ignore_index = draw(st.sampled_from([-100, 0, C - 1]))
    if t.ndim and t.size > 1 and draw(st.booleans()):
        t.flat[0] = ignore_index                                                      # ignored entry present
        t.flat[-1] = (ignore_index + 1) % C if ignore_index >= 0 else 1               # and a counted one
    if reduction == "mean" and np.all(t == ignore_index):      # keep the mean defined (see the nan tests)
        t.flat[0] = (ignore_index + 1) % C
    return x, t, dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)


@st.composite
def bce_case(draw):
    shape = draw(st.sampled_from([(4,), (2, 3), (2, 2, 3)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal(shape) * draw(st.sampled_from([0.5, 3.0, 20.0]))
    t = rng.uniform(0, 1, shape) if draw(st.booleans()) else rng.integers(0, 2, shape).astype(np.float64)
    weight = draw(st.sampled_from([None, "last", "full", "scalar"]))
    weight = {None: None, "last": rng.uniform(0.2, 2, shape[-1:]), "full": rng.uniform(0.2, 2, shape),
              "scalar": np.float64(0.7)}[weight]
    pos_weight = rng.uniform(0.2, 3, shape[-1:]) if draw(st.booleans()) else None
    return x, t, dict(weight=weight, pos_weight=pos_weight, reduction=draw(st.sampled_from(REDUCTIONS)))


# ---- finite differences ---------------------------------------------------------------------------------------
@given(ce_case())
def test_cross_entropy_gradcheck_class_indices(case):
    x, t, kw = case
    report = minirnn.gradcheck(CrossEntropyLoss(**kw), [x, t])
    assert report.ok, report


@given(ce_case(probs=True))
def test_cross_entropy_gradcheck_class_probabilities(case):
    x, t, kw = case
    report = minirnn.gradcheck(CrossEntropyLoss(**kw), [x, t])
    assert report.ok, report


@given(ce_case())
def test_nll_gradcheck(case):
    x, t, kw = case
    kw.pop("label_smoothing")
    report = minirnn.gradcheck(NLLLoss(**kw), [x, t])
    assert report.ok, report


@given(bce_case())
def test_bce_with_logits_gradcheck(case):
    x, t, kw = case
    report = minirnn.gradcheck(BCEWithLogitsLoss(**kw), [x, t])
    assert report.ok, report


@given(st.sampled_from([(3,), (2, 3), (2, 1, 3)]), st.sampled_from(REDUCTIONS), st.integers(0, 2**31))
def test_mse_gradcheck(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    report = minirnn.gradcheck(MSELoss(reduction), [rng.standard_normal(shape), rng.standard_normal(shape)])
    assert report.ok, report


def test_gradcheck_catches_a_wrong_backward():
    """The check the tests above rely on does fail for a wrong gradient (so they can fail)."""
    class Broken(CrossEntropyLoss):
        def backward(self, upstream=None):
            return 1.01 * super().backward(upstream)
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert not minirnn.gradcheck(Broken(), [x, np.array([0, 1, 3])]).ok


# ---- torch cross-checks -----------------------------------------------------------------------------------------
def _torch_case(loss_name: str, x, t, kw, upstream, dtype):
    """torch's value and input gradient for the same call."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    xt = torch.tensor(x, dtype=tdt, requires_grad=True)
    kw = dict(kw)
    for key in ("weight", "pos_weight"):
        if kw.get(key) is not None:
            kw[key] = torch.tensor(np.asarray(kw[key]), dtype=tdt)
    if np.issubdtype(np.asarray(t).dtype, np.integer):
        tt = torch.tensor(np.asarray(t), dtype=torch.long)
    else:
        tt = torch.tensor(np.asarray(t), dtype=tdt)
    fn = {"ce": F.cross_entropy, "nll": F.nll_loss, "bce": F.binary_cross_entropy_with_logits,
          "mse": F.mse_loss}[loss_name]
    out = fn(xt, tt, **kw)
    out.backward(torch.tensor(upstream, dtype=tdt))
    return out.detach().numpy(), xt.grad.numpy()


def _ours(loss_name: str, x, t, kw):
    cls = {"ce": CrossEntropyLoss, "nll": NLLLoss, "bce": BCEWithLogitsLoss, "mse": MSELoss}[loss_name]
    return cls(**kw)


def _compare(loss_name, x, t, kw, dtype, tol, seed=0):
    x = np.asarray(x).astype(dtype)
    if np.issubdtype(np.asarray(t).dtype, np.floating):
        t = np.asarray(t).astype(dtype)
    fn = _ours(loss_name, x, t, kw)
    value = fn(x, t)
    upstream = (np.random.default_rng(seed).standard_normal(np.shape(value)).astype(dtype)
                if kw.get("reduction") == "none" else 0.75)
    grad = fn.backward(upstream)
    ref_value, ref_grad = _torch_case(loss_name, x, t, kw, upstream, dtype)
    assert grad.dtype == dtype and grad.shape == x.shape
    if kw.get("reduction") == "none":
        assert isinstance(value, np.ndarray) and value.dtype == dtype
    else:
        assert isinstance(value, float)
    assert rel_err(value, ref_value) <= tol, (value, ref_value)
    assert rel_err(grad, ref_grad) <= tol


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@given(case=ce_case())
def test_cross_entropy_matches_torch(dtype, tol, case):
    x, t, kw = case
    _compare("ce", x, t, kw, dtype, tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@given(case=ce_case(probs=True))
def test_cross_entropy_probabilities_match_torch(dtype, tol, case):
    x, t, kw = case
    _compare("ce", x, t, kw, dtype, tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@given(case=ce_case())
def test_nll_matches_torch(dtype, tol, case):
    x, t, kw = case
    kw.pop("label_smoothing")
    _compare("nll", x, t, kw, dtype, tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@given(case=bce_case())
def test_bce_with_logits_matches_torch(dtype, tol, case):
    x, t, kw = case
    _compare("bce", x, t, kw, dtype, tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_torch(dtype, tol, reduction):
    rng = np.random.default_rng(3)
    _compare("mse", rng.standard_normal((3, 5)), rng.standard_normal((3, 5)), dict(reduction=reduction), dtype, tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_larger_spatial_cross_entropy_matches_torch(dtype, tol, weighted, smoothing):
    """A (N, C, d1, d2) batch of realistic size, ignored targets included (one case per option, no shrinking)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 7, 5, 4)) * 3
    t = rng.integers(0, 7, (8, 5, 4))
    t[rng.random(t.shape) < 0.2] = -1
    kw = dict(weight=rng.uniform(0.1, 3, 7) if weighted else None, ignore_index=-1, label_smoothing=smoothing)
    for reduction in REDUCTIONS:
        _compare("ce", x, t, dict(kw, reduction=reduction), dtype, tol)


# ---- extremes and nan ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_and_silent(dtype):
    """Logits of +-1e4 (pytest turns any RuntimeWarning into an error)."""
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    t = np.array([1, 2, 0])
    probs = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)
    cases = [(CrossEntropyLoss(label_smoothing=0.1, weight=[1.0, 2.0, 0.5]), t),
             (CrossEntropyLoss(reduction="none"), t), (CrossEntropyLoss(label_smoothing=0.2), probs),
             (NLLLoss(), t), (BCEWithLogitsLoss(pos_weight=np.array([2.0, 0.5, 1.0])), probs),
             (MSELoss(), probs)]
    for fn, target in cases:
        value = fn(x, target)
        grad = fn.backward(np.ones(np.shape(value), dtype) if np.ndim(value) else None)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), type(fn).__name__
        assert grad.dtype == dtype
    # the exact value: the wrong class is 2e4 below the right one
    fn = CrossEntropyLoss(reduction="none")
    np.testing.assert_allclose(fn(x, t), [2e4, 0.0, np.log(2.0)], rtol=1e-6)


def test_extreme_logits_match_torch():
    torch = pytest.importorskip("torch")  # noqa: F841
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 3.0, 1e4]])
    _compare("ce", x, np.array([1, 1]), dict(label_smoothing=0.1, reduction="mean"), np.float64, 1e-9)
    _compare("bce", x, np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]), dict(reduction="sum"), np.float64, 1e-9)


@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_mean_is_nan_without_warning_and_zero_grad(smoothing, weighted):
    x = np.random.default_rng(0).standard_normal((3, 4))
    fn = CrossEntropyLoss(weight=np.ones(4) * 2 if weighted else None, label_smoothing=smoothing)
    assert np.isnan(fn(x, np.full(3, -100)))
    np.testing.assert_array_equal(fn.backward(), np.zeros_like(x))      # what torch gives
    fn_sum = CrossEntropyLoss(reduction="sum", label_smoothing=smoothing)
    assert fn_sum(x, np.full(3, -100)) == 0.0


def test_zero_weight_mean_matches_torch_nan_pattern():
    """Weights summing to 0 over counted targets: torch's 0/0 gives nan rows for counted targets, 0 for ignored."""
    x = np.random.default_rng(1).standard_normal((3, 4))
    fn = CrossEntropyLoss(weight=np.zeros(4))
    assert np.isnan(fn(x, np.array([0, -100, 2])))
    g = fn.backward()
    assert np.isnan(g[[0, 2]]).all() and not g[1].any()
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(xt, torch.tensor([0, -100, 2]), weight=torch.zeros(4, dtype=torch.float64)
                                      ).backward()
    assert rel_err(g, xt.grad.numpy()) == 0.0


@pytest.mark.parametrize("loss", [CrossEntropyLoss, MSELoss, BCEWithLogitsLoss])
def test_empty_batch_mean_is_nan(loss):
    x = np.zeros((0, 3))
    target = np.zeros((0,), dtype=np.int64) if loss is CrossEntropyLoss else np.zeros((0, 3))
    fn = loss()
    assert np.isnan(fn(x, target))
    assert fn.backward().shape == (0, 3)


# ---- semantics ------------------------------------------------------------------------------------------------
def test_unbatched_matches_batched_and_ignored_gives_zero():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(5)
    w = rng.uniform(0.5, 2, 5)
    one = CrossEntropyLoss(weight=w, label_smoothing=0.2, reduction="none")
    batch = CrossEntropyLoss(weight=w, label_smoothing=0.2, reduction="none")
    v1 = one(x, np.int64(3))
    assert isinstance(v1, np.ndarray) and v1.shape == ()
    g1 = one.backward()                                   # a 0-d 'none' output needs no upstream
    vb = batch(x[None], np.array([3]))
    gb = batch.backward(np.ones(1))
    assert abs(float(v1) - vb[0]) < 1e-14 and np.allclose(g1, gb[0], rtol=0, atol=1e-15)
    assert CrossEntropyLoss(reduction="none", ignore_index=3)(x, 3) == 0.0


def test_class_indices_equal_one_hot_probabilities():
    """Without smoothing or weights, index targets and one-hot probability targets are the same loss."""
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((4, 3, 2)), rng.integers(0, 3, (4, 2))
    onehot = np.moveaxis(np.eye(3)[t], -1, 1)
    a, b = CrossEntropyLoss(), CrossEntropyLoss()
    assert abs(a(x, t) - b(x, onehot)) < 1e-13
    np.testing.assert_allclose(a.backward(), b.backward(), rtol=0, atol=1e-15)


def test_cross_entropy_equals_nll_of_log_softmax():
    from scipy.special import log_softmax
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    t[0] = -100
    w = rng.uniform(0.1, 2, 5)
    ce, nll = CrossEntropyLoss(weight=w), NLLLoss(weight=w)
    assert abs(ce(x, t) - nll(log_softmax(x, axis=1), t)) < 1e-13


def test_backward_is_lifo_and_no_grad_caches_nothing():
    rng = np.random.default_rng(5)
    fn = CrossEntropyLoss()
    x1, x2 = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    fn(x1, np.array([0, 1]))
    fn(x2, np.array([2, 2, 1, 0]))
    assert fn.backward().shape == (4, 3)
    assert fn.backward().shape == (2, 3)
    with pytest.raises(RuntimeError, match="nothing to back-propagate"):
        fn.backward()
    with minirnn.no_grad():
        fn(x1, np.array([0, 1]))
    assert fn._cache == []


def test_bad_upstream_keeps_the_cache():
    fn = MSELoss(reduction="none")
    x = np.ones((2, 3))
    fn(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"upstream.*\(2, 3\)"):
        fn.backward(np.ones(3))
    with pytest.raises(ValueError, match="upstream"):
        fn.backward()
    np.testing.assert_array_equal(fn.backward(np.ones((2, 3))), 2 * x)
    mean = CrossEntropyLoss()
    mean(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="upstream.*scalar"):
        mean.backward(np.ones(2))
    assert mean.backward(2.0).shape == (2, 3)


def test_float32_stays_float32_and_targets_do_not_upcast():
    x = np.zeros((2, 3), np.float32)
    for fn, t in [(MSELoss(reduction="none"), np.ones((2, 3))), (BCEWithLogitsLoss(reduction="none"),
                                                                  np.ones((2, 3), dtype=np.int64)),
                  (CrossEntropyLoss(reduction="none", weight=np.ones(3)), np.array([0, 2]))]:
        assert fn(x, t).dtype == np.float32
        assert fn.backward(np.ones(fn(x, t).shape, np.float32)).dtype == np.float32


# ---- input errors -------------------------------------------------------------------------------------------------
def test_target_out_of_range_names_target_classes_and_value():
    fn = CrossEntropyLoss()
    with pytest.raises(IndexError, match=r"target.*\[0, 4\).*C=4.*got 7"):
        fn(np.zeros((3, 4)), np.array([0, 7, 1]))
    with pytest.raises(IndexError, match="got -1"):
        fn(np.zeros((3, 4)), np.array([0, -1, 1]))
    assert np.isfinite(fn(np.zeros((3, 4)), np.array([0, -100, 1])))   # ignore_index itself is fine
    with pytest.raises(IndexError, match="target"):
        NLLLoss(ignore_index=2)(np.zeros((2, 4)), np.array([2, 4]))


@pytest.mark.parametrize("x_shape,t,exc,match", [
    ((3, 4), np.array([0, 1]), ValueError, r"target: expected class indices of shape \(3,\).*got shape \(2,\)"),
    ((3, 4, 2), np.zeros((3, 4), np.int64), ValueError, r"target.*\(3, 2\)"),
    ((4,), np.array([1]), ValueError, r"target.*shape \(\)"),
    ((3, 4), np.array([0.0, 1.0, 2.0]), TypeError, "target.*integer class indices.*float64"),
    ((3, 4), np.array([True, False, True]), TypeError, "target.*bool"),
    ((3, 4), np.zeros((3, 4), np.int64), TypeError, "target.*class probabilities.*floating"),
])
def test_cross_entropy_target_errors(x_shape, t, exc, match):
    with pytest.raises(exc, match=match):
        CrossEntropyLoss()(np.zeros(x_shape), t)


def test_constructor_and_input_errors():
    with pytest.raises(ValueError, match="reduction.*'mean'.*got 'avg'"):
        CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction=None)
    with pytest.raises(ValueError, match=r"label_smoothing.*\[0.0, 1.0\].*1.5"):
        CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight.*1-D.*\(2, 2\)"):
        CrossEntropyLoss(weight=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"weight: expected shape \(C,\) = \(4,\).*\(3,\)"):
        CrossEntropyLoss(weight=np.ones(3))(np.zeros((2, 4)), np.array([0, 1]))
    with pytest.raises(TypeError, match="ignore_index"):
        CrossEntropyLoss(ignore_index=1.5)
    with pytest.raises(ValueError, match="ignore_index.*probabilit"):
        CrossEntropyLoss(ignore_index=0)(np.zeros((2, 3)), np.full((2, 3), 1 / 3))
    with pytest.raises(TypeError, match="input.*float32 or float64.*int64"):
        CrossEntropyLoss()(np.zeros((2, 3), np.int64), np.array([0, 1]))
    with pytest.raises(TypeError, match="input"):
        MSELoss()("abc", np.zeros(3))
    with pytest.raises(ValueError, match="input.*0-d"):
        CrossEntropyLoss()(np.float64(1.0), np.int64(0))


def test_elementwise_target_shape_must_equal_input_shape():
    for fn in (MSELoss(), BCEWithLogitsLoss()):
        with pytest.raises(ValueError, match=r"target: expected the input's shape \(2, 3\), got \(3,\)"):
            fn(np.zeros((2, 3)), np.zeros(3))
        with pytest.raises(ValueError, match="target"):
            fn(np.zeros((2, 3)), np.zeros((1, 3)))
    with pytest.raises(TypeError, match="target.*real numeric"):
        MSELoss()(np.zeros(2), np.array(["a", "b"]))


def test_bce_weight_shapes():
    x, t = np.zeros((2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"pos_weight.*broadcasts to the input's shape \(2, 3\).*\(2,\)"):
        BCEWithLogitsLoss(pos_weight=np.ones(2))(x, t)
    with pytest.raises(ValueError, match=r"weight.*\(4, 2, 3\)"):
        BCEWithLogitsLoss(weight=np.ones((4, 2, 3)))(x, t)
    with pytest.raises(TypeError, match="pos_weight"):
        BCEWithLogitsLoss(pos_weight=np.array(["x"]))
    assert np.isfinite(BCEWithLogitsLoss(weight=np.ones((2, 1)), pos_weight=np.ones(3))(x, t))


# ---- extreme finite float32 inputs: torch's values, no RuntimeWarning (pytest turns warnings into errors) ----------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("x, t", [
    (np.full(4, 2e38), np.zeros(4)),                     # 2 (x - t) overflows; torch's mean gradient (2/N)(x - t) not
    (np.full(3, 1.7e38), np.full(3, -1.7e38)),           # x - t = 3.4e38, just finite
    (np.array([3e38, -3e38]), np.array([-1e38, 1e38])),  # x - t overflows: inf, as torch's
    (np.array([1e20, -1e20, 1.0]), np.array([0.0, 0.0, 0.0])),   # the square overflows
])
def test_mse_at_extreme_float32_inputs_matches_torch(reduction, x, t):
    torch = pytest.importorskip("torch")
    x, t = x.astype(np.float32), t.astype(np.float32)
    f = MSELoss(reduction=reduction)
    loss = f(x, t)
    g = f.backward(None if reduction != "none" else np.ones_like(x))
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.mse_loss(xt, torch.tensor(t), reduction=reduction)
    (lt.sum() if reduction == "none" else lt).backward()
    np.testing.assert_array_equal(np.asarray(loss, np.float32), lt.detach().numpy())
    np.testing.assert_array_equal(g, xt.grad.numpy())
    assert g.dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("v", [1e38, 3e38])
def test_cross_entropy_at_extreme_float32_logits_matches_torch(reduction, v):
    torch = pytest.importorskip("torch")
    x = np.array([[v, -v, 0.0], [-v, v, 0.0], [v, v, -v], [0.0, 0.0, v]], np.float32)
    t = np.array([1, 0, 2, 0])
    f = CrossEntropyLoss(reduction=reduction)
    loss = f(x, t)
    g = f.backward(None if reduction != "none" else np.ones(4, np.float32))
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t), reduction=reduction)
    (lt.sum() if reduction == "none" else lt).backward()
    np.testing.assert_array_equal(np.asarray(loss, np.float32), lt.detach().numpy())   # the float32 sum's inf too
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-6, atol=0)
