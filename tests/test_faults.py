"""The fault suite (issue 14): thread misuse, in-place changes between forward and backward, killed saves, hostile
checkpoints, attributes set after construction. Each event ends in a correct result or a clear error, never a
wrong number; the counts are printed at the end of the run (tests/fault_counts.py, the conftest hook)."""
from __future__ import annotations

import copy
import io
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import minirnn as mr
from fault_counts import record
from helpers import subprocess_env


def _grads(m: mr.Module) -> dict[str, np.ndarray]:
    return {n: p.grad.copy() for n, p in m.named_parameters() if p.grad is not None}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-12) for k in a)


# ---- threads ------------------------------------------------------------------------------------------------------
def _run_in_thread(fn):
    """Run fn in a new thread; return what it returned or raised."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:   # handed back to the test
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    assert not t.is_alive()
    return box


def test_backward_from_another_thread_is_refused_and_nothing_changes():
    m = mr.GRU(3, 5, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    out, _ = m(x)
    box = _run_in_thread(lambda: m.backward(np.ones_like(out)))
    refused = isinstance(box.get("error"), RuntimeError) and "thread" in str(box["error"])
    assert refused, box
    assert "one model is trained by one thread at a time" in str(box["error"])
    assert len(m._cache) == 1 and all(p.grad is None for p in m.parameters())   # nothing was changed
    m.backward(np.ones_like(out))                                                  # its own thread still can
    record("thread misuse refused", 1, int(refused))


def test_forward_with_gradients_while_another_thread_waits_for_its_backward_is_refused():
    m = mr.LSTM(3, 4, rng=0)
    x = np.ones((2, 1, 3), np.float32)
    pushed, release = threading.Event(), threading.Event()

    def trainer():
        out, _ = m(x)
        pushed.set()
        release.wait(30)
        return m.backward(np.ones_like(out))

    t = threading.Thread(target=trainer)
    t.start()
    try:
        assert pushed.wait(30)
        with pytest.raises(RuntimeError, match="has a forward waiting for its backward") as e:
            m(x)
        with mr.no_grad():                                  # inference from another thread is fine meanwhile
            out, _ = m(x)
        assert len(m._cache) == 1
    finally:
        release.set()
        t.join(30)
    assert not m._cache
    record("thread misuse refused", 1, int("no_grad" in str(e.value)))


def test_accumulating_into_or_resetting_another_running_threads_gradients_is_refused():
    m = mr.Linear(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    done, release = threading.Event(), threading.Event()

    def trainer():
        m(x)
        m.backward(np.ones((4, 2), np.float32))
        done.set()
        release.wait(30)

    t = threading.Thread(target=trainer)
    t.start()
    refused = 0
    try:
        assert done.wait(30)
        before = _grads(m)
        y = m(x)
        with pytest.raises(RuntimeError, match="accumulate a gradient"):
            m.backward(np.ones_like(y))
        refused += 1
        with pytest.raises(RuntimeError, match="cannot reset"):
            m.zero_grad()
        refused += 1
        assert _same(_grads(m), before)                    # the other thread's gradients are intact
    finally:
        release.set()
        t.join(30)
    m.zero_grad()                                          # once that thread has ended, the model is handed over
    m(x)
    m.backward(np.ones((4, 2), np.float32))
    record("thread misuse refused", 2, refused)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_an_optimizers_zero_grad_hands_the_model_over_as_module_zero_grad_does(set_to_none):
    """The module docstring: a model may go to another thread once this one has run its backward and zero_grad();
    the optimizer's zero_grad (the usual training-loop call) counts, with zeros kept (set_to_none=False) too."""
    m = mr.Linear(3, 2, rng=0)
    opt = mr.SGD(m.parameters(), lr=0.1)
    x = np.ones((4, 3), np.float32)
    m.backward(np.ones_like(m(x)))
    opt.step()
    opt.zero_grad(set_to_none=set_to_none)                 # this (running) thread is done with the model

    def train():
        m.backward(np.ones_like(m(x)))
        return _grads(m)

    box = _run_in_thread(train)
    assert "error" not in box, box
    assert set(box["value"]) == {"weight", "bias"}


