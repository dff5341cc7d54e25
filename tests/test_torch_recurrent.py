"""Cross-checks of every recurrent layer and cell against torch.nn (float64 to 1e-9, float32 to 1e-5).

Each check loads our (random, non-zero-bias) parameters into the torch twin, feeds both the same input and
initial state, back-propagates the same random upstream gradient on *both* the output and the final state,
and compares: out, h_n (c_n), dx, dh0 (dc0) and every parameter's gradient. Variable lengths are compared
against pack_padded_sequence(enforce_sorted=False) -> layer -> pad_packed_sequence(total_length=T), with an
upstream gradient that is random also past the lengths (those entries must not leak into anything).
The sigmoid RNN, which torch lacks, is checked against minirnn.reference (composed into whole layers by
tests/helpers.py, its hand-written backward verified by finite differences in test_reference.py); the same
composition is first checked against torch.nn where torch has the layer.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minirnn as mr
from helpers import (CELL_KINDS, TORCH_CELL_KINDS, TORCH_SEQ_KINDS, assert_close, cell_state, flatten, is_lstm, like,
                     make_cell, make_seq, randomize, reference_cell, reference_seq, seq_state, torch_twin)

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

# torch's own float32 LSTM-with-projection warns that oneDNN does not do projections (setup.cfg makes warnings errors)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")

TOL64, TOL32 = 1e-9, 1e-5
T_, B_, I_, H_ = 5, 4, 3, 4
LENGTH_CASES = {
    "none": None,
    "unsorted_with_one": [3, 5, 1, 4],
    "all_full": [5, 5, 5, 5],
    "all_equal_short": [2, 2, 2, 2],
    "all_one": [1, 1, 1, 1],
}


def _t(a, requires_grad=False):
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


def zeros_state(m: mr.Module, B: int | None):
    """The zero initial state our layer uses for hx=None (torch then gets it explicitly, to read dh0)."""
    LD = m.num_layers * m.num_directions
    P = m.proj_size or m.hidden_size
    h = np.zeros((LD, P) if B is None else (LD, B, P), dtype=m.dtype)
    if is_lstm(m):
        return h, np.zeros((LD, m.hidden_size) if B is None else (LD, B, m.hidden_size), dtype=m.dtype)
    return h


def run_torch_seq(tm, m, x, hx, lengths, dout, dstate):
    """torch's out, state and the gradients of sum(out*dout) + sum(state*dstate): dx, dstate0, params."""
    xt = _t(x, True)
    hxt = tuple(_t(s, True) for s in hx) if is_lstm(m) else _t(hx, True)
    inp = xt
    if lengths is not None:
        inp = pack_padded_sequence(xt, torch.as_tensor(np.asarray(lengths), dtype=torch.int64),
                                   batch_first=m.batch_first, enforce_sorted=False)
    out, state = tm(inp, hxt)
    if lengths is not None:
        T = x.shape[1] if m.batch_first else x.shape[0]
        out, _ = pad_packed_sequence(out, batch_first=m.batch_first, total_length=T)
    loss = (out * _t(dout)).sum()
    for (_, s), (_, g) in zip(flatten(state), flatten(dstate)):
        loss = loss + (s * _t(g)).sum()
    loss.backward()
    dh0 = tuple(s.grad.numpy() for s in hxt) if is_lstm(m) else hxt.grad.numpy()
    pgrads = {n: p.grad.numpy() for n, p in tm.named_parameters()}
    st_np = tuple(s.detach().numpy() for s in state) if is_lstm(m) else state.detach().numpy()
    return out.detach().numpy(), st_np, xt.grad.numpy(), dh0, pgrads


