"""PyTorch's own checkpoint files (``torch.save``'s zip format, the default since torch 1.6), read and written
with NumPy only: torch is never imported here.

    state = minirnn.load_torch("m.pt")      # torch.save(model.state_dict(), "m.pt") -> {name: np.ndarray}
    model.load_state_dict(state)
    minirnn.save_torch(model, "m.pt")       # torch.load("m.pt", weights_only=True) -> {name: torch.Tensor}

The archive (torch/serialization.py): a zip whose members sit under one folder ``<name>/``:

* ``<name>/data.pkl``: a pickle (protocol 2) of the object. Each tensor is pickled as a call
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
  metadata])`` where ``storage`` is a persistent id ``('storage', torch.FloatStorage, key, location, numel)``;
  a ``Parameter`` wraps that in ``torch._utils._rebuild_parameter(tensor, requires_grad, backward_hooks)``; a
  state dict is a ``collections.OrderedDict`` (its ``_metadata`` attribute set by a BUILD).
* ``<name>/data/<key>``: each storage's raw bytes (``numel`` elements of the storage type's dtype), stored
  uncompressed and 64-byte aligned; tensors are strided views of them (several may share one storage).
* ``<name>/byteorder`` (``little`` or ``big``; little when absent), ``<name>/version``, ``<name>/.format_version``,
  ``<name>/.storage_alignment``.

Reading never runs anything named in the file. The pickle is interpreted by the small machine below, not by
``pickle.Unpickler``: a global is looked up in a fixed table of names (the subset of torch's ``weights_only=True``
allow-list needed for dense tensors and plain containers) that maps it to a marker of ours, never to a Python
object, and every other global (``os.system``, ``builtins.eval``, a model's own class, ...) is refused, as are
the opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, STACK_GLOBAL, ...). BUILD is accepted only on an
OrderedDict and only for its ``_metadata``. What comes out: ``np.ndarray`` for tensors and parameters (always
copies, never views of the file), OrderedDict, dict, list, tuple, set, int, float, complex, str, bytes, bool, None.

Dtypes: float64, float32, float16, bfloat16 (widened exactly to float32: NumPy has no bfloat16), complex64,
complex128, int64, int32, int16, int8, uint8, bool. Others (quantized, float8, uint16/32/64) are refused.

Bounds, all checked before allocating: every member must be stored (not compressed) and lie inside the file;
a storage record must hold exactly ``numel * itemsize`` bytes; a tensor's offset, sizes and strides must be
non-negative integers and its furthest element inside its storage; the arrays built may total at most
``MAX_COPY_FACTOR`` times the file's size (a few overlapping views of one storage are legitimate, a pickle that
asks for thousands of them, or for a huge expanded view of one element, is not). A file that fails any of this is a
ValueError naming it. A legacy (pre-1.6, non-zip) file and a TorchScript archive are refused with a note on
re-saving.

Writing (``save_torch``): the same archive as torch 2.13 writes (same records, same globals, pickle protocol 2,
records stored and 64-byte aligned), atomically. A Module is written as its ``state_dict()``. Nested state
(``{"model": ..., "optimizer": ..., "epoch": 3}``) is written too: arrays become tensors, NumPy scalars 0-d
tensors. The same array object written twice shares one storage (torch loads the two as views of one storage).
"""
from __future__ import annotations

import _compat_pickle
import io
import math
import os
import re
import struct
import zipfile
import zlib
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from .serialization import atomic_write, check_stored_members
from .module import Module

MAX_COPY_FACTOR = 4   # the arrays built from a file may total at most this many times its size (see above)

# torch's storage classes -> the dtype of the bytes in the record ("bf16" is read as uint16, then widened)
_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "ComplexDoubleStorage": "c16", "ComplexFloatStorage": "c8",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "b1", "UntypedStorage": "u1",
}
_DTYPE_STORAGES = {np.dtype(v): k for k, v in _STORAGE_DTYPES.items() if v != "bf16" and k != "UntypedStorage"}