def test_a_deep_copy_with_gradients_can_be_trained_in_another_thread():
    """The documented way to train in parallel: each thread its own copy. A copy's gradients belong to no one."""
    m = mr.GRU(3, 4, rng=0)
    x = np.ones((2, 1, 3), np.float32)
    out, _ = m(x)
    m.backward(np.ones_like(out))
    twin = copy.deepcopy(m)

    def train():
        twin.zero_grad()
        o, _ = twin(x)
        twin.backward(np.ones_like(o))
        return _grads(twin)

    box = _run_in_thread(train)
    assert "error" not in box, box
    assert _same(box["value"], _grads(m))


def test_two_threads_training_one_model_are_refused_never_mixed():
    """Both threads run whole steps (zero_grad, forward, backward, read the gradients) on one model with fixed
    weights: every step must give exactly its own batch's gradients or raise the thread error."""
    m = mr.GRU(4, 6, num_layers=2, rng=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((5, 3, 4)) for _ in range(4)]
    douts = [rng.standard_normal((5, 3, 6)) for _ in range(4)]
    reference = []
    for x, d in zip(batches, douts):
        m.zero_grad()
        m(x)
        m.backward(d)
        reference.append(_grads(m))
    m.zero_grad()
    results = {"correct": 0, "refused": 0, "wrong": 0, "other": []}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        r = random.Random(seed)
        for step in range(60):
            k = r.randrange(4)
            try:
                m.zero_grad()
                time.sleep(0)
                m(batches[k])
                time.sleep(0)
                m.backward(douts[k])
                time.sleep(0)
                g = _grads(m)
                m.zero_grad()
            except RuntimeError as e:
                with lock:
                    if "thread" in str(e):
                        results["refused"] += 1
                    else:
                        results["other"].append(str(e))
                continue
            with lock:
                results["correct" if _same(g, reference[k]) else "wrong"] += 1

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert results["wrong"] == 0 and results["other"] == [], results
    assert results["correct"] + results["refused"] == 120
    record("two threads training one model: steps correct or refused", 120,
           results["correct"] + results["refused"])


def test_no_grad_inference_from_many_threads_equals_one_thread():
    m = mr.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True, rng=0)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((3, 6, 5)).astype(np.float32) for _ in range(8)]
    lens = [rng.integers(1, 7, size=3) for _ in range(8)]
    with mr.no_grad():
        expected = [m(x, lengths=n) for x, n in zip(xs, lens)]
    mismatches, calls = [], [0]
    lock = threading.Lock()

    def worker(seed: int) -> None:
        r = random.Random(seed)
        with mr.no_grad():
            for _ in range(40):
                k = r.randrange(8)
                out, (h, c) = m(xs[k], lengths=lens[k])
                ok = (np.array_equal(out, expected[k][0]) and np.array_equal(h, expected[k][1][0])
                      and np.array_equal(c, expected[k][1][1]))
                with lock:
                    calls[0] += 1
                    if not ok:
                        mismatches.append(k)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert calls[0] == 160 and mismatches == [] and not m._cache
    record("no_grad inference from 4 threads on one model: results equal to one thread", calls[0],
           calls[0] - len(mismatches))


# ---- in-place changes between forward and backward ------------------------------------------------------------------
def _change(a: np.ndarray) -> bool:
    """Change a in place as a user would; True when it was refused (read-only) with NumPy's clear error."""
    try:
        np.add(a, 1, out=a, casting="unsafe")
    except ValueError as e:
        assert "read-only" in str(e)
        return True
    return False


SEQ = [
    ("RNN", dict()), ("GRU", dict()), ("LSTM", dict()),
    ("RNN", dict(batch_first=True)), ("GRU", dict(batch_first=True)), ("LSTM", dict(batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True)), ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)),
    ("LSTM", dict(batch_first=True, bidirectional=True)), ("RNN", dict(num_layers=2, dropout=0.5)),
]


@pytest.mark.parametrize("unbatched, lengths", [(False, False), (True, False), (False, True)],
                         ids=["batched", "unbatched", "lengths"])
