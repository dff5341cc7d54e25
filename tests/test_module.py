"""The module system and the backward contract: LIFO caches, no_grad, clear_cache, zero_grad, train/eval,
torch's parameter names, state_dict/load_state_dict, gradient accumulation, dtypes, initialisation, seeding.
No torch needed (names are spelled out here; test_torch_recurrent.py compares them with torch's too).
"""
from __future__ import annotations

import numpy as np
import pytest

import minirnn as mr
import minirnn.module as module_mod
from helpers import (CELL_KINDS, SEQ_KINDS, cell_state, flatten, like, make_cell, make_seq, randomize, seq_state)

ALL_FACTORIES = {
    "Linear": lambda **k: mr.Linear(3, 4, **k),
    "Embedding": lambda **k: mr.Embedding(5, 3, **k),
    **{kind: (lambda kind=kind, **k: make_seq(kind, 3, 4, 2, True, **k)) for kind in SEQ_KINDS},
    **{kind: (lambda kind=kind, **k: make_cell(kind, 3, 4, **k)) for kind in CELL_KINDS},
}


def sample_input(m, rng, B=2, T=3):
    """A valid input (and state) for any layer in ALL_FACTORIES; returns (args, kwargs)."""
    if isinstance(m, mr.Linear):
        return (rng.uniform(-2, 2, (B, m.in_features)).astype(m.dtype),), {}
    if isinstance(m, mr.Embedding):
        return (rng.integers(0, m.num_embeddings, (B, T)),), {}
    if isinstance(m, (mr.RNNCell, mr.LSTMCell, mr.GRUCell)):
        return (rng.uniform(-2, 2, (B, m.input_size)).astype(m.dtype), cell_state(m, rng, B)), {}
    x = rng.uniform(-2, 2, (T, B, m.input_size)).astype(m.dtype)
    return (x, seq_state(m, rng, B)), {}


def grads_of(m):
    return {n: (None if p.grad is None else p.grad.copy()) for n, p in m.named_parameters()}


def run_once(m, args, kwargs, upstream):
    """zero_grad, forward, backward: (output, input grads, parameter grads)."""
    m.zero_grad()
    out = m(*args, **kwargs)
    g = m.backward(*upstream) if isinstance(out, tuple) and not isinstance(m, mr.LSTMCell) else m.backward(upstream)
    return out, g, grads_of(m)


def call_backward(m, out, upstream):
    if isinstance(out, tuple) and not isinstance(m, mr.LSTMCell):
        return m.backward(*upstream)
    return m.backward(upstream)


# ------------------------------------------------------------------------------------------------------------
# The LIFO stack
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALL_FACTORIES))
def test_two_forwards_then_two_backwards_are_lifo(name):
    """forward(a), forward(b), backward(db), backward(da): each backward gets its own forward's cache, and the
    parameter gradients are the sum of the two single runs."""
    m = ALL_FACTORIES[name](dtype=np.float64, rng=0)
    randomize(m, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    a_args, a_kw = sample_input(m, rng)
    b_args, b_kw = sample_input(m, rng, B=3, T=2)                      # different shapes, so a mix-up fails
    out_a = m(*a_args, **a_kw)
    m.clear_cache()
    ua = like(out_a, rng)
    _, ga, pa = run_once(m, a_args, a_kw, ua)
    out_b = m(*b_args, **b_kw)
    m.clear_cache()
    ub = like(out_b, rng)
    _, gb, pb = run_once(m, b_args, b_kw, ub)

    m.zero_grad()
    m(*a_args, **a_kw)
    m(*b_args, **b_kw)
    assert len(m._cache) == 2
    gb2 = call_backward(m, out_b, ub)
    ga2 = call_backward(m, out_a, ua)
    assert not m._cache
    for (_, x), (_, y) in zip(flatten(ga2), flatten(ga)):
        if y is not None:
            np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15)
    for (_, x), (_, y) in zip(flatten(gb2), flatten(gb)):
        if y is not None:
            np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, pa[n] + pb[n], rtol=1e-12, atol=1e-14)