_REBUILD_FUNCTIONS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state")
# The globals a file may name, each mapped to a marker of ours: the subset of torch's weights_only allow-list
# (torch/_weights_only_unpickler.py) for dense CPU tensors and plain containers.
_ALLOWED_GLOBALS: dict[str, tuple[str, str]] = {
    "collections.OrderedDict": ("container", "OrderedDict"),
    "torch.Size": ("container", "Size"),
    "builtins.set": ("container", "set"),
    "builtins.complex": ("container", "complex"),
    "_codecs.encode": ("container", "encode"),
    "torch.Tensor": ("type", "Tensor"),
    "torch.nn.parameter.Parameter": ("type", "Parameter"),
    "torch._tensor._rebuild_from_type_v2": ("rebuild", "_rebuild_from_type_v2"),
    **{f"torch._utils.{f}": ("rebuild", f) for f in _REBUILD_FUNCTIONS},
    **{f"torch.{s}": ("storage", s) for s in _STORAGE_DTYPES},
    "torch.storage.UntypedStorage": ("storage", "UntypedStorage"),
}


class _Marker:
    """What an allowed global becomes on the unpickler's stack: a name, never a callable."""

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class _Storage:
    """A persistent id ('storage', type, key, location, numel): its bytes are read from the archive when used."""

    __slots__ = ("key", "code", "numel", "array")

    def __init__(self, key: str, code: str, numel: int) -> None:
        self.key, self.code, self.numel, self.array = key, code, numel, None