@pytest.mark.parametrize("kind, kw", SEQ)
def test_in_place_changes_to_a_sequence_layers_arrays_cannot_reach_its_tape(kind, kw, unbatched, lengths):
    T, B, I = 4, 3, 3
    m = getattr(mr, kind)(I, 4, dtype=np.float64, rng=0, **kw)
    rng = np.random.default_rng(3)
    bf = kw.get("batch_first", False)
    base = rng.standard_normal((T, I) if unbatched else ((B, T, I) if bf else (T, B, I)))
    lens = np.array([4, 2, 3]) if lengths else None
    names = ["x", "out", "h_n"] + (["c_n"] if kind == "LSTM" else [])

    def step(change: str | None) -> tuple[dict, np.ndarray, bool]:
        m.zero_grad()
        m.rng = np.random.default_rng(5)                    # the same dropout masks every run
        x = base.copy()
        out, hs = m(x, lengths=lens) if lengths else m(x)
        arrays = dict(zip(names, [x, out] + (list(hs) if kind == "LSTM" else [hs])))
        refused = _change(arrays[change]) if change else False
        dstate = tuple(np.ones_like(a) for a in hs) if kind == "LSTM" else np.ones_like(hs)
        dx, _ = m.backward(np.full(out.shape, 0.5), dstate)
        return _grads(m), dx, refused

    ref_grads, ref_dx, _ = step(None)
    ok = 0
    for change in names:
        grads, dx, refused = step(change)
        if change != "x":
            assert refused, f"{change} of {kind}{kw} is writeable while it is the tape"
        assert _same(grads, ref_grads) and np.allclose(dx, ref_dx, rtol=1e-12, atol=1e-12), change
        ok += 1
    with mr.no_grad():                                      # without a tape the outputs stay writeable
        out, _ = m(base.copy())
        assert not _change(out)
    record("in-place changes caught (refused, or unable to change a gradient)", len(names), ok)


@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell"])
def test_in_place_changes_to_a_cells_arrays_cannot_reach_its_tape(kind, unbatched):
    m = getattr(mr, kind)(3, 4, dtype=np.float64, rng=0)
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((3, 3) if unbatched else (3, 2, 3))   # 3 steps
    lstm = kind == "LSTMCell"
    names = ["x", "h"] + (["c"] if lstm else [])

    def run(change: str | None, reuse: bool = True) -> tuple[dict, np.ndarray, int]:
        m.zero_grad()
        buf = np.empty_like(xs[0])                          # one input buffer refilled every step, as loaders do
        state, refused = None, 0
        for t in range(3):
            if reuse:
                buf[...] = xs[t]
            x = buf if reuse else xs[t].copy()
            state = m(x, state)
            arrays = dict(zip(names, [x] + (list(state) if lstm else [state])))
            if change and t < 2:
                refused += _change(arrays[change])
        d = np.ones_like(xs[0][..., :1] * np.ones(4))
        dx_sum = 0
        g = (d, d) if lstm else d
        for t in range(3):
            dx, dstate = m.backward(g)
            dx_sum = dx_sum + dx
            g = dstate
        return _grads(m), dx_sum, refused

    ref, ref_dx, _ = run(None, reuse=False)
    ok = 0
    for change in names:
        grads, dx, refused = run(change)
        if change != "x":
            assert refused == 2
        assert _same(grads, ref) and np.allclose(dx, ref_dx, rtol=1e-12, atol=1e-12), change
        ok += 1
    record("in-place changes caught (refused, or unable to change a gradient)", len(names), ok)


def _check_layer(make, forward, backward, names):
    """Run forward/backward once untouched, then once per name with that array changed in place in between."""
    ref = None
    ok = 0
    for change in [None] + names:
        m = make()
        arrays = forward(m)
        if change:
            _change(arrays[change])
        d = backward(m, arrays)
        got = (_grads(m), d)
        if ref is None:
            ref = got
            continue
        same = _same(got[0], ref[0]) and (got[1] is None or np.allclose(got[1], ref[1], rtol=1e-12, atol=1e-12))
        assert same, change
        ok += 1
    record("in-place changes caught (refused, or unable to change a gradient)", len(names), ok)