def test_recurrent_lifo_with_different_lengths():
    rng = np.random.default_rng(3)
    m = make_seq("lstm", 2, 3, 2, True, rng=rng)
    x1, x2 = rng.uniform(-2, 2, (4, 3, 2)), rng.uniform(-2, 2, (4, 3, 2))
    runs = []
    for x, lens in ((x1, [4, 1, 2]), (x2, None)):
        m.zero_grad()
        out, st = m(x, lengths=lens)
        u = (like(out, rng), like(st, rng))
        runs.append((x, lens, u, m.backward(*u), grads_of(m)))
    m.zero_grad()
    for x, lens, _, _, _ in runs:
        m(x, lengths=lens)
    for x, lens, u, g, _ in reversed(runs):
        g2 = m.backward(*u)
        for (_, a), (_, b) in zip(flatten(g2), flatten(g)):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, runs[0][4][n] + runs[1][4][n], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(ALL_FACTORIES) + ["Dropout", "Sequential"])
def test_backward_with_nothing_cached_is_a_clear_error(name):
    if name == "Dropout":
        m = mr.Dropout(0.5)
    elif name == "Sequential":
        m = mr.Sequential(mr.Linear(3, 4, dtype=np.float64), mr.Linear(4, 2, dtype=np.float64))
    else:
        m = ALL_FACTORIES[name](dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    if name == "Dropout":
        args = (rng.standard_normal((2, 3)),)
    elif name == "Sequential":
        args = (rng.standard_normal((2, 3)),)
    else:
        args, _ = sample_input(m, rng)
    out = m(*args)
    upstream = like(out, rng)
    call_backward(m, out, upstream)                                     # fine once
    with pytest.raises(RuntimeError, match="nothing to back-propagate"):
        call_backward(m, out, upstream)                                 # nothing left to pop
    with mr.no_grad():
        m(*args)
    with pytest.raises(RuntimeError, match="no_grad"):
        call_backward(m, out, upstream)                                 # the message names the likely cause


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
def test_no_grad_caches_nothing(name):
    m = ALL_FACTORIES[name](dtype=np.float64, rng=0)
    args, kw = sample_input(m, np.random.default_rng(0))
    with_grad = m(*args, **kw)
    m.clear_cache()
    assert mr.is_grad_enabled()
    with mr.no_grad():
        assert not mr.is_grad_enabled()
        for _ in range(3):
            out = m(*args, **kw)
    assert mr.is_grad_enabled()
    assert all(not sub._cache for sub in m.modules())
    for (_, a), (_, b) in zip(flatten(out), flatten(with_grad)):
        np.testing.assert_array_equal(a, b)                             # same numbers either way


def test_no_grad_nesting_enable_grad_and_exceptions():
    lin = mr.Linear(2, 2)
    x = np.ones((1, 2), dtype=np.float32)
    with mr.no_grad():
        with mr.enable_grad():
            assert mr.is_grad_enabled()
            lin(x)
        assert not mr.is_grad_enabled()
        with mr.no_grad():
            lin(x)
        assert not mr.is_grad_enabled()
    assert len(lin._cache) == 1
    with pytest.raises(ZeroDivisionError):
        with mr.no_grad():
            1 / 0
    assert mr.is_grad_enabled(), "no_grad restores the switch even when the block raises"


def test_clear_cache_clears_every_child():
    class Net(mr.Module):
        def __init__(self):
            super().__init__()
            self.rnn = mr.GRU(2, 3, dtype=np.float64, rng=0)
            self.head = mr.Sequential(mr.Linear(3, 3, dtype=np.float64, rng=1), mr.Linear(3, 1, dtype=np.float64))

    net = Net()
    x = np.ones((4, 1, 2))
    out, _ = net.rnn(x)
    net.head(out)
    net.head(out)
    assert net.rnn._cache and net.head[0]._cache and net.head[1]._cache
    net.clear_cache()
    assert all(not m._cache for m in net.modules())
    with pytest.raises(RuntimeError):
        net.rnn.backward(np.ones_like(out))


def test_cache_depth_warning(monkeypatch):
    monkeypatch.setattr(module_mod, "CACHE_WARN_DEPTH", 3)
    lin = mr.Linear(2, 2)
    x = np.ones((1, 2), dtype=np.float32)
    lin(x)
    lin(x)
    with pytest.warns(ResourceWarning, match="no_grad"):
        lin(x)


# ------------------------------------------------------------------------------------------------------------
# Gradients: accumulation and zero_grad
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Linear", "Embedding", "lstm_proj", "gru", "rnn_relu", "lstmcell", "grucell"])
def test_gradients_accumulate_across_backward_calls(name):
    m = ALL_FACTORIES[name](dtype=np.float64, rng=0)
    rng = np.random.default_rng(4)
    args, kw = sample_input(m, rng)
    assert all(p.grad is None for p in m.parameters()), "no gradient before the first backward"
    out = m(*args, **kw)
    up1, up2 = like(out, rng), like(out, rng)
    _, _, g1 = run_once(m, args, kw, up1)
    _, _, g2 = run_once(m, args, kw, up2)
    m.zero_grad()
    m(*args, **kw)
    call_backward(m, out, up1)
    m(*args, **kw)
    call_backward(m, out, up2)
    m.clear_cache()
    for n, p in m.named_parameters():
        assert p.grad.shape == p.shape and p.grad.dtype == p.dtype
        np.testing.assert_allclose(p.grad, g1[n] + g2[n], rtol=1e-12, atol=1e-14)
        assert np.any(g1[n] != 0) and np.any(g2[n] != 0), f"{n}: a zero gradient makes this check vacuous"


def test_zero_grad_set_to_none_and_to_zero():
    m = make_seq("lstm", 2, 3, rng=0, dtype=np.float64)
    x = np.ones((2, 1, 2))
    out, st = m(x)
    m.backward(np.ones_like(out))
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is not None and np.any(g != 0) for g in grads.values())
    m.zero_grad(set_to_none=False)
    for n, p in m.named_parameters():
        assert p.grad is grads[n], "set_to_none=False zeroes the existing array in place"
        np.testing.assert_array_equal(p.grad, 0.0)
    m(x)
    m.backward(np.ones_like(out))
    m.zero_grad()                                                       # torch's default: set_to_none=True
    assert all(p.grad is None for p in m.parameters())
    m.zero_grad(set_to_none=False)                                      # no grad yet: stays None
    assert all(p.grad is None for p in m.parameters())


