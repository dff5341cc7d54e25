"""minirnn.reference is the oracle: verified itself, then holding the fast engine to it.

1. The reference's own backward is checked by central differences (minirnn.gradcheck, float64): every step
   backward of every kind, and the one-layer BPTT loop with h0 (c0) and lengths, on every input and weight.
2. The public layers (RNN tanh/relu/sigmoid, LSTM with and without proj_size, GRU; 1-3 layers, both directions,
   lengths unsorted/equal/equal to T, batch_first, unbatched, h0 given or None, bias or not) and the cells equal the
   reference to 1e-12 relative in float64, forward and backward (dx, dh0/dc0, every parameter gradient), with
   random non-zero biases and random upstream gradients on the output (padding included) and the final state.
   Layers and directions are composed from the reference's single loop in tests/helpers.py (reference_seq).
3. Where torch is installed, the reference's loop and steps equal torch.nn's to 1e-10 (float64).
No torch is needed for 1 and 2.
"""
from __future__ import annotations

import ast
import doctest
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minirnn as mr
from helpers import (CELL_KINDS, SEQ_KINDS, REPO_ROOT, cell_state, flatten, like, make_cell, make_seq, randomize,
                     rel_err, reference_cell, reference_seq, relu_margin, seq_state, subprocess_env)

R = mr.reference
TOL = 1e-12            # engine vs reference, float64: max |a - b| / max(max |b|, FLOOR), see scaled_err
FLOOR = 1e-3
TORCH_TOL = 1e-10      # reference vs torch.nn, float64
RELU_MARGIN = 1e-4     # a ReLU argument this close to 0 could cross the kink under gradcheck's eps = 1e-6
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def mode_of(kind: str) -> tuple[str, str]:
    """(mode, nonlinearity) of a SEQ_KINDS name."""
    if kind.startswith("rnn_"):
        return "RNN", kind[4:]
    return ("LSTM" if kind.startswith("lstm") else "GRU"), "tanh"


def random_params(rng, mode: str, I: int, H: int, P: int | None, bias: bool) -> dict:
    """Reference weights: U(-0.6, 0.6), biases bounded away from zero (|b| in [0.1, 0.7])."""
    G, Ph = GATES[mode], (P or H)
    p = {"weight_ih": rng.uniform(-0.6, 0.6, (G * H, I)), "weight_hh": rng.uniform(-0.6, 0.6, (G * H, Ph))}
    if bias:
        for n in ("bias_ih", "bias_hh"):
            p[n] = rng.uniform(0.1, 0.7, G * H) * rng.choice([-1.0, 1.0], G * H)
    if P:
        p["weight_hr"] = rng.uniform(-0.6, 0.6, (P, H))
    return p