def test_in_place_changes_to_linear_embedding_dropout_and_losses():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((5, 3))
    _check_layer(lambda: mr.Linear(3, 2, dtype=np.float64, rng=0),
                 lambda m: {"x": (x := X.copy()), "y": m(x)}, lambda m, a: m.backward(np.ones((5, 2))), ["x", "y"])
    idx = np.array([[1, 2], [0, 1]])
    _check_layer(lambda: mr.Embedding(4, 3, dtype=np.float64, rng=0),
                 lambda m: {"i": (i := idx.copy()), "y": m(i)}, lambda m, a: m.backward(np.ones((2, 2, 3))),
                 ["i", "y"])
    _check_layer(lambda: mr.Dropout(0.5, rng=0),
                 lambda m: {"x": (x := X.copy()), "y": m(x)}, lambda m, a: m.backward(np.ones((5, 3))), ["x", "y"])
    T = rng.random((5, 3))
    for loss in (mr.BCEWithLogitsLoss, mr.MSELoss, mr.CrossEntropyLoss):
        _check_layer(lambda: loss(), lambda m: {"x": (x := X.copy()), "t": (t := T.copy()), "_": m(x, t)},
                     lambda m, a: m.backward(), ["x", "t"])
    # the usual chain: an RNN's read-only output goes into a Linear without a copy, and stays correct
    rnn, lin = mr.GRU(3, 4, rng=0), mr.Linear(4, 2, rng=0)
    out, _ = rnn(rng.standard_normal((4, 2, 3)).astype(np.float32))
    lin(out.reshape(-1, 4))
    assert lin._cache[-1].base is out.base or lin._cache[-1].base is out    # kept as it is: no copy
    lin.backward(np.ones((8, 2), np.float32))
    rnn.backward(np.ones_like(out))


# ---- attributes set after construction ------------------------------------------------------------------------------
def test_attributes_set_after_construction_are_checked_where_used():
    torch = pytest.importorskip("torch")

    x = np.random.default_rng(7).standard_normal((5, 2, 3)).astype(np.float32)
    events = ok = 0
    for kind in ("RNN", "GRU", "LSTM"):
        m = getattr(mr, kind)(3, 4, num_layers=2, rng=0)
        m.dropout = 1                       # torch accepts dropout=1: everything between the layers is dropped
        out, _ = m(x)
        tm = getattr(torch.nn, kind)(3, 4, num_layers=2, dropout=1.0)
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
        tout, _ = tm(torch.from_numpy(x))
        # with layer 1's input zeroed, its output depends on its biases only, as torch's
        assert np.allclose(out, tout.detach().numpy(), atol=1e-6)
        m.backward(np.ones_like(out))
        assert not np.any(m.weight_ih_l1.grad) and not np.any(m.weight_ih_l0.grad)
        events += 1
        ok += 1
        for name, value, exc in (("dropout", 1.5, ValueError), ("dropout", "0.5", TypeError),
                                 ("training", "yes", TypeError), ("batch_first", "False", TypeError)):
            m2 = getattr(mr, kind)(3, 4, num_layers=2, rng=0)
            setattr(m2, name, value)
            events += 1
            with pytest.raises(exc, match=name):
                m2(x)
            ok += 1
            assert not m2._cache
    for name, value in (("num_layers", 1), ("bidirectional", False), ("hidden_size", 5), ("input_size", 4),
                        ("num_layers", "2")):
        m3 = mr.LSTM(3, 4, num_layers=2, bidirectional=True, rng=0)
        setattr(m3, name, value)
        events += 1
        with pytest.raises(ValueError, match="no longer describe its parameters"):
            m3(x if name != "input_size" else np.ones((5, 2, 4), np.float32))
        ok += 1
    d = mr.Dropout(0.5, rng=0)
    d.p = 1.0
    assert not np.any(d(np.ones((3, 3), np.float32)))
    assert not np.any(d.backward(np.ones((3, 3), np.float32)))
    d.p = -0.1
    with pytest.raises(ValueError, match="p"):
        d(np.ones(3, np.float32))
    record("attributes set after construction: torch's result or a clear error", events + 2, ok + 2)


def test_nonlinearity_set_after_construction_is_refused_not_run_as_the_old_one(tmp_path):
    """The kernel is chosen at construction: a later ``rnn.nonlinearity = 'relu'`` ran tanh while repr and the
    saved configuration said relu, so the checkpoint loaded as another network. A clear error instead."""
    x = np.random.default_rng(8).standard_normal((5, 2, 3)).astype(np.float32)
    for make, call in ((lambda: mr.RNN(3, 4, rng=0), lambda m: m(x)), (lambda: mr.RNNCell(3, 4, rng=0),
                                                                     lambda m: m(x[0]))):
        m = make()
        call(m)
        m.clear_cache()
        for value in ("relu", "gelu"):
            m.nonlinearity = value
            with pytest.raises(ValueError, match="nonlinearity"):
                call(m)
            assert not m._cache
        m.nonlinearity = "tanh"                             # back to what it was built with: runs again
        call(m)
    record("attributes set after construction: torch's result or a clear error", 4, 4)