def test_parameter_accumulate_copies_first_gradient():
    p = mr.Parameter(np.zeros((2, 2)))
    g = np.ones((2, 2))
    p.accumulate(g)
    p.accumulate(g)
    np.testing.assert_array_equal(p.grad, 2.0)
    np.testing.assert_array_equal(g, 1.0)           # the caller's array is not aliased, so not modified


# ------------------------------------------------------------------------------------------------------------
# train / eval, names, children
# ------------------------------------------------------------------------------------------------------------
class Model(mr.Module):
    """A user model: embedding -> LSTM -> dropout -> fc, with backward calling children in reverse."""

    def __init__(self, dtype=np.float64, rng=0):
        super().__init__()
        g = np.random.default_rng(rng)
        self.emb = mr.Embedding(7, 3, padding_idx=0, dtype=dtype, rng=g)
        self.rnn = mr.LSTM(3, 4, num_layers=2, dropout=0.25, bidirectional=True, proj_size=2, dtype=dtype, rng=g)
        self.drop = mr.Dropout(0.5, rng=g)
        self.fc = mr.Linear(4, 2, dtype=dtype, rng=g)

    def forward(self, idx):
        out, _ = self.rnn(self.emb(idx))
        return self.fc(self.drop(out))

    def backward(self, dy):
        d = self.drop.backward(self.fc.backward(dy))
        dx, _ = self.rnn.backward(d)
        return self.emb.backward(dx)


