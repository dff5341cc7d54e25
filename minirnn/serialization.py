"""Checkpoints: ``save``/``load`` to ``.npz`` without pickle, written atomically; PyTorch state_dict interchange.

Saving
------
``minirnn.save(obj, path, *, allow_nonfinite=False, **metadata)`` where ``obj`` is

* a ``Module``: its ``state_dict()`` plus its layer configuration (class name and constructor arguments as JSON,
  see *Configuration* below), so ``minirnn.load_module(path)`` can rebuild it;
* a flat state dict ``{name: array}`` (a model's, or a torch model's after ``from_torch_state_dict``);
* any nested state: dicts (str or int keys), lists and tuples of arrays, numbers, strings, bools and None, such
  as ``optimizer.state_dict()`` or ``{"model": m.state_dict(), "optim": opt.state_dict(), "epoch": 3}``.

``metadata`` are JSON values (str, int, float, bool, None, lists, dicts with str keys; numpy scalars become Python
numbers) stored beside the state, e.g. ``minirnn.save(m, "m.npz", epoch=3, vocab=["a", "b"])``.

Refused at save time, with a ValueError naming the file and the keys, and with nothing written: NaN or inf in any
float array or float number of the state, unless ``allow_nonfinite=True``. Arrays must be bool, integer, float or
complex (object, string and structured arrays would need pickle: TypeError).

The write is atomic: the file is written to a temporary file in the same directory, flushed and fsync'ed, then
``os.replace``'d over ``path`` and the directory fsync'ed. An interrupted or failing save (an exception, Ctrl-C, a
full disk) leaves any previous file at ``path`` untouched and removes its temporary file. A killed one (SIGKILL,
SIGTERM, no cleanup runs) leaves no temporary for good either: on Linux it is an unnamed file (O_TMPFILE) until
just before ``os.replace``; elsewhere, or killed in that moment, it is ``.<name>.<pid>.<random>.tmp`` and the next
save of the same ``path`` removes it once its process is gone. ``path`` is used as given (no ``.npz`` is appended).

The file format (version 1)
---------------------------
A zip of ``.npy`` members (what ``numpy.savez`` writes, so ``numpy.load(path)`` reads it too), written and read
with ``allow_pickle=False``:

* ``__minirnn__``: the header, UTF-8 JSON in a uint8 array: ``{"format": "minirnn.checkpoint", "format_version": 1,
  "minirnn_version", "kind": "module" | "state_dict" | "tree", "config", "metadata", "structure",
  "arrays": [[name, shape, dtype], ...]}``. Loading checks every array against this list.
* one member per array. For a module or a flat state dict the member name is the state-dict key unchanged
  (``weight_ih_l0``, ``fc.weight``). For nested state it is the path of keys joined by ``/``
  (``state/0/exp_avg``, ``model/fc.weight``, ``param_groups/0/betas/1`` for an array inside a list); a name
  already taken (a key that itself holds ``/``) gets a ``~2``, ``~3`` ... suffix, and the reserved name
  ``__minirnn__`` one too.
* ``structure`` (nested state only) rebuilds the exact containers: a node is a JSON scalar, or
  ``{"dict": [[key, node], ...]}`` (int keys stay ints), ``{"list": [...]}``, ``{"tuple": [...]}``,
  ``{"array": member}`` or ``{"scalar": member}`` (a numpy scalar, stored as a 0-d array).

Loading
-------
``minirnn.load(path)`` gives back what ``save`` was given, as ``torch.load`` does: the state dict (an OrderedDict of
arrays) for a saved state dict *and for a saved Module* (so ``model.load_state_dict(minirnn.load(path))`` works
either way), the rebuilt nested object (``{"model": ..., "optim": ..., "epoch": 3}``) otherwise.
``minirnn.load_checkpoint(path)`` returns everything the file holds, ``Checkpoint(state_dict, metadata, config,
format_version, training)``, a namedtuple (``training``: each module's train/eval mode, by name, for a saved
Module). ``minirnn.load_module(path)`` rebuilds a saved Module, weights and train/eval mode as they were saved.
Loading never unpickles, imports or runs anything named in the file. A file that is not a minirnn checkpoint
(a truncated or corrupted file, a plain ``.npz``, a ``.npy``, a pickle, a file from a newer format version) is
refused with a ValueError naming the file; a PyTorch file (``torch.save``'s zip or legacy format) is refused
with one that points to ``minirnn.load_torch``; a missing file is a FileNotFoundError.
Before anything is read or allocated: every member must be stored (a compressed one is refused, not inflated: no
zip bomb) and lie within the file, and the configuration is checked field by field (types, unknown or missing
keys, ranges, weights larger than the file; then its shapes and dtypes against the arrays), each problem a
ValueError naming the file and the field.

Configuration
-------------
``module_config(m)`` is ``{"class": "GRU", "args": {"input_size": 8, "hidden_size": 16, ..., "dtype": "float32"}}``
for minirnn's layers (``Sequential`` adds ``"children": [configs]``). A model of your own can provide a
``get_config()`` method returning its JSON-able constructor keyword arguments; without one its config has
``"args": null`` and the checkpoint still stores its weights. ``module_from_config(config, classes={"MyModel":
MyModel})`` builds the layer (``classes`` names the user classes allowed: nothing is imported by name) and
``load_checkpoint(path).build(classes)`` / ``load_module(path, classes)`` build it, load the weights (strict) and
set each module's train/eval mode as saved.

PyTorch interop (names unchanged, torch is never imported here)
---------------------------------------------------------------
    state = minirnn.from_torch_state_dict(torch_model.state_dict())     # {k: v.detach().cpu().numpy()}
    model.load_state_dict(state)                                         # or minirnn.save(state, "m.npz")
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})   # and back
"""
from __future__ import annotations