# ---- killed saves -----------------------------------------------------------------------------------------------------
ZYGOTE = r"""
import os, sys
import minirnn
from minirnn import serialization

path = sys.argv[1]
m = minirnn.LSTM(128, 256, num_layers=2, rng=0)          # a 3.7 MB checkpoint: a save takes ~20 ms
out = sys.stdout.buffer
out.write(b"ready\n"); out.flush()
for line in sys.stdin.buffer:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                           # the saving process: saves until it is killed
        os.close(r)
        if line.strip() == b"named":                       # the fallback where O_TMPFILE is not available
            def named(d, b, mode):
                n = serialization._named(d, b)
                return os.open(n, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), n
            serialization._open_temporary = named
        i = 0
        while True:
            minirnn.save(m, path, step=i)
            i += 1
            if i == 1:
                os.write(w, b"s")
    os.close(w)
    os.read(r, 1)
    os.close(r)
    out.write(b"%d\n" % pid); out.flush()
    _, status = os.waitpid(pid, 0)
    out.write(b"%d\n" % status); out.flush()
"""


def _readline(stream, deadline: float) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            raise TimeoutError(f"no answer from the saving process (got {line!r})")
        ch = os.read(stream.fileno(), 1)
        if not ch:
            raise EOFError(f"the saving process went away (got {line!r})")
        line += ch
    return line


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork to start saving processes cheaply")
def test_killed_saves_leave_the_checkpoint_whole_and_no_bytes_behind(tmp_path):
    """40 saving processes killed at random moments (SIGKILL and SIGTERM; 10 of them on the named-temporary
    fallback): the checkpoint always loads whole, and no byte is left beside it after the next save."""
    path = tmp_path / "m.npz"
    script = tmp_path / "zygote.py"
    script.write_text(ZYGOTE)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=subprocess_env(), bufsize=0)
    deadline = time.monotonic() + 120
    rng = random.Random(14)
    kills = survived = clean_after = 0
    left_after = 0
    left_at_kill = {"tmpfile": 0, "named": 0}
    small = mr.Linear(2, 2, rng=0)
    pid = None
    try:
        assert _readline(proc.stdout, deadline) == b"ready\n"
        for k in range(40):
            how = "named" if k % 4 == 3 else "tmpfile"
            proc.stdin.write(how.encode() + b"\n")
            pid = int(_readline(proc.stdout, deadline))
            time.sleep(rng.uniform(0.0, 0.03))
            os.kill(pid, signal.SIGKILL if k % 2 else signal.SIGTERM)
            status = int(_readline(proc.stdout, deadline))
            pid = None
            assert os.WIFSIGNALED(status)
            kills += 1
            left_at_kill[how] += sum(p.stat().st_size for p in tmp_path.iterdir() if p.name not in ("m.npz", "zygote.py"))
            ckpt = mr.load_checkpoint(path)                          # the old or the new checkpoint, whole
            survived += isinstance(ckpt.metadata.get("step"), int) and len(ckpt.state_dict) == 8
            mr.save(small, path)                           # the next save of the target sweeps what a kill left
            left = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name not in ("m.npz", "zygote.py"))
            left_after += left
            clean_after += left == 0
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:   # pragma: no cover - only if the zygote hangs
            proc.kill()
            proc.wait()
        proc.stdout.close()
    record("kills of a saving process survived (the checkpoint loads whole)", kills, survived)
    record(f"bytes left behind by killed saves (0 expected): {left_after} after the next save; right after the "
           f"kills {left_at_kill['tmpfile']} (O_TMPFILE), {left_at_kill['named']} (named fallback, swept by the "
           "next save); kills leaving none", kills, clean_after)
    assert kills == 40 and survived == 40 and left_after == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "zygote.py"]


