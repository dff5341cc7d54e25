"""Optimizers and gradient clipping against torch.optim / torch.nn.utils on identical parameters and gradients:
every option combination, several steps with fresh gradients, skipped (None) gradients, param groups,
state_dict round trips (ours and torch's), dtype preservation and hyperparameter errors."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import minirnn
from minirnn import SGD, Adagrad, Adam, AdamW, Parameter, RMSprop, clip_grad_norm, clip_grad_value

SHAPES = [(3, 4), (5,), (2, 2), (3,)]
TOL = {np.float64: 1e-12, np.float32: 1e-6}


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _combos(**options):
    keys = list(options)
    return [dict(zip(keys, values)) for values in itertools.product(*options.values())]


CONFIGS = (
    [("SGD", kw) for kw in _combos(lr=[0.1], momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                                   weight_decay=[0.0, 0.1], maximize=[False, True])
     if not (kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0))]
    + [("SGD", {})]                                                                       # torch's defaults
    + [(name, kw) for name in ("Adam", "AdamW") for kw in _combos(
        lr=[0.05], weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True])]
    + [("Adam", dict(betas=(0.3, 0.8), eps=1e-3)), ("Adam", {}), ("AdamW", {})]           # lerp's other branch
    + [("Adagrad", kw) for kw in _combos(lr=[0.1], lr_decay=[0.0, 0.2], weight_decay=[0.0, 0.1],
                                         initial_accumulator_value=[0.0, 0.5], maximize=[False, True])]
    + [("Adagrad", {})]
    + [("RMSprop", kw) for kw in _combos(lr=[0.01], alpha=[0.99, 0.3], centered=[False, True],
                                         momentum=[0.0, 0.9], weight_decay=[0.0, 0.1], maximize=[False, True])]
    + [("RMSprop", {})]
)


def _config_id(config):
    name, kw = config
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


def _problem(dtype, steps: int, seed: int = 0):
    """Initial values and per-step gradients; a None marks a parameter without a gradient in that step.

    Parameter 2 misses every other step and parameter 3 never gets one (it must stay untouched).
    """
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = []
    for k in range(steps):
        row = [rng.standard_normal(s).astype(dtype) * (1 + k) for s in SHAPES]
        if k % 2 == 0:
            row[2] = None
        row[3] = None
        grads.append(row)
    return init, grads


def _set_grads(params, row, torch=None):
    for p, g in zip(params, row):
        if torch is None:
            p.grad = None if g is None else g.copy()
        else:
            p.grad = None if g is None else torch.tensor(g.copy())


def _ours(name, params, kw):
    return getattr(minirnn, name)(params, **kw)


def _theirs(torch, name, params, kw):
    kw = dict(kw)
    if name == "Adam":
        kw.setdefault("decoupled_weight_decay", False)
    return getattr(torch.optim, name)(params, foreach=False, **kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_matches_torch_over_several_steps(config, dtype):
    torch = pytest.importorskip("torch")
    name, kw = config
    init, grads = _problem(dtype, steps=5)
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt, ref = _ours(name, ours, kw), _theirs(torch, name, theirs, kw)
    for row in grads:
        _set_grads(ours, row)
        _set_grads(theirs, row, torch)
        opt.step()
        ref.step()
        for p, t in zip(ours, theirs):
            assert p.data.dtype == dtype
            assert rel_err(p.data, t.detach().numpy()) <= TOL[dtype]
    np.testing.assert_array_equal(ours[3].data, init[3])               # never had a gradient
    assert ours[3] not in opt.state or name == "Adagrad"               # torch's Adagrad builds state eagerly
    for p in ours:                                                     # state keeps the parameter's dtype
        for v in opt.state.get(p, {}).values():
            if isinstance(v, np.ndarray):
                assert v.dtype == dtype and v.shape == p.data.shape


def test_a_none_grad_leaves_parameter_and_state_untouched():
    for name in ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop"):
        a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
        opt = getattr(minirnn, name)([a, b], lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
        a.grad = np.ones(3)
        opt.step()
        before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state.get(b, {}).items()}
        a.grad = None
        b_data = b.data.copy()
        opt.step()
        np.testing.assert_array_equal(b.data, b_data)
        assert opt.state.get(b, {}).keys() == before.keys()
        a_state = opt.state[a]
        if "step" in a_state:
            assert a_state["step"] == 1                                 # a was skipped in the second step


def test_param_groups_with_their_own_hyperparameters_match_torch():
    torch = pytest.importorskip("torch")
    init, grads = _problem(np.float64, steps=3, seed=1)
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = Adam([{"params": ours[:2], "lr": 0.1, "amsgrad": True}, {"params": ours[2:]}], lr=0.01, weight_decay=0.1)
    ref = torch.optim.Adam([{"params": theirs[:2], "lr": 0.1, "amsgrad": True}, {"params": theirs[2:]}],
                           lr=0.01, weight_decay=0.1, foreach=False)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["weight_decay"] == 0.1
    for row in grads:
        _set_grads(ours, row)
        _set_grads(theirs, row, torch)
        opt.step()
        ref.step()
    for p, t in zip(ours, theirs):
        assert rel_err(p.data, t.detach().numpy()) <= 1e-12
    # a schedule changing lr in place is honoured at the next step, as in torch
    for g_ours, g_ref in zip(opt.param_groups, ref.param_groups):
        g_ours["lr"] *= 0.5
        g_ref["lr"] *= 0.5
    _set_grads(ours, grads[0])
    _set_grads(theirs, grads[0], torch)
    opt.step()
    ref.step()
    for p, t in zip(ours, theirs):
        assert rel_err(p.data, t.detach().numpy()) <= 1e-12


def test_named_parameters_and_add_param_group():
    lin = minirnn.Linear(3, 2, dtype=np.float64, rng=0)
    opt = SGD(lin.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["params"] == [lin.weight, lin.bias]
    extra = Parameter(np.zeros(2))
    opt.add_param_group({"params": extra, "lr": 1.0})
    assert opt.param_groups[1]["lr"] == 1.0 and opt.param_groups[1]["momentum"] == 0
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [lin.bias]})


# ---- checkpoints ------------------------------------------------------------------------------------------------
def _plain(value) -> bool:
    """Only NumPy arrays, plain numbers, strings, None and containers of them."""
    if isinstance(value, dict):
        return all(isinstance(k, (int, str)) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (np.ndarray, bool, int, float, str))


@pytest.mark.parametrize("config", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
                                    ("AdamW", dict(lr=0.05)),
                                    ("Adagrad", dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1)),
                                    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5))], ids=_config_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_round_trip_continues_like_an_uninterrupted_run(config, dtype):
    name, kw = config
    init, grads = _problem(dtype, steps=6, seed=2)
    straight = [Parameter(a.copy()) for a in init]
    opt = _ours(name, straight, kw)
    for row in grads:
        _set_grads(straight, row)
        opt.step()

    first = [Parameter(a.copy()) for a in init]
    opt1 = _ours(name, first, kw)
    for row in grads[:3]:
        _set_grads(first, row)
        opt1.step()
    saved = opt1.state_dict()
    assert _plain(saved)
    assert saved["param_groups"][0]["params"] == [0, 1, 2, 3]
    for row in grads[3:]:                      # the snapshot must not follow later steps
        _set_grads(first, row)
        opt1.step()
    # "restart": new parameters with the checkpointed values, a fresh optimizer, the saved state
    resumed = [Parameter(a.copy()) for a in init]
    replay = _ours(name, resumed, kw)
    for row in grads[:3]:
        _set_grads(resumed, row)
        replay.step()
    params_at_3 = [p.data.copy() for p in resumed]
    restarted = [Parameter(a) for a in params_at_3]
    opt2 = _ours(name, restarted, {**kw, "lr": 123.0})                 # lr comes back from the checkpoint
    flat = {str(k): v for k, v in saved["state"].items()}              # string keys, as an .npz would give
    opt2.load_state_dict({"state": flat, "param_groups": saved["param_groups"]})
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for row in grads[3:]:
        _set_grads(restarted, row)
        opt2.step()
    for a, b, c in zip(straight, restarted, first):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.data, c.data)


@pytest.mark.parametrize("name,kw", [("Adam", dict(lr=0.05, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9)),
                                     ("RMSprop", dict(centered=True, momentum=0.3)), ("Adagrad", dict(lr=0.1))])
def test_load_torch_state_dict_and_continue(name, kw):
    torch = pytest.importorskip("torch")
    init, grads = _problem(np.float64, steps=5, seed=3)
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    ref = _theirs(torch, name, theirs, kw)
    for row in grads[:3]:
        _set_grads(theirs, row, torch)
        ref.step()
    ours = [Parameter(t.detach().numpy().copy()) for t in theirs]
    opt = _ours(name, ours, {})
    opt.load_state_dict(ref.state_dict())
    for row in grads[3:]:
        _set_grads(ours, row)
        _set_grads(theirs, row, torch)
        opt.step()
        ref.step()
    for p, t in zip(ours, theirs):
        assert rel_err(p.data, t.detach().numpy()) <= 1e-12


def test_load_state_dict_errors_change_nothing():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = Adam([a, b], lr=0.1)
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.step()
    good = opt.state_dict()
    before = opt.state_dict()
    bad_shape = {"state": {0: {**good["state"][0], "exp_avg": np.zeros(4)}}, "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\].*\(4,\).*\(3,\)"):
        opt.load_state_dict(bad_shape)
    with pytest.raises(ValueError, match="2 parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": good["param_groups"] * 2})
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        opt.load_state_dict({"state": {}, "param_groups": [{**good["param_groups"][0], "params": [0]}]})
    with pytest.raises(ValueError, match="lr: Invalid learning rate"):
        opt.load_state_dict({"state": {}, "param_groups": [{**good["param_groups"][0], "lr": -1.0}]})
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for k in before["state"]:
        for key, v in before["state"][k].items():
            np.testing.assert_array_equal(after["state"][k][key], v)


# ---- the training-loop API --------------------------------------------------------------------------------------
def test_zero_grad_and_closure():
    a, b = Parameter(np.ones(3, np.float32)), Parameter(np.ones(2, np.float32))
    opt = SGD([a, b], lr=0.5)
    a.grad = np.full(3, 2.0, np.float32)
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and not a.grad.any() and b.grad is None
    opt.zero_grad()
    assert a.grad is None

    def closure():
        a.grad = np.ones(3, np.float32)
        return 7.0
    assert opt.step(closure) == 7.0
    np.testing.assert_array_equal(a.data, np.full(3, 0.5, np.float32))


def test_float32_is_never_upcast():
    """A float64 grad on a float32 parameter, float64 hyperparameters: the parameter and state stay float32."""
    for name in ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop"):
        p = Parameter(np.ones((2, 3), np.float32))
        kw = dict(lr=np.float64(0.1), weight_decay=np.float64(0.01))
        kw.update({"SGD": dict(momentum=0.9, nesterov=True), "Adam": dict(amsgrad=True),
                   "RMSprop": dict(centered=True, momentum=0.9)}.get(name, {}))
        opt = getattr(minirnn, name)([p], **kw)
        for _ in range(3):
            p.grad = np.full((2, 3), 0.5)                          # float64
            opt.step()
        assert p.data.dtype == np.float32 and p.data.flags.c_contiguous
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, np.ndarray))


def test_non_finite_gradients_propagate_silently_like_torch():
    torch = pytest.importorskip("torch")
    configs = [("Adam", dict(amsgrad=True)), ("RMSprop", dict(centered=True, momentum=0.5)), ("Adagrad", {}),
               ("SGD", dict(momentum=0.9))]
    for name, kw in configs:
        g = np.array([np.inf, -np.inf, np.nan, 1.0, -2.0])
        p = Parameter(np.zeros(5))
        t = torch.zeros(5, dtype=torch.float64, requires_grad=True)
        opt, ref = _ours(name, [p], kw), _theirs(torch, name, [t], kw)
        for _ in range(2):
            p.grad, t.grad = g.copy(), torch.tensor(g)
            opt.step()
            ref.step()
        expected = t.detach().numpy()
        assert np.array_equal(np.isnan(p.data), np.isnan(expected)), name
        np.testing.assert_allclose(p.data[~np.isnan(expected)], expected[~np.isnan(expected)], rtol=1e-12)
    # squares that overflow: no RuntimeWarning (pytest would fail on one). Where torch's fused multiply-add keeps
    # v - a*a finite the rounded product here may give nan instead: both are overflow garbage, so only the
    # silence and the untouched finite entries are checked.
    for name, kw in configs:
        p = Parameter(np.zeros(2))
        opt = _ours(name, [p], kw)
        p.grad = np.array([1e200, 1.0])
        opt.step()
        assert np.isfinite(p.data[1])


def test_a_short_training_run_converges_twice():
    """Linear regression with Linear + MSELoss + Adam, trained twice from the same start to the same result."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = X @ np.array([[1.5], [-2.0], [0.5]], np.float32) + 0.3

    def train():
        model = minirnn.Linear(3, 1, rng=1)
        loss_fn, opt = minirnn.MSELoss(), Adam(model.parameters(), lr=0.1)
        for _ in range(150):
            opt.zero_grad()
            loss = loss_fn(model(X), y)
            model.backward(loss_fn.backward())
            opt.step()
        return loss, model.weight.data.copy()
    loss1, w1 = train()
    loss2, w2 = train()
    assert loss1 < 1e-3 and loss1 == loss2
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_allclose(w1, [[1.5, -2.0, 0.5]], atol=0.05)