class _Refused(Exception):
    """A reason to refuse the file (turned into a ValueError naming it)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---- reading -------------------------------------------------------------------------------------------------
class _Reader:
    """The archive being read: its members, byte order, storages and the budget of bytes still allowed."""

    def __init__(self, zf: zipfile.ZipFile, prefix: str, file_size: int) -> None:
        self.zf, self.prefix = zf, prefix
        self.storages: dict[str, _Storage] = {}
        self.budget = MAX_COPY_FACTOR * file_size
        order = b"little"
        if prefix + "byteorder" in zf.NameToInfo:
            order = self.record(prefix + "byteorder", limit=16)
            if order not in (b"little", b"big"):
                raise _Refused(f"unknown byte order {order[:16]!r} in the 'byteorder' record")
        self.order = "<" if order == b"little" else ">"

    def record(self, name: str, limit: int | None = None) -> bytes:
        info = self.zf.NameToInfo.get(name)
        if info is None:
            raise _Refused(f"the archive has no record {name!r}")
        if limit is not None and info.file_size > limit:
            raise _Refused(f"the record {name!r} is {info.file_size} bytes, expected at most {limit}")
        with self.zf.open(info) as f:          # reading to the end makes zipfile check the CRC
            data = f.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise _Refused(f"the record {name!r} holds {len(data)} bytes, its directory entry says {info.file_size}")
        return data

    def persistent_load(self, pid: Any) -> _Storage:
        if (type(pid) is not tuple or len(pid) != 5 or pid[0] not in ("storage", b"storage")
                or not isinstance(pid[1], _Marker) or pid[1].kind != "storage" or not isinstance(pid[2], str)
                or not isinstance(pid[3], (str, bytes)) or not _is_int(pid[4]) or pid[4] < 0):
            raise _Refused(f"unsupported persistent id {pid!r:.200} (expected ('storage', type, key, location, "
                           "numel))")
        _, stype, key, location, numel = pid
        location = location.decode("ascii", "replace") if isinstance(location, bytes) else location
        if location != "cpu" and not location.startswith(("cuda", "mps", "xpu", "meta")):
            raise _Refused(f"storage {key!r} has an unknown location {location!r:.50}")
        if location == "meta":
            raise _Refused(f"storage {key!r} is on the 'meta' device: the file holds no data for it")
        code = _STORAGE_DTYPES[stype.name]
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(key, code, numel)
        elif s.code != code or s.numel != numel:
            raise _Refused(f"storage {key!r} is named twice with different types or sizes")
        return s

    def storage_array(self, s: _Storage) -> np.ndarray:
        """The storage's elements, read-only, in the file's byte order (uint16 for bfloat16, uint8 for bool)."""
        if s.array is None:
            code = {"bf16": "u2", "b1": "u1"}.get(s.code, s.code)
            dtype = np.dtype(code).newbyteorder(self.order)
            name = f"{self.prefix}data/{s.key}"
            info = self.zf.NameToInfo.get(name)
            if info is None:
                raise _Refused(f"storage {s.key!r} has no record {name!r} in the archive")
            if info.file_size != s.numel * dtype.itemsize:
                raise _Refused(f"the record {name!r} holds {info.file_size} bytes; its storage of {s.numel} "
                               f"elements of {dtype.itemsize} bytes needs {s.numel * dtype.itemsize}")
            s.array = np.frombuffer(self.record(name), dtype=dtype)
        return s.array

    def tensor(self, storage: Any, offset: Any, size: Any, stride: Any, metadata: Any = None) -> np.ndarray:
        if not isinstance(storage, _Storage):
            raise _Refused(f"a tensor's storage is {type(storage).__name__}, not a storage of the archive")
        if not _is_int(offset) or offset < 0:
            raise _Refused(f"a tensor of storage {storage.key!r} has storage offset {offset!r:.50}")
        if (type(size) is not tuple or type(stride) is not tuple or len(size) != len(stride) or len(size) > 64
                or not all(_is_int(v) and v >= 0 for v in size + stride)):
            raise _Refused(f"a tensor of storage {storage.key!r} has size {size!r:.100} and stride {stride!r:.100}; "
                           "expected equally long tuples of non-negative integers")
        if metadata not in (None, {}) and not (isinstance(metadata, dict) and set(metadata) <= {"conj", "neg"}
                                               and all(type(v) is bool for v in metadata.values())):
            raise _Refused(f"a tensor has unsupported metadata {metadata!r:.100}")
        arr = self.storage_array(storage)
        numel = math.prod(size)
        itemsize = arr.dtype.itemsize
        out_itemsize = 4 if storage.code == "bf16" else itemsize
        if numel:
            reach = offset + sum((n - 1) * st for n, st in zip(size, stride))
            if reach >= storage.numel:
                raise _Refused(f"a tensor of storage {storage.key!r} (offset {offset}, size {size}, stride {stride}) "
                               f"reaches element {reach}, past the storage's {storage.numel} elements")
        self.budget -= numel * out_itemsize
        if self.budget < 0:
            raise _Refused(f"the tensors ask for more than {MAX_COPY_FACTOR} times the file's size in memory "
                           f"(a tensor of {numel} elements from storage {storage.key!r})")
        if numel:
            view = np.lib.stride_tricks.as_strided(arr[offset:], shape=size,
                                                   strides=tuple(st * itemsize for st in stride), writeable=False)
            out = np.array(view, dtype=arr.dtype.newbyteorder("="))   # a copy, in native byte order
        else:
            out = np.empty(size, dtype=arr.dtype.newbyteorder("="))
        if storage.code == "bf16":   # bfloat16 is the top half of a float32: widening is exact
            out = (out.astype(np.uint32) << np.uint32(16)).view(np.float32)
        elif storage.code == "b1":
            out = out != 0
        if metadata and metadata.get("conj"):
            out = np.conj(out)
        if metadata and metadata.get("neg"):
            out = -out
        return out

    def rebuild(self, name: str, args: tuple) -> Any:
        arity = {"_rebuild_tensor": (4,), "_rebuild_tensor_v2": (6, 7), "_rebuild_parameter": (3,),
                 "_rebuild_parameter_with_state": (4,), "_rebuild_from_type_v2": (4,)}[name]
        if len(args) not in arity:
            raise _Refused(f"{name} called with {len(args)} arguments, expected {' or '.join(map(str, arity))}")
        if name == "_rebuild_tensor":                        # (storage, offset, size, stride)
            return self.tensor(*args)
        if name == "_rebuild_tensor_v2":                     # (..., requires_grad, backward_hooks[, metadata])
            storage, offset, size, stride, requires_grad, hooks = args[:6]
            if type(requires_grad) is not bool or not _empty_hooks(hooks):
                raise _Refused(f"unsupported _rebuild_tensor_v2 arguments {args[4:6]!r:.200}")
            return self.tensor(storage, offset, size, stride, args[6] if len(args) == 7 else None)
        if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):   # (data, requires_grad, hooks[, state])
            data, requires_grad, hooks = args[:3]
            if (not isinstance(data, np.ndarray) or type(requires_grad) is not bool or not _empty_hooks(hooks)
                    or (len(args) == 4 and args[3])):
                raise _Refused(f"unsupported {name} arguments {args!r:.200}")
            return data
        if name == "_rebuild_from_type_v2":                  # (func, type, args, state): a tensor with Python state
            if len(args) != 4:
                raise _Refused(f"_rebuild_from_type_v2 called with {len(args)} arguments")
            func, new_type, inner, state = args
            if (not isinstance(func, _Marker) or func.kind != "rebuild" or func.name == name
                    or not isinstance(new_type, _Marker) or new_type.kind != "type" or type(inner) is not tuple):
                raise _Refused("_rebuild_from_type_v2 of something that is not a plain tensor")
            if state:
                raise _Refused(f"a tensor carries Python attributes {state!r:.100}, which a plain checkpoint "
                               "never holds")
            return self.rebuild(func.name, inner)
        raise _Refused(f"unsupported tensor rebuild function {name}")


def _empty_hooks(hooks: Any) -> bool:
    return isinstance(hooks, dict) and not hooks


def _container(name: str, args: tuple) -> Any:
    if name == "OrderedDict":                            # OrderedDict() or OrderedDict([[k, v], ...])
        if args == ():
            return OrderedDict()
        if len(args) == 1 and type(args[0]) is list and all(type(p) in (list, tuple) and len(p) == 2
                                                            for p in args[0]):
            return OrderedDict((k, v) for k, v in args[0])
    elif name == "Size":
        if len(args) == 1 and type(args[0]) is tuple and all(_is_int(v) for v in args[0]):
            return args[0]
    elif name == "set":
        if args == ():
            return set()
        if len(args) == 1 and type(args[0]) is list:
            return set(args[0])
    elif name == "complex":
        if 1 <= len(args) <= 2 and all(type(v) in (int, float) for v in args):
            return complex(*args)
    elif name == "encode":                               # protocol 2's bytes: _codecs.encode(str, 'latin1')
        if len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"):
            return args[0].encode("latin1")
    raise _Refused(f"unsupported arguments to {name}: {args!r:.200}")


def _unpickle(data: bytes, reader: _Reader) -> Any:
    """Interpret a protocol-2 pickle with the opcodes torch's weights_only unpickler accepts (minus the ones that
    build arbitrary classes). Every value it can push is one of ours or a plain Python value."""
    pos, n = 0, len(data)
    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}

    def take(k: int) -> bytes:
        nonlocal pos
        if k < 0 or pos + k > n:
            raise _Refused(f"the pickle is cut short (needs {k} bytes at offset {pos}, has {n - pos})")
        chunk = data[pos:pos + k]
        pos += k
        return chunk

    def line() -> str:
        nonlocal pos
        end = data.find(b"\n", pos, min(n, pos + 512))
        if end < 0:
            raise _Refused(f"the pickle has an unterminated GLOBAL at offset {pos}")
        text = data[pos:end].decode("utf-8")
        pos = end + 1
        return text

    def pop_mark() -> list[Any]:
        nonlocal stack
        items = stack
        stack = metastack.pop()
        return items

    while True:
        op = take(1)[0]
        if op == 0x80:                                   # PROTO
            proto = take(1)[0]
            if proto > 2:
                raise _Refused(f"pickle protocol {proto}; torch.save writes protocol 2 unless given pickle_protocol= "
                               "(re-save without it; torch's own weights_only loader reads protocol 2 only too)")
        elif op == 0x2E:                                 # STOP
            if len(stack) != 1 or metastack:
                raise _Refused("the pickle ends with a malformed stack")
            return stack.pop()
        elif op == 0x63:                                 # GLOBAL module\nname\n
            module, name = line(), line()
            if (module, name) in _compat_pickle.NAME_MAPPING:       # Python 2 names, as pickle (and torch) map them
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full = f"{module}.{name}"
            if full not in _ALLOWED_GLOBALS:
                hint = ""
                if not module.startswith(("torch", "builtins", "collections", "_codecs", "numpy")):
                    hint = (" (torch.save(model) pickles the model's class; save model.state_dict() instead)")
                raise _Refused(f"the pickle names the global {full!r}, which a tensor checkpoint never needs; "
                               f"refused without running anything{hint}")
            stack.append(_Marker(*_ALLOWED_GLOBALS[full]))
        elif op == 0x52:                                 # REDUCE: func(*args)
            args = stack.pop()
            func = stack[-1]
            if not isinstance(func, _Marker) or type(args) is not tuple or func.kind not in ("container", "rebuild"):
                raise _Refused(f"REDUCE on {func!r:.100}: only tensor rebuild functions and plain containers "
                               "may be called")
            stack[-1] = reader.rebuild(func.name, args) if func.kind == "rebuild" else _container(func.name, args)
        elif op == 0x62:                                 # BUILD: only an OrderedDict's _metadata
            state = stack.pop()
            inst = stack[-1]
            if type(inst) is not OrderedDict or not isinstance(state, dict) or set(state) - {"_metadata"}:
                raise _Refused(f"BUILD on {type(inst).__name__} with {state!r:.100}: only an OrderedDict's "
                               "_metadata may be set")
            if "_metadata" in state:
                inst._metadata = state["_metadata"]      # type: ignore[attr-defined]
        elif op == 0x51:                                 # BINPERSID
            stack.append(reader.persistent_load(stack.pop()))
        elif op == 0x61:                                 # APPEND
            item = stack.pop()
            if type(stack[-1]) is not list:
                raise _Refused("APPEND to something that is not a list")
            stack[-1].append(item)
        elif op == 0x65:                                 # APPENDS
            items = pop_mark()
            if type(stack[-1]) is not list:
                raise _Refused("APPENDS to something that is not a list")
            stack[-1].extend(items)
        elif op in (0x73, 0x75):                         # SETITEM, SETITEMS
            items = [stack.pop(-2), stack.pop()] if op == 0x73 else pop_mark()
            if type(stack[-1]) not in (dict, OrderedDict) or len(items) % 2:
                raise _Refused("SETITEM(S) on something that is not a dict")
            for i in range(0, len(items), 2):
                stack[-1][items[i]] = items[i + 1]
        elif op == 0x28:                                 # MARK
            metastack.append(stack)
            stack = []
        elif op == 0x74:                                 # TUPLE
            items = pop_mark()                           # (before naming `stack`: pop_mark rebinds it)
            stack.append(tuple(items))
        elif op in (0x85, 0x86, 0x87):                   # TUPLE1, TUPLE2, TUPLE3
            k = op - 0x84
            if len(stack) < k:
                raise _Refused("TUPLE of an empty stack")
            stack[-k:] = [tuple(stack[-k:])]
        elif op == 0x4E:                                 # NONE
            stack.append(None)
        elif op in (0x88, 0x89):                         # NEWTRUE, NEWFALSE
            stack.append(op == 0x88)
        elif op == 0x29:                                 # EMPTY_TUPLE
            stack.append(())
        elif op == 0x5D:                                 # EMPTY_LIST
            stack.append([])
        elif op == 0x7D:                                 # EMPTY_DICT
            stack.append({})
        elif op == 0x4A:                                 # BININT
            stack.append(struct.unpack("<i", take(4))[0])
        elif op == 0x4B:                                 # BININT1
            stack.append(take(1)[0])
        elif op == 0x4D:                                 # BININT2
            stack.append(struct.unpack("<H", take(2))[0])
        elif op == 0x8A:                                 # LONG1
            stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))
        elif op == 0x47:                                 # BINFLOAT
            stack.append(struct.unpack(">d", take(8))[0])
        elif op == 0x58:                                 # BINUNICODE
            stack.append(take(struct.unpack("<I", take(4))[0]).decode("utf-8", "surrogatepass"))
        elif op == 0x55:                                 # SHORT_BINSTRING (a Python 2 str)
            stack.append(take(take(1)[0]).decode("ascii"))
        elif op in (0x68, 0x6A):                         # BINGET, LONG_BINGET
            i = take(1)[0] if op == 0x68 else struct.unpack("<I", take(4))[0]
            if i not in memo:
                raise _Refused(f"the pickle refers to memo entry {i}, which was never stored")
            stack.append(memo[i])
        elif op in (0x71, 0x72):                         # BINPUT, LONG_BINPUT
            i = take(1)[0] if op == 0x71 else struct.unpack("<I", take(4))[0]
            memo[i] = stack[-1]
        else:
            raise _Refused(f"the pickle uses opcode {bytes([op])!r} at offset {pos - 1}, which a torch checkpoint "
                           "never needs (it could build arbitrary objects)")


def load_torch(path: str | os.PathLike) -> Any:
    """Read a file written by ``torch.save`` (zip format) with NumPy only; tensors come back as ``np.ndarray``.

    ``torch.save(model.state_dict(), path)`` gives an OrderedDict ``{name: array}`` ready for
    ``model.load_state_dict``; a checkpoint ``{"model": ..., "optimizer": ..., "epoch": 3}`` comes back with the
    same nesting. Nothing named in the file is imported or run; every problem is a ValueError naming the file
    (see the module docstring for what is accepted), a missing file a FileNotFoundError.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)

    def refuse(reason: str) -> ValueError:
        return ValueError(f"load_torch {path!r}: not a readable torch checkpoint: {reason}")

    if not os.path.exists(path):
        raise FileNotFoundError(f"load_torch {path!r}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load_torch {path!r}: is a directory")
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
        if head != b"PK\x03\x04":
            if head[:1] == b"\x80":
                raise refuse("this is torch's legacy (pre-1.6) format or a plain pickle, not the zip format; "
                             "re-save it with torch>=1.6: obj = torch.load(path, weights_only=True); "
                             "torch.save(obj, path) (the default _use_new_zipfile_serialization=True)")
            raise refuse(f"not a zip archive (starts with {head!r}); torch.save writes zip archives since 1.6")
        try:
            zf = zipfile.ZipFile(f)
        except (PermissionError, MemoryError):
            raise
        except Exception as e:
            raise refuse(f"a damaged or truncated zip archive ({type(e).__name__}: {e})") from None
        with zf:
            try:
                return _load(zf, file_size)
            except _Refused as e:
                raise refuse(str(e)) from None
            except (PermissionError, MemoryError):
                raise
            except Exception as e:   # zipfile, struct, a bad stack: all "not a valid file"
                raise refuse(f"{type(e).__name__}: {e}") from None


