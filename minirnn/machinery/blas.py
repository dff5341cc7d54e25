"""The thread count of the BLAS NumPy (and SciPy) use: set to one per process while two processes share the cores.

Only OpenBLAS is known (found among the loaded libraries through /proc/self/maps); another BLAS keeps its count.
Nothing is looked up before the first call.
"""
from __future__ import annotations

import ctypes
from typing import Any

_blas: list[tuple[Any, Any]] | None = None


def _find() -> list[tuple[Any, Any]]:
    """The thread-count (setter, getter) of every OpenBLAS loaded (NumPy's first; SciPy may bring its own)."""
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
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    return found


def libraries() -> list[tuple[Any, Any]]:
    """(setter, getter) of each OpenBLAS loaded; [] for another BLAS."""
    global _blas
    if _blas is None:
        _blas = _find()
    return _blas


def thread_counts() -> list[int]:
    return [getter() for _, getter in libraries()]


def set_threads(n: list[int] | int) -> list[int]:
    """Set the thread count of every OpenBLAS loaded (one count for all, or one each); returns the previous ones."""
    blas = libraries()
    counts = n if isinstance(n, list) else [n] * len(blas)
    before = []
    for (setter, getter), count in zip(blas, counts):
        before.append(getter())
        setter(count)
    return before