# ---- hyperparameter and params errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda p: SGD(p, lr=-0.1), "lr: Invalid learning rate: -0.1"),
    (lambda p: SGD(p, momentum=-1), "momentum: Invalid momentum value"),
    (lambda p: SGD(p, weight_decay=-1), "weight_decay: Invalid weight_decay value"),
    (lambda p: SGD(p, nesterov=True), "nesterov: Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "nesterov.*dampening=0.1"),
    (lambda p: Adam(p, lr=float("nan")), "lr: Invalid learning rate: nan"),
    (lambda p: Adam(p, eps=-1e-8), "eps: Invalid epsilon value"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "betas: Invalid beta parameter at index 0: 1.0"),
    (lambda p: AdamW(p, betas=(0.9, -0.1)), "betas: Invalid beta parameter at index 1"),
    (lambda p: AdamW(p, weight_decay=-0.01), "weight_decay"),
    (lambda p: Adagrad(p, lr_decay=-1), "lr_decay: Invalid lr_decay value"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: Adagrad(p, eps=-1), "eps"),
    (lambda p: RMSprop(p, alpha=-0.5), "alpha: Invalid alpha value"),
    (lambda p: RMSprop(p, momentum=-0.5), "momentum"),
])
def test_invalid_hyperparameters_raise_value_error_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2))])


