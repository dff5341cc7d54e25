"""The reverse direction of bidirectional layers in a second process: an opt-in speed-up, beyond torch.

NumPy runs elementwise work on one core, and threads cannot share a time step's work (the GIL changes hands at
every ufunc call, and the calls are small). The two directions of a bidirectional layer are independent within
the layer, though, so a second *process* can run the reverse direction while this one runs the forward direction:
one exchange per layer and direction, not per step. Each process then uses one BLAS thread, two cores in all.

    minirnn.set_direction_processes(2)   # from now on, bidirectional layers use a second process
    minirnn.set_direction_processes(1)   # one process (the default); stops the second one

The second process only runs ``engine.forward`` and ``engine.backward`` (``serve``); this process does everything
else, reversal of time included (``recurrent._RNNBase._layer_forward`` / ``_layer_backward``). What crosses, per
layer and call: the time-reversed input, the reverse direction's weights and initial state, and back its output and
final state; in backward, its output gradient, and back dx, dh0 (dc0) and the weight gradients. Arrays go out of
band (pickle protocol 5) through a shared-memory file each way (``_Link``); the rest is pickled through a pipe.
The same engine runs on the same arrays, so the results equal the one-process results. The second process keeps
the reverse direction's tapes until backward (a ``RemoteTape`` stands for each here; when it goes, the tape there is
freed). Its memory is its own: a tracemalloc or RSS figure of this process does not include it.
Small layers stay in this process: below ``MIN_WORK`` the exchange costs more than the second core gives.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import mmap
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
import weakref
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from . import engine
from .checks import _is_int

# T * B * G * H (G gates: RNN 1, GRU 3, LSTM 4) below which a layer stays in this process, from two runs of
# benchmarks/direction_processes.py (one bidirectional layer, training step, two processes against one): the GRU was
# faster from 30,720 on and the LSTM from 40,960 (0.52-0.91); below, the exchange costs about what the second core
# gives. The RNN does the least work per exchanged number: slower up to 10,240, about even from 20,480 to 204,800
# (0.88-1.08), faster at 230,400 (B = 256: 0.56-0.60).
MIN_WORK = 24576
_ALIGN = 64


class _Link:
    """One end of the two-way pipe to the other process. ``send`` pickles a message with its arrays out of band in
    this end's arena (a file in shared memory, grown by this end and announced in the message that first uses it);
    ``recv`` maps the peer's arena and returns the message with its arrays as views of it: valid until the next
    ``recv`` (the peer overwrites the arena only after a reply), so whatever is kept must be copied."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._in = Connection(read_fd, writable=False)
        self._out = Connection(write_fd, readable=False)
        self._arena: mmap.mmap | None = None
        self._peer: memoryview | None = None
        self._peer_map: mmap.mmap | None = None
        self._paths: list[str] = []

    def send(self, message: Any) -> None:
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]
        spans, end = [], 0
        for raw in raws:
            spans.append((end, raw.nbytes))
            end += -(-raw.nbytes // _ALIGN) * _ALIGN
        path = None
        if self._arena is None or end > len(self._arena):
            path = self._grow(max(end, 2 * len(self._arena) if self._arena is not None else 8 << 20))
        view = memoryview(self._arena)
        for raw, (start, n) in zip(raws, spans):
            view[start:start + n] = raw
        view.release()
        self._out.send((path, spans, data))

    def recv(self) -> Any:
        path, spans, data = self._in.recv()
        if path is not None:                              # the peer grew its arena: map the new one
            if self._peer is not None:
                self._peer.release()
                self._peer_map.close()
            with open(path, "r+b") as f:
                self._peer_map = mmap.mmap(f.fileno(), 0)
            os.unlink(path)                               # both ends have it mapped: the name is no longer needed
            self._peer = memoryview(self._peer_map)
        buffers = [self._peer[start:start + n] for start, n in spans]
        return pickle.loads(data, buffers=buffers)

    def _grow(self, size: int) -> str:
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="minirnn-", dir=folder)
        self._paths.append(path)                          # unlinked by the peer once mapped, or by close()
        try:
            os.ftruncate(fd, size)
            arena = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        if self._arena is not None:
            self._arena.close()
        self._arena = arena
        return path

    def close(self) -> None:
        self._in.close()
        self._out.close()
        for path in self._paths:                          # an arena the peer never mapped (it died first)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