def check_seq_against(m, x, hx, lengths, rng, tol, reference=None):
    """Compare m's forward and backward with torch (or with ``reference(x, hx, lengths, dout, dstate)``)."""
    B = None if x.ndim == 2 else (x.shape[0] if m.batch_first else x.shape[1])
    m.zero_grad()
    out, state = m(x, hx, lengths=lengths)
    dout, dstate = like(out, rng), like(state, rng)
    dx, dh0 = m.backward(dout, dstate)
    assert not m._cache, "backward must pop what forward pushed"
    hx_t = hx if hx is not None else zeros_state(m, B)
    if reference is None:
        r_out, r_state, r_dx, r_dh0, r_pg = run_torch_seq(torch_twin(m), m, x, hx_t, lengths, dout, dstate)
    else:
        r_out, r_state, r_dx, r_dh0, r_pg = reference(x, hx_t, lengths, dout, dstate)
    assert out.dtype == m.dtype and dx.dtype == m.dtype
    assert_close(out, r_out, tol, "out")
    for (path, a), (_, b) in zip(flatten(state), flatten(r_state)):
        assert_close(a, b, tol, "h_n/c_n" + path)
    assert_close(dx, r_dx, tol, "dx")
    for (path, a), (_, b) in zip(flatten(dh0), flatten(r_dh0)):
        assert_close(a, b, tol, "dh0/dc0" + path)
    names = [n for n, _ in m.named_parameters()]
    assert sorted(names) == sorted(r_pg), (names, sorted(r_pg))
    for n, p in m.named_parameters():
        assert p.grad is not None, f"{n} got no gradient"
        assert p.grad.dtype == m.dtype and p.grad.shape == p.shape
        assert_close(p.grad, r_pg[n], tol, f"grad of {n}")


def seq_input(m, rng, T, B, batched=True):
    I = m.input_size
    if not batched:
        return rng.uniform(-2, 2, (T, I)).astype(m.dtype)
    return rng.uniform(-2, 2, (B, T, I) if m.batch_first else (T, B, I)).astype(m.dtype)


# ------------------------------------------------------------------------------------------------------------
# Sequence layers, float64
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lens_case", list(LENGTH_CASES))
@pytest.mark.parametrize("bf", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS)
def test_seq_matches_torch_float64(kind, L, bi, bf, lens_case):
    rng = np.random.default_rng([L, bi, bf, len(lens_case), TORCH_SEQ_KINDS.index(kind)])
    m = make_seq(kind, I_, H_, L, bi, bf, rng=rng)
    randomize(m, rng)
    x = seq_input(m, rng, T_, B_)
    check_seq_against(m, x, seq_state(m, rng, B_), LENGTH_CASES[lens_case], rng, TOL64)


@pytest.mark.parametrize("lens_case", ["none", "unsorted_with_one"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS)
def test_seq_matches_torch_without_h0_and_without_bias(kind, bi, lens_case):
    for bias in (True, False):
        rng = np.random.default_rng([bi, bias, TORCH_SEQ_KINDS.index(kind)])
        m = make_seq(kind, I_, H_, 2, bi, False, bias=bias, rng=rng)
        randomize(m, rng)
        if not bias:
            assert not any("bias" in n for n, _ in m.named_parameters())
        check_seq_against(m, seq_input(m, rng, T_, B_), None, LENGTH_CASES[lens_case], rng, TOL64)


@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS)
def test_seq_unbatched_matches_torch(kind, L, bi, with_h0):
    rng = np.random.default_rng([L, bi, with_h0, TORCH_SEQ_KINDS.index(kind)])
    m = make_seq(kind, I_, H_, L, bi, rng=rng)
    randomize(m, rng)
    x = seq_input(m, rng, T_, None, batched=False)
    out, state = m(x, seq_state(m, rng, None) if with_h0 else None)
    P = m.proj_size or m.hidden_size
    assert out.shape == (T_, m.num_directions * P)
    assert flatten(state)[0][1].shape == (L * m.num_directions, P)
    m.clear_cache()
    check_seq_against(m, x, seq_state(m, rng, None) if with_h0 else None, None, rng, TOL64)


def test_gradient_past_lengths_is_ignored():
    """An upstream gradient on padded outputs must not change any gradient (torch drops it in pad_packed)."""
    rng = np.random.default_rng(7)
    for kind in TORCH_SEQ_KINDS:
        m = make_seq(kind, I_, H_, 2, True, rng=rng)
        randomize(m, rng)
        x, hx, lens = seq_input(m, rng, T_, B_), seq_state(m, rng, B_), [3, 5, 1, 4]
        out, state = m(x, hx, lengths=lens)
        mask = (np.arange(T_)[:, None] < np.array(lens)[None])[..., None]
        assert np.all(out[~np.broadcast_to(mask, out.shape)] == 0), "outputs past a length must be zero"
        dout, dstate = like(out, rng), like(state, rng)
        grads = []
        for d in (dout, dout * mask):
            m.zero_grad()
            m(x, hx, lengths=lens)
            dx, dh0 = m.backward(d, dstate)
            grads.append([dx] + [a for _, a in flatten(dh0)] + [p.grad.copy() for p in m.parameters()])
        m.clear_cache()
        for a, b in zip(*grads):
            np.testing.assert_array_equal(a, b)
        assert np.all(grads[0][0][~np.broadcast_to(mask, x.shape)] == 0), "dx past a length must be zero"


