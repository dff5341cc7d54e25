"""Hypothesis-driven bad input over the public API: every case must raise the expected exception type (TypeError,
ValueError, IndexError; RuntimeError for a backward with nothing to pop) with a message that names the argument,
and a failed call must leave the module as it was (no parameter changed, no forward cache pushed or lost).

Each checked call is one *case*. The counts (per area, and every failure by kind) are written at the end of the
module to the pytest cache (``pytest --cache-show 'minirnn/*'``), to ``$MINIRNN_BAD_INPUT_REPORT`` when that is set,
and printed in the terminal line ``bad-input cases: N tried, N with clear errors, 0 silently accepted, ...``.
The count is deterministic under the default hypothesis profile ``ci`` (derandomize=True, tests/conftest.py):
``python -m pytest tests/test_bad_input.py`` (or the whole suite) prints it.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import minirnn

CASES: collections.Counter = collections.Counter()      # per area: calls that raised a clear error
FAILED: collections.Counter = collections.Counter()     # per outcome: silently accepted, wrong type, unclear message
MORE = settings(max_examples=4 * settings.default.max_examples)   # the cheap, many-branched tests draw more
UNSET = object()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    clear = sum(CASES.values())
    total = clear + sum(FAILED.values())
    summary = {"total": total, "clear_errors": clear, "by_area": dict(sorted(CASES.items())),
               "silently_accepted": FAILED["silently accepted"], "wrong_exception": FAILED["wrong exception"],
               "unclear_message": FAILED["unclear message"]}
    cache = getattr(request.config, "cache", None)          # absent under -p no:cacheprovider
    if cache is not None:
        cache.set("minirnn/bad_input_cases", summary)
    path = os.environ.get("MINIRNN_BAD_INPUT_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(summary, f, indent=1)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and total:
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line("")
            reporter.write_line(
                f"bad-input cases: {total} tried, {clear} with clear errors, {FAILED['silently accepted']} silently "
                f"accepted, {FAILED['wrong exception']} with the wrong exception, {FAILED['unclear message']} with "
                f"an unclear message ({', '.join(f'{k} {v}' for k, v in sorted(CASES.items()))})")


def _names_in(msg: str, names) -> bool:
    return any(re.search(r"(?<![\w\[])" + re.escape(n) + r"(?![\w])", msg) for n in names)


def _fail(outcome: str, text: str):
    FAILED[outcome] += 1
    pytest.fail(text)


def expect(area: str, fn, types, names, module: minirnn.Module | None = None):
    """``fn()`` must raise ``types`` naming one of ``names``, and leave ``module`` (parameters, caches) unchanged.

    Every call is counted: in CASES[area] when it raised a clear error, else in FAILED (and the test fails), so
    the summary line counts every case that was tried, including examples hypothesis replays while shrinking."""
    names = (names,) if isinstance(names, str) else tuple(names)
    before = None
    if module is not None:
        before = ({k: v.tobytes() for k, v in module.state_dict().items()},
                  [len(m._cache) for m in module.modules()])
    try:
        fn()
    except types as e:
        msg = str(e)
        if not _names_in(msg, names):
            _fail("unclear message", f"{area}: the message {msg!r} names none of {names}")
    except Exception as e:  # the wrong exception type is a failure too
        _fail("wrong exception", f"{area}: expected {types} naming {names}, got {type(e).__name__}: {e}")
    else:
        _fail("silently accepted", f"{area}: bad input silently accepted (expected {types} naming {names})")
    if module is not None:
        after = ({k: v.tobytes() for k, v in module.state_dict().items()}, [len(m._cache) for m in module.modules()])
        if after != before:
            _fail("silently accepted", f"{area}: a failed call changed the module")
    CASES[area] += 1


# ---- strategies for bad values ----------------------------------------------------------------------------------
def bad_sizes(zero_ok: bool = False):
    """(value, expected exception) for an argument that must be a positive int (a non-negative one: ``zero_ok``)."""
    return st.one_of(
        st.integers(max_value=-1 if zero_ok else 0).map(lambda v: (v, ValueError)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: (v, TypeError)),
        st.integers(1, 9).map(lambda v: (float(v), TypeError)),
        st.integers(1, 9).map(lambda v: (np.float32(v), TypeError)),
        st.booleans().map(lambda v: (v, TypeError)),
        st.text(max_size=3).map(lambda v: (v, TypeError)),
        st.just((None, TypeError)),
        st.integers(1, 9).map(lambda v: ([v], TypeError)),
    )


def bad_flags():
    return st.one_of(
        st.integers().filter(lambda v: v not in (0, 1)),
        st.floats(allow_nan=True),
        st.sampled_from(["True", "False", "", "yes", None, [True], (), np.array([True, False])]),
    ).map(lambda v: (v, TypeError))


def bad_probabilities():
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 <= v <= 1).map(lambda v: (v, ValueError)),
        st.integers().filter(lambda v: v not in (0, 1)).map(lambda v: (v, ValueError)),   # [0, 1], as torch
        st.sampled_from(["0.5", None, [0.5], True, False, 0.5j]).map(lambda v: (v, TypeError)),
    )


def bad_dtypes():
    return st.sampled_from([np.int32, np.int64, np.uint8, np.float16, np.complex64, np.complex128, np.bool_, object,
                            "float", "float8", "not a dtype", str, int, 3, np.dtype("U3"), np.longdouble]
                           ).filter(lambda d: d not in ("float",))


INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64]


def wrong_float_for(dtype):
    return [d for d in (np.float16, np.float32, np.float64) if d != dtype]


def non_arrays():
    return st.sampled_from([None, "abc", b"bytes", {"a": 1}, {1, 2}, object(), lambda: 0, Ellipsis])


# ---- constructors -------------------------------------------------------------------------------------------------
SIZE_ARGS = [
    (minirnn.RNN, dict(input_size=3, hidden_size=4), ("input_size", "hidden_size", "num_layers")),
    (minirnn.GRU, dict(input_size=3, hidden_size=4), ("input_size", "hidden_size", "num_layers")),
    (minirnn.LSTM, dict(input_size=3, hidden_size=4), ("input_size", "hidden_size", "num_layers")),
    (minirnn.RNNCell, dict(input_size=3, hidden_size=4), ("input_size", "hidden_size")),
    (minirnn.GRUCell, dict(input_size=3, hidden_size=4), ("input_size", "hidden_size")),
    (minirnn.LSTMCell, dict(input_size=3, hidden_size=4), ("input_size", "hidden_size")),
    (minirnn.Linear, dict(in_features=3, out_features=4), ("in_features", "out_features")),
    (minirnn.Embedding, dict(num_embeddings=5, embedding_dim=4), ("num_embeddings", "embedding_dim")),
]
# torch's cells take hidden_size=0 (a (B, 0) state); its RNN/LSTM/GRU refuse it, as minirnn's do
ZERO_OK = {(minirnn.RNNCell, "hidden_size"), (minirnn.GRUCell, "hidden_size"), (minirnn.LSTMCell, "hidden_size")}
FLAG_ARGS = [(minirnn.RNN, ("bias", "batch_first", "bidirectional")), (minirnn.GRU, ("bias", "batch_first",
              "bidirectional")), (minirnn.LSTM, ("bias", "batch_first", "bidirectional")), (minirnn.RNNCell, ("bias",)),
             (minirnn.GRUCell, ("bias",)), (minirnn.LSTMCell, ("bias",)), (minirnn.Linear, ("bias",))]


@given(data=st.data())
def test_constructor_sizes_flags_probabilities_dtypes(data):
    for cls, base, size_args in SIZE_ARGS:
        for arg in size_args:
            value, exc = data.draw(bad_sizes((cls, arg) in ZERO_OK), label=f"{cls.__name__}.{arg}")
            expect("constructors", lambda: cls(**{**base, arg: value}), exc, arg)
        dtype = data.draw(bad_dtypes(), label=f"{cls.__name__}.dtype")
        expect("constructors", lambda: cls(**base, dtype=dtype), TypeError, "dtype")
        rng = data.draw(st.sampled_from(["seed", 1.5, [1], object(), True]), label="rng")
        expect("constructors", lambda: cls(**base, rng=rng), TypeError, "rng")
    for cls, flags in FLAG_ARGS:
        base = dict(SIZE_ARGS[[c for c, _, _ in SIZE_ARGS].index(cls)][1])
        for arg in flags:
            value, exc = data.draw(bad_flags(), label=f"{cls.__name__}.{arg}")
            expect("constructors", lambda: cls(**base, **{arg: value}), exc, arg)
    for cls in (minirnn.RNN, minirnn.GRU, minirnn.LSTM):
        value, exc = data.draw(bad_probabilities(), label="dropout")
        expect("constructors", lambda: cls(3, 4, num_layers=2, dropout=value), exc, "dropout")
    value, exc = data.draw(bad_probabilities(), label="p")
    expect("constructors", lambda: minirnn.Dropout(value), exc, "p")
    nl = data.draw(st.one_of(st.text(max_size=8).filter(lambda s: s not in ("tanh", "relu", "sigmoid")),
                             st.sampled_from([None, 1, ["tanh"], "Tanh", "TANH", " tanh"])), label="nonlinearity")
    expect("constructors", lambda: minirnn.RNN(3, 4, nonlinearity=nl), ValueError, "nonlinearity")
    expect("constructors", lambda: minirnn.RNNCell(3, 4, nonlinearity=nl), ValueError, "nonlinearity")
    H = data.draw(st.integers(1, 6), label="H")
    proj, exc = data.draw(st.one_of(st.integers(max_value=-1).map(lambda v: (v, ValueError)),
                                    st.integers(H, H + 5).map(lambda v: (v, ValueError)),
                                    st.floats(0, 10).map(lambda v: (v, TypeError)),
                                    st.sampled_from([(True, TypeError), ("1", TypeError), (None, TypeError)])),
                          label="proj_size")
    expect("constructors", lambda: minirnn.LSTM(3, H, proj_size=proj), exc, "proj_size")
    for cls in (minirnn.RNN, minirnn.GRU):   # torch: "proj_size argument is only supported for LSTM", any value
        expect("constructors", lambda: cls(3, H, proj_size=data.draw(st.sampled_from([0, 1, H, -1, None]),
                                                                      label="RNN proj_size")), ValueError, "proj_size")
    n = data.draw(st.integers(1, 8), label="num_embeddings")
    pad, exc = data.draw(st.one_of(st.integers().filter(lambda v: not -n <= v < n).map(lambda v: (v, ValueError)),
                                   st.floats().map(lambda v: (v, TypeError)),
                                   st.sampled_from([("0", TypeError), (True, TypeError), ([0], TypeError)])),
                         label="padding_idx")
    expect("constructors", lambda: minirnn.Embedding(n, 3, padding_idx=pad), exc, "padding_idx")


# ---- sequence layers ----------------------------------------------------------------------------------------------
@st.composite
def seq_setups(draw):
    mode = draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    H = draw(st.integers(1, 4))
    cfg = dict(input_size=draw(st.integers(1, 4)), hidden_size=H, num_layers=draw(st.integers(1, 2)),
               bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()),
               dtype=draw(st.sampled_from([np.float32, np.float64])))
    if mode == "LSTM" and H > 1 and draw(st.booleans()):
        cfg["proj_size"] = draw(st.integers(1, H - 1))
    if mode == "RNN":
        cfg["nonlinearity"] = draw(st.sampled_from(["tanh", "relu", "sigmoid"]))
    T, B, batched = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.booleans())
    return mode, cfg, T, B, batched


def _seq(mode, cfg, T, B, batched, rng):
    m = getattr(minirnn, mode)(**cfg, rng=0)
    I, dt = cfg["input_size"], cfg["dtype"]
    shape = ((B, T, I) if cfg["batch_first"] else (T, B, I)) if batched else (T, I)
    x = rng.standard_normal(shape).astype(dt)
    LD = cfg["num_layers"] * (2 if cfg["bidirectional"] else 1)
    P = cfg.get("proj_size") or cfg["hidden_size"]
    hshape = (LD, B, P) if batched else (LD, P)
    cshape = (LD, B, cfg["hidden_size"]) if batched else (LD, cfg["hidden_size"])
    return m, x, hshape, cshape


def _perturb_shape(data, shape, label):
    """The same rank with one dimension changed, or a different rank."""
    if not shape or data.draw(st.booleans(), label=f"{label} change rank"):
        new_rank = data.draw(st.integers(0, 5).filter(lambda r: r != len(shape)), label=f"{label} rank")
        return tuple(data.draw(st.lists(st.integers(1, 4), min_size=new_rank, max_size=new_rank), label=label))
    i = data.draw(st.integers(0, len(shape) - 1), label=f"{label} dim")
    new = data.draw(st.integers(0, 6).filter(lambda v: v != shape[i]), label=f"{label} size")
    return shape[:i] + (new,) + shape[i + 1:]


@settings(MORE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(setup=seq_setups(), data=st.data())
def test_sequence_layer_forward(setup, data):
    mode, cfg, T, B, batched = setup
    rng = np.random.default_rng(0)
    m, x, hshape, cshape = _seq(mode, cfg, T, B, batched, rng)
    dt = cfg["dtype"]
    lstm = mode == "LSTM"
    h_names = ("h_0",) if lstm else ("hx",)

    def run(inp=x, h=None, c=None, lengths=None, hx=UNSET):
        if hx is UNSET:
            hx = None if h is None and c is None else ((h if h is not None else np.zeros(hshape, dt),
                                                         c if c is not None else np.zeros(cshape, dt))
                                                        if lstm else h)
        return m(inp, hx, lengths=lengths)

    area = "sequence forward"
    # the input: rank, features, dtype, kind, empty
    bad_shape = _perturb_shape(data, x.shape, "input shape")
    assume(bad_shape != x.shape)
    t_axis = 1 if (batched and cfg["batch_first"]) else 0
    # legal: any (T, B, I) with T >= 1 (B = 0 too, as torch) and any unbatched (T, I) with T >= 1
    bad_t_axis = 1 if (len(bad_shape) == 3 and cfg["batch_first"]) else 0
    legal = len(bad_shape) in (2, 3) and bad_shape[-1] == x.shape[-1] and bad_shape[bad_t_axis] != 0
    if not legal:
        expect(area, lambda: run(np.zeros(bad_shape, dt)), ValueError, "input", m)
    expect(area, lambda: run(x.astype(data.draw(st.sampled_from(INT_DTYPES + [np.bool_]), label="int dtype"))),
           TypeError, "input", m)
    expect(area, lambda: run(x.astype(data.draw(st.sampled_from([np.complex64, np.complex128]), label="c"))),
           TypeError, "input", m)
    expect(area, lambda: run(x.astype(data.draw(st.sampled_from(wrong_float_for(dt)), label="float dtype"))),
           TypeError, "input", m)
    expect(area, lambda: run(data.draw(non_arrays(), label="non-array")), TypeError, "input", m)
    expect(area, lambda: run(np.array([["a"] * x.shape[-1]] * 2)), TypeError, "input", m)
    empty = list(x.shape)
    empty[t_axis] = 0
    expect(area, lambda: run(np.zeros(empty, dt)), ValueError, "input", m)   # T = 0: torch refuses it too
    # (an empty batch, B = 0, gives torch's empty outputs: tests/test_torch_habits.py)
    # the initial state
    expect(area, lambda: run(h=np.zeros(_perturb_shape(data, hshape, "h shape"), dt)), ValueError, h_names, m)
    expect(area, lambda: run(h=np.zeros(hshape, data.draw(st.sampled_from(INT_DTYPES + wrong_float_for(dt)),
                                                          label="h dtype"))), TypeError, h_names, m)
    if lstm:
        expect(area, lambda: run(c=np.zeros(_perturb_shape(data, cshape, "c shape"), dt)), ValueError, "c_0", m)
        not_pair = data.draw(st.sampled_from(["array", "triple", "one", "h-None", "None-c", "str"]), label="hx")
        value = {"array": np.zeros(hshape, dt), "triple": (np.zeros(hshape, dt),) * 3, "one": [np.zeros(hshape, dt)],
                 "h-None": (np.zeros(hshape, dt), None), "None-c": (None, np.zeros(cshape, dt)), "str": "hc"}[not_pair]
        expect(area, lambda: run(hx=value), TypeError, "hx", m)
    else:
        pair = (np.zeros(hshape, dt), np.zeros(hshape, dt))
        expect(area, lambda: run(hx=pair), TypeError, "hx", m)
    # lengths
    nB = B if batched else 1
    count = data.draw(st.integers(0, 5).filter(lambda n: n != nB), label="lengths count")
    expect(area, lambda: run(lengths=[1] * count), ValueError, "lengths", m)
    bad_len = data.draw(st.one_of(st.integers(max_value=0), st.integers(T + 1, T + 100)), label="bad length")
    pos = data.draw(st.integers(0, nB - 1), label="bad position")
    lengths = [T] * nB
    lengths[pos] = bad_len
    expect(area, lambda: run(lengths=lengths), ValueError, "lengths", m)
    kind = data.draw(st.sampled_from(["float", "bool", "str", "complex", "nested", "none-inside"]), label="lengths kind")
    value = {"float": [float(T)] * nB, "bool": [True] * nB, "str": ["1"] * nB, "complex": [1j] * nB,
             "nested": [[1] * nB], "none-inside": [None] * nB}[kind]
    expect(area, lambda: run(lengths=value), (TypeError, ValueError), "lengths", m)


@settings(MORE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(setup=seq_setups(), data=st.data())
def test_sequence_layer_backward(setup, data):
    mode, cfg, T, B, batched = setup
    m, x, hshape, cshape = _seq(mode, cfg, T, B, batched, np.random.default_rng(1))
    dt = cfg["dtype"]
    area = "sequence backward"
    expect(area, lambda: m.backward(None), RuntimeError, "backward", m)   # nothing to pop
    out, state = m(x)
    hn, cn = state if mode == "LSTM" else (state, None)

    def back(dout=None, dh=None, dc=None, dstate=UNSET):
        if mode == "LSTM":
            return m.backward(dout, (dh, dc) if dstate is UNSET else dstate)
        return m.backward(dout, dh)

    expect(area, lambda: back(np.zeros(_perturb_shape(data, out.shape, "dout shape"), dt)), ValueError, "dout", m)
    expect(area, lambda: back(out.astype(data.draw(st.sampled_from(INT_DTYPES + wrong_float_for(dt) + [np.complex64]),
                                                   label="dout dtype"))), TypeError, "dout", m)
    expect(area, lambda: back(data.draw(non_arrays().filter(lambda v: v is not None), label="dout kind")),
           TypeError, "dout", m)   # (None is a valid dout: no gradient from the outputs)
    expect(area, lambda: back(dh=np.zeros(_perturb_shape(data, hn.shape, "dh shape"), dt)), ValueError, "dh_n", m)
    if mode == "LSTM":
        expect(area, lambda: back(dc=np.zeros(_perturb_shape(data, cn.shape, "dc shape"), dt)), ValueError, "dc_n", m)
        expect(area, lambda: back(dstate=data.draw(st.sampled_from([np.zeros(hn.shape, dt), (None,), "x"]),
                                                   label="dstate")), TypeError, "dstate", m)
    # every failure above left the cache in place: the correct call still works, once
    dx, _ = back(np.ones_like(out))
    assert dx.shape == x.shape
    expect(area, lambda: back(np.ones_like(out)), RuntimeError, "backward", m)


@MORE
# ---- cells --------------------------------------------------------------------------------------------------------
@given(mode=st.sampled_from(["RNNCell", "GRUCell", "LSTMCell"]), I=st.integers(1, 4), H=st.integers(1, 4),
       B=st.integers(1, 3), batched=st.booleans(), dt=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_cells(mode, I, H, B, batched, dt, data):
    cell = getattr(minirnn, mode)(I, H, dtype=dt, rng=0)
    lstm = mode == "LSTMCell"
    x = np.ones((B, I) if batched else (I,), dt)
    sshape = (B, H) if batched else (H,)
    area = "cells"

    def run(inp=x, h=None, c=None, hx=UNSET):
        if hx is UNSET:
            hx = None if h is None and c is None else ((h if h is not None else np.zeros(sshape, dt),
                                                         c if c is not None else np.zeros(sshape, dt))
                                                        if lstm else h)
        return cell(inp, hx)

    bad = _perturb_shape(data, x.shape, "input shape")
    if not (len(bad) in (1, 2) and bad[-1] == I):   # (B, I) with any B (0 too, as torch) and (I,) are legal
        expect(area, lambda: run(np.zeros(bad, dt)), ValueError, "input", cell)
    expect(area, lambda: run(x.astype(data.draw(st.sampled_from(INT_DTYPES + [np.bool_, np.complex128] +
                                                                wrong_float_for(dt)), label="dtype"))),
           TypeError, "input", cell)
    expect(area, lambda: run(data.draw(non_arrays(), label="kind")), TypeError, "input", cell)
    expect(area, lambda: run(h=np.zeros(_perturb_shape(data, sshape, "h shape"), dt)), ValueError,
           ("hx[0]",) if lstm else ("hx",), cell)
    if lstm:
        expect(area, lambda: run(c=np.zeros(_perturb_shape(data, sshape, "c shape"), dt)), ValueError, "hx[1]", cell)
        expect(area, lambda: run(hx=data.draw(st.sampled_from([np.zeros(sshape, dt), (np.zeros(sshape, dt),) * 3,
                                                               (np.zeros(sshape, dt), None)]), label="hx")),
               TypeError, "hx", cell)
    else:
        expect(area, lambda: run(hx=(np.zeros(sshape, dt),) * 2), TypeError, "hx", cell)
    expect(area, lambda: cell.backward(np.zeros(sshape, dt)), RuntimeError, "backward", cell)
    h = run()
    h1 = h[0] if lstm else h
    wrong = np.zeros(_perturb_shape(data, h1.shape, "dh shape"), dt)
    if lstm:
        expect(area, lambda: cell.backward((wrong, None)), ValueError, "dh", cell)
        expect(area, lambda: cell.backward((None, wrong)), ValueError, "dc", cell)
        expect(area, lambda: cell.backward((np.ones_like(h1), None), np.ones_like(h1)), TypeError, "dc", cell)
        expect(area, lambda: cell.backward((np.ones_like(h1),) * 3), TypeError, "dhc", cell)
        cell.backward((np.ones_like(h1), np.ones_like(h1)))
    else:
        expect(area, lambda: cell.backward(wrong), ValueError, "dh", cell)
        expect(area, lambda: cell.backward(h1.astype(np.int64)), TypeError, "dh", cell)
        cell.backward(np.ones_like(h1))


@MORE
# ---- Linear, Embedding, Dropout -------------------------------------------------------------------------------------
@given(fan_in=st.integers(1, 5), fan_out=st.integers(1, 5), lead=st.lists(st.integers(1, 3), max_size=3),
       dt=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_linear(fan_in, fan_out, lead, dt, data):
    lin = minirnn.Linear(fan_in, fan_out, dtype=dt, rng=0)
    x = np.ones(tuple(lead) + (fan_in,), dt)
    area = "Linear"
    expect(area, lambda: lin(np.ones(tuple(lead) + (data.draw(st.integers(0, 9).filter(lambda v: v != fan_in),
                                                             label="features"),), dt)), ValueError, "x", lin)
    expect(area, lambda: lin(np.float64(1.0) if dt == np.float64 else np.float32(1.0)), ValueError, "x", lin)
    expect(area, lambda: lin(x.astype(data.draw(st.sampled_from(INT_DTYPES + [np.bool_, np.complex64] +
                                                                wrong_float_for(dt)), label="dtype"))),
           TypeError, "x", lin)
    expect(area, lambda: lin(data.draw(non_arrays(), label="kind")), TypeError, "x", lin)
    y = lin(x)
    expect(area, lambda: lin.backward(np.zeros(_perturb_shape(data, y.shape, "dy"), dt)), ValueError, "dy", lin)
    expect(area, lambda: lin.backward(y.astype(np.int32)), TypeError, "dy", lin)
    lin.backward(np.ones_like(y))
    expect(area, lambda: lin.backward(np.ones_like(y)), RuntimeError, "backward", lin)


@MORE
@given(n=st.integers(1, 6), d=st.integers(1, 4), shape=st.lists(st.integers(1, 3), max_size=3), data=st.data())
def test_embedding(n, d, shape, data):
    emb = minirnn.Embedding(n, d, rng=0)
    area = "Embedding"
    idx = np.zeros(shape, np.int64)
    bad = data.draw(st.one_of(st.integers(-2**62, -1), st.integers(min_value=n, max_value=2**62)), label="index")
    where = data.draw(st.integers(0, max(idx.size - 1, 0)), label="where")
    bad_idx = idx.copy().reshape(-1)
    if bad_idx.size:
        bad_idx[where] = bad
    else:
        bad_idx = np.array(bad)
    expect(area, lambda: emb(bad_idx.reshape(shape) if idx.size else bad_idx), IndexError, "indices", emb)
    expect(area, lambda: emb(idx.astype(data.draw(st.sampled_from([np.float32, np.float64, np.bool_, np.complex64,
                                                                   np.float16]), label="dtype"))),
           TypeError, "indices", emb)
    expect(area, lambda: emb(data.draw(st.sampled_from([None, "0", [0.5], [True], {"a": 0}, [[0], [0, 0]]]),
                                       label="kind")), TypeError, "indices", emb)
    y = emb(idx)
    expect(area, lambda: emb.backward(np.zeros(_perturb_shape(data, y.shape, "dy"), np.float32)), ValueError, "dy", emb)
    expect(area, lambda: emb.backward(y.astype(np.float64)), TypeError, "dy", emb)
    emb.backward(np.ones_like(y))
    expect(area, lambda: minirnn.Embedding.from_pretrained(np.ones(data.draw(st.sampled_from([(3,), (2, 2, 2), ()]),
                                                                             label="pretrained shape"))),
           ValueError, "embeddings")
    expect(area, lambda: minirnn.Embedding.from_pretrained(np.ones((3, 2), np.int64)), TypeError, "embeddings")


@MORE
@given(shape=st.lists(st.integers(1, 3), max_size=3), p=st.floats(0, 0.9), data=st.data())
def test_dropout(shape, p, data):
    drop = minirnn.Dropout(p, rng=0)
    area = "Dropout"
    x = np.ones(shape, np.float32)
    expect(area, lambda: drop(x.astype(data.draw(st.sampled_from(INT_DTYPES + [np.bool_, np.complex64]),
                                                 label="dtype"))), TypeError, "x", drop)
    expect(area, lambda: drop(data.draw(non_arrays(), label="kind")), TypeError, "x", drop)
    y = drop(x)
    expect(area, lambda: drop.backward(np.zeros(_perturb_shape(data, y.shape, "dy"), np.float32)), ValueError, "dy",
           drop)
    expect(area, lambda: drop.backward(y.astype(np.float64)), TypeError, "dy", drop)
    drop.backward(np.ones_like(y))


@MORE
# ---- load_state_dict ----------------------------------------------------------------------------------------------
@given(mode=st.sampled_from(["RNN", "GRU", "LSTM"]), layers=st.integers(1, 2), bidir=st.booleans(), data=st.data())
def test_load_state_dict(mode, layers, bidir, data):
    m = getattr(minirnn, mode)(3, 4, num_layers=layers, bidirectional=bidir, rng=0)
    area = "load_state_dict"
    keys = list(m.state_dict())
    key = data.draw(st.sampled_from(keys), label="key")
    kind = data.draw(st.sampled_from(["shape", "complex", "bool", "str", "object", "overflow", "missing",
                                      "unexpected", "ragged", "none"]), label="kind")
    sd = m.state_dict()
    shape = sd[key].shape
    if kind == "shape":
        sd[key] = np.zeros(_perturb_shape(data, shape, "shape"), np.float32)
    elif kind == "complex":
        sd[key] = sd[key].astype(np.complex64)
    elif kind == "bool":
        sd[key] = np.ones(shape, bool)
    elif kind == "str":
        sd[key] = np.full(shape, "w")
    elif kind == "object":
        sd[key] = np.full(shape, None, dtype=object)
    elif kind == "overflow":
        sd[key] = np.full(shape, data.draw(st.sampled_from([1e39, -1e300, 3.5e38]), label="big"))
    elif kind == "missing":
        del sd[key]
    elif kind == "unexpected":
        key = data.draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in keys), label="extra key")
        sd[key] = np.ones(2)
    elif kind == "ragged":
        sd[key] = [[1.0], [1.0, 2.0]]
    else:
        sd[key] = None
    expect(area, lambda: m.load_state_dict(sd), ValueError, (key, repr(key)), m)
    expect(area, lambda: m.load_state_dict(data.draw(st.sampled_from([None, [("a", 1)], "sd", 3]), label="sd")),
           TypeError, "state_dict", m)


# ---- save / load ----------------------------------------------------------------------------------------------------
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_save_and_load(tmp_path, data):
    area = "save/load"
    m = minirnn.GRU(2, 3, rng=0)
    path = tmp_path / "m.npz"
    minirnn.save(m, path)
    good = path.read_bytes()
    key = data.draw(st.sampled_from(list(m.state_dict())), label="key")
    p = dict(m.named_parameters())[key]
    i = data.draw(st.integers(0, p.data.size - 1), label="where")
    old = p.data.flat[i]
    p.data.flat[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
    expect(area, lambda: minirnn.save(m, path), ValueError, key)
    p.data.flat[i] = old
    assert path.read_bytes() == good
    cut = data.draw(st.integers(0, len(good) - 1), label="cut")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good[:cut])
    expect(area, lambda: minirnn.load(bad), ValueError, str(bad))
    junk = data.draw(st.binary(max_size=64), label="junk")
    bad.write_bytes(junk)
    expect(area, lambda: minirnn.load(bad), ValueError, str(bad))
    member = data.draw(st.sampled_from(["__minirnn__.npy", "weight_ih_l0.npy"]), label="member")
    with zipfile.ZipFile(bad, "w") as zf:                       # an archive with a member missing
        with zipfile.ZipFile(path) as src:
            for name in src.namelist():
                if name != member:
                    zf.writestr(name, src.read(name))
    expect(area, lambda: minirnn.load(bad), ValueError, str(bad))
    meta = data.draw(st.sampled_from([object(), {1: 2}, np.ones(2), {"a": {3.5}}]), label="metadata")
    expect(area, lambda: minirnn.save(m, path, meta=meta), TypeError, "metadata")
    assert path.read_bytes() == good


# ---- losses and optimizers (validated in their own modules) ------------------------------------------------------------
@given(N=st.integers(1, 4), C=st.integers(1, 4), dt=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_losses(N, C, dt, data):
    area = "losses"
    x = np.zeros((N, C), dt)
    ce = minirnn.CrossEntropyLoss()
    expect(area, lambda: ce(x.astype(data.draw(st.sampled_from(INT_DTYPES + [np.bool_, np.complex64, np.float16]),
                                               label="dtype")), np.zeros(N, np.int64)), TypeError, "input", ce)
    expect(area, lambda: ce(data.draw(non_arrays(), label="kind"), np.zeros(N, np.int64)), TypeError, "input", ce)
    bad_t = np.zeros(N, np.int64)
    bad_t[data.draw(st.integers(0, N - 1), label="where")] = data.draw(
        st.one_of(st.integers(C, C + 100), st.integers(-100, -1).filter(lambda v: v != -100)), label="class")
    expect(area, lambda: ce(x, bad_t), IndexError, "target", ce)
    expect(area, lambda: ce(x, np.zeros(data.draw(st.integers(0, 6).filter(lambda v: v != N), label="n"), np.int64)),
           ValueError, "target", ce)
    expect(area, lambda: ce(x, np.zeros(N, data.draw(st.sampled_from([np.float32, np.bool_]), label="tdtype"))),
           TypeError, "target", ce)
    red = data.draw(st.text(max_size=5).filter(lambda r: r not in ("none", "mean", "sum")), label="reduction")
    for cls in (minirnn.CrossEntropyLoss, minirnn.NLLLoss, minirnn.BCEWithLogitsLoss, minirnn.MSELoss):
        expect(area, lambda: cls(reduction=red), ValueError, "reduction")
    for cls in (minirnn.BCEWithLogitsLoss, minirnn.MSELoss):
        fn = cls()
        expect(area, lambda: fn(x, np.zeros(_perturb_shape(data, x.shape, "target"), dt)), ValueError, "target", fn)
        expect(area, lambda: fn(x.astype(np.int64), x), TypeError, "input", fn)


@given(data=st.data())
def test_optimizers(data):
    area = "optimizers"
    params = list(minirnn.Linear(2, 2, rng=0).parameters())
    lr = data.draw(st.one_of(st.floats(max_value=-1e-9), st.just(float("nan"))), label="lr")
    for cls in (minirnn.SGD, minirnn.Adam, minirnn.AdamW, minirnn.Adagrad, minirnn.RMSprop):
        expect(area, lambda: cls(params, lr=lr), ValueError, "lr")
        expect(area, lambda: cls(params, lr=data.draw(st.sampled_from(["0.1", None, [0.1]]), label="lr kind")),
               TypeError, "lr")
    beta = data.draw(st.one_of(st.floats(min_value=1.0), st.floats(max_value=-1e-9)), label="beta")
    expect(area, lambda: minirnn.Adam(params, betas=(beta, 0.9)), ValueError, "betas")
    expect(area, lambda: minirnn.Adam(params, betas=(0.9,)), TypeError, "betas")
    expect(area, lambda: minirnn.SGD([], lr=0.1), ValueError, "params")
    expect(area, lambda: minirnn.clip_grad_norm(params, data.draw(st.floats(max_value=-1e-9), label="max_norm")),
           ValueError, "max_norm")


@given(data=st.data())
def test_gradcheck_arguments(data):
    area = "gradcheck"
    lin = minirnn.Linear(2, 2, dtype=np.float64, rng=0)
    x = np.ones((1, 2))
    for arg in ("eps", "atol", "rtol"):
        value, exc = data.draw(st.one_of(
            st.floats(max_value=-1e-300).map(lambda v: (v, ValueError)),
            st.sampled_from([float("nan"), float("inf")]).map(lambda v: (v, ValueError)),
            st.sampled_from(["1e-6", None, [1e-6]]).map(lambda v: (v, TypeError))), label=arg)
        expect(area, lambda: minirnn.gradcheck(lin, [x], **{arg: value}), exc, arg, lin)
    expect(area, lambda: minirnn.gradcheck(lin, [x], eps=0.0), ValueError, "eps", lin)
    expect(area, lambda: minirnn.gradcheck(lin, x), TypeError, "inputs", lin)
    expect(area, lambda: minirnn.gradcheck(data.draw(st.sampled_from([3, "f", None]), label="fn"), [x]),
           TypeError, "fn")
    expect(area, lambda: minirnn.gradcheck(lin, [x.astype(np.float32)]), TypeError, "x", lin)
