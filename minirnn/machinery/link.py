"""One end of the two-way link between minirnn's two processes: a pipe for small pickles, a shared-memory arena
each way for the arrays.

``send`` pickles a message with its arrays out of band (pickle protocol 5) into this end's arena, and sends the
rest through the pipe; ``recv`` returns the peer's message with its arrays as views of the peer's arena, valid until
this end sends again (the peer writes its arena only while preparing its next message, which comes after a reply).

The arenas are anonymous wherever the system allows (Linux's ``memfd_create``): the peer opens the creator's
descriptor through ``/proc/<pid>/fd``, so there is no name in /dev/shm to leave behind, whatever kills either
process; the memory goes with the last process that maps it. Elsewhere an arena is a file named after its creator's
pid, unlinked by the peer once mapped, and files of dead creators are swept when a link is made.
"""
from __future__ import annotations

import contextlib
import glob
import mmap
import os
import pickle
import select
import signal
import tempfile
import threading
from multiprocessing.connection import Connection
from typing import Any

_ALIGN = 64
PREFIX = "minirnn-arena-"
_MEMFD = hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _folder() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


# the signals a program may give a Python handler that raises; SIGINT's is Python's own KeyboardInterrupt
_OTHERS = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGUSR1", "SIGUSR2")
           if hasattr(signal, name)]


class deferred_signals:
    """``with deferred_signals():`` signals that may have a Python handler (SIGINT's KeyboardInterrupt among them)
    wait until the block is done, then are handled: a pipe message is never half read or half written. Only the
    main thread runs Python signal handlers, so only there is anything blocked."""

    def __enter__(self) -> None:
        self.held = None
        if threading.current_thread() is threading.main_thread():
            self.held = [signal.SIGINT] + [s for s in _OTHERS if callable(signal.getsignal(s))]
            signal.pthread_sigmask(signal.SIG_BLOCK, self.held)

    def __exit__(self, *exc: object) -> None:
        if self.held is not None:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.held)  # a signal that came meanwhile is handled here


def sweep_stale_arenas() -> None:
    """Unlink named arenas whose creator is dead (only where arenas have names: not with memfd)."""
    for path in glob.glob(os.path.join(_folder(), PREFIX + "*-*")):
        try:
            pid = int(os.path.basename(path)[len(PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(path)
        except (ValueError, OSError):
            continue


class Link:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._in = Connection(read_fd, writable=False)
        self._poller = select.poll()
        self._poller.register(read_fd, select.POLLIN)
        self._out = Connection(write_fd, readable=False)
        self._arena: mmap.mmap | None = None
        self._fd: int | None = None                     # memfd: open while the peer may still need to map it
        self._paths: list[str] = []                     # named arenas not yet unlinked
        self._peer: memoryview | None = None
        self._peer_map: mmap.mmap | None = None
        if not _MEMFD:
            sweep_stale_arenas()

    def wait(self) -> None:
        """Until a message (or the end of the pipe) is there to read: where Ctrl-C lands, with nothing read."""
        self._poller.poll()

    def send(self, message: Any) -> None:
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]
        spans, end = [], 0
        for raw in raws:
            spans.append((end, raw.nbytes))
            end += -(-raw.nbytes // _ALIGN) * _ALIGN
        announce = None
        if end and (self._arena is None or end > len(self._arena)):
            announce = self._grow(max(end, 2 * len(self._arena) if self._arena is not None else 8 << 20))
        if raws:
            view = memoryview(self._arena)
            for raw, (start, n) in zip(raws, spans):
                view[start:start + n] = raw
            view.release()
        self._out.send((announce, spans, data))

    def recv(self) -> Any:
        announce, spans, data = self._in.recv()
        if announce is not None:                        # the peer grew its arena: map the new one
            self._map_peer(announce)
        buffers = [self._peer[start:start + n] for start, n in spans]
        return pickle.loads(data, buffers=buffers)

    def _grow(self, size: int) -> tuple:
        if _MEMFD:
            fd = os.memfd_create("minirnn-arena", os.MFD_CLOEXEC)
            announce: tuple = ("memfd", os.getpid(), fd)
        else:
            fd, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", dir=_folder())
            self._paths.append(path)                    # unlinked by the peer once mapped, or by close()
            announce = ("file", path)
        try:
            os.ftruncate(fd, size)
            arena = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        # the previous arena: the peer mapped it when it read the message that announced it (it has replied since)
        self._release_own()
        self._arena = arena
        if _MEMFD:
            self._fd = fd
        else:
            os.close(fd)
        return announce

    def _map_peer(self, announce: tuple) -> None:
        if announce[0] == "memfd":
            _, pid, fd = announce
            path = f"/proc/{pid}/fd/{fd}"
        else:
            path = announce[1]
        with open(path, "r+b") as f:
            peer_map = mmap.mmap(f.fileno(), 0)
        if announce[0] == "file":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)                         # both ends have it mapped: the name is no longer needed
        self._release_peer()
        self._peer_map, self._peer = peer_map, memoryview(peer_map)

    def _release_own(self) -> None:
        if self._arena is not None:
            with contextlib.suppress(BufferError):      # a view still exported: unmapped when it goes
                self._arena.close()
            self._arena = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _release_peer(self) -> None:
        if self._peer is not None:
            with contextlib.suppress(BufferError):
                self._peer.release()
            with contextlib.suppress(BufferError):
                self._peer_map.close()
            self._peer = self._peer_map = None

    def close(self) -> None:
        self._in.close()
        self._out.close()
        self._release_own()
        self._release_peer()
        for path in self._paths:                        # a named arena the peer never mapped (it died first)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._paths = []
