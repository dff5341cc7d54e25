"""This process's side of the second process: starting and stopping it, and one request at a time over the link.

One exchange is in flight at a time: ``request`` takes the link (another thread waits until the exchange in flight
is over), the end of ``Reply.result`` (or ``get``) gives it back. An exchange abandoned half way (an exception,
Ctrl-C included, while this process waits or runs its own direction) leaves its reply in the pipe; the next request
reads and discards it first, so a reply is never taken for another request's (each also carries its request's
number, and a mismatch stops the link for good with a clear error). Pipe messages are read and written whole
(``link.deferred_signals``); the wait itself is where Ctrl-C lands.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
import weakref
from typing import Any, Iterator

import numpy as np

from . import blas
from .link import Link, deferred_signals

_KINDS = {k.__name__: k for k in (FloatingPointError, ValueError, TypeError, MemoryError, RuntimeError)}
_RESTART = "minirnn.set_direction_processes(2) starts a new one; then run the forward again"


class SecondProcess:
    def __init__(self) -> None:
        to_worker, from_worker = os.pipe(), os.pipe()
        # one BLAS thread there (set before NumPy loads), and this very minirnn first on the path
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = (f"import sys; sys.path.insert(0, {root!r}); from minirnn.machinery import worker; "
                f"worker.serve({to_worker[0]}, {from_worker[1]})")
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(to_worker[0], from_worker[1]),
                                         env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(to_worker[0])
            os.close(from_worker[1])
        self.link = Link(from_worker[0], to_worker[1])
        self.pid = os.getpid()                            # a fork of this process must not use this link
        self._exchange = threading.Lock()                 # held from a request until its reply is taken
        # guards the fields below (short holds only); re-entrant: a RemoteTape's finalizer (forget) can run in a
        # garbage collection that starts inside a hold, in the same thread
        self._state = threading.RLock()
        self._pending: int | None = None                  # the request whose reply is still in the pipe
        self._seq = 0
        self._dropped: list[int] = []
        self._broken: str | None = None
        self._owner: int | None = None                    # the thread holding the exchange
        self._holder: weakref.ref | None = None           # and its one open reply

    # ---- one exchange ---------------------------------------------------------------------------------------
    def forget(self, handle: int) -> None:
        """The tape of forward call ``handle`` is no longer needed: freed there with the next request."""
        with self._state:
            self._dropped.append(handle)

    def request(self, op: str, *args: Any) -> "Reply":
        """Send one request; returns the handle of its reply. Blocks while another thread's exchange is in flight."""
        reply = Reply(self, 0)
        me = threading.get_ident()
        if self._owner == me:       # this thread dropped a reply without a word (an exception at the wrong moment,
            dropped = self._holder()    # the handle kept by a traceback): abandoned, not awaited (a thread never
            if dropped is not None:     # waits on itself)
                dropped._close()
        else:
            self._exchange.acquire()
            self._owner = me
        self._holder = weakref.ref(reply)
        try:
            self._check()
            if self._pending is not None:
                self._take()                              # an abandoned exchange's reply: read and discarded
            with deferred_signals():
                with self._state:
                    dropped, self._dropped = self._dropped, []
                    self._seq += 1
                    reply.seq = self._seq
                try:
                    self.link.send((reply.seq, op, dropped, np.geterr(), args))
                except OSError as e:
                    self._break(f"the direction process is gone ({e})")
                self._pending = reply.seq
                reply._open = True
                reply._finalizer = weakref.finalize(reply, self._drop, reply.seq)
        except BaseException:
            reply._close()
            self._release()
            raise
        return reply

    def _take(self) -> tuple:
        """Wait for the pending request's reply (interruptible) and read it whole. Arrays are views of the arena."""
        try:
            self.link.wait()                              # Ctrl-C lands here: nothing read yet, still pending
            with deferred_signals():
                message = self.link.recv()
                self._pending = None
        except (EOFError, OSError) as e:
            self._break(f"the direction process exited (code {self.proc.poll()}) before replying ({e!r})")
        if message[0] != self._seq:                       # never: each reply is read once, in order
            self._break(f"the direction process replied to request {message[0]}, expected {self._seq}")
        return message

    def _finish(self, seq: int) -> Any:
        """The payload of the reply to request ``seq`` (exchange held: the caller releases it), its arrays views of
        the arena, valid until the next request."""
        if self._pending != seq:                          # its reply was read already
            raise RuntimeError(f"the reply to request {seq} was already taken")
        message = self._take()
        if message[1] == "error":      # raised here as the same kind where it is a standard one
            _, _, name, text, trace = message
            raise _KINDS.get(name, RuntimeError)(f"in the direction process: {name}: {text}\n{trace}")
        return message[2]

    def _release(self) -> None:
        """End the hold on the link (of the one open reply); a reply not taken stays pending, and the next request
        reads and discards it."""
        self._owner = self._holder = None
        self._exchange.release()

    def _drop(self, seq: int) -> None:
        """An open reply was collected without a word (only after an exception at the wrong moment)."""
        if self._holder is not None and self._holder() is None and self._pending == seq:
            self._release()

    def _check(self) -> None:
        if self._broken is not None:
            raise RuntimeError(f"{self._broken}, and with it the tapes it kept: {_RESTART}")
        if self.pid != os.getpid():
            raise RuntimeError("the direction process belongs to the parent of this forked process: "
                               f"{_RESTART}")

    def _break(self, why: str):
        self._broken = why
        with contextlib.suppress(Exception):
            self.link.close()
        raise RuntimeError(f"{why}, and with it the tapes it kept: {_RESTART}") from None

    def close(self) -> None:
        """Stop the second process: closing the link ends its loop (and drops its tapes)."""
        with contextlib.suppress(Exception):
            self.link.close()
        self._broken = self._broken or "the direction process is gone (stopped)"
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Reply:
    """The reply to one request, taken once with ``get``; ``cancel`` (or dropping the handle) abandons it."""

    def __init__(self, process: SecondProcess, seq: int) -> None:
        self.process, self.seq = process, seq
        self._open = False
        self._finalizer: weakref.finalize | None = None   # gives the link back if this handle is dropped open

    def _close(self) -> None:
        self._open = False
        if self._finalizer is not None:
            self._finalizer.detach()

    @contextlib.contextmanager
    def result(self) -> Iterator[Any]:
        """``with reply.result() as payload:`` its arrays are views of the second process's memory, valid in the
        block (the link is held until its end: no other request can overwrite them)."""
        if not self._open:
            raise RuntimeError(f"the reply to request {self.seq} was already taken or abandoned")
        self._close()
        try:
            yield self.process._finish(self.seq)
        finally:
            self.process._release()

    def get(self) -> Any:
        """The payload, its arrays copied out of the second process's memory."""
        with self.result() as payload:
            return _copied(payload)

    def cancel(self) -> None:
        if self._open:
            self._close()
            self.process._release()