def test_lengths_accept_lists_and_arrays_of_any_int_dtype():
    rng = np.random.default_rng(3)
    m = make_seq("gru", I_, H_, 1, True, rng=rng)
    x = seq_input(m, rng, T_, B_)
    with mr.no_grad():
        ref = m(x, lengths=[3, 5, 1, 4])
        for lens in (np.array([3, 5, 1, 4], dtype=np.int32), np.array([3, 5, 1, 4], dtype=np.int64), (3, 5, 1, 4)):
            got = m(x, lengths=lens)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])


def test_full_lengths_equal_no_lengths():
    """lengths all equal to T is the same computation as no lengths at all."""
    rng = np.random.default_rng(4)
    for kind in TORCH_SEQ_KINDS:
        m = make_seq(kind, I_, H_, 2, True, rng=rng)
        randomize(m, rng)
        x, hx = seq_input(m, rng, T_, B_), seq_state(m, rng, B_)
        res = []
        for lens in (None, [T_] * B_):
            m.zero_grad()
            out, state = m(x, hx, lengths=lens)
            dx, dh0 = m.backward(like(out, np.random.default_rng(0)), like(state, np.random.default_rng(1)))
            res.append([out, dx] + [a for _, a in flatten(state)] + [a for _, a in flatten(dh0)]
                       + [p.grad.copy() for p in m.parameters()])
        for a, b in zip(*res):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------------------
# Random shapes (hypothesis): T 1..6, B 1..4, sizes 1..7, 1..3 layers, every flag
# ------------------------------------------------------------------------------------------------------------
@st.composite
def seq_configs(draw, kinds):
    kind = draw(st.sampled_from(kinds))
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    I = draw(st.integers(1, 7))
    H = draw(st.integers(2 if kind == "lstm_proj" else 1, 7))
    proj = draw(st.integers(1, H - 1)) if kind == "lstm_proj" else None
    L = draw(st.integers(1, 3))
    bi, bf, bias, with_h0 = (draw(st.booleans()) for _ in range(4))
    batched = draw(st.booleans()) or B > 1
    lens = None
    if batched and draw(st.booleans()):
        lens = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    seed = draw(st.integers(0, 2**32 - 1))
    return kind, T, B, I, H, proj, L, bi, bf, bias, with_h0, batched, lens, seed


def _check_config(cfg, tol=TOL64, dtype=np.float64, reference=None):
    kind, T, B, I, H, proj, L, bi, bf, bias, with_h0, batched, lens, seed = cfg
    rng = np.random.default_rng(seed)
    m = make_seq(kind, I, H, L, bi, bf, bias=bias, dtype=dtype, rng=rng, proj=proj)
    randomize(m, rng)
    x = seq_input(m, rng, T, B, batched)
    hx = seq_state(m, rng, B if batched else None) if with_h0 else None
    check_seq_against(m, x, hx, lens, rng, tol, reference(m) if reference else None)


@given(seq_configs(["rnn_tanh", "rnn_relu"]))
def test_rnn_random_shapes_match_torch(cfg):
    _check_config(cfg)


@given(seq_configs(["lstm", "lstm_proj"]))
def test_lstm_random_shapes_match_torch(cfg):
    _check_config(cfg)


@given(seq_configs(["gru"]))
def test_gru_random_shapes_match_torch(cfg):
    _check_config(cfg)


# ------------------------------------------------------------------------------------------------------------
# float32
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lens_case", ["none", "unsorted_with_one"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS)
def test_seq_matches_torch_float32(kind, L, bi, lens_case):
    rng = np.random.default_rng([L, bi, len(lens_case), 32])
    m = make_seq(kind, I_, H_, L, bi, bf=bool(L % 2), dtype=np.float32, rng=rng)
    randomize(m, rng)
    assert all(p.dtype == np.float32 for p in m.parameters())
    check_seq_against(m, seq_input(m, rng, T_, B_), seq_state(m, rng, B_), LENGTH_CASES[lens_case], rng, TOL32)


