"""One atomic write for the file formats: a temporary file in the target's directory, fsync'ed, ``os.replace``'d.

Same contract as ``minirnn.save``: an interrupted or failing write (an exception, Ctrl-C, a full disk) leaves any
previous file at ``path`` untouched and removes its temporary file, and a killed one (SIGKILL, SIGTERM) leaves
no temporary behind either (see ``minirnn.serialization``).
"""
from __future__ import annotations

import os
from typing import BinaryIO, Callable

from .serialization import _atomic_write


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], who: str) -> str:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then move it over ``path``. Returns the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    return _atomic_write(os.fspath(path), write, who)   # kill-safe temporaries: see serialization.save