class RemoteTape:
    """Stands for a tape the second process keeps; when this handle goes (backward done, or the module's cache
    cleared), the tape there is freed with the next request."""

    def __init__(self, process: SecondProcess, handle: int) -> None:
        self.process, self.handle = process, handle
        weakref.finalize(self, process.forget, handle)

    def __deepcopy__(self, memo: dict) -> "RemoteTape":
        """A deep copy of a model waiting for its backward copies this tape there too, as a Tape is copied here."""
        reply = self.process.request("copy", self.handle)
        reply.get()
        return RemoteTape(self.process, reply.seq)


def _copied(payload: Any) -> Any:
    if isinstance(payload, np.ndarray):
        return payload.copy()
    if isinstance(payload, tuple):
        return tuple(_copied(p) for p in payload)
    if hasattr(payload, "__dataclass_fields__"):          # engine.Grads
        for name in payload.__dataclass_fields__:
            setattr(payload, name, _copied(getattr(payload, name)))
    return payload


# ----------------------------------------------------------------------------------------------------------------
# How many processes
# ----------------------------------------------------------------------------------------------------------------
_processes = 1
_process: SecondProcess | None = None
_threads_before: list[int] | None = None
_lock = threading.Lock()


@atexit.register
def _stop_at_exit() -> None:
    if _process is not None and _process.pid == os.getpid():
        _process.close()


def set_direction_processes(n: int) -> None:
    """How many processes run the two directions of a bidirectional layer: 1 (the default: this one) or 2 (the
    reverse direction in a second process, started now). With 2, each process uses one BLAS thread (this one's
    count is restored by going back to 1). Beyond torch."""
    global _processes, _process, _threads_before
    from ..checks import _is_int
    if not _is_int(n) or int(n) not in (1, 2):
        raise ValueError(f"n: expected 1 or 2 processes, got {n!r} of type {type(n).__name__}")
    n = int(n)
    if n == 2 and os.name != "posix":
        raise OSError(f"n: 2 processes need a POSIX system (the pipes to the second process are inherited file "
                      f"descriptors), this one is {os.name!r}")
    with _lock:
        if _process is not None:
            if _process.pid == os.getpid():
                _process.close()
            _process = None
        if _processes == 2 and n == 1:
            if _threads_before is not None:
                blas.set_threads(_threads_before)
        elif _processes == 1 and n == 2:
            # one BLAS thread here for good, not only around the layers: OpenBLAS's idle threads spin for a while
            # after each call, and would take the second process's core
            _threads_before = blas.set_threads(1)
        _processes = n
        if n == 2:
            _process = SecondProcess()


def get_direction_processes() -> int:
    """1 or 2: see ``set_direction_processes``."""
    return _processes


def current() -> SecondProcess | None:
    """The second process (started anew in a fork of the process that had one), or None with one process."""
    global _process
    if _processes == 1:
        return None
    with _lock:
        if _process is None or _process.pid != os.getpid():
            _process = SecondProcess()
        return _process
