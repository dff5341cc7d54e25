"""The reverse direction of bidirectional layers in a second process (``minirnn.set_direction_processes(2)``).

The second process runs the same engine on the same arrays, so every result must equal the one-process result:
outputs, final states, dx, dh0, dc0 and every parameter gradient, with and without lengths, and over several
training steps (the tapes it keeps must belong to the right forward call). Also: its tapes are freed when the
first process drops them, errors there are raised here with their kind, a dead process is a clear error, and the
BLAS thread count is restored.
"""
from __future__ import annotations

import copy
import gc
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minirnn as mr
from minirnn.machinery import blas, runners, second_process

from helpers import is_lstm, like, make_seq, randomize, seq_state

KINDS = ["rnn_tanh", "rnn_relu", "rnn_sigmoid", "gru", "lstm", "lstm_proj"]
T, B, I, H = 7, 12, 5, 6


@pytest.fixture
def two_processes(monkeypatch):
    """Two processes for every bidirectional layer, however small (the size threshold is tested on its own)."""
    monkeypatch.setattr(runners, "MIN_WORK", 0)
    yield
    mr.set_direction_processes(1)


def _run(m, x, hx, lengths, dout, dstate, processes: int):
    mr.set_direction_processes(processes)
    m.zero_grad()
    out, state = m(x, hx, lengths=lengths)
    dx, dhx = m.backward(dout, dstate)
    grads = {name: p.grad.copy() for name, p in m.named_parameters()}
    return out, state, dx, dhx, grads


def _assert_same(a, b, what):
    if isinstance(a, tuple):
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{what}[{i}]")
        return
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=what)