def scaled_err(got, ref) -> float:
    """max |got - ref| over the reference array's largest entry, or over FLOOR when every entry is smaller:
    the engine's exp-based tanh is exact to a few eps in absolute terms, not relative ones, so an array that is
    all near 0 (a 3-layer stack without bias, H = 1, say) is held to TOL * FLOOR absolute instead."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != reference shape {ref.shape}"
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), FLOOR))


def assert_all_close(pairs, tol: float, what: str) -> float:
    """Every (name, got, reference) within ``tol`` (scaled_err); returns the largest error."""
    worst = 0.0
    for name, got, ref in pairs:
        e = scaled_err(got, ref)
        assert e <= tol, f"{what} {name}: relative error {e:.3g} > {tol:g}"
        worst = max(worst, e)
    return worst


# ------------------------------------------------------------------------------------------------------------
# The lesson module itself
# ------------------------------------------------------------------------------------------------------------
def test_reference_imports_numpy_and_scipy_only_and_its_example_runs():
    with open(R.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    roots = {(a.name if isinstance(n, ast.Import) else n.module).split(".")[0]
             for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert roots <= {"numpy", "scipy", "__future__"}, roots
    assert "Backpropagation through time" in R.__doc__ and "Lengths" in R.__doc__
    result = doctest.testmod(R)
    assert result.attempted >= 5 and result.failed == 0, result


def test_importing_minirnn_leaves_scipy_until_the_reference_sigmoid_is_called():
    """``import minirnn`` imports this module; scipy.special's import takes longer than the rest of minirnn's,
    so it waits for the first sigmoid (which saturates without overflow, and without a warning)."""
    code = ("import sys, warnings, numpy as np, minirnn\n"
            "assert not [m for m in sys.modules if m.startswith('scipy')], sorted(sys.modules)\n"
            "warnings.simplefilter('error')\n"
            "s = minirnn.reference.sigmoid(np.array([-1e4, 0.0, 1e4]))\n"
            "assert s.tolist() == [0.0, 0.5, 1.0], s\n"
            "assert 'scipy.special' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env(), cwd=REPO_ROOT, timeout=120)


# ------------------------------------------------------------------------------------------------------------
# 1. The oracle checked: finite differences of the reference's step backward and of its BPTT loop
# ------------------------------------------------------------------------------------------------------------
@st.composite
def step_case(draw, kind):
    H = draw(st.integers(2 if kind == "lstm_proj" else 1, 4))
    return dict(kind=kind, B=draw(st.integers(1, 3)), I=draw(st.integers(1, 4)), H=H,
                P=draw(st.integers(1, H - 1)) if kind == "lstm_proj" else None, bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


def _weight_names(p: dict) -> list[str]:
    return [n for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr") if n in p]


@pytest.mark.parametrize("kind", SEQ_KINDS)
@given(data=st.data())
def test_step_backward_matches_finite_differences(kind, data):
    case = data.draw(step_case(kind))
    rng = np.random.default_rng(case["seed"])
    mode, nl = mode_of(case["kind"])
    B, I, H, P = case["B"], case["I"], case["H"], case["P"]
    p = random_params(rng, mode, I, H, P, case["bias"])
    names = _weight_names(p)
    x, h = rng.uniform(-2, 2, (B, I)), rng.uniform(-2, 2, (B, P or H))
    c = rng.uniform(-2, 2, (B, H)) if mode == "LSTM" else None
    if nl == "relu":
        assume(relu_margin(p, x[None], h, R.rnn_step_forward(x, h, p, nl)[0][None], np.ones((1, B, 1), bool))
               > RELU_MARGIN)
    caches = []
    states = (x, h, c) if mode == "LSTM" else (x, h)

    def fn(*arrays):
        q = dict(zip(names, arrays[len(states):]))
        if mode == "LSTM":
            h1, c1, cache = R.lstm_step_forward(arrays[0], arrays[1], arrays[2], q)
            caches.append(cache)
            return h1, c1
        h1, cache = (R.gru_step_forward(arrays[0], arrays[1], q) if mode == "GRU"
                     else R.rnn_step_forward(arrays[0], arrays[1], q, nl))
        caches.append(cache)
        return h1

    def backward(*upstream):
        if mode == "LSTM":
            dx, dh, dc, g = R.lstm_step_backward(upstream[0], upstream[1], caches[0])
            return (dx, dh, dc) + tuple(g[n] for n in names)
        dx, dh, g = (R.gru_step_backward if mode == "GRU" else R.rnn_step_backward)(upstream[0], caches[0])
        return (dx, dh) + tuple(g[n] for n in names)

    inputs = list(states) + [p[n] for n in names]
    report = mr.gradcheck(fn, inputs, backward=backward)
    assert report, str(report)
    assert len(report.checked) == len(inputs), report.checked


@st.composite
def loop_case(draw, kind):
    case = draw(step_case(kind))
    T = draw(st.integers(1, 4))
    how = draw(st.sampled_from(["none", "random", "equal_T"]))
    lens = (None if how == "none" else [T] * case["B"] if how == "equal_T"
            else draw(st.lists(st.integers(1, T), min_size=case["B"], max_size=case["B"])))
    return dict(case, T=T, lens=lens)


@pytest.mark.parametrize("kind", SEQ_KINDS)
@given(data=st.data())
def test_bptt_loop_matches_finite_differences(kind, data):
    """layer_forward / layer_backward with h0 (c0) and lengths: dx, dh0 (dc0) and every weight by FD."""
    case = data.draw(loop_case(kind))
    rng = np.random.default_rng(case["seed"])
    mode, nl = mode_of(case["kind"])
    T, B, I, H, P, lens = case["T"], case["B"], case["I"], case["H"], case["P"], case["lens"]
    p = random_params(rng, mode, I, H, P, case["bias"])
    names = _weight_names(p)
    x, h0 = rng.uniform(-2, 2, (T, B, I)), rng.uniform(-2, 2, (B, P or H))
    lstm = mode == "LSTM"
    states = (x, h0, rng.uniform(-2, 2, (B, H))) if lstm else (x, h0)
    if nl == "relu":
        out = R.layer_forward(mode, x, h0, p, lengths=lens, nonlinearity=nl)[0]
        mask = (np.arange(T)[:, None] < np.asarray(lens if lens is not None else [T] * B)[None])[..., None]
        assume(relu_margin(p, x, h0, out, mask) > RELU_MARGIN)
    caches = []

    def fn(*arrays, lengths=None):
        q = dict(zip(names, arrays[len(states):]))
        out, h_n, c_n, cache = R.layer_forward(mode, arrays[0], arrays[1], q, c0=arrays[2] if lstm else None,
                                               lengths=lengths, nonlinearity=nl)
        caches.append(cache)
        return (out, h_n, c_n) if lstm else (out, h_n)

    def backward(dout, dh_n, dc_n=None):
        dx, dh0, dc0, g = R.layer_backward(dout, dh_n, caches[0], dc_n=dc_n)
        return (dx, dh0) + ((dc0,) if lstm else ()) + tuple(g[n] for n in names)

    inputs = list(states) + [p[n] for n in names]
    report = mr.gradcheck(fn, inputs, kwargs={"lengths": lens}, backward=backward)
    assert report, str(report)
    assert len(report.checked) == len(inputs), report.checked


def test_lengths_semantics_of_the_loop():
    """Outputs past a length are 0, h_n is the state at the sequence's own last step, padding gets dx = 0, and
    other (finite) padding values in x and dout change nothing that is returned."""
    rng = np.random.default_rng(3)
    T, B, I, H, lens = 4, 3, 2, 3, [4, 1, 2]
    pad = np.arange(T)[:, None] >= np.array(lens)[None]
    for mode in ("RNN", "LSTM", "GRU"):
        p = random_params(rng, mode, I, H, None, True)
        x, h0, c0 = rng.uniform(-2, 2, (T, B, I)), rng.uniform(-1, 1, (B, H)), rng.uniform(-1, 1, (B, H))
        out, h_n, c_n, cache = R.layer_forward(mode, x, h0, p, c0=c0, lengths=lens)
        for b, n in enumerate(lens):
            assert np.all(out[n:, b] == 0)
            np.testing.assert_array_equal(h_n[b], out[n - 1, b])
            solo = R.layer_forward(mode, x[:n, b:b + 1], h0[b:b + 1], p, c0=c0[b:b + 1])
            np.testing.assert_allclose(solo[1][0], h_n[b], rtol=1e-14, atol=1e-15)   # alone: the same state
            if mode == "LSTM":
                np.testing.assert_allclose(solo[2][0], c_n[b], rtol=1e-14, atol=1e-15)
        dout, dh_n = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape)
        dc_n = rng.standard_normal(h_n.shape) if mode == "LSTM" else None
        base = R.layer_backward(dout, dh_n, cache, dc_n=dc_n)
        assert np.all(base[0][pad] == 0)
        x2, dout2 = x.copy(), dout.copy()
        x2[pad], dout2[pad] = rng.uniform(-50, 50, x2[pad].shape), rng.uniform(-50, 50, dout2[pad].shape)
        fwd2 = R.layer_forward(mode, x2, h0, p, c0=c0, lengths=lens)
        again = R.layer_backward(dout2, dh_n, fwd2[3], dc_n=dc_n)
        for a, b in zip(flatten(fwd2[:3] + again[:3]), flatten((out, h_n, c_n) + base[:3])):
            np.testing.assert_array_equal(a[1], b[1])
        for n in base[3]:
            np.testing.assert_array_equal(again[3][n], base[3][n])


# ------------------------------------------------------------------------------------------------------------
# 2. The engine held to the oracle: public layers and cells, float64, 1e-12
# ------------------------------------------------------------------------------------------------------------
@st.composite
def seq_case(draw, kinds):
    kind = draw(st.sampled_from(kinds))
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    H = draw(st.integers(2 if kind == "lstm_proj" else 1, 7))
    batched = B > 1 or draw(st.booleans())
    lens = None
    if batched:
        how = draw(st.sampled_from(["none", "random", "equal", "equal_T", "with_one"]))
        if how == "random":
            lens = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
        elif how == "equal":
            lens = [draw(st.integers(1, T))] * B
        elif how == "equal_T":
            lens = [T] * B
        elif how == "with_one":
            lens = draw(st.permutations([1] + [T] * (B - 1)))
    return dict(kind=kind, T=T, B=B, I=draw(st.integers(1, 7)), H=H,
                proj=draw(st.integers(1, H - 1)) if kind == "lstm_proj" else None, L=draw(st.integers(1, 3)),
                bi=draw(st.booleans()), bf=draw(st.booleans()), bias=draw(st.booleans()),
                with_h0=draw(st.booleans()), batched=batched, lens=lens, seed=draw(st.integers(0, 2**32 - 1)))


def check_layer_equals_reference(case) -> float:
    rng = np.random.default_rng(case["seed"])
    m = make_seq(case["kind"], case["I"], case["H"], case["L"], case["bi"], case["bf"], bias=case["bias"],
                 rng=rng, proj=case["proj"])
    randomize(m, rng)
    T, B, I = case["T"], case["B"], case["I"]
    Bs = B if case["batched"] else None
    x = rng.uniform(-2, 2, ((B, T, I) if case["bf"] else (T, B, I)) if case["batched"] else (T, I))
    hx = seq_state(m, rng, Bs, scale=2.0) if case["with_h0"] else None
    m.zero_grad()
    out, state = m(x, hx, lengths=case["lens"])
    dout, dstate = like(out, rng), like(state, rng)     # random past the lengths too: must be ignored
    dx, dh0 = m.backward(dout, dstate)
    assert not m._cache
    ref = reference_seq(m, x, hx, case["lens"], dout, dstate)
    pairs = [("out", out, ref.out), ("dx", dx, ref.dx)]
    pairs += [("state" + k, a, b) for (k, a), (_, b) in zip(flatten(state), flatten(ref.state))]
    pairs += [("dh0" + k, a, b) for (k, a), (_, b) in zip(flatten(dh0), flatten(ref.dh0))]
    assert sorted(n for n, _ in m.named_parameters()) == sorted(ref.grads)
    pairs += [(f"grad {n}", p.grad, ref.grads[n]) for n, p in m.named_parameters()]
    return assert_all_close(pairs, TOL, f"{case['kind']} engine vs reference:")


@given(seq_case(["rnn_tanh", "rnn_relu", "rnn_sigmoid"]))
def test_rnn_layers_equal_reference(case):
    check_layer_equals_reference(case)


@given(seq_case(["lstm", "lstm_proj"]))
def test_lstm_layers_equal_reference(case):
    check_layer_equals_reference(case)


@given(seq_case(["gru"]))
def test_gru_layers_equal_reference(case):
    check_layer_equals_reference(case)


@pytest.mark.parametrize("lens", [None, [3, 5, 1, 4], [5, 5, 5, 5], [2, 2, 2, 2], [1, 1, 1, 1]],
                         ids=["none", "unsorted_with_one", "equal_T", "equal_short", "all_one"])
@pytest.mark.parametrize("kind", SEQ_KINDS)
def test_every_kind_and_length_pattern_equals_reference(kind, lens):
    """Always covered, whatever hypothesis draws: 3 layers, bidirectional, h0 given, each length pattern."""
    seed = zlib.crc32(f"{kind}{lens}".encode())
    check_layer_equals_reference(dict(kind=kind, T=5, B=4, I=3, H=4, proj=2 if kind == "lstm_proj" else None, L=3,
                                      bi=True, bf=bool(seed % 2), bias=True, with_h0=True, batched=True, lens=lens,
                                      seed=seed))


@pytest.mark.parametrize("kind", SEQ_KINDS)
def test_unbatched_without_bias_or_h0_equals_reference(kind):
    for batched, bias, with_h0 in ((False, True, True), (False, False, False), (True, False, False)):
        check_layer_equals_reference(dict(kind=kind, T=4, B=3, I=2, H=3, proj=1 if kind == "lstm_proj" else None,
                                          L=2, bi=True, bf=False, bias=bias, with_h0=with_h0, batched=batched,
                                          lens=None, seed=SEQ_KINDS.index(kind)))


@st.composite
def cell_case(draw):
    return dict(kind=draw(st.sampled_from(CELL_KINDS)), B=draw(st.integers(1, 4)), I=draw(st.integers(1, 7)),
                H=draw(st.integers(1, 7)), bias=draw(st.booleans()), with_h0=draw(st.booleans()),
                batched=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))


def check_cell_equals_reference(case) -> float:
    rng = np.random.default_rng(case["seed"])
    c = make_cell(case["kind"], case["I"], case["H"], bias=case["bias"], rng=rng)
    randomize(c, rng)
    B = case["B"] if case["batched"] else None
    x = rng.uniform(-2, 2, (B, case["I"]) if B else (case["I"],))
    hx = cell_state(c, rng, B, scale=2.0) if case["with_h0"] else None
    c.zero_grad()
    out = c(x, hx)
    dout = like(out, rng)
    dx, dh0 = c.backward(dout)
    assert not c._cache
    ref = reference_cell(c, x, hx, dout)
    pairs = [("dx", dx, ref.dx)]
    pairs += [("out" + k, a, b) for (k, a), (_, b) in zip(flatten(out), flatten(ref.out))]
    pairs += [("dh0" + k, a, b) for (k, a), (_, b) in zip(flatten(dh0), flatten(ref.dh0))]
    assert sorted(n for n, _ in c.named_parameters()) == sorted(ref.grads)
    pairs += [(f"grad {n}", p.grad, ref.grads[n]) for n, p in c.named_parameters()]
    return assert_all_close(pairs, TOL, f"{case['kind']} engine vs reference:")


@given(cell_case())
def test_cells_equal_reference(case):
    check_cell_equals_reference(case)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_every_cell_kind_equals_reference(kind):
    for i, (batched, with_h0, bias) in enumerate(((True, True, True), (False, True, True), (True, False, False))):
        check_cell_equals_reference(dict(kind=kind, B=3, I=2, H=4, bias=bias, with_h0=with_h0, batched=batched,
                                         seed=10 * CELL_KINDS.index(kind) + i))


# ------------------------------------------------------------------------------------------------------------
# 3. The oracle equals torch.nn (float64) where torch exists
# ------------------------------------------------------------------------------------------------------------
TORCH_KINDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]


@pytest.mark.parametrize("lens", [None, [3, 5, 1, 4]], ids=["full", "unsorted_with_one"])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_reference_loop_equals_torch(kind, lens):
    """One layer, one direction: out, h_n (c_n), dx, dh0 (dc0) and every weight gradient vs torch's autograd."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    rng = np.random.default_rng(TORCH_KINDS.index(kind) + (0 if lens is None else 100))
    mode, nl = mode_of(kind)
    T, B, I, H, P = 5, 4, 3, 4, (2 if kind == "lstm_proj" else None)
    p = random_params(rng, mode, I, H, P, True)
    x, h0, c0 = rng.uniform(-2, 2, (T, B, I)), rng.uniform(-2, 2, (B, P or H)), rng.uniform(-2, 2, (B, H))
    lstm = mode == "LSTM"
    out, h_n, c_n, cache = R.layer_forward(mode, x, h0, p, c0=c0 if lstm else None, lengths=lens, nonlinearity=nl)
    dout, dh_n, dc_n = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape), rng.standard_normal(c0.shape)
    dx, dh0, dc0, grads = R.layer_backward(dout, dh_n, cache, dc_n=dc_n if lstm else None)

    if mode == "RNN":
        tm = torch.nn.RNN(I, H, nonlinearity=nl)
    elif lstm:
        tm = torch.nn.LSTM(I, H, proj_size=P or 0)
    else:
        tm = torch.nn.GRU(I, H)
    tm = tm.double()
    tm.load_state_dict({n + "_l0": torch.from_numpy(v) for n, v in p.items()})
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    inp = xt if lens is None else pack_padded_sequence(xt, torch.tensor(lens), enforce_sorted=False)
    t_out, t_state = tm(inp, (h0t[None], c0t[None]) if lstm else h0t[None])
    if lens is not None:
        t_out = pad_packed_sequence(t_out, total_length=T)[0]
    t_hn, t_cn = (t_state[0][0], t_state[1][0]) if lstm else (t_state[0], None)
    loss = (t_out * torch.from_numpy(dout)).sum() + (t_hn * torch.from_numpy(dh_n)).sum()
    if lstm:
        loss = loss + (t_cn * torch.from_numpy(dc_n)).sum()
    loss.backward()
    pairs = [("out", out, t_out.detach().numpy()), ("h_n", h_n, t_hn.detach().numpy()),
             ("dx", dx, xt.grad.numpy()), ("dh0", dh0, h0t.grad.numpy())]
    if lstm:
        pairs += [("c_n", c_n, t_cn.detach().numpy()), ("dc0", dc0, c0t.grad.numpy())]
    t_grads = {n[:-3]: q.grad.numpy() for n, q in tm.named_parameters()}
    assert sorted(t_grads) == sorted(grads)
    pairs += [(f"grad {n}", grads[n], g) for n, g in t_grads.items()]
    assert_all_close(pairs, TORCH_TOL, f"{kind} reference vs torch:")