@pytest.mark.parametrize("kind", TORCH_CELL_KINDS)
def test_cells_match_torch_float32(kind):
    rng = np.random.default_rng(32)
    c = make_cell(kind, I_, H_, dtype=np.float32, rng=rng)
    randomize(c, rng)
    check_cell_against(c, rng.uniform(-2, 2, (B_, I_)).astype(np.float32), cell_state(c, rng, B_), rng, TOL32)


# ------------------------------------------------------------------------------------------------------------
# Cells
# ------------------------------------------------------------------------------------------------------------
def run_torch_cell(tc, c, x, hx, dout):
    xt = _t(x, True)
    hxt = tuple(_t(s, True) for s in hx) if is_lstm(c) else _t(hx, True)
    out = tc(xt, hxt)
    loss = sum((o * _t(g)).sum() for (_, o), (_, g) in zip(flatten(out), flatten(dout)))
    loss.backward()
    dh0 = tuple(s.grad.numpy() for s in hxt) if is_lstm(c) else hxt.grad.numpy()
    out_np = tuple(o.detach().numpy() for o in out) if is_lstm(c) else out.detach().numpy()
    return out_np, xt.grad.numpy(), dh0, {n: p.grad.numpy() for n, p in tc.named_parameters()}


def check_cell_against(c, x, hx, rng, tol, reference=None):
    c.zero_grad()
    out = c(x, hx)
    dout = like(out, rng)
    dx, dh0 = c.backward(dout)
    assert not c._cache
    if hx is None:
        z = np.zeros(x.shape[:-1] + (c.hidden_size,), dtype=c.dtype)
        hx = (z, z.copy()) if is_lstm(c) else z
    if reference is None:
        r_out, r_dx, r_dh0, r_pg = run_torch_cell(torch_twin(c), c, x, hx, dout)
    else:
        r_out, r_dx, r_dh0, r_pg = reference(x, hx, dout)
    for (path, a), (_, b) in zip(flatten(out), flatten(r_out)):
        assert_close(a, b, tol, "out" + path)
    assert_close(dx, r_dx, tol, "dx")
    for (path, a), (_, b) in zip(flatten(dh0), flatten(r_dh0)):
        assert_close(a, b, tol, "dh0/dc0" + path)
    assert sorted(n for n, _ in c.named_parameters()) == sorted(r_pg)
    for n, p in c.named_parameters():
        assert_close(p.grad, r_pg[n], tol, f"grad of {n}")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kind", TORCH_CELL_KINDS)
def test_cells_match_torch_float64(kind, batched, with_h0, bias):
    rng = np.random.default_rng([batched, with_h0, bias, TORCH_CELL_KINDS.index(kind)])
    c = make_cell(kind, I_, H_, bias=bias, rng=rng)
    randomize(c, rng)
    x = rng.uniform(-2, 2, (B_, I_) if batched else (I_,))
    hx = cell_state(c, rng, B_ if batched else None) if with_h0 else None
    check_cell_against(c, x, hx, rng, TOL64)


