"""One atomic write for the file formats: a temporary file in the target's directory, fsync'ed, ``os.replace``'d.

Same contract as ``minirnn.save``: an interrupted or failing write (an exception, Ctrl-C, a full disk) leaves any
previous file at ``path`` untouched and removes its temporary file.
"""
from __future__ import annotations

import os
import stat
import tempfile
from typing import BinaryIO, Callable

from .serialization import _fsync_dir, _umask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], who: str) -> str:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then move it over ``path``. Returns the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    dirpath = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(dirpath):
        raise FileNotFoundError(f"{who} {path!r}: the directory {dirpath!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who} {path!r}: is a directory")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=dirpath)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(dirpath)
    return path