def test_invalid_params_and_types():
    p = Parameter(np.zeros(2))
    with pytest.raises(TypeError, match="params.*single Parameter"):
        SGD(p)
    with pytest.raises(TypeError, match=r"params.*Module.*parameters\(\)"):
        SGD(minirnn.Linear(2, 2))
    with pytest.raises(ValueError, match="params: optimizer got an empty parameter list"):
        Adam([])
    with pytest.raises(TypeError, match="params.*element 1 is ndarray"):
        Adam([p, np.zeros(2)])
    with pytest.raises(TypeError, match="params.*set"):
        Adam({p})
    with pytest.raises(ValueError, match="same parameter twice"):
        Adam([p, p])
    with pytest.raises(TypeError, match="lr: expected a real number, got str"):
        SGD([p], lr="0.1")
    with pytest.raises(TypeError, match="amsgrad"):
        Adam([p], amsgrad="yes")
    with pytest.raises(TypeError, match="betas"):
        Adam([p], betas=0.9)
    with pytest.raises(TypeError, match="param_group"):
        Adam([p]).add_param_group([p])


# ---- clipping ------------------------------------------------------------------------------------------------
def _grad_params(dtype, seed=0, scale=1.0, with_none=True):
    rng = np.random.default_rng(seed)
    params = [Parameter(np.zeros(s, dtype)) for s in SHAPES]
    for i, p in enumerate(params):
        if not (with_none and i == 1):
            p.grad = (rng.standard_normal(p.shape) * scale).astype(dtype)
    return params


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ours = _grad_params(dtype)
    theirs = []
    for p in ours:
        t = torch.tensor(p.data.copy(), requires_grad=True)
        t.grad = None if p.grad is None else torch.tensor(p.grad.copy())
        theirs.append(t)
    total = clip_grad_norm(ours, max_norm, norm_type=norm_type)
    ref_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert rel_err(total, ref_total.item()) <= TOL[dtype]
    for p, t in zip(ours, theirs):
        if p.grad is None:
            assert t.grad is None
            continue
        assert p.grad.dtype == dtype
        assert rel_err(p.grad, t.grad.numpy()) <= TOL[dtype]
    if max_norm == 0.5:                                  # it did clip: the new norm is max_norm
        new = clip_grad_norm(ours, 1e9, norm_type=norm_type)
        assert abs(new - 0.5) < 1e-5