def test_lstmcell_backward_accepts_either_gradient_as_none():
    rng = np.random.default_rng(11)
    c = make_cell("lstmcell", I_, H_, rng=rng)
    randomize(c, rng)
    x, hx = rng.uniform(-2, 2, (B_, I_)), cell_state(c, rng, B_)
    h1, c1 = c(x, hx)
    dh = rng.standard_normal(h1.shape)
    full = c.backward((dh, np.zeros_like(c1)))
    c.zero_grad()
    c(x, hx)
    part = c.backward((dh, None))
    c(x, hx)
    part2 = c.backward(dh, None)
    for (_, a), (_, b), (_, d) in zip(flatten(full), flatten(part), flatten(part2)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(a, d, rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------------------------------------------------
# The sigmoid RNN (beyond torch) against minirnn.reference (its own backward, checked by finite differences)
# ------------------------------------------------------------------------------------------------------------
def reference_runner(m):
    """A reference(x, hx, lengths, dout, dstate) -> (out, state, dx, dh0, grads) built on helpers.reference_seq."""

    def run(x, hx, lengths, dout, dstate):
        r = reference_seq(m, x, hx, lengths, dout, dstate)
        return r.out, r.state, r.dx, r.dh0, r.grads

    return run


@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS)
def test_reference_loop_itself_matches_torch(kind):
    """The reference used for the sigmoid RNN reproduces torch.nn where torch has the layer, so it is trusted."""
    rng = np.random.default_rng(5)
    m = make_seq(kind, I_, H_, 2, True, True, rng=rng)
    randomize(m, rng)
    x, hx, lens = seq_input(m, rng, T_, B_), seq_state(m, rng, B_), [3, 5, 1, 4]
    tm = torch_twin(m)
    dout = rng.standard_normal((B_, T_, 2 * (m.proj_size or H_)))
    dstate = like(m(x, hx, lengths=lens)[1], rng)
    m.clear_cache()
    ref = reference_runner(m)(x, hx, lens, dout, dstate)
    tor = run_torch_seq(tm, m, x, hx, lens, dout, dstate)
    for (path, a), (_, b) in zip(flatten(ref[:4]), flatten(tor[:4])):
        assert_close(a, b, 1e-12, "reference vs torch " + path)
    for n, g in tor[4].items():
        assert_close(ref[4][n], g, 1e-12, "reference vs torch grad " + n)


@pytest.mark.parametrize("lens_case", ["none", "unsorted_with_one", "all_one"])
@pytest.mark.parametrize("bf", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_sigmoid_rnn_matches_reference_loop(L, bi, bf, lens_case):
    rng = np.random.default_rng([L, bi, bf, len(lens_case), 99])
    m = make_seq("rnn_sigmoid", I_, H_, L, bi, bf, rng=rng)
    randomize(m, rng)
    check_seq_against(m, seq_input(m, rng, T_, B_), seq_state(m, rng, B_), LENGTH_CASES[lens_case], rng, TOL64,
                      reference_runner(m))


@given(seq_configs(["rnn_sigmoid"]))
def test_sigmoid_rnn_random_shapes_match_reference_loop(cfg):
    _check_config(cfg, reference=reference_runner)


def test_sigmoid_rnn_unbatched_and_float32_match_reference_loop():
    rng = np.random.default_rng(8)
    for dtype, tol in ((np.float64, TOL64), (np.float32, TOL32)):
        m = make_seq("rnn_sigmoid", I_, H_, 2, True, dtype=dtype, rng=rng)
        randomize(m, rng)
        check_seq_against(m, seq_input(m, rng, T_, None, False), seq_state(m, rng, None), None, rng, tol,
                          reference_runner(m))
        check_seq_against(m, seq_input(m, rng, T_, B_), None, [2, 5, 1, 5], rng, tol, reference_runner(m))


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cells_match_reference_loop(kind, batched):
    """Every cell, the sigmoid RNNCell included, against minirnn.reference's step forward and backward."""
    rng = np.random.default_rng([batched, CELL_KINDS.index(kind)])
    c = make_cell(kind, I_, H_, rng=rng)
    randomize(c, rng)

    def reference(x, hx, dout):
        r = reference_cell(c, x, hx, dout)
        return r.out, r.dx, r.dh0, r.grads

    x = rng.uniform(-2, 2, (B_, I_) if batched else (I_,))
    check_cell_against(c, x, cell_state(c, rng, B_ if batched else None), rng, TOL64, reference)


# ------------------------------------------------------------------------------------------------------------
# state_dict interchange: torch -> ours unchanged, ours -> torch unchanged
# ------------------------------------------------------------------------------------------------------------
def _fresh(kind, dtype):
    """Our layer of ``kind`` (sequence or cell) built with a seed; shapes as in the grid above."""
    if kind in CELL_KINDS:
        return make_cell(kind, I_, H_, dtype=dtype, rng=0)
    return make_seq(kind, I_, H_, 2, True, dtype=dtype, rng=0)


def _forward_both(m, tm, rng):
    if isinstance(m, (mr.RNNCell, mr.LSTMCell, mr.GRUCell)):
        x = rng.uniform(-2, 2, (B_, I_)).astype(m.dtype)
        hx = cell_state(m, rng, B_)
        with mr.no_grad():
            ours = m(x, hx)
        with torch.no_grad():
            theirs = tm(_t(x), tuple(_t(s) for s in hx) if is_lstm(m) else _t(hx))
    else:
        x, hx = seq_input(m, rng, T_, B_), seq_state(m, rng, B_)
        with mr.no_grad():
            ours = m(x, hx)
        with torch.no_grad():
            theirs = tm(_t(x), tuple(_t(s) for s in hx) if is_lstm(m) else _t(hx))
    return flatten(ours), flatten(theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS + TORCH_CELL_KINDS)
def test_torch_state_dict_loads_unchanged(kind, dtype):
    torch.manual_seed(0)
    m = _fresh(kind, dtype)
    tm = torch_twin(m, load=False)                  # torch's own initialisation
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert list(sd) == list(m.state_dict()), "same names in the same order as torch"
    before = {k: v.copy() for k, v in sd.items()}
    missing, unexpected = m.load_state_dict(sd)
    assert missing == [] and unexpected == []
    for k, v in sd.items():
        np.testing.assert_array_equal(v, before[k])     # the source is not modified
        np.testing.assert_array_equal(m.state_dict()[k], v)
        assert m.state_dict()[k].dtype == np.dtype(dtype)
    tol = TOL64 if dtype == np.float64 else TOL32
    for (path, a), (_, b) in zip(*_forward_both(m, tm, np.random.default_rng(1))):
        assert_close(a, b.numpy(), tol, "output" + path)
    # torch tensors themselves are accepted too
    m2 = _fresh(kind, dtype)
    m2.load_state_dict(tm.state_dict())
    for k, v in m2.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS + TORCH_CELL_KINDS)
def test_our_state_dict_loads_into_torch_unchanged(kind):
    m = _fresh(kind, np.float64)
    randomize(m, np.random.default_rng(2))
    tm = torch_twin(m, load=False)
    result = tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for (path, a), (_, b) in zip(*_forward_both(m, tm, np.random.default_rng(3))):
        assert_close(a, b.numpy(), TOL64, "output" + path)


def test_user_model_state_dict_names_match_torch():
    """A user Module with an rnn and an fc has the very keys torch's equivalent has, and they interchange."""

    class Ours(mr.Module):
        def __init__(self):
            super().__init__()
            self.emb = mr.Embedding(10, I_, padding_idx=0, dtype=np.float64, rng=0)
            self.rnn = mr.LSTM(I_, H_, 2, bidirectional=True, proj_size=2, dtype=np.float64, rng=0)
            self.fc = mr.Linear(4, 3, dtype=np.float64, rng=0)

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, I_, padding_idx=0)
            self.rnn = torch.nn.LSTM(I_, H_, 2, bidirectional=True, proj_size=2)
            self.fc = torch.nn.Linear(4, 3)

    ours, theirs = Ours(), Theirs().double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())