import io
import json
import math
import numbers
import os
import stat
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Mapping, NamedTuple

import numpy as np

from .module import Module, _to_numpy

FORMAT = "minirnn.checkpoint"
FORMAT_VERSION = 1
HEADER = "__minirnn__"

_STORABLE_KINDS = "biufc"   # bool, signed and unsigned integers, floats, complex: everything that needs no pickle


class Checkpoint(NamedTuple):
    """What ``load_checkpoint`` returns. ``build(classes)`` rebuilds the module from ``config``, loads the weights
    and restores each module's train/eval mode (``training``: {module name: bool}, None in files written before
    modes were saved, which then build in training mode, a new module's default)."""

    state_dict: Any
    metadata: dict
    config: dict | None
    format_version: int
    training: dict | None = None

    def build(self, classes: Mapping[str, type] | None = None) -> Module:
        if self.config is None:
            raise ValueError("Checkpoint.build: this checkpoint holds no layer configuration "
                             "(it was saved from a state dict, not a Module)")
        m = module_from_config(self.config, classes)
        m.load_state_dict(self.state_dict)
        if self.training is not None:
            for name, sub in m.named_modules():
                if name in self.training:
                    object.__setattr__(sub, "training", self.training[name])
        return m


# ---- PyTorch interop --------------------------------------------------------------------------------------------
def from_torch_state_dict(state_dict: Mapping[str, Any]) -> "OrderedDict[str, np.ndarray]":
    """``{k: v.detach().cpu().numpy()}`` with the names unchanged, as copies (a tensor's ``.numpy()`` shares memory).

    Takes anything whose values are tensors (or have ``.numpy()``/``__array__``); torch is not imported. Back to torch:
    ``{k: torch.from_numpy(v) for k, v in model.state_dict().items()}``.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected a mapping of names to tensors, got {type(state_dict).__name__}")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in state_dict.items():
        try:
            arr = np.array(_to_numpy(v), copy=True)
        except Exception as e:
            raise TypeError(f"state_dict[{k!r}]: expected a tensor or array, got {type(v).__name__} ({e})") from None
        if arr.dtype.kind not in _STORABLE_KINDS:
            raise TypeError(f"state_dict[{k!r}]: expected a numeric tensor or array, got dtype {arr.dtype}")
        out[k] = arr
    return out


# ---- configuration ------------------------------------------------------------------------------------------------
_CONFIG_ARGS = {
    "RNN": ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
            "bidirectional", "dtype"),
    "GRU": ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "dtype"),
    "LSTM": ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
             "proj_size", "dtype"),
    "RNNCell": ("input_size", "hidden_size", "bias", "nonlinearity", "dtype"),
    "GRUCell": ("input_size", "hidden_size", "bias", "dtype"),
    "LSTMCell": ("input_size", "hidden_size", "bias", "dtype"),
    "Linear": ("in_features", "out_features", "bias", "dtype"),
    "Embedding": ("num_embeddings", "embedding_dim", "padding_idx", "dtype"),
    "Dropout": ("p",),
}


def _dtype_field(name: str, value: Any) -> np.dtype:
    from . import checks

    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a dtype name ('float32' or 'float64'), got {value!r:.100}")
    return checks.dtype_of(value, name)


def _field_checks() -> dict[str, Any]:
    """What each constructor argument of ``_CONFIG_ARGS`` must be, as a check raising TypeError/ValueError."""
    from . import checks, kernels
    from .layers import check_dropout

    positive = lambda n, v: checks.positive_int(n, v)
    return {
        "input_size": positive, "hidden_size": positive, "num_layers": positive, "in_features": positive,
        "out_features": positive, "num_embeddings": positive, "embedding_dim": positive,
        "proj_size": lambda n, v: checks.nonnegative_int(n, v),
        "bias": checks.flag, "batch_first": checks.flag, "bidirectional": checks.flag,
        "dropout": lambda n, v: check_dropout(v, n), "p": lambda n, v: check_dropout(v, n),
        "nonlinearity": lambda n, v: checks.choice(n, v, tuple(kernels.RNN_KERNELS)),
        "dtype": _dtype_field,
        "padding_idx": lambda n, v: v,   # checked against num_embeddings below
    }


_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4, "RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}


def _parameter_count(name: str, a: Mapping[str, Any]) -> int:
    """How many numbers the layer ``name`` built from the (checked) arguments ``a`` allocates."""
    if name in ("RNN", "GRU", "LSTM"):
        G, H, P = _GATES[name], a["hidden_size"], a.get("proj_size") or a["hidden_size"]
        D = 2 if a["bidirectional"] else 1
        per = lambda i: G * H * (i + P + 2 * a["bias"]) + (P * H if a.get("proj_size") else 0)
        return D * (per(a["input_size"]) + (a["num_layers"] - 1) * per(P * D))
    if name in _GATES:
        G, H = _GATES[name], a["hidden_size"]
        return G * H * (a["input_size"] + H + 2 * a["bias"])
    if name == "Linear":
        return a["out_features"] * (a["in_features"] + a["bias"])
    if name == "Embedding":
        return a["num_embeddings"] * a["embedding_dim"]
    return 0


def _config_shapes(config: Mapping[str, Any], prefix: str = "") -> "OrderedDict[str, tuple]" | None:
    """The state-dict names, shapes and dtypes a *checked* built-in configuration gives (None for a model of your
    own)."""
    name, a = config["class"], config["args"]
    out: OrderedDict[str, tuple] = OrderedDict()
    if name == "Sequential":
        for i, child in enumerate(config["children"]):
            sub = _config_shapes(child, f"{prefix}{i}.")
            if sub is None:
                return None
            out.update(sub)
    elif "module" in config or name not in _CONFIG_ARGS:
        return None
    elif name in ("RNN", "GRU", "LSTM"):
        G, H = _GATES[name], a["hidden_size"]
        P = a.get("proj_size") or H
        D = 2 if a["bidirectional"] else 1
        for layer in range(a["num_layers"]):
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                out[prefix + "weight_ih" + sfx] = (G * H, a["input_size"] if layer == 0 else P * D)
                out[prefix + "weight_hh" + sfx] = (G * H, P)
                if a["bias"]:
                    out[prefix + "bias_ih" + sfx] = (G * H,)
                    out[prefix + "bias_hh" + sfx] = (G * H,)
                if a.get("proj_size"):
                    out[prefix + "weight_hr" + sfx] = (P, H)
    elif name in _GATES:
        G, H = _GATES[name], a["hidden_size"]
        out[prefix + "weight_ih"], out[prefix + "weight_hh"] = (G * H, a["input_size"]), (G * H, H)
        if a["bias"]:
            out[prefix + "bias_ih"], out[prefix + "bias_hh"] = (G * H,), (G * H,)
    elif name == "Linear":
        out[prefix + "weight"] = (a["out_features"], a["in_features"])
        if a["bias"]:
            out[prefix + "bias"] = (a["out_features"],)
    elif name == "Embedding":
        out[prefix + "weight"] = (a["num_embeddings"], a["embedding_dim"])
    if name != "Sequential":
        dt = np.dtype(a.get("dtype", "float32")).str
        out = OrderedDict((k, (shape, dt)) for k, shape in out.items())
    return out


def _check_config(config: Any, where: str = "config", max_bytes: int | None = None) -> int:
    """Check a configuration as ``module_config`` writes it, field by field, before anything is built: a
    TypeError/ValueError naming the field (``config.children[1].args.hidden_size``) for a wrong type, an unknown
    or missing key, a value out of range, or (with ``max_bytes``, the checkpoint's size) weights larger than the
    file that should hold them. Returns the bytes of weights it describes (0 for models of your own)."""
    if not isinstance(config, Mapping):
        raise TypeError(f"{where}: expected a dict, got {type(config).__name__}")
    name = config.get("class")
    if not isinstance(name, str):
        raise TypeError(f"{where}.class: expected a class name (str), got {config.get('class')!r:.100}")
    builtin = name in _CONFIG_ARGS or name == "Sequential"
    if not builtin or "module" in config:   # a model of your own: only the shape of its entry can be checked
        unknown = sorted(set(config) - {"class", "module", "args"})
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (expected 'class', 'module', 'args')")
        args = config.get("args")
        if args is not None and (not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args)):
            raise TypeError(f"{where}.args: expected null or a dict with string keys, got {args!r:.100}")
        return 0
    allowed = {"class", "args", "children"} if name == "Sequential" else {"class", "args"}
    unknown, missing = sorted(set(config) - allowed), sorted(allowed - set(config))
    if unknown or missing:
        raise ValueError(f"{where}: " + "; ".join(
            ([f"unknown keys {unknown}"] if unknown else []) + ([f"missing keys {missing}"] if missing else []))
            + f" for class {name!r}")
    args = config["args"]
    if not isinstance(args, Mapping):
        raise TypeError(f"{where}.args: expected a dict, got {type(args).__name__}")
    if name == "Sequential":
        if args:
            raise ValueError(f"{where}.args: expected {{}} for Sequential, got keys {sorted(args)[:10]}")
        children = config["children"]
        if not isinstance(children, list):
            raise TypeError(f"{where}.children: expected a list of configs, got {type(children).__name__}")
        total = sum(_check_config(c, f"{where}.children[{i}]", max_bytes) for i, c in enumerate(children))
        sizes = ""
    else:
        expected = _CONFIG_ARGS[name]
        unknown, missing = sorted(set(args) - set(expected)), [k for k in expected if k not in args]
        if unknown or missing:
            raise ValueError(f"{where}.args: " + "; ".join(
                ([f"unknown keys {unknown}"] if unknown else []) + ([f"missing keys {missing}"] if missing else []))
                + f" for class {name!r} (expected {list(expected)})")
        fields = _field_checks()
        a = {k: fields[k](f"{where}.args.{k}", args[k]) for k in expected}
        if name == "Embedding" and a["padding_idx"] is not None:
            from . import checks
            a["padding_idx"] = checks.optional_index(f"{where}.args.padding_idx", a["padding_idx"],
                                                     a["num_embeddings"])
        if a.get("proj_size") and a["proj_size"] >= a["hidden_size"]:
            raise ValueError(f"{where}.args.proj_size: expected less than hidden_size={a['hidden_size']}, "
                             f"got {a['proj_size']}")
        total = _parameter_count(name, a) * (a["dtype"].itemsize if "dtype" in a else 0)
        sizes = " (" + ", ".join(f"{k}={v}" for k, v in a.items() if type(v) is int) + ")"
    if max_bytes is not None and total > max_bytes:
        raise ValueError(f"{where}.args{sizes} describes {total} bytes of weights, more than the whole checkpoint "
                         f"({max_bytes} bytes): a size field is wrong")
    return total


def _known_classes() -> dict[str, type]:
    from . import layers, module, recurrent

    classes = {name: getattr(recurrent, name) for name in ("RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")}
    classes.update(Linear=layers.Linear, Embedding=layers.Embedding, Dropout=layers.Dropout,
                   Sequential=module.Sequential)
    return classes


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON values; numpy scalars and dtypes become Python values. Anything else is a TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.dtype):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: expected string keys, got key {k!r} of type {type(k).__name__}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where}: expected a JSON value (str, int, float, bool, None, list, dict), "
                    f"got {type(value).__name__}")


def module_config(module: Module) -> dict:
    """The layer's class name and constructor arguments, as JSON-able dicts (see the module docstring)."""
    if not isinstance(module, Module):
        raise TypeError(f"module: expected a minirnn Module, got {type(module).__name__}")
    name = type(module).__name__
    known = _known_classes()
    if known.get(name) is type(module) and name in _CONFIG_ARGS:
        args = {}
        for a in _CONFIG_ARGS[name]:
            v = getattr(module, a)
            if a == "bias" and name in ("Linear",):
                v = v is not None
            args[a] = _jsonable(v, f"{name}.{a}")
        return {"class": name, "args": args}
    if known.get(name) is type(module) and name == "Sequential":
        return {"class": name, "args": {}, "children": [module_config(c) for c in module.children()]}
    get_config = getattr(module, "get_config", None)
    args = _jsonable(get_config(), f"{name}.get_config()") if callable(get_config) else None
    if args is not None and not isinstance(args, dict):
        raise TypeError(f"{name}.get_config(): expected a dict of constructor keyword arguments, got "
                        f"{type(args).__name__}")
    return {"class": name, "module": type(module).__module__, "args": args}


def module_from_config(config: Mapping[str, Any], classes: Mapping[str, type] | None = None) -> Module:
    """Build a layer from ``module_config``'s output. ``classes`` maps class names of your own models to classes."""
    if not isinstance(config, Mapping) or not isinstance(config.get("class"), str):
        raise ValueError(f"config: expected a dict with a 'class' name, got {config!r:.200}")
    name = config["class"]
    registry = _known_classes()
    if classes:
        registry.update(classes)
    if name not in registry:
        raise ValueError(f"config: unknown layer class {name!r}; pass classes={{{name!r}: {name}}} to build it")
    cls = registry[name]
    if name == "Sequential" and cls is registry.get("Sequential") and "children" in config:
        return cls(*(module_from_config(c, classes) for c in config["children"]))
    args = config.get("args")
    if args is None:
        raise ValueError(f"config: no constructor arguments were saved for {name!r} (give the class a get_config() "
                         "method returning them, or build the model yourself and load ckpt.state_dict)")
    if not isinstance(args, Mapping):
        raise ValueError(f"config: expected 'args' to be a dict, got {type(args).__name__}")
    kwargs = dict(args)
    if name in _CONFIG_ARGS and cls is _known_classes().get(name):
        try:
            _check_config(config)
        except TypeError as e:   # a malformed configuration is a ValueError naming its field
            raise ValueError(str(e)) from None
        if "dtype" in kwargs:
            kwargs["dtype"] = np.dtype(kwargs["dtype"])
        if name != "Dropout":
            kwargs["rng"] = np.random.default_rng(0)   # the weights are about to be overwritten: spare the global rng
    return cls(**kwargs)


# ---- flattening nested state ---------------------------------------------------------------------------------------
class _Flattener:
    def __init__(self) -> None:
        self.arrays: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self.nonfinite: list[str] = []

    def _name(self, path: str) -> str:
        base = path or "_"
        name, n = base, 1
        while name in self.arrays or name == HEADER:
            n += 1
            name = f"{base}~{n}"
        return name

    def add_array(self, path: str, value: Any) -> str:
        try:
            arr = _to_numpy(value)
        except Exception as e:
            raise TypeError(f"{path}: expected an array, got {type(value).__name__} ({e})") from None
        if arr.dtype.kind not in _STORABLE_KINDS:
            raise TypeError(f"{path}: expected a bool, integer, float or complex array (no pickle), "
                            f"got dtype {arr.dtype}")
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            n_nan = int(np.isnan(arr).sum())
            self.nonfinite.append(f"{path} ({n_nan} NaN, {int(arr.size - np.isfinite(arr).sum() - n_nan)} inf)")
        name = self._name(path)
        self.arrays[name] = arr if arr.flags.c_contiguous else np.array(arr, order="C")   # keeps 0-d arrays 0-d
        return name

    def node(self, value: Any, path: str) -> Any:
        join = (lambda k: f"{path}/{k}") if path else (lambda k: str(k))
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.generic):
            if value.dtype.kind not in _STORABLE_KINDS:
                raise TypeError(f"{path}: expected a number, got numpy {value.dtype}")
            return {"scalar": self.add_array(path, np.asarray(value))}
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.nonfinite.append(f"{path} ({value})")
            return value
        if isinstance(value, Mapping):
            items = []
            for k, v in value.items():
                if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                    raise TypeError(f"{path or 'state'}: expected str or int keys, got key {k!r} "
                                    f"of type {type(k).__name__}")
                k = k if isinstance(k, str) else int(k)
                items.append([k, self.node(v, join(k))])
            return {"dict": items}
        if isinstance(value, (list, tuple)):
            tag = "tuple" if isinstance(value, tuple) else "list"
            return {tag: [self.node(v, join(i)) for i, v in enumerate(value)]}
        if isinstance(value, np.ndarray) or hasattr(value, "__array__") or hasattr(value, "numpy"):
            return {"array": self.add_array(path, value)}
        raise TypeError(f"{path or 'state'}: expected arrays, numbers, strings, None, dicts, lists or tuples, "
                        f"got {type(value).__name__}")


