"""The second process under faults (issue 14): Ctrl-C while waiting for it, its link used from two threads, kills
while its shared memory grows, and its exits. Each must end in a correct result or a clear error, never another
call's numbers or a hang, leave nothing in /dev/shm, and print no traceback of the second process. Subprocess tests
are bounded in time; what they provoked is counted in ``fault_counts``."""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

import minirnn as mr
from minirnn.machinery import runners

from fault_counts import record
from helpers import REPO_ROOT, subprocess_env

posix_only = pytest.mark.skipif(os.name != "posix", reason="two processes need POSIX")

# ----------------------------------------------------------------------------------------------------------------
# Ctrl-C at random moments
# ----------------------------------------------------------------------------------------------------------------
INTERRUPTS = r"""
import json, random, signal, sys, threading, time
import numpy as np
import minirnn as mr
from minirnn.machinery import runners
runners.MIN_WORK = 0                                  # every bidirectional layer uses the second process
rng = np.random.default_rng(0)
T, B, I, H = 16, 12, 8, 24
models = [mr.GRU(I, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=1),
          mr.LSTM(I, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=2)]
xs = [rng.standard_normal((T, B, I)) for _ in models]
lengths = [None, rng.integers(1, T + 1, B)]
douts = [rng.standard_normal((T, B, 2 * H)) for _ in models]

def call(i, train):
    m = models[i]
    if not train:
        with mr.no_grad():
            return [m(xs[i], lengths=lengths[i])[0]]
    m.zero_grad()
    out, _ = m(xs[i], lengths=lengths[i])
    dx, _ = m.backward(douts[i])
    return [out, dx] + [p.grad.copy() for p in m.parameters()]

cases = [(i, train) for i in range(len(models)) for train in (False, True)]
expected, took = {}, {}
for c in cases:                                       # one process
    t0 = time.perf_counter()
    expected[c] = call(*c)
    took[c] = time.perf_counter() - t0
mr.set_direction_processes(2)
armed = [False]
def on_sigint(sig, frame):                            # Ctrl-C, only while a minirnn call runs
    if armed[0]:
        raise KeyboardInterrupt
signal.signal(signal.SIGINT, on_sigint)
main = threading.main_thread().ident
r = random.Random(int(sys.argv[1]))
tried = ok = wrong = clear = completed = waiting = 0
owed = False                                          # an interrupt whose next outcome is still to judge
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline and tried < int(sys.argv[3]):
    c = r.choice(cases)
    timer = None
    if r.random() < 0.6:                              # Ctrl-C at a random moment of this call
        timer = threading.Timer(r.uniform(0, 1.5 * took[c]), signal.pthread_kill, (main, signal.SIGINT))
    armed[0] = True
    try:
        if timer is not None:
            timer.start()
        got = call(*c)
        armed[0] = False
    except KeyboardInterrupt as e:
        armed[0] = False
        models[c[0]].clear_cache()
        tb, names = e.__traceback__, set()
        while tb is not None:
            names.add(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        waiting += "_take" in names                   # it landed while waiting for the second process
        if owed:
            ok += 1                                   # interrupted again: the link was still usable
        tried, owed = tried + 1, True
        continue
    except RuntimeError as e:                         # a clear error must say what to do
        armed[0] = False
        if "set_direction_processes(2)" not in str(e):
            raise
        clear += 1
        ok += owed
        owed = False
        mr.set_direction_processes(2)
        continue
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
    completed += 1
    same = all(np.allclose(a, b, rtol=1e-12, atol=1e-13) for a, b in zip(got, expected[c]))
    wrong += not same
    ok += owed and same
    owed = False
armed[0] = False
if owed:                                              # the last interrupt: judged by one more call
    c = cases[-1]
    ok += all(np.allclose(a, b, rtol=1e-12, atol=1e-13) for a, b in zip(call(*c), expected[c]))
mr.set_direction_processes(1)
print(json.dumps(dict(tried=tried, ok=ok, wrong=wrong, clear=clear, completed=completed, waiting=waiting)))
"""


@posix_only
def test_ctrl_c_while_waiting_never_leaves_a_stale_reply():
    proc = subprocess.run([sys.executable, "-c", INTERRUPTS, "7", "40", "60"], env=subprocess_env(
        OPENBLAS_NUM_THREADS="1"), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    record("Ctrl-C while waiting for the second process", counts["tried"], counts["ok"])
    assert counts["tried"] >= 20, counts              # enough interrupts landed to mean something
    assert counts["completed"] >= 10, counts
    assert counts["waiting"] >= 5, counts             # and enough of them while waiting for the second process
    assert counts["wrong"] == 0, counts
    assert counts["ok"] == counts["tried"], counts
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# ----------------------------------------------------------------------------------------------------------------
# Two threads, one link
# ----------------------------------------------------------------------------------------------------------------
@posix_only
def test_two_threads_share_the_link_without_mixing(monkeypatch):
    """Two threads train their own models, and two more run no_grad inference on one shared model, all through the
    one second process: every result equals the one-process result."""
    monkeypatch.setattr(runners, "MIN_WORK", 0)
    rng = np.random.default_rng(4)
    T, B, I, H = 9, 6, 5, 7
    def make():
        return [mr.GRU(I, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=1),
                mr.LSTM(I, H, bidirectional=True, dtype=np.float64, rng=2),
                mr.RNN(I, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=3)]

    models = make()                                   # the expected results: this thread's own twins
    xs = [rng.standard_normal((T, B, I)) for _ in models]

    def train(i):
        m = models[i]
        m.zero_grad()
        out, _ = m(xs[i])
        dx, _ = m.backward(np.cos(out))
        return [out, dx] + [p.grad.copy() for p in m.parameters()]

    def infer(i):
        with mr.no_grad():
            return [models[2](xs[i])[0]]

    jobs = [lambda: train(0), lambda: train(1), lambda: infer(0), lambda: infer(1)]
    expected = [job() for job in jobs]
    models = make()                                   # the threads' models: each trained by one thread only
    mr.set_direction_processes(2)
    results: list[list[bool]] = [[] for _ in jobs]
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def loop(j):
        try:
            start.wait()
            for _ in range(15):
                got = jobs[j]()
                results[j].append(all(np.allclose(a, b, rtol=1e-12, atol=1e-13) for a, b in zip(got, expected[j])))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(j,)) for j in range(len(jobs))]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "a thread hung"
    finally:
        mr.set_direction_processes(1)
    steps = [ok for r in results for ok in r]
    record("second-process link used from several threads (steps)", len(steps), sum(steps))
    assert not errors, errors
    assert len(steps) == 15 * len(jobs) and all(steps), results


