"""Keep freed memory in the process for the next training step instead of handing it back to the OS (glibc only).

A training step allocates its tapes, gradients and temporaries and frees them all at its end. With glibc's
defaults, malloc then trims the top of its heap and unmaps its large blocks, and the next step faults every one of
those pages in anew. ``keep_freed_memory()`` raises the two thresholds (blocks up to 256 MiB come from the heap, up
to 512 MiB of free heap top is kept), so that steady training steps reuse their pages: peak memory is unchanged,
but freed memory stays with the process until it exits, as with most allocators other than glibc's defaults.

This changes malloc for the whole process, which is why ``import minirnn`` never does it: a program that wants it
(the name classifier example, the benchmarks) calls it. Without it, each training step of the name classifier's
model faults in thousands of pages anew.
"""
from __future__ import annotations

import ctypes

# glibc's mallopt parameters (malloc.h) and the values set
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD, MMAP_THRESHOLD = 512 << 20, 256 << 20


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (``mallopt`` of M_TRIM_THRESHOLD and M_MMAP_THRESHOLD).
    Returns True when done, False where the C library is not glibc (nothing is changed there)."""
    try:
        libc = ctypes.CDLL(None)                          # the C library this process already uses
        libc.gnu_get_libc_version                         # glibc's own: mallopt's parameters are glibc's
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                    and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