def test_clip_grad_norm_alias_single_parameter_and_no_grads():
    p = Parameter(np.zeros(4))
    assert minirnn.clip_grad_norm_ is clip_grad_norm and minirnn.clip_grad_value_ is clip_grad_value
    assert clip_grad_norm([p], 1.0) == 0.0                                  # nothing to clip: torch's tensor(0.)
    p.grad = np.array([3.0, 4.0, 0.0, 0.0])
    assert clip_grad_norm(p, 1.0) == 5.0
    np.testing.assert_allclose(p.grad, [0.6, 0.8, 0.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clip_grad_norm_non_finite(bad, norm_type):
    torch = pytest.importorskip("torch")
    ours = _grad_params(np.float64, with_none=False)
    ours[0].grad[0, 1] = bad
    theirs = []
    for p in ours:
        t = torch.zeros(p.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(p.grad.copy())
        theirs.append(t)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm(ours, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    assert np.isnan(ours[0].grad[0, 1]) == np.isnan(bad)                    # nothing was scaled
    total = clip_grad_norm(ours, 1.0, norm_type=norm_type)
    ref_total = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type)
    assert (math.isnan(total) and math.isnan(ref_total.item())) or total == ref_total.item()
    for p, t in zip(ours, theirs):
        assert rel_err(p.grad, t.grad.numpy()) == 0.0


def test_clip_grad_norm_of_huge_and_tiny_gradients_is_stable():
    """Scaled in float64: no overflow warning and the right norm even where a naive sum of squares overflows."""
    p = Parameter(np.zeros(2))
    p.grad = np.array([3e200, 4e200])
    assert abs(clip_grad_norm(p, 1.0) / 5e200 - 1) < 1e-12
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-9)
    q = Parameter(np.zeros(2, np.float32))
    q.grad = np.array([3e-30, 4e-30], np.float32)
    assert abs(clip_grad_norm(q, 1.0) / 5e-30 - 1) < 1e-6
    assert q.grad.dtype == np.float32


def test_clip_grad_norm_errors():
    p = Parameter(np.zeros(2))
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([p], -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm([p], 1.0, norm_type=0)
    with pytest.raises(TypeError, match="norm_type"):
        clip_grad_norm([p], 1.0, norm_type="fro")
    with pytest.raises(TypeError, match="parameters.*element 0 is ndarray"):
        clip_grad_norm([np.ones(2)], 1.0)
    with pytest.raises(TypeError, match="error_if_nonfinite"):
        clip_grad_norm([p], 1.0, error_if_nonfinite="no")
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value([p], -0.1)
    np.testing.assert_array_equal(p.grad, np.ones(2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_value_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    ours = _grad_params(dtype, scale=2.0)
    ours[0].grad[0, 0] = np.nan
    theirs = []
    for p in ours:
        t = torch.tensor(p.data.copy(), requires_grad=True)
        t.grad = None if p.grad is None else torch.tensor(p.grad.copy())
        theirs.append(t)
    clip_grad_value(ours, 0.75)
    torch.nn.utils.clip_grad_value_(theirs, 0.75)
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
            continue
        assert p.grad.dtype == dtype
        assert rel_err(p.grad, t.grad.numpy()) == 0.0
    assert np.nanmax(np.abs(ours[0].grad)) == np.float32(0.75)


@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                      ("Adam", dict(lr=0.05, weight_decay=0.1)), ("AdamW", dict(lr=0.05)),
                                      ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
                                      ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1))])
def test_frozen_parameters_are_left_alone_as_torch_leaves_them(name, kw):
    """``requires_grad = False``: backward leaves ``grad`` None, so the step skips the parameter entirely (no weight
    decay, no state), as torch's optimizers do (they skip every parameter whose grad is None)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    lin = minirnn.Linear(3, 2, dtype=np.float64, rng=0)
    tlin = torch.nn.Linear(3, 2).double()
    tlin.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    lin.weight.requires_grad = False
    tlin.weight.requires_grad = False
    frozen = lin.weight.data.copy()
    opt, topt = getattr(minirnn, name)(lin.parameters(), **kw), getattr(torch.optim, name)(tlin.parameters(), **kw)
    for _ in range(3):
        x = rng.standard_normal((4, 3))
        opt.zero_grad()
        topt.zero_grad()
        lin.backward(lin(x))                                  # loss = sum(y^2) / 2
        (tlin(torch.from_numpy(x)) ** 2).sum().div(2).backward()
        assert lin.weight.grad is None and tlin.weight.grad is None
        opt.step()
        topt.step()
    assert lin.weight.data.tobytes() == frozen.tobytes()
    assert len(opt.state) == len(topt.state) == (2 if name == "Adagrad" else 1)   # Adagrad's state is eager
    assert rel_err(lin.bias.data, tlin.bias.detach().numpy()) < TOL[np.float64]