def _assert_two_equal_one(m, x, hx, lengths, rng):
    """One forward and backward with random upstream gradients, in one process then in two: the same numbers."""
    out, state = m(x, hx, lengths=lengths)
    m.clear_cache()
    dout, dstate = like(out, rng), like(state, rng)
    one = _run(m, x, hx, lengths, dout, dstate, 1)
    two = _run(m, x, hx, lengths, dout, dstate, 2)
    for what, a, b in zip(("out", "h_n/(h_n, c_n)", "dx", "dh0/(dh0, dc0)"), one, two):
        _assert_same(b, a, what)
    assert one[4].keys() == two[4].keys()
    for name in one[4]:
        _assert_same(two[4][name], one[4][name], f"grad of {name}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ragged", [False, True], ids=["no-lengths", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
def test_two_processes_equal_one(two_processes, kind, ragged, batch_first):
    rng = np.random.default_rng(7)
    m = make_seq(kind, I, H, L=3, bi=True, bf=batch_first, dropout=0.0)
    randomize(m, rng)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    lengths = rng.integers(1, T + 1, B) if ragged else None
    _assert_two_equal_one(m, x, seq_state(m, rng, B), lengths, rng)


@given(kind=st.sampled_from(KINDS), layers=st.integers(1, 3), T=st.integers(1, 6), B=st.integers(1, 5),
       batched=st.booleans(), ragged=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_two_processes_equal_one_drawn(kind, layers, T, B, batched, ragged, seed):
    """Drawn shapes, unbatched inputs and length patterns (length 1, all equal, unsorted): the same numbers."""
    runners.MIN_WORK, threshold = 0, runners.MIN_WORK
    try:
        rng = np.random.default_rng(seed)
        m = make_seq(kind, 3, 4, L=layers, bi=True)
        randomize(m, rng)
        x = rng.standard_normal((T, B, 3) if batched else (T, 3))
        lengths = rng.integers(1, T + 1, B if batched else 1) if ragged else None
        _assert_two_equal_one(m, x, seq_state(m, rng, B if batched else None), lengths, rng)
    finally:
        runners.MIN_WORK = threshold
        mr.set_direction_processes(1)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_training_steps_with_dropout_equal_one_process(two_processes, kind):
    """Three Adam steps: a tape left from one step must not serve another, and the weights sent each call are the
    updated ones. Dropout draws its masks here, in the first process, so both runs draw the same ones."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, B, I))
    lengths = rng.integers(1, T + 1, B)
    target = rng.standard_normal((B, 2 * H))
    params = []
    for processes in (1, 2):
        mr.set_direction_processes(processes)
        m = make_seq(kind, I, H, L=2, bi=True, rng=5, dropout=0.25)
        opt = mr.Adam(m.parameters(), lr=0.05)
        for _ in range(3):
            out, state = m(x, lengths=lengths)
            h_n = state[0] if is_lstm(m) else state
            last = np.concatenate([h_n[-2], h_n[-1]], axis=1)
            opt.zero_grad()
            d_hn = np.zeros_like(h_n)
            d_hn[-2], d_hn[-1] = np.split(2 * (last - target), 2, axis=1)
            m.backward(None, (d_hn, None) if is_lstm(m) else d_hn)
            opt.step()
        params.append([p.data.copy() for p in m.parameters()])
    for a, b in zip(*params):
        _assert_same(b, a, "parameters after three steps")


def _remote_tapes() -> int:
    return second_process._process.request("tapes").get()


def test_remote_tapes_are_freed(two_processes):
    mr.set_direction_processes(2)
    m = make_seq("gru", I, H, L=2, bi=True)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    m(x)
    m(x)
    assert _remote_tapes() == 4                       # two layers, two forward calls, reverse directions only
    out, h_n = m(x)
    m.backward(np.ones_like(out))                     # backward consumes the newest call's tapes there
    assert _remote_tapes() == 4
    m.clear_cache()
    gc.collect()
    assert _remote_tapes() == 0
    with mr.no_grad():
        m(x)
    assert _remote_tapes() == 0                       # inference keeps no tape


def test_a_tape_collected_while_the_link_is_being_prepared_does_not_hang(two_processes):
    """A RemoteTape that only a reference cycle holds goes in a garbage collection, which can start at any
    allocation: also inside request()'s hold of the second process's state lock, in the same thread. Its finalizer
    (forget) takes that lock too; it must not wait on its own thread."""
    mr.set_direction_processes(2)
    m = make_seq("gru", I, H, bi=True)
    m(np.random.default_rng(0).standard_normal((T, B, I)))
    assert _remote_tapes() == 1
    proc = second_process._process
    gc.disable()                                      # the collection happens below, inside the hold
    try:
        cycle = [m]
        cycle.append(cycle)
        del m, cycle

        def collect_inside_the_hold():
            with proc._state:
                gc.collect()

        t = threading.Thread(target=collect_inside_the_hold, daemon=True)
        t.start()
        t.join(20)
        assert not t.is_alive(), "the collector's finalizer waited for the lock its own thread holds"
    finally:
        gc.enable()
    assert _remote_tapes() == 0                       # the tape was forgotten, and freed with the next request


def test_a_deep_copy_of_a_model_waiting_for_its_backward_works_as_with_one_process(two_processes):
    """copy.deepcopy (the documented way to give a thread its own model) of a model whose forward waits for its
    backward: with one process the tapes are copied; the second process's tapes must be too (a TypeError,
    "cannot pickle '_thread.lock' object", before)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, B, I))
    results = []
    for processes in (1, 2):
        mr.set_direction_processes(processes)
        m = make_seq("lstm", I, H, L=2, bi=True)
        randomize(m, np.random.default_rng(4))
        out, _ = m(x)
        twin = copy.deepcopy(m)
        dout = np.cos(out)
        dx, dx_twin = m.backward(dout)[0], twin.backward(dout)[0]
        np.testing.assert_array_equal(dx, dx_twin)
        grads = {n: p.grad for n, p in m.named_parameters()}
        for n, p in twin.named_parameters():
            np.testing.assert_array_equal(p.grad, grads[n])
        results.append((dx, grads))
        if processes == 2:
            del m, twin
            gc.collect()
            assert _remote_tapes() == 0
    np.testing.assert_array_equal(results[0][0], results[1][0])


def test_small_layers_stay_in_this_process(two_processes, monkeypatch):
    requests = []
    request = second_process.SecondProcess.request
    monkeypatch.setattr(second_process.SecondProcess, "request", lambda self, op, *a: (requests.append(op),
                                                                                       request(self, op, *a))[1])
    mr.set_direction_processes(2)
    m = make_seq("gru", I, H, L=1, bi=True)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    work = T * B * 3 * H                              # the GRU's three gates count
    monkeypatch.setattr(runners, "MIN_WORK", work + 1)
    small, _ = m(x)
    assert requests == []
    monkeypatch.setattr(runners, "MIN_WORK", work)
    large, _ = m(x)
    assert requests == ["forward"]
    np.testing.assert_allclose(large, small, rtol=1e-12, atol=1e-13)