# ----------------------------------------------------------------------------------------------------------------
# The second process
# ----------------------------------------------------------------------------------------------------------------
def _forward(tapes: dict, handle: int, kernel, w: engine.Weights, X: np.ndarray, batch_sizes, h0, c0,
             keep_tape: bool):
    """``engine.forward`` of the reverse direction, keeping its tape as forward call ``handle``. X (T, B, I), or
    packed (N, I) with lengths, and the returned out (T, B, P) are in the order the reverse run visits time (the
    first process reverses them)."""
    if batch_sizes is not None:
        batch_sizes = batch_sizes.copy()                 # the tape keeps it, and the arena is overwritten
    if keep_tape:
        X = X.copy()                                     # likewise
    out, h, c, tape = engine.forward(kernel, w, X, h0, c0, batch_sizes, keep_tape)
    if keep_tape:
        tapes[handle] = tape
    return out, h, c


def _backward(tapes: dict, handle: int, kernel, w: engine.Weights, dout, dh_n, dc_n):
    """BPTT of the reverse direction through the tape of forward call ``handle``; dout (T, B, P) or None, and the
    returned dX (T, B, I), in the order the reverse run visits time. Returns dX, dh0, dc0, grads."""
    tape = tapes.pop(handle, None)
    if tape is None:
        raise RuntimeError(f"the direction process holds no tape for forward call {handle} (was it restarted?)")
    return engine.backward(kernel, w, tape, dout, dh_n, dc_n)


def serve(read_fd: int, write_fd: int) -> None:
    """The second process's loop: one reply per request, until the first process closes the pipe or says stop."""
    link = _Link(read_fd, write_fd)
    tapes: dict[int, engine.Tape] = {}
    ops = {"forward": _forward, "backward": _backward, "tapes": lambda tapes: len(tapes)}
    while True:
        try:
            op, dropped, errstate, args = link.recv()
        except EOFError:
            return
        for handle in dropped:
            tapes.pop(handle, None)
        if op == "stop":
            return
        try:
            with np.errstate(**errstate):                 # the first process's: an overflow raises there, raises here
                reply = ("ok", ops[op](tapes, *args))
        except Exception as e:   # reported to the first process, which raises it there
            reply = ("error", type(e).__name__, str(e), traceback.format_exc())
        del args
        link.send(reply)


# ----------------------------------------------------------------------------------------------------------------
# This process's side
# ----------------------------------------------------------------------------------------------------------------
_KINDS = {k.__name__: k for k in (FloatingPointError, ValueError, TypeError, MemoryError, RuntimeError)}


class RemoteTape:
    """Stands for a tape the second process keeps; when this handle goes (backward done, or the module's cache
    cleared), the tape there is freed with the next request."""

    def __init__(self, worker: "_Worker", handle: int) -> None:
        self.worker, self.handle = worker, handle
        weakref.finalize(self, worker.forget, handle)