def _unflatten(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (tag, body), = node.items()
        if tag == "dict" and isinstance(body, list):
            return {k: _unflatten(v, arrays) for k, v in body}
        if tag == "list" and isinstance(body, list):
            return [_unflatten(v, arrays) for v in body]
        if tag == "tuple" and isinstance(body, list):
            return tuple(_unflatten(v, arrays) for v in body)
        if tag == "array" and body in arrays:
            return arrays[body]
        if tag == "scalar" and body in arrays:
            return arrays[body][()]
    raise ValueError(f"corrupted structure near {json.dumps(node)[:100]}")


def _is_flat_state_dict(obj: Mapping) -> bool:
    return all(isinstance(k, str) for k in obj) and all(
        isinstance(v, np.ndarray) or (hasattr(v, "numpy") and not isinstance(v, np.generic)) for v in obj.values())


# ---- atomic writing -----------------------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(dirpath: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):   # Windows: directories cannot be opened for fsync
        return
    fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:   # some filesystems refuse fsync on a directory; the data itself is already on disk
        pass
    finally:
        os.close(fd)


def _write_npz(f: io.BufferedWriter, arrays: Mapping[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def save(obj: Any, path: str | os.PathLike, *, allow_nonfinite: bool = False, **metadata: Any) -> None:
    """Write a Module, a state dict or nested state (an optimizer's) to ``path`` atomically. See the module docstring."""
    from .checks import flag

    allow_nonfinite = flag("allow_nonfinite", allow_nonfinite)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    meta = _jsonable(metadata, "metadata")
    config = training = None
    if isinstance(obj, Module):
        kind, config, state = "module", module_config(obj), obj.state_dict()
        training = {name: bool(m.training) for name, m in obj.named_modules()}   # restored by load_module
    elif isinstance(obj, Mapping):
        kind, state = ("state_dict" if _is_flat_state_dict(obj) else "tree"), obj
    else:
        raise TypeError(f"obj: expected a Module, a state dict or nested state (a dict), got {type(obj).__name__}")

    flat = _Flattener()
    structure = None
    if kind in ("module", "state_dict"):
        for k, v in state.items():
            flat.add_array(k, v)
        if list(flat.arrays) != list(state):   # a key had to be renamed (the reserved header name, or "")
            kind, flat = "tree", _Flattener()
    if kind == "tree":
        structure = flat.node(state, "")
    if flat.nonfinite and not allow_nonfinite:
        shown = ", ".join(flat.nonfinite[:10]) + (f" and {len(flat.nonfinite) - 10} more" if len(flat.nonfinite) > 10
                                                  else "")
        raise ValueError(f"save {path!r}: refusing to save non-finite values in {shown}; nothing was written "
                         "(pass allow_nonfinite=True to save them anyway)")
    from . import __version__

    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "minirnn_version": __version__, "kind": kind,
        "config": config, "metadata": meta, "structure": structure, "training": training,
        "arrays": [[name, list(a.shape), a.dtype.str] for name, a in flat.arrays.items()],
    }
    members: OrderedDict[str, np.ndarray] = OrderedDict()
    members[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    members.update(flat.arrays)

    atomic_write(path, lambda f: _write_npz(f, members), "save")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], who: str) -> str:
    """Call ``write(f)`` on a temporary binary file beside ``path``, fsync it, ``os.replace`` it over ``path`` and
    fsync the directory. Every file format's save goes through here (``who`` names it in errors): an interrupted
    or failing write leaves any previous file untouched and removes its temporary, and a killed one leaves no
    temporary behind either (see below). Returns the path."""
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
    base = os.path.basename(path)
    _sweep_temporaries(dirpath, base)
    fd, tmp = _open_temporary(dirpath, base, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:   # pragma: no cover - Windows
                os.chmod(tmp, mode)
            if tmp is None:   # the unnamed file gets a name only now, for os.replace (a window of microseconds)
                tmp = _link_temporary(f.fileno(), dirpath, base, mode)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    finally:
        _LIVE.discard(tmp)
    _fsync_dir(dirpath)
    return path


# A killed save (SIGKILL, SIGTERM, a power cut) runs no cleanup. On Linux the data is written to an unnamed file
# (O_TMPFILE), which the kernel frees with the process; it is linked to a name only just before os.replace. Where
# that is not available, and for that last moment, the temporary is named ``.<target>.<pid>.<random>.tmp``: the
# next save of the same target removes those whose process is gone (never a live save's, in this process or
# another). Temporaries of other targets are left alone.
_LIVE: set[str | None] = set()   # this process's temporaries being written (threads may save the same target)


def _named(dirpath: str, base: str) -> str:
    name = os.path.join(dirpath, f".{base}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    _LIVE.add(name)
    return name


def _open_temporary(dirpath: str, base: str, mode: int) -> tuple[int, str | None]:
    """(fd, None) for an unnamed file in ``dirpath`` (Linux O_TMPFILE, when /proc can link it), else (fd, name)."""
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(dirpath, os.O_TMPFILE | os.O_RDWR, mode), None
        except OSError:   # a filesystem without O_TMPFILE (EOPNOTSUPP, EISDIR): fall back to a named file
            pass
    while True:
        name = _named(dirpath, base)
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600), name
        except FileExistsError:   # pragma: no cover - 48 random bits
            _LIVE.discard(name)


def _link_temporary(fd: int, dirpath: str, base: str, mode: int) -> str:
    """Give the unnamed file ``fd`` a temporary name: linkat through /proc/self/fd, or where the kernel refuses
    that, a named copy (written and fsync'ed; the unnamed one goes when ``fd`` is closed)."""
    name = _named(dirpath, base)
    proc = os.open("/proc/self/fd", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)   # linkat(..., AT_SYMLINK_FOLLOW)
        return name
    except OSError:
        pass
    finally:
        os.close(proc)
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            os.write(out, chunk)
            offset += len(chunk)
        os.fsync(out)
        os.fchmod(out, mode)
    finally:
        os.close(out)
    return name


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False   # this process's: stale only if not being written (checked by the caller)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:   # EPERM: it exists (another user's)
        return False
    return False


def _sweep_temporaries(dirpath: str, base: str) -> None:
    """Remove the temporaries that killed saves of ``base`` left in ``dirpath`` (see above). POSIX only: there
    ``os.kill(pid, 0)`` only asks whether the process exists."""
    if os.name != "posix":
        return
    prefix = f".{base}."
    try:
        entries = [e.name for e in os.scandir(dirpath) if e.name.startswith(prefix) and e.name.endswith(".tmp")]
    except OSError:
        return
    for name in entries:
        pid, _, rest = name[len(prefix):-len(".tmp")].partition(".")
        if not (pid.isdigit() and len(rest) == 12 and all(c in "0123456789abcdef" for c in rest)):
            continue   # not one of ours (another tool's file, or another target whose name starts like this one)
        full = os.path.join(dirpath, name)
        if full in _LIVE or not (_process_gone(int(pid)) or int(pid) == os.getpid()):
            continue
        try:
            os.unlink(full)
        except OSError:   # removed meanwhile by another save, or not ours to remove
            pass


# ---- loading ------------------------------------------------------------------------------------------------------
def load(path: str | os.PathLike) -> Any:
    """What ``save`` was given, as ``torch.load``: a state dict (also for a saved Module: its ``state_dict()``), or
    the nested state. ``model.load_state_dict(minirnn.load(path))`` is the idiom; ``load_checkpoint`` has the
    metadata, configuration and modes too. Never unpickles; a file that is not a complete minirnn checkpoint is a
    ValueError naming it (a PyTorch file: one that says to read it with ``minirnn.load_torch``)."""
    return load_checkpoint(path).state_dict


# The first bytes of torch.save's legacy (non-zip) format: pickle protocol 2, then its magic number as a long.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def _torch_file(path: str) -> str | None:
    """Which of torch.save's formats ``path`` is in (a zip holding a ``data.pkl``, or the legacy pickle), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_TORCH_LEGACY_MAGIC))
        if head == _TORCH_LEGACY_MAGIC:
            return "torch.save's legacy (pre-1.6) format"
        if head[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                if any(n == "data.pkl" or n.endswith("/data.pkl") for n in zf.namelist()):
                    return "torch.save's zip format"
    except Exception:   # unreadable or corrupted: not recognisably torch's; the checks in load report it
        pass
    return None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by ``save`` (never unpickles). Returns ``Checkpoint(state_dict, metadata, config,
    format_version, training)``; a file that is not a complete minirnn checkpoint is a ValueError naming it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)

    def refuse(reason: str) -> ValueError:
        return ValueError(f"load {path!r}: not a valid minirnn checkpoint: {reason}")

    if not os.path.exists(path):
        raise FileNotFoundError(f"load {path!r}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load {path!r}: is a directory")
    torch_format = _torch_file(path)
    if torch_format is not None:
        how = ("read it with minirnn.load_torch(path) (or torch.load, then minirnn.from_torch_state_dict)"
               if "zip" in torch_format else
               "minirnn.load_torch(path) reads torch's zip format: re-save it with torch >= 1.6 "
               "(torch.save(torch.load(path), path)), then read it with minirnn.load_torch(path)")
        raise ValueError(f"load {path!r}: this is a PyTorch file ({torch_format}), not a minirnn checkpoint; {how}")
    # Everything below parses untrusted bytes: any failure (zipfile, zlib, the .npy header, JSON, a header that
    # does not match its arrays) means "not a valid checkpoint"; only a refused permission or memory is passed on.
    try:
        zf = zipfile.ZipFile(path, mode="r")
    except (PermissionError, MemoryError):
        raise
    except Exception as e:   # pickles, .npy files, text, truncated files
        raise refuse(f"not a complete .npz (zip) archive ({type(e).__name__}: {e})") from None
    with zf:
        try:
            return _read(zf, refuse)
        except (PermissionError, MemoryError):
            raise
        except Exception as e:
            if isinstance(e, ValueError) and str(e).startswith(f"load {path!r}"):
                raise
            raise refuse(f"{type(e).__name__}: {e}") from None


def _read_member(zf: zipfile.ZipFile, name: str, refuse: Any, expected: tuple[list, str] | None = None
                 ) -> np.ndarray:
    """Read one ``.npy`` member without pickle, checking its header against ``expected`` (shape, dtype) and its
    byte count against the zip directory *before* allocating, so a corrupted shape cannot ask for terabytes."""
    info = zf.getinfo(name + ".npy")
    with zf.open(info, mode="r") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise refuse(f"array {name!r} has an unsupported .npy version {version}")
        if dtype.hasobject or dtype.kind not in _STORABLE_KINDS:
            raise refuse(f"array {name!r} has dtype {dtype}, which a checkpoint never holds")
        if expected is not None and (list(shape) != list(expected[0]) or dtype.str != expected[1]):
            raise refuse(f"array {name!r} is {dtype.str}{list(shape)}, the header says {expected[1]}{expected[0]}")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != member.tell() + nbytes:
            raise refuse(f"array {name!r} holds {info.file_size - member.tell()} bytes of data, expected {nbytes}")
        arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        if nbytes and member.readinto(memoryview(arr.reshape(-1, order="A")).cast("B")) != nbytes:
            raise refuse(f"array {name!r} is cut short")
        if member.read(1):   # draining the member also makes zipfile check its CRC
            raise refuse(f"trailing bytes after the array {name!r}")
    return arr


def check_stored_members(infos: list[zipfile.ZipInfo], file_size: int, refuse: Callable[[str], Exception],
                         what: str = "member") -> None:
    """Before anything is read or allocated from an untrusted zip (a checkpoint, a torch file): every member stored
    (inflating untrusted data could ask for any amount of memory: a zip bomb), each lying wholly inside the file,
    and all of them together no larger than the file (members of a crafted archive may overlap), so that reading
    them allocates at most the file's size. ``refuse(reason)`` makes the exception raised; ``what`` names a member
    in its words ("member", "record")."""
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise refuse(f"{what} {info.filename!r} is compressed (zip method {info.compress_type}); the format "
                         f"stores every {what} uncompressed, and compressed ones are refused rather than inflated")
        if info.file_size != info.compress_size or info.header_offset + info.file_size > file_size:
            raise refuse(f"{what} {info.filename!r} claims {info.file_size} bytes at offset {info.header_offset}, "
                         f"more than the file holds ({file_size} bytes)")
        total += info.file_size
    if total > file_size:
        raise refuse(f"the {what}s claim {total} bytes in all, more than the file holds ({file_size} bytes)")


def _check_archive(zf: zipfile.ZipFile, refuse: Any) -> int:
    """``check_stored_members`` of the whole archive; returns the file's size, the bound of what loading allocates."""
    zf.fp.seek(0, os.SEEK_END)
    size = zf.fp.tell()
    check_stored_members(zf.infolist(), size, refuse)
    return size


def _read(zf: zipfile.ZipFile, refuse: Any) -> Checkpoint:
    file_size = _check_archive(zf, refuse)
    members = zf.namelist()
    if HEADER + ".npy" not in members:
        raise refuse(f"no {HEADER!r} header (a plain .npz? read it with numpy.load)")
    raw = _read_member(zf, HEADER, refuse)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise refuse("the header is not a uint8 byte string")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise refuse("the header does not name the minirnn checkpoint format")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise refuse(f"bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise refuse(f"written in format version {version}; this minirnn reads up to {FORMAT_VERSION} "
                     "(upgrade minirnn)")
    listed = header.get("arrays")
    if not isinstance(listed, list) or not all(isinstance(e, list) and len(e) == 3 for e in listed):
        raise refuse("the header's list of arrays is malformed")
    metadata = header.get("metadata") or {}
    config = header.get("config")
    if not isinstance(metadata, dict) or not (config is None or isinstance(config, dict)):
        raise refuse("the header's metadata or config is malformed")
    if config is not None:
        try:
            _check_config(config, "config", file_size)
        except (TypeError, ValueError) as e:
            raise refuse(str(e)) from None
    expected = {name + ".npy" for name, _, _ in listed} | {HEADER + ".npy"}
    if set(members) != expected or len(members) != len(expected):
        gone = sorted(expected - set(members))
        extra = sorted(set(members) - expected)
        raise refuse(f"the archive's members do not match its header (missing {gone[:5]}, unexpected {extra[:5]})")
    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, shape, dtype in listed:
        arrays[name] = _read_member(zf, name, refuse, (shape, dtype))
    shapes = _config_shapes(config) if config is not None and header.get("kind") == "module" else None
    held = {name: (tuple(arr.shape), arr.dtype.str) for name, arr in arrays.items()}
    if shapes is not None and shapes != held:   # what build() would load: refused here, naming the file
        wrong = [f"{k} {shapes.get(k)} by the config, {held.get(k)} in the file"
                 for k in list(shapes) + [k for k in held if k not in shapes] if shapes.get(k) != held.get(k)]
        raise refuse(f"the config {json.dumps(config)[:300]} does not describe the file's arrays: "
                     + "; ".join(wrong[:5]))
    kind = header.get("kind")
    if kind in ("module", "state_dict"):
        state: Any = arrays
    elif kind == "tree":
        state = _unflatten(header.get("structure"), arrays)
    else:
        raise refuse(f"unknown kind {kind!r}")
    training = header.get("training")
    if training is not None and not (isinstance(training, dict)
                                     and all(isinstance(v, bool) for v in training.values())):
        raise refuse("the header's train/eval modes are malformed")
    return Checkpoint(state, metadata, config, version, training)


def load_module(path: str | os.PathLike, classes: Mapping[str, type] | None = None) -> Module:
    """``load_checkpoint(path).build(classes)``: rebuild a saved Module from its configuration, load its weights and
    set each module's train/eval mode as it was when saved (``torch.load`` of a pickled module keeps it too)."""
    return load_checkpoint(path).build(classes)