def test_train_eval_propagate_to_every_child():
    net = Model()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.rnn.training and not net.drop.training
    idx = np.array([[1, 2, 3], [4, 5, 6]])
    with mr.no_grad():
        a, b = net(idx), net(idx)
    np.testing.assert_array_equal(a, b)                                  # eval: deterministic
    net.train()
    with mr.no_grad():
        c = net(idx)
    assert not np.allclose(a, c)                                         # training: dropout active


def test_user_model_backward_runs_and_names_are_torch_style():
    net = Model()
    names = [n for n, _ in net.named_parameters()]
    rnn_names = []
    for layer in range(2):
        for sfx in ("", "_reverse"):
            rnn_names += [f"rnn.{w}_l{layer}{sfx}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]
    assert names == ["emb.weight"] + rnn_names + ["fc.weight", "fc.bias"]
    assert list(net.state_dict()) == names
    assert [n for n, _ in net.named_modules()] == ["", "emb", "rnn", "drop", "fc"]
    assert list(net.children()) == [net.emb, net.rnn, net.drop, net.fc]
    idx = np.array([[1, 2, 0], [4, 5, 6]])
    y = net(idx)
    assert net.backward(np.ones_like(y)) is None
    assert all(p.grad is not None for p in net.parameters())
    assert not any(m._cache for m in net.modules())


@pytest.mark.parametrize("kind,L,bi,expected", [
    ("rnn_tanh", 1, False, ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]),
    ("gru", 2, True, [f"{w}_l{l}{s}" for l in range(2) for s in ("", "_reverse")
                      for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]),
    ("lstm_proj", 1, True, [f"{w}_l0{s}" for s in ("", "_reverse")
                            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]),
])
def test_recurrent_parameter_names_and_shapes_are_torchs(kind, L, bi, expected):
    m = make_seq(kind, 3, 4, L, bi, rng=0)
    assert [n for n, _ in m.named_parameters()] == expected
    assert "bias_hh_l1_reverse" in expected or L == 1
    G = {"rnn_tanh": 1, "gru": 3, "lstm_proj": 4}[kind]
    P = 2 if kind == "lstm_proj" else 4
    D = 2 if bi else 1
    shapes = dict((n, p.shape) for n, p in m.named_parameters())
    assert shapes["weight_ih_l0"] == (G * 4, 3)
    assert shapes["weight_hh_l0"] == (G * 4, P)
    assert shapes["bias_ih_l0"] == (G * 4,)
    if L > 1:
        assert shapes["weight_ih_l1"] == (G * 4, D * P)
    if kind == "lstm_proj":
        assert shapes["weight_hr_l0"] == (P, 4)
    assert [n for n, _ in make_seq(kind, 3, 4, L, bi, bias=False, rng=0).named_parameters()] == \
        [n for n in expected if "bias" not in n]


def test_cell_and_layer_names():
    for kind in CELL_KINDS:
        assert [n for n, _ in make_cell(kind, 2, 3, rng=0).named_parameters()] == \
            ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        assert [n for n, _ in make_cell(kind, 2, 3, bias=False, rng=0).named_parameters()] == \
            ["weight_ih", "weight_hh"]
    assert [n for n, _ in mr.Linear(2, 3).named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in mr.Linear(2, 3, bias=False).named_parameters()] == ["weight"]
    seq = mr.Sequential(mr.Linear(2, 3), mr.Dropout(), mr.Linear(3, 1))
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(seq) == 3 and isinstance(seq[1], mr.Dropout)