class _Worker:
    def __init__(self) -> None:
        to_worker, from_worker = os.pipe(), os.pipe()
        # one BLAS thread there (set before NumPy loads), and this very minirnn first on the path
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (f"import sys; sys.path.insert(0, {root!r}); from minirnn import direction_process; "
                f"direction_process.serve({to_worker[0]}, {from_worker[1]})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(to_worker[0], from_worker[1]),
                                     env=env, stdin=subprocess.DEVNULL)
        os.close(to_worker[0])
        os.close(from_worker[1])
        self.link = _Link(from_worker[0], to_worker[1])
        self.pid = os.getpid()
        self._dropped: list[int] = []
        self._next = 0
        self._busy = False

    def forget(self, handle: int) -> None:
        self._dropped.append(handle)

    def submit(self, op: str, *args: Any) -> None:
        if self._busy:
            raise RuntimeError("the direction process already has a request in flight")
        dropped, self._dropped = self._dropped, []
        try:
            self.link.send((op, dropped, np.geterr(), args))
        except OSError as e:
            raise RuntimeError(f"the direction process is gone ({e}), and with it the tapes it kept: "
                               "minirnn.set_direction_processes(2) starts a new one; then run the forward again"
                               ) from None
        self._busy = True

    def result(self) -> Any:
        """The reply to the request in flight. Its arrays are views of the second process's arena, valid until the
        next request: the caller copies what it keeps (reversing time is that copy, for the large ones)."""
        self._busy = False
        try:
            reply = self.link.recv()
        except (EOFError, OSError) as e:
            raise RuntimeError(f"the direction process exited (code {self.proc.poll()}) before replying ({e!r}), "
                               "and with it the tapes it kept: minirnn.set_direction_processes(2) starts a new one; "
                               "then run the forward again") from None
        if reply[0] == "error":       # raised here as the same kind where it is a standard one (FloatingPointError...)
            _, name, message, trace = reply
            kind = _KINDS.get(name, RuntimeError)
            raise kind(f"in the direction process: {name}: {message}\n{trace}")
        return reply[1]

    def forward(self, kernel, w: engine.Weights, X: np.ndarray, batch_sizes, h0, c0,
                keep_tape: bool) -> RemoteTape | None:
        """Submit the reverse direction's forward; returns the handle of the tape it will keep (None: no tape)."""
        self._next += 1
        self.submit("forward", self._next, kernel, w, X, batch_sizes, h0, c0, keep_tape)
        return RemoteTape(self, self._next) if keep_tape else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.link.send(("stop", [], {}, ()))
        with contextlib.suppress(Exception):
            self.link.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_processes = 1
_worker: _Worker | None = None
_threads_before: list[int] | None = None


@atexit.register
def _stop_at_exit() -> None:
    if _worker is not None and _worker.pid == os.getpid():
        _worker.close()


def set_direction_processes(n: int) -> None:
    """How many processes run the two directions of a bidirectional layer: 1 (the default: this one) or 2 (the
    reverse direction in a second process, started now). With 2, each process uses one BLAS thread (this one's
    count is restored by going back to 1). Beyond torch."""
    global _processes, _worker, _threads_before
    if not _is_int(n) or int(n) not in (1, 2):
        raise ValueError(f"n: expected 1 or 2 processes, got {n!r} of type {type(n).__name__}")
    n = int(n)
    if n == 2 and os.name != "posix":
        raise OSError(f"n: 2 processes need a POSIX system (the pipes to the second process are inherited file "
                      f"descriptors), this one is {os.name!r}")
    if _worker is not None:
        _worker.close()
        _worker = None
    if _processes == 2 and n == 1:
        _set_blas_threads(_threads_before)
    elif _processes == 1 and n == 2:
        # one BLAS thread here for good, not only around the layers: OpenBLAS's idle threads spin for a while
        # after each call, and would take the second process's core
        _threads_before = _set_blas_threads(1)
    _processes = n
    if n == 2:
        _worker = _Worker()


def get_direction_processes() -> int:
    """1 or 2: see ``set_direction_processes``."""
    return _processes


def second_process(T: int, B: int, G: int, H: int) -> _Worker | None:
    """The worker for a bidirectional layer of this size (G gates), or None to run both directions here."""
    global _worker
    if _processes == 1 or T * B * G * H < MIN_WORK:
        return None
    if _worker is None or _worker.pid != os.getpid():     # none yet, or this is a fork of the process that had one
        _worker = _Worker()
    return _worker


def _find_blas_threads() -> list[tuple[Any, Any]]:
    """The thread-count (setter, getter) of every OpenBLAS loaded (NumPy's first; SciPy may bring its own), or []
    (another BLAS: its count is then left alone)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    found = []
    for path in sorted(paths, key=lambda p: "numpy" not in p):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"), ("openblas", "")):
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    return found


_blas: list[tuple[Any, Any]] | None = None


def _set_blas_threads(n: list[int] | int | None) -> list[int] | None:
    """Set the thread count of every OpenBLAS loaded (one count, or one each); returns the previous counts."""
    global _blas
    if _blas is None:
        _blas = _find_blas_threads()
    if n is None:
        return None
    counts = n if isinstance(n, list) else [n] * len(_blas)
    before = []
    for (setter, getter), count in zip(_blas, counts):
        before.append(getter())
        setter(count)
    return before