def test_tied_weights_state_dict_interchanges_with_torch():
    """Weight tying (decoder.weight = encoder.weight): torch's state_dict lists the tensor under both names."""

    class Ours(mr.Module):
        def __init__(self):
            super().__init__()
            self.encoder = mr.Embedding(6, 4, dtype=np.float64, rng=0)
            self.rnn = mr.GRU(4, 4, dtype=np.float64, rng=0)
            self.decoder = mr.Linear(4, 6, dtype=np.float64, rng=0)
            self.decoder.weight = self.encoder.weight

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Embedding(6, 4)
            self.rnn = torch.nn.GRU(4, 4)
            self.decoder = torch.nn.Linear(4, 6)
            self.decoder.weight = self.encoder.weight

    ours, theirs = Ours(), Theirs().double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.decoder.weight.data, theirs.encoder.weight.detach().numpy())
    theirs2 = Theirs().double()
    theirs2.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


# ---- the one-layer dropout warning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dropout, num_layers", [(0.5, 1), (0.25, 1), (0.5, 2), (0.0, 1)])
def test_dropout_with_one_layer_warns_as_torch(kind, dropout, num_layers):
    """torch warns (UserWarning) that dropout acts between stacked layers only: minirnn warns the same words, at the
    caller's line, and stays silent where torch is."""
    ours_cls = {"rnn": mr.RNN, "lstm": mr.LSTM, "gru": mr.GRU}[kind]
    theirs_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        theirs_cls(3, 4, num_layers=num_layers, dropout=dropout)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        ours_cls(3, 4, num_layers=num_layers, dropout=dropout)
    assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in theirs]
    assert len(ours) == (1 if dropout > 0 and num_layers == 1 else 0)
    assert all(w.filename == __file__ for w in ours)
