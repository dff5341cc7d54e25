"""safetensors (Hugging Face's format), read and written with NumPy only.

The file: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON, then the data buffer::

    {"weight_ih_l0": {"dtype": "F32", "shape": [48, 3], "data_offsets": [0, 576]}, ...,
     "__metadata__": {"key": "value"}}                 # optional; string values only

``data_offsets`` are [begin, end) byte offsets into the data buffer; the tensors are C-contiguous little-endian
and tile the buffer exactly (no gaps, no overlaps), which the reader checks, along with everything else in the
header, before it reads a single tensor byte: N within the file, every entry a known dtype, a shape of
non-negative integers whose byte size equals its span. So a file never makes the reader allocate more than its own
size (bfloat16, which NumPy lacks, is widened exactly to float32: twice its bytes).

Dtypes: F64, F32, F16, BF16 (read only, as float32), I64, I32, I16, I8, U64, U32, U16, U8, BOOL.
"""
from __future__ import annotations

import json
import math
import os
import struct
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from .serialization import atomic_write
from .module import Module, _to_numpy

MAX_HEADER = 100_000_000   # the safetensors package's own limit on the JSON header
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
           "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1"}
_NAMES = {np.dtype(v).str[1:]: k for k, v in _DTYPES.items() if k not in ("BF16", "BOOL")}   # "f4" -> "F32"
_NAMES["b1"] = "BOOL"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object, refusing a repeated name (json keeps the last silently, which could hide an entry)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the name {k!r} appears twice")
        out[k] = v
    return out


def load_safetensors(path: str | os.PathLike, return_metadata: bool = False) -> Any:
    """``{name: np.ndarray}`` (an OrderedDict, in the header's order) from a .safetensors file; with
    ``return_metadata=True``, ``(state, metadata)`` where metadata is the ``__metadata__`` dict of strings ({} if
    absent). A malformed file is a ValueError naming it; nothing is read before the whole header is validated."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)

    def refuse(reason: str) -> ValueError:
        return ValueError(f"load_safetensors {path!r}: not a valid safetensors file: {reason}")

    if not os.path.exists(path):
        raise FileNotFoundError(f"load_safetensors {path!r}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load_safetensors {path!r}: is a directory")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < 8:
            raise refuse(f"{size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8 or n > MAX_HEADER:
            raise refuse(f"the header claims {n} bytes; the file has {size - 8} after the length"
                         + (f" (and the limit is {MAX_HEADER})" if n > MAX_HEADER else ""))
        raw = f.read(n)
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, ValueError) as e:
            raise refuse(f"the header is not UTF-8 JSON without repeated names ({e})") from None
        if not isinstance(header, dict):
            raise refuse(f"the header is a JSON {type(header).__name__}, expected an object")
        metadata = header.pop("__metadata__", None)
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise refuse("__metadata__ must be an object of strings")
        buffer = size - 8 - n
        entries = []
        for name, e in header.items():
            if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
                raise refuse(f"tensor {name!r}: expected exactly dtype, shape and data_offsets, got {e!r:.200}")
            dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
            if dtype not in _DTYPES:
                raise refuse(f"tensor {name!r}: unknown or unsupported dtype {dtype!r:.20} (known: "
                             f"{', '.join(_DTYPES)})")
            if not isinstance(shape, list) or len(shape) > 64 or not all(_is_int(d) and d >= 0 for d in shape):
                raise refuse(f"tensor {name!r}: shape {shape!r:.100} is not a list of non-negative integers")
            if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                    or not 0 <= offsets[0] <= offsets[1] <= buffer):
                raise refuse(f"tensor {name!r}: data_offsets {offsets!r:.100} not within the {buffer}-byte buffer")
            nbytes = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
            if offsets[1] - offsets[0] != nbytes:
                raise refuse(f"tensor {name!r}: {dtype}{shape} needs {nbytes} bytes, its data_offsets span "
                             f"{offsets[1] - offsets[0]}")
            entries.append((offsets[0], offsets[1], name, dtype, tuple(shape)))
        end = 0
        for begin, stop, name, _, _ in sorted(entries):
            if begin != end:
                raise refuse(f"tensor {name!r} starts at byte {begin} of the buffer, expected {end} (the tensors "
                             "must tile the buffer: no gap, no overlap)")
            end = stop
        if end != buffer:
            raise refuse(f"the tensors cover {end} bytes, the data buffer has {buffer}")
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for begin, stop, name, dtype, shape in entries:
            f.seek(8 + n + begin)
            data = f.read(stop - begin)
            if len(data) != stop - begin:
                raise refuse(f"tensor {name!r} is cut short")
            arr = np.frombuffer(data, dtype=_DTYPES[dtype]).reshape(shape)
            if dtype == "BF16":   # the top half of a float32: widening is exact
                arr = (arr.astype(np.uint32) << np.uint32(16)).view(np.float32)
            elif dtype == "BOOL":
                arr = arr != 0
            else:
                arr = arr.astype(arr.dtype.newbyteorder("="))   # a writable copy in native byte order
            state[name] = arr
    return (state, dict(metadata)) if return_metadata else state


def save_safetensors(obj: Module | Mapping[str, Any], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> str:
    """Write a Module's ``state_dict()`` or a flat ``{name: array}`` to ``path`` as safetensors, atomically.

    ``metadata``: strings only (the format's rule), stored as ``__metadata__``. Arrays are written C-contiguous
    little-endian, largest dtype first and then by name (as the safetensors package orders them, which keeps
    every tensor aligned to its itemsize); the header is padded with spaces to a multiple of 8 bytes.
    Returns the path.
    """
    state = obj.state_dict() if isinstance(obj, Module) else obj
    if not isinstance(state, Mapping):
        raise TypeError(f"obj: expected a Module or a flat state dict, got {type(obj).__name__}")
    if metadata is not None and (not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError("metadata: expected a dict of str to str (safetensors stores strings only)")
    arrays = {}
    for k, v in state.items():
        if not isinstance(k, str) or k == "__metadata__":
            raise TypeError(f"obj: expected str keys other than '__metadata__', got {k!r}")
        try:
            arr = _to_numpy(v)
        except Exception as e:
            raise TypeError(f"obj[{k!r}]: expected an array, got {type(v).__name__} ({e})") from None
        if arr.dtype.str[1:] not in _NAMES:
            raise TypeError(f"obj[{k!r}]: safetensors has no dtype for {arr.dtype} (expected bool, integer or "
                            "real float)")
        arrays[k] = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")   # (0-d stays 0-d)
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for k in order:
        a = arrays[k]
        header[k] = {"dtype": _NAMES[a.dtype.str[1:]], "shape": list(a.shape),
                     "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)

    def write(f: Any) -> None:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for k in order:
            f.write(arrays[k].tobytes())

    return atomic_write(path, write, "save_safetensors")