# ----------------------------------------------------------------------------------------------------------------
# Kills while the shared memory grows; quiet exits
# ----------------------------------------------------------------------------------------------------------------
KILLS = r"""
import json, os, random, signal, sys, time
import numpy as np
import minirnn as mr
from minirnn.machinery import link, second_process
r = random.Random(int(sys.argv[1]))
kills = int(sys.argv[2])
for n in range(kills):
    pid = os.fork()
    if pid == 0:                                      # a training loop whose batch grows every step
        link._MEMFD = n % 3 != 2                      # one kill in three with named arenas (no memfd)
        mr.set_direction_processes(2)
        gru = mr.GRU(32, 48, num_layers=2, bidirectional=True, rng=0)
        B = 2
        while True:
            x = np.ones((16, B, 32), dtype=np.float32)
            out, _ = gru(x, lengths=[16] + [8] * (B - 1))
            gru.backward(np.ones_like(out))
            B = B * 2 if B < 512 else 2
    time.sleep(r.uniform(0.02, 1.5))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
link._MEMFD = False                                   # the next start sweeps what the named runs left
mr.set_direction_processes(2)
mr.set_direction_processes(1)
print(json.dumps({"kills": kills}))
"""


def _our_workers() -> list[int]:
    found = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(f"{d}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if "minirnn.machinery import worker" in cmd and REPO_ROOT in cmd:
            found.append(int(d[6:]))
    return found


def _arena_files() -> dict[str, int]:
    files = {}
    for folder in {"/dev/shm", tempfile.gettempdir()}:
        for path in glob.glob(os.path.join(folder, "minirnn-arena-*")):
            try:
                files[path] = os.path.getsize(path)
            except OSError:
                pass
    return files


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork, /proc and /dev/shm: Linux")
def test_kills_while_the_arenas_grow_leave_nothing_behind():
    before, workers_before = _arena_files(), set(_our_workers())
    proc = subprocess.run([sys.executable, "-c", KILLS, "3", "30"], env=subprocess_env(OPENBLAS_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    deadline = time.monotonic() + 30                  # orphaned workers see their pipe end and go
    while set(_our_workers()) - workers_before and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {p: n for p, n in _arena_files().items() if p not in before}
    orphans = set(_our_workers()) - workers_before
    record("SIGKILL of the main process while the arenas grow", 30, 30 if not left and not orphans else 0)
    record("bytes left in /dev/shm after 30 kills", 1, int(sum(left.values()) == 0))
    assert not orphans, f"second processes still running after their parent was killed: {orphans}"
    assert sum(left.values()) == 0, left
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]   # the workers of killed parents exit quietly


QUIET = r"""
import os, sys, time
import numpy as np
import minirnn as mr
from minirnn.machinery import runners
runners.MIN_WORK = 0
mr.set_direction_processes(2)
if sys.argv[1] == "unused":
    sys.exit(0)
if sys.argv[1] == "unused-killed":
    time.sleep(0.5)
    os.kill(os.getpid(), 9)
gru = mr.GRU(16, 32, num_layers=2, bidirectional=True, rng=0)
x = np.ones((30, 64, 16), dtype=np.float32)
try:
    while True:
        out, _ = gru(x)
        print("ready", flush=True)
        gru.backward(np.ones_like(out))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
"""


@posix_only
@pytest.mark.parametrize("how", ["unused", "unused-killed", "killed", "ctrl-c"])
def test_the_second_process_exits_quietly(how):
    """Never used, its parent exiting or killed, or Ctrl-C at the terminal (SIGINT to the process group): no
    traceback from the second process, and it is gone."""
    p = subprocess.Popen([sys.executable, "-c", QUIET, how], env=subprocess_env(OPENBLAS_NUM_THREADS="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if how in ("killed", "ctrl-c"):
            assert p.stdout.readline().strip() == "ready"
            time.sleep(0.3)
            os.killpg(p.pid, signal.SIGKILL if how == "killed" else signal.SIGINT)
        out, err = p.communicate(timeout=60)          # stderr ends when the second process has gone too
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    expected = {"unused": 0, "unused-killed": -9, "killed": -9, "ctrl-c": 3}[how]
    record("second process's exits without traceback", 1, int("Traceback" not in err and p.returncode == expected))
    assert p.returncode == expected, err
    assert "Traceback" not in err and "Error" not in err, err
    if how == "ctrl-c":
        assert out.strip().endswith("interrupted")
