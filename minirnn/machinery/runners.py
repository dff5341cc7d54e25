"""Direction runners: where one direction of a layer runs, behind one interface.

``run = runner_for(T, B, G, H)`` (a bidirectional layer's reverse direction) or ``runner_of(tape)`` (backward runs
where its forward ran); ``result = run.forward(...)`` / ``run.backward(...)`` starts the work and returns a handle,
``with result.result() as (...)`` gives what ``engine.forward`` / ``engine.backward`` return (``result.get()`` as
copies), ``result.cancel()`` abandons it. Here (``LOCAL``) the work is done then; in the second process it starts at
once, while this process runs the other direction. The large arrays of a remote result are views of the second
process's memory, valid within the ``with`` block (no copy: what is kept is copied, or summed, there).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from .. import engine
from . import second_process
from .second_process import RemoteTape, Reply

# T * B * G * H (G gates: RNN 1, GRU 3, LSTM 4) below which a layer stays in this process, from two runs of
# benchmarks/direction_processes.py (one bidirectional layer, training step, two processes against one): the GRU was
# faster from 30,720 on and the LSTM from 40,960 (0.52-0.91); below, the exchange costs about what the second core
# gives. The RNN does the least work per exchanged number: slower up to 10,240, about even from 20,480 to 204,800
# (0.88-1.08), faster at 230,400 (B = 256: 0.56-0.60).
MIN_WORK = 24576


class _Later:
    """A local result: the call is made by ``get`` (so that directions run here in order, as without handles)."""

    def __init__(self, fn, *args: Any) -> None:
        self._call: tuple | None = (fn, args)

    def get(self) -> Any:
        fn, args = self._call
        self._call = None
        return fn(*args)

    def result(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext(self.get())

    def cancel(self) -> None:
        self._call = None


class LocalRunner:
    """Runs a direction in this process."""

    def forward(self, kernel, w: engine.Weights, X: np.ndarray, batch_sizes, h0, c0, keep_tape: bool) -> _Later:
        """-> (out, h_n, c_n, tape) by ``get``: ``engine.forward``."""
        return _Later(engine.forward, kernel, w, X, h0, c0, batch_sizes, keep_tape)

    def backward(self, kernel, w: engine.Weights, tape, dout, dh_n, dc_n) -> _Later:
        """-> (dX, dh0, dc0, grads) by ``get``: ``engine.backward``."""
        return _Later(engine.backward, kernel, w, tape, dout, dh_n, dc_n)


class _RemoteForward:
    def __init__(self, reply: Reply, tape: RemoteTape | None) -> None:
        self.reply, self.tape = reply, tape

    def get(self) -> tuple:
        out, h, c = self.reply.get()
        return out, h, c, self.tape

    @contextlib.contextmanager
    def result(self) -> Iterator[tuple]:
        """(out, h_n, c_n, tape): out a view valid in the block; the states, which are kept, copied."""
        with self.reply.result() as (out, h, c):
            yield out, h.copy(), None if c is None else c.copy(), self.tape

    def cancel(self) -> None:
        self.reply.cancel()


class RemoteRunner:
    """Runs a direction in the second process: the kernel crosses by name, arrays through shared memory."""

    def __init__(self, process: second_process.SecondProcess) -> None:
        self.process = process

    def forward(self, kernel, w: engine.Weights, X: np.ndarray, batch_sizes, h0, c0, keep_tape: bool
                ) -> _RemoteForward:
        """Starts ``engine.forward`` there; -> (out, h_n, c_n, RemoteTape or None) by ``get``."""
        reply = self.process.request("forward", kernel.name, w, np.ascontiguousarray(X), batch_sizes, h0, c0,
                                     keep_tape)
        # the tape there is kept under the request's number
        return _RemoteForward(reply, RemoteTape(self.process, reply.seq) if keep_tape else None)

    def backward(self, kernel, w: engine.Weights, tape: RemoteTape, dout, dh_n, dc_n) -> Reply:
        """Starts ``engine.backward`` there through the tape it kept; -> (dX, dh0, dc0, grads) by ``get``."""
        return tape.process.request("backward", tape.handle, kernel.name, w,
                                    None if dout is None else np.ascontiguousarray(dout), dh_n, dc_n)


LOCAL = LocalRunner()


def runner_for(T: int, B: int, G: int, H: int) -> LocalRunner | RemoteRunner:
    """Where the reverse direction of a bidirectional layer of this size (G gates) runs."""
    if second_process.get_direction_processes() == 1 or T * B * G * H < MIN_WORK:
        return LOCAL
    return RemoteRunner(second_process.current())


def runner_of(tape: Any) -> LocalRunner | RemoteRunner:
    """Where the backward of a forward runs: where its tape is."""
    return RemoteRunner(tape.process) if isinstance(tape, RemoteTape) else LOCAL