def test_attribute_registration_and_shared_parameters():
    class Tied(mr.Module):
        def __init__(self):
            super().__init__()
            self.a = mr.Linear(3, 3)
            self.b = mr.Linear(3, 3)
            self.b.weight = self.a.weight                                # tied: listed once
            self.extra = mr.Parameter(np.zeros(2))

    t = Tied()
    assert [n for n, _ in t.named_parameters()] == ["extra", "a.weight", "a.bias", "b.bias"]
    # as torch: state_dict lists a tied parameter under every name, in registration order, and loads it back
    assert list(t.state_dict()) == ["extra", "a.weight", "a.bias", "b.weight", "b.bias"]
    sd = t.state_dict()
    sd["a.weight"] = sd["b.weight"] = np.full((3, 3), 2.0, dtype=np.float32)
    t.load_state_dict(sd)
    assert t.b.weight is t.a.weight
    np.testing.assert_array_equal(t.b.weight.data, 2.0)
    del t.extra
    assert "extra" not in dict(t.named_parameters())
    t.a = None                                                          # replacing a child unregisters it
    assert [n for n, _ in t.named_parameters()] == ["b.weight", "b.bias"]

    class Forgot(mr.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(RuntimeError, match="super"):
        Forgot()


# ------------------------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# ------------------------------------------------------------------------------------------------------------
def _params_snapshot(m):
    return {n: p.data.copy() for n, p in m.named_parameters()}


def test_state_dict_is_a_copy_and_round_trips():
    a, b = Model(rng=0), Model(rng=1)
    sd = a.state_dict()
    sd["fc.weight"][...] = 123.0                                         # a copy: the module is untouched
    assert not np.any(a.fc.weight.data == 123.0)
    sd = a.state_dict()
    res = b.load_state_dict(sd)
    assert list(res.missing_keys) == [] and list(res.unexpected_keys) == []
    assert tuple(res) == ([], [])
    for n, p in b.named_parameters():
        np.testing.assert_array_equal(p.data, sd[n])
    idx = np.array([[1, 2, 3]])
    a.eval(), b.eval()
    with mr.no_grad():
        np.testing.assert_array_equal(a(idx), b(idx))
    sd["fc.bias"][...] = 5.0                                             # nor does the loaded module alias it
    assert not np.any(b.fc.bias.data == 5.0)


def test_load_state_dict_strict_failures_change_nothing():
    net = Model(rng=0)
    before = _params_snapshot(net)
    good = Model(rng=1).state_dict()

    missing = dict(good)
    del missing["rnn.weight_hr_l1_reverse"]
    with pytest.raises(ValueError, match="weight_hr_l1_reverse"):
        net.load_state_dict(missing)
    unexpected = dict(good, **{"fc.extra": np.zeros(2)})
    with pytest.raises(ValueError, match="fc.extra"):
        net.load_state_dict(unexpected)
    bad_shape = dict(good, **{"fc.weight": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="fc.weight"):
        net.load_state_dict(bad_shape)
    with pytest.raises(ValueError, match="fc.weight"):
        net.load_state_dict(bad_shape, strict=False)                     # shapes are checked even when not strict
    for n, p in net.named_parameters():
        np.testing.assert_array_equal(p.data, before[n], err_msg=f"{n} changed by a failed load")


def test_load_state_dict_reports_every_problem_at_once():
    net = mr.Sequential(mr.Linear(2, 3), mr.Linear(3, 1))
    with pytest.raises(ValueError) as e:
        net.load_state_dict({"0.weight": np.zeros((9, 9)), "zzz": np.zeros(1)})
    msg = str(e.value)
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "zzz"):
        assert key in msg


def test_load_state_dict_non_strict_loads_the_rest():
    net = Model(rng=0)
    other = Model(rng=1).state_dict()
    partial = {k: v for k, v in other.items() if k.startswith("rnn.")}
    partial["not.a.param"] = np.zeros(3)
    before = _params_snapshot(net)
    missing, unexpected = net.load_state_dict(partial, strict=False)
    assert sorted(missing) == ["emb.weight", "fc.bias", "fc.weight"]
    assert unexpected == ["not.a.param"]
    for n, p in net.named_parameters():
        np.testing.assert_array_equal(p.data, other[n] if n.startswith("rnn.") else before[n])


def test_load_state_dict_casts_to_the_parameter_dtype():
    m32 = make_seq("gru", 2, 3, rng=0, dtype=np.float32)
    sd64 = {k: v.astype(np.float64) + 0.5 for k, v in m32.state_dict().items()}
    m32.load_state_dict(sd64)
    for n, p in m32.named_parameters():
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, sd64[n], rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# dtypes, initialisation, seeding
# ------------------------------------------------------------------------------------------------------------
def test_parameters_default_to_float32():
    layers = [mr.RNN(3, 4), mr.RNN(3, 4, nonlinearity="sigmoid"), mr.LSTM(3, 4, proj_size=2), mr.GRU(3, 4),
              mr.RNNCell(3, 4), mr.LSTMCell(3, 4), mr.GRUCell(3, 4), mr.Linear(3, 4), mr.Embedding(3, 4)]
    for m in layers:
        assert all(p.dtype == np.float32 for p in m.parameters()), f"{m!r}: float32 by default, as torch"
    out, (h, c) = layers[2](np.ones((2, 1, 3), dtype=np.float32))
    assert out.dtype == h.dtype == c.dtype == np.float32


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
def test_float32_and_float64_everywhere(name):
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        m = ALL_FACTORIES[name](rng=0, dtype=dtype)
        assert all(p.dtype == dtype for p in m.parameters())
        args, kw = sample_input(m, rng)
        out = m(*args, **kw)
        for _, o in flatten(out):
            assert o.dtype == dtype
        grads = call_backward(m, out, like(out, rng))
        for _, g in flatten(grads):
            assert g is None or g.dtype == dtype
        for p in m.parameters():
            assert p.grad.dtype == dtype


@pytest.mark.parametrize("kind", SEQ_KINDS + CELL_KINDS)
def test_recurrent_init_is_uniform_within_one_over_sqrt_hidden(kind):
    H = 16
    m = make_cell(kind, 5, H, rng=0) if kind in CELL_KINDS else make_seq(kind, 5, H, 2, True, rng=0, proj=4)
    k = 1 / np.sqrt(H)
    allv = np.concatenate([p.data.ravel() for p in m.parameters()])
    for n, p in m.named_parameters():
        assert np.all(np.abs(p.data) <= k), f"{n} outside U(-1/sqrt(H), 1/sqrt(H))"
        assert np.any(p.data != 0), f"{n} is all zeros (biases must not start at zero, as in torch)"
    assert allv.max() > 0.95 * k and allv.min() < -0.95 * k
    assert abs(allv.std() - k / np.sqrt(3)) < 0.1 * k
    # bias_ih and bias_hh are drawn separately
    d = dict(m.named_parameters())
    b_ih, b_hh = ("bias_ih", "bias_hh") if kind in CELL_KINDS else ("bias_ih_l0", "bias_hh_l0")
    assert not np.array_equal(d[b_ih].data, d[b_hh].data)


@pytest.mark.parametrize("kind", SEQ_KINDS + CELL_KINDS)
def test_seeded_construction_is_reproducible(kind):
    def build(seed):
        if kind in CELL_KINDS:
            return make_cell(kind, 3, 4, rng=seed)
        return make_seq(kind, 3, 4, 2, True, rng=seed)

    a, b, c = build(np.random.default_rng(7)), build(7), build(8)
    for (n, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)
        assert not np.array_equal(pa.data, pc.data), n
    mr.manual_seed(11)
    d = build(None)
    mr.manual_seed(11)
    e = build(None)
    for (_, pd), (_, pe) in zip(d.named_parameters(), e.named_parameters()):
        np.testing.assert_array_equal(pd.data, pe.data)


def test_seeded_dropout_between_layers_is_reproducible():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 2, 3)).astype(np.float32)
    outs = []
    for _ in range(2):
        m = mr.LSTM(3, 5, num_layers=3, dropout=0.5, rng=42)
        outs.append([m(x)[0] for _ in range(2)])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert not np.array_equal(outs[0][0], outs[0][1])


