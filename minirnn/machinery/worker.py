"""The second process's loop: ``engine.forward`` / ``engine.backward`` of the reverse direction, one reply per
request, until the first process closes the link (or dies: the pipe then ends, and this process exits quietly).

Ctrl-C is the first process's to handle (a terminal sends SIGINT to the whole process group): it is ignored here,
and this process goes when the first one closes the link, exits or is killed.
"""
from __future__ import annotations

import copy
import signal
import traceback

import numpy as np

from .. import engine, kernels
from .link import Link


def _forward(tapes: dict, handle: int, kernel: str, w: engine.Weights, X: np.ndarray, batch_sizes, h0, c0,
             keep_tape: bool):
    """``engine.forward`` of the reverse direction (``kernel`` by name), keeping its tape under ``handle`` (its
    request's number). X (T, B, I), or packed (N, I) with lengths, and the returned out (T, B, P) are in the order
    the reverse run visits time (the first process reverses them)."""
    if batch_sizes is not None:
        batch_sizes = batch_sizes.copy()                 # the tape keeps them, and the arena is overwritten
    if keep_tape:
        X = X.copy()                                     # likewise
    out, h, c, tape = engine.forward(kernels.by_name(kernel), w, X, h0, c0, batch_sizes, keep_tape)
    if keep_tape:
        tapes[handle] = tape
    return out, h, c


def _backward(tapes: dict, seq: int, handle: int, kernel: str, w: engine.Weights, dout, dh_n, dc_n):
    """BPTT of the reverse direction through the tape of forward call ``handle``; dout (T, B, P) or None, and the
    returned dX (T, B, I), in the order the reverse run visits time. Returns dX, dh0, dc0, grads."""
    tape = tapes.pop(handle, None)
    if tape is None:
        raise RuntimeError(f"the direction process holds no tape for forward call {handle} (was it restarted?)")
    return engine.backward(kernels.by_name(kernel), w, tape, dout, dh_n, dc_n)


def _copy(tapes: dict, seq: int, handle: int) -> None:
    """A copy of the tape of forward call ``handle``, kept under this request's number (``copy.deepcopy`` of a
    model whose forward waits for its backward: the copy's backward needs a tape of its own)."""
    if handle not in tapes:
        raise RuntimeError(f"the direction process holds no tape for forward call {handle} (was it restarted?)")
    tapes[seq] = copy.deepcopy(tapes[handle])


OPS = {"forward": _forward, "backward": _backward, "copy": _copy, "tapes": lambda tapes, seq: len(tapes)}


def serve(read_fd: int, write_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    link = Link(read_fd, write_fd)
    tapes: dict[int, engine.Tape] = {}
    try:
        while True:
            seq, op, dropped, errstate, args = link.recv()
            for handle in dropped:
                tapes.pop(handle, None)
            try:
                with np.errstate(**errstate):            # the first process's: an overflow raises there, raises here
                    reply = (seq, "ok", OPS[op](tapes, seq, *args))
            except Exception as e:   # reported to the first process, which raises it there
                reply = (seq, "error", type(e).__name__, str(e), traceback.format_exc())
            del args
            link.send(reply)
    except (EOFError, OSError):      # the first process closed the link, exited or died: nothing to report
        pass
    finally:
        link.close()