def test_an_error_there_is_raised_here_and_the_link_stays_in_step(two_processes):
    mr.set_direction_processes(2)
    reply = second_process._process.request("backward", 12345, "gru", None, None, None, None)
    with pytest.raises(RuntimeError, match="in the direction process: RuntimeError: .*no tape for forward call 12345"):
        reply.get()
    m = make_seq("lstm", I, H, bi=True)
    out, _ = m(np.ones((T, B, I)))                    # the next request still gets its own reply
    assert out.shape == (T, B, 2 * H)


def test_an_overflow_there_raises_as_here(two_processes):
    """The first process's np.errstate travels with each request: divergence is caught in either direction."""
    mr.set_direction_processes(2)
    m = make_seq("rnn_relu", I, H, bi=True)
    m.weight_ih_l0_reverse.data[...] = 1e300          # only the reverse direction, the one the second process runs
    x = np.full((T, B, I), 1e300)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="in the direction process"):
        m(x)
    with np.errstate(all="ignore"):
        out, _ = m(x)                                 # allowed to overflow there when it is allowed here
    assert not np.isfinite(out[:, :, H:]).any() and np.isfinite(out[:, :, :H]).all()


def _arenas() -> set[str]:
    """Named arenas (where there is no memfd); other copies of minirnn on the machine may name theirs otherwise."""
    import glob
    import tempfile

    from minirnn.machinery import link
    return set(glob.glob(f"/dev/shm/{link.PREFIX}*") + glob.glob(f"{tempfile.gettempdir()}/{link.PREFIX}*"))


def test_a_dead_process_is_a_clear_error_and_a_restart_works(two_processes):
    arenas = _arenas()
    mr.set_direction_processes(2)
    m = make_seq("gru", I, H, bi=True)
    x = np.ones((T, B, I))
    second_process._process.proc.kill()
    second_process._process.proc.wait()
    with pytest.raises(RuntimeError, match="direction process"):
        m(x)
    mr.set_direction_processes(2)
    out, _ = m(x)
    assert out.shape == (T, B, 2 * H)
    mr.set_direction_processes(1)
    assert _arenas() == arenas                        # no shared-memory file left behind, by either process


def test_backward_after_the_process_stopped_is_a_clear_error(two_processes):
    mr.set_direction_processes(2)
    m = make_seq("gru", I, H, bi=True)
    out, _ = m(np.ones((T, B, I)))
    mr.set_direction_processes(1)                     # the tape of the reverse direction goes with the process
    with pytest.raises(RuntimeError, match="direction process is gone .*run the forward again"):
        m.backward(np.ones_like(out))


@pytest.mark.parametrize("bad", [0, 3, 2.0, "2", True, None])
def test_bad_process_count(bad):
    with pytest.raises(ValueError, match=r"n: expected 1 or 2 processes, got"):
        mr.set_direction_processes(bad)
    assert mr.get_direction_processes() == 1


def test_blas_threads_are_one_then_restored():
    if not blas.libraries():
        pytest.skip("NumPy's BLAS is not OpenBLAS here: minirnn leaves its thread count alone")
    getters = [g for _, g in blas.libraries()]
    before = [g() for g in getters]
    mr.set_direction_processes(2)
    try:
        assert [g() for g in getters] == [1] * len(getters)
    finally:
        mr.set_direction_processes(1)
    assert [g() for g in getters] == before


def test_kernels_cross_by_name_not_by_pickle(two_processes, monkeypatch):
    """Only the kernel's name goes to the second process (``kernels.by_name`` there): a kernel object is never
    pickled, so ``Kernel`` needs no pickling support."""
    from minirnn import kernels

    def refuse(self):
        raise AssertionError(f"kernel {self.name} pickled")

    monkeypatch.setattr(kernels.Kernel, "__reduce__", refuse, raising=False)
    monkeypatch.setattr(kernels.Kernel, "__reduce_ex__", lambda self, protocol: refuse(self), raising=False)
    rng = np.random.default_rng(1)
    m = make_seq("lstm", I, H, L=2, bi=True)
    randomize(m, rng)
    _assert_two_equal_one(m, rng.standard_normal((T, B, I)), None, rng.integers(1, T + 1, B), rng)