@pytest.mark.parametrize("kind", ["rnncell_tanh", "rnncell_relu", "lstmcell", "grucell"])
def test_reference_steps_equal_torch_cells(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(CELL_KINDS.index(kind))
    mode = {"rnn": "RNN", "lst": "LSTM", "gru": "GRU"}[kind[:3]]
    nl = kind[8:] if mode == "RNN" else "tanh"
    B, I, H = 3, 2, 4
    p = random_params(rng, mode, I, H, None, True)
    x, h, c = rng.uniform(-2, 2, (B, I)), rng.uniform(-2, 2, (B, H)), rng.uniform(-2, 2, (B, H))
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    if mode == "LSTM":
        h1, c1, cache = R.lstm_step_forward(x, h, c, p)
        dx, dh_prev, dc_prev, grads = R.lstm_step_backward(dh, dc, cache)
        tc = torch.nn.LSTMCell(I, H)
    else:
        h1, cache = R.gru_step_forward(x, h, p) if mode == "GRU" else R.rnn_step_forward(x, h, p, nl)
        dx, dh_prev, grads = (R.gru_step_backward if mode == "GRU" else R.rnn_step_backward)(dh, cache)
        tc = torch.nn.GRUCell(I, H) if mode == "GRU" else torch.nn.RNNCell(I, H, nonlinearity=nl)
    tc = tc.double()
    tc.load_state_dict({n: torch.from_numpy(v) for n, v in p.items()})
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    if mode == "LSTM":
        t_h, t_c = tc(xt, (ht, ct))
        ((t_h * torch.from_numpy(dh)).sum() + (t_c * torch.from_numpy(dc)).sum()).backward()
    else:
        t_h = tc(xt, ht)
        (t_h * torch.from_numpy(dh)).sum().backward()
    pairs = [("h", h1, t_h.detach().numpy()), ("dx", dx, xt.grad.numpy()), ("dh_prev", dh_prev, ht.grad.numpy())]
    if mode == "LSTM":
        pairs += [("c", c1, t_c.detach().numpy()), ("dc_prev", dc_prev, ct.grad.numpy())]
    pairs += [(f"grad {n}", grads[n], q.grad.numpy()) for n, q in tc.named_parameters()]
    assert_all_close(pairs, TORCH_TOL, f"{kind} reference vs torch:")