def test_a_live_save_of_the_same_target_is_never_swept(tmp_path):
    """The sweep removes only temporaries whose process is gone: another live process's, or this process's own
    (a thread saving the same target), are left alone."""
    from minirnn import serialization

    path = tmp_path / "m.npz"
    live = tmp_path / f".m.npz.{os.getppid()}.0123456789ab.tmp"      # the parent process is alive
    own = serialization._named(str(tmp_path), "m.npz")                # being written by this process
    open(own, "wb").close()
    live.write_bytes(b"x")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.npz.{dead.pid}.0123456789ab.tmp"
    stale.write_bytes(b"y" * 100)
    other = tmp_path / f".other.npz.{dead.pid}.0123456789ab.tmp"      # another target's: not this save's business
    other.write_bytes(b"z")
    try:
        mr.save(mr.Linear(2, 2, rng=0), path)
        names = {p.name for p in tmp_path.iterdir()}
        assert stale.name not in names and {live.name, os.path.basename(own), other.name, "m.npz"} <= names
    finally:
        serialization._LIVE.discard(own)


# ---- hostile checkpoints --------------------------------------------------------------------------------------------
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _header(members):
    return json.loads(np.lib.format.read_array(io.BytesIO(members["__minirnn__.npy"])).tobytes())


def _write(path, members, header=None, compress=None):
    if header is not None:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
        members = dict(members, **{"__minirnn__.npy": buf.getvalue()})
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b, compress_type=compress.get(n) if compress else None)