# ------------------------------------------------------------------------------------------------------------
# Sequential
# ------------------------------------------------------------------------------------------------------------
class Recorder(mr.Module):
    """Identity that logs the order of forward and backward calls."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append(("fwd", self.name))
        return x * 2.0

    def backward(self, dy):
        self.log.append(("bwd", self.name))
        return dy * 2.0


def test_sequential_backward_runs_children_in_reverse_order():
    log = []
    seq = mr.Sequential(Recorder("a", log), Recorder("b", log), Recorder("c", log))
    y = seq(np.ones(2))
    dx = seq.backward(np.ones(2))
    assert log == [("fwd", "a"), ("fwd", "b"), ("fwd", "c"), ("bwd", "c"), ("bwd", "b"), ("bwd", "a")]
    np.testing.assert_array_equal(y, 8.0)
    np.testing.assert_array_equal(dx, 8.0)
    with pytest.raises(TypeError):
        mr.Sequential(mr.Linear(2, 2), "not a module")


def test_sequential_backward_matches_the_hand_chained_layers_and_gradcheck():
    rng = np.random.default_rng(5)
    l1, l2 = mr.Linear(3, 5, dtype=np.float64, rng=rng), mr.Linear(5, 2, dtype=np.float64, rng=rng)
    drop = mr.Dropout(0.5)
    seq = mr.Sequential(l1, drop, l2)
    seq.eval()
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    y = seq(x)
    dx = seq.backward(dy)
    g = {n: p.grad.copy() for n, p in seq.named_parameters()}
    seq.zero_grad()
    h = l1(x)
    np.testing.assert_allclose(y, l2(h), rtol=1e-14)
    dh = l2.backward(dy)
    np.testing.assert_allclose(dx, l1.backward(dh), rtol=1e-14)
    for n, p in seq.named_parameters():
        np.testing.assert_allclose(p.grad, g[n], rtol=1e-14)
    assert mr.gradcheck(seq, (x,))


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_sigmoid", "lstm", "lstm_proj", "gru"])
def test_sequence_backward_accepts_none_for_any_upstream_gradient(kind):
    """``rnn.backward(dout, dh_n)`` / ``lstm.backward(dout, (dh_n, dc_n))``: None is an all-zero gradient, for each
    argument alone and in every combination (the torch cross-checks cover the case with all of them given)."""
    import itertools

    from helpers import flatten, is_lstm, like, make_seq, randomize

    rng = np.random.default_rng(5)
    m = make_seq(kind, 3, 4, 2, True, rng=rng, proj=2 if kind == "lstm_proj" else None)
    randomize(m, rng)
    x = rng.uniform(-2, 2, (5, 2, 3))
    out, state = m(x)
    m.clear_cache()
    dout, dstate = like(out, rng), like(state, rng)
    parts = [dout] + [a for _, a in flatten(dstate)]
    for keep in itertools.product([True, False], repeat=len(parts)):
        given = [p if k else None for p, k in zip(parts, keep)]
        zeros = [p if k else np.zeros_like(p) for p, k in zip(parts, keep)]
        results = []
        for args in (given, zeros):
            m.zero_grad()
            m(x)
            if is_lstm(m):
                dx, (dh0, dc0) = m.backward(args[0], (args[1], args[2]))
                got = [dx, dh0, dc0]
            else:
                dx, dh0 = m.backward(args[0], args[1])
                got = [dx, dh0]
            results.append(got + [np.zeros_like(p.data) if p.grad is None else p.grad.copy()
                                  for p in m.parameters()])
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)
        if not any(keep):
            assert all(not np.any(a) for a in results[0]), "no upstream gradient must give all-zero gradients"