def _load(zf: zipfile.ZipFile, file_size: int) -> Any:
    infos = zf.infolist()
    if any(i.filename.endswith("/constants.pkl") for i in infos):
        raise _Refused("this is a TorchScript archive (torch.jit.save); save the model's state_dict() with "
                       "torch.save instead")
    check_stored_members(infos, file_size, _Refused, "record")
    pickles = [i.filename for i in infos if re.fullmatch(r"[^/]+/data\.pkl", i.filename)]
    if len(pickles) != 1:
        raise _Refused(f"expected one '<name>/data.pkl' record, found {len(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    reader = _Reader(zf, prefix, file_size)
    result = _unpickle(reader.record(pickles[0]), reader)
    _check_plain(result)
    return result


_PLAIN = (np.ndarray, dict, list, tuple, set, int, float, complex, str, bytes, type(None))   # bool is an int


def _check_plain(obj: Any) -> None:
    """Refuse a result holding one of the unpickler's markers (a bare storage, a type, an uncalled function):
    the caller gets arrays and plain values only. Iterative, and each object visited once (memo sharing and
    cycles are legal in a pickle)."""
    seen: set[int] = set()
    todo = [obj]
    while todo:
        v = todo.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if not isinstance(v, _PLAIN):
            raise _Refused(f"the pickle holds {v!r:.80} where a checkpoint holds tensors and plain values")
        if isinstance(v, dict):
            todo.extend(v.keys())
            todo.extend(v.values())
        elif isinstance(v, (list, tuple, set)):
            todo.extend(v)


# ---- writing -------------------------------------------------------------------------------------------------
class _Pickler:
    """Protocol 2 opcodes for plain values, OrderedDicts and arrays (as torch's tensor rebuild calls)."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.storages: list[np.ndarray] = []
        self.keys: dict[int, tuple[str, np.ndarray]] = {}   # id(array) -> (storage key, the array: kept alive)

    def global_(self, module: str, name: str) -> None:
        self.out += b"c" + f"{module}\n{name}\n".encode()

    def tuple_(self, items: tuple, where: str) -> None:
        if not items:
            self.out += b")"
            return
        if len(items) > 3:
            self.out += b"("
        for i, v in enumerate(items):
            self.value(v, f"{where}[{i}]")
        self.out += b"t" if len(items) > 3 else bytes([0x84 + len(items)])

    def array(self, arr: np.ndarray, where: str) -> None:
        if arr.dtype not in _DTYPE_STORAGES:
            raise TypeError(f"{where}: torch has no storage for dtype {arr.dtype} (expected bool, integer, float or "
                            "complex arrays)")
        if id(arr) in self.keys:
            key = self.keys[id(arr)][0]
        else:
            key = str(len(self.storages))
            self.keys[id(arr)] = (key, arr)
            self.storages.append(np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C"))
        shape = tuple(int(n) for n in arr.shape)
        stride = tuple(int(s) for s in np.cumprod((1,) + shape[:0:-1])[::-1]) if shape else ()
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("
        self.value("storage", where)
        self.global_("torch", _DTYPE_STORAGES[arr.dtype])
        for v in (key, "cpu", int(arr.size)):
            self.value(v, where)
        self.out += b"tQ"
        self.value(0, where)
        self.tuple_(shape, where)
        self.tuple_(stride, where)
        self.out += b"\x89"                               # requires_grad=False
        self.global_("collections", "OrderedDict")        # backward_hooks: an empty OrderedDict
        self.out += b")Rt" + b"R"

    def value(self, v: Any, where: str) -> None:
        if v is None:
            self.out += b"N"
        elif isinstance(v, bool):
            self.out += b"\x88" if v else b"\x89"
        elif isinstance(v, np.generic):                  # a NumPy scalar: a 0-d tensor keeps its dtype
            self.array(np.asarray(v), where)
        elif isinstance(v, int):
            if 0 <= v < 256:
                self.out += b"K" + bytes([v])
            elif 0 <= v < 65536:
                self.out += b"M" + struct.pack("<H", v)
            elif -2**31 <= v < 2**31:
                self.out += b"J" + struct.pack("<i", v)
            else:
                raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
                if len(raw) > 255:
                    raise ValueError(f"{where}: the integer {v} is too large to pickle with LONG1")
                self.out += b"\x8a" + bytes([len(raw)]) + raw
        elif isinstance(v, float):
            self.out += b"G" + struct.pack(">d", v)
        elif isinstance(v, str):
            raw = v.encode("utf-8", "surrogatepass")
            self.out += b"X" + struct.pack("<I", len(raw)) + raw
        elif isinstance(v, np.ndarray):
            self.array(v, where)
        elif isinstance(v, tuple):
            self.tuple_(v, where)
        elif isinstance(v, list):
            self.out += b"]"
            if v:
                self.out += b"("
                for i, item in enumerate(v):
                    self.value(item, f"{where}[{i}]")
                self.out += b"e"
        elif isinstance(v, Mapping):
            if isinstance(v, OrderedDict):
                self.global_("collections", "OrderedDict")
                self.out += b")R"
            else:
                self.out += b"}"
            if v:
                self.out += b"("
                for k, item in v.items():
                    if not isinstance(k, (str, int)) or isinstance(k, bool):
                        raise TypeError(f"{where}: expected str or int keys, got {k!r} ({type(k).__name__})")
                    self.value(k, where)
                    self.value(item, f"{where}[{k!r}]")
                self.out += b"u"
            meta = getattr(v, "_metadata", None)
            if isinstance(v, OrderedDict) and isinstance(meta, Mapping):
                self.out += b"}"
                self.value("_metadata", where)
                self.value(meta, f"{where}._metadata")
                self.out += b"sb"
        elif hasattr(v, "__array__") or (hasattr(v, "numpy") and hasattr(v, "detach")):
            from .module import _to_numpy
            self.array(_to_numpy(v), where)
        else:
            raise TypeError(f"{where}: expected arrays, numbers, strings, None, dicts, lists or tuples, "
                            f"got {type(v).__name__}")


_ALIGN = 64   # torch's default storage alignment (torch.utils.serialization.config.save.storage_alignment)


def _write_zip(f: io.BufferedWriter, records: list[tuple[str, bytes]]) -> None:
    """The zip archive laid out byte for byte as torch's writer (miniz) lays it out: stored members, each local
    header padded by an extra field 'FB' so the data start on a 64-byte boundary, a 16-byte data descriptor after
    each non-empty member. torch.load's optional ``calculate_storage_offsets`` predicts offsets from exactly this
    layout (it would read the wrong bytes from a differently laid-out archive)."""
    central = []
    offset = 0
    for name, data in records:
        raw_name = name.encode("utf-8")
        pad = (-(offset + 30 + len(raw_name) + 4)) % _ALIGN
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        flags = 0x0808 if data else 0x0800       # UTF-8 names; sizes in a data descriptor after the data
        crc = zlib.crc32(data)
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, flags, 0, 0, 0, 0, 0, 0, len(raw_name), len(extra))
        f.write(local + raw_name + extra + data)
        if data:
            f.write(struct.pack("<IIII", 0x08074B50, crc, len(data), len(data)))
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, flags, 0, 0, 0, crc, len(data),
                                   len(data), len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name)
        offset += len(local) + len(raw_name) + len(extra) + len(data) + (16 if data else 0)
        if offset >= 0xFFFFFFFF:
            raise ValueError("save_torch: archives of 4 GiB or more are not supported (they need zip64)")
    directory = b"".join(central)
    f.write(directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(directory),
                                    offset, 0))


def save_torch(obj: Any, path: str | os.PathLike) -> str:
    """Write ``obj`` (a Module, a state dict or nested state of arrays and plain values) in torch's zip format.

    ``torch.load(path, weights_only=True)`` reads it, and the state dict it gives is what ``load_state_dict``
    takes (names unchanged). Arrays are written C-contiguous, little-endian; the same array object appearing
    twice shares one storage. The write is atomic. Returns the path.
    """
    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not isinstance(obj, (Mapping, list, tuple, np.ndarray)):
        raise TypeError(f"obj: expected a Module, a state dict or nested state, got {type(obj).__name__}")
    pickler = _Pickler()
    pickler.value(obj, "obj")
    pickler.out += b"."
    stem = re.sub(r"[^A-Za-z0-9_]", "_", os.path.splitext(os.path.basename(os.fspath(path)))[0]) or "archive"

    records = [(f"{stem}/data.pkl", bytes(pickler.out)), (f"{stem}/.format_version", b"1"),
               (f"{stem}/.storage_alignment", str(_ALIGN).encode()), (f"{stem}/byteorder", b"little")]
    records += [(f"{stem}/data/{key}", arr.tobytes()) for key, arr in enumerate(pickler.storages)]
    records.append((f"{stem}/version", b"3\n"))
    return atomic_write(path, lambda f: _write_zip(f, records), "save_torch")