def test_a_deflated_member_is_refused_before_inflating(tmp_path):
    """A zip bomb: a member that inflates to 80 MB from ~80 KB (the check does not depend on the size: any
    compressed member is refused before one byte of it is read)."""
    good = tmp_path / "good.npz"
    mr.save({"w": np.zeros(2, np.float32)}, good)
    members = _members(good)
    header = _header(members)
    n = 20_000_000
    header["arrays"] = [["w", [n], "<f4"]]
    bomb = tmp_path / "bomb.npz"
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("__minirnn__.npy", buf.getvalue())
        info = zipfile.ZipInfo("w.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
            chunk = bytes(1 << 20)
            for _ in range(4 * n // len(chunk)):
                f.write(chunk)
            f.write(bytes(4 * n % len(chunk)))
    assert os.path.getsize(bomb) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.npz.*compressed"):
            mr.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak
    # a stored member claiming more bytes than the file holds is refused before allocating too
    lie = tmp_path / "lie.npz"
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("w.npy")
    # the central directory's record of w.npy: sizes at +20 (compressed) and +24 (uncompressed), name at +46
    at = data.rfind(b"PK\x01\x02")
    while at >= 0 and data[at + 46:at + 51] != b"w.npy":
        at = data.rfind(b"PK\x01\x02", 0, at)
    assert at >= 0 and info.file_size < 1000
    data[at + 20:at + 28] = (4_000_000_000).to_bytes(4, "little") * 2
    lie.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"lie\.npz.*more than the file holds"):
        mr.load(lie)
    record("hostile archives refused before inflating or allocating", 2, 2)


def test_zip_members_that_together_claim_more_than_the_file_are_refused():
    """Overlapping stored members (each inside the file, the sum beyond it) would let a crafted checkpoint or torch
    file allocate a multiple of its size: the one check both loaders run refuses them, naming the total."""
    from minirnn.serialization import check_stored_members
    infos = []
    for name in ("a.npy", "b.npy"):
        info = zipfile.ZipInfo(name)
        info.compress_type, info.file_size, info.compress_size, info.header_offset = zipfile.ZIP_STORED, 600, 600, 0
        infos.append(info)
    check_stored_members(infos[:1], 1000, ValueError)                       # one member: inside the file
    with pytest.raises(ValueError, match=r"the members claim 1200 bytes in all, more than the file holds \(1000"):
        check_stored_members(infos, 1000, ValueError)


def _config_mutations(config):
    """(what, field, mutated config): wrong types, out-of-range and huge values, missing and unknown keys."""
    out = []
    args = config.get("args") or {}
    for k, v in args.items():
        for bad in ("7", 2.5, None, [1], {"a": 1}, True, -1, 0, 10 ** 12, 2 ** 70, float("nan")):
            if bad == v or (isinstance(v, bool) and type(bad) in (bool, int) and bad in (0, 1)) \
                    or (k == "padding_idx" and bad is None):   # another valid flag / no padding: not malformed
                continue
            if k in ("dropout", "p") and isinstance(bad, (int, float)) and not isinstance(bad, bool) \
                    and 0 <= bad <= 1:
                continue
            if k == "padding_idx" and type(bad) is int and -args["num_embeddings"] <= bad < args["num_embeddings"]:
                continue   # another valid padding row: a different model, not a malformed one
            c = copy.deepcopy(config)
            c["args"][k] = bad
            out.append((f"{k}={bad!r}", k, c))
        c = copy.deepcopy(config)
        del c["args"][k]
        out.append((f"missing {k}", k, c))
    for k, v in args.items():   # well-formed values that do not describe the file's arrays
        if k in ("batch_first", "nonlinearity", "dropout", "p", "padding_idx"):
            continue              # these change no array: another valid model
        c = copy.deepcopy(config)
        c["args"][k] = (not v) if isinstance(v, bool) else ("float64" if k == "dtype" else v + 1)
        out.append((f"{k}: {v!r} -> {c['args'][k]!r}", k, c))
    c = copy.deepcopy(config)
    c["args"]["surprise"] = 1
    out.append(("unknown key", "surprise", c))
    c = copy.deepcopy(config)
    c["extra"] = 1
    out.append(("unknown top-level key", "extra", c))
    for bad in (None, 3, ["x"]):
        c = copy.deepcopy(config)
        c["args"] = bad
        out.append((f"args={bad!r}", "args", c))
    c = copy.deepcopy(config)
    c["class"] = 5
    out.append(("class=5", "class", c))
    return out


@pytest.mark.parametrize("make", [
    lambda: mr.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, rng=0),
    lambda: mr.GRU(3, 4, batch_first=True, dropout=0.0, rng=0),
    lambda: mr.RNNCell(3, 4, nonlinearity="relu", rng=0),
    lambda: mr.Embedding(6, 3, padding_idx=1, rng=0),
    lambda: mr.Sequential(mr.Linear(3, 4, rng=0), mr.Dropout(0.25), mr.Linear(4, 2, bias=False, rng=0)),
], ids=["LSTM", "GRU", "RNNCell", "Embedding", "Sequential"])
def test_every_malformed_configuration_is_a_value_error_naming_the_file_and_the_field(tmp_path, make):
    good = tmp_path / "good.npz"
    mr.save(make(), good)
    members = _members(good)
    header = _header(members)
    configs = [("", header["config"])]
    if header["config"]["class"] == "Sequential":
        configs = [(f"children[{i}].", c) for i, c in enumerate(header["config"]["children"])]
    tried = ok = 0
    for prefix, config in configs:
        for what, field, mutated in _config_mutations(config):
            h = copy.deepcopy(header)
            if prefix:
                h["config"]["children"][int(prefix[9:-2])] = mutated
            else:
                h["config"] = mutated
            bad = tmp_path / "bad.npz"
            _write(bad, members, h)
            tried += 1
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    mr.load_module(bad)
                except ValueError as e:
                    msg = str(e)
                    named = "bad.npz" in msg and (field in msg or "does not describe the file's arrays" in msg)
                    assert named, (what, msg)
                    ok += 1
                    continue
            pytest.fail(f"{what}: loaded without an error")
    assert tried > 20
    record("malformed configurations: a ValueError naming the file and the field", tried, ok)


def test_huge_sizes_are_refused_before_allocating(tmp_path):
    good = tmp_path / "good.npz"
    mr.save(mr.GRU(3, 4, rng=0), good)
    members = _members(good)
    header = _header(members)
    header["config"]["args"]["hidden_size"] = 1_500_000        # 20 GiB of float32 weights
    bad = tmp_path / "huge.npz"
    _write(bad, members, header)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"huge\.npz.*config.*bytes of weights"):
            mr.load_module(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    with pytest.raises(ValueError, match="hidden_size"):           # module_from_config names the field too
        mr.serialization.module_from_config({"class": "GRU", "args": dict(header["config"]["args"],
                                                                            hidden_size="4")})
    record("malformed configurations: a ValueError naming the file and the field", 1, 1)
