"""Parameter, Module, Sequential and the grad switch: the backward contract in one place.

The contract (see DESIGN.md): ``y = m(x)`` runs ``forward`` and, while gradients are enabled, the module
pushes what its backward needs onto its own stack. ``m.backward(dy)`` pops the most recent entry (LIFO),
accumulates into every parameter's ``.grad`` and returns the gradients of the inputs. A cell called T times
is therefore back-propagated by T calls of ``backward`` in reverse order, exactly as BPTT is written by hand.

Threads
-------
What may be shared between threads, and what is refused (a RuntimeError that says so, never mixed tapes):

* **Inference** (``with minirnn.no_grad():``, in ``eval()`` mode) on one model from any number of threads at once
  is fine: a forward without gradients writes nothing into the model, the engine's scratch arrays are allocated
  per call and its shared constants are read-only (``no_grad`` is per thread). In training mode a dropout draws
  from the model's one generator, so its masks depend on the threads' order. Changing the model meanwhile
  (``load_state_dict``, an optimizer step, ``train()``) is not synchronised: do it while no other thread runs it.
* **Training** one model belongs to one thread at a time. The stack knows which thread pushed each entry:
  a forward with gradients enabled while another (running) thread's entry is on top of the stack, and a
  backward from another thread than the one whose forward pushed the newest entry, are refused. A parameter's
  ``.grad`` belongs to the thread that accumulated it until ``zero_grad()`` resets it: accumulating into it, or
  ``Module.zero_grad()``, from another running thread is refused too. Handing a model over to another thread
  is fine once the first one has run its backward and ``zero_grad()`` (or has ended). To train in parallel, give
  each thread its own model (``copy.deepcopy``) and combine the gradients yourself.
"""
from __future__ import annotations

import contextlib
import threading
import warnings
from collections import OrderedDict
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np

_state = threading.local()

# A stack deeper than this almost always means forward was called in a loop without backward or no_grad().
CACHE_WARN_DEPTH = 100_000


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within this block no module caches anything for backward (evaluation, sampling)."""
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    previous = is_grad_enabled()
    _state.grad_enabled = True
    try:
        yield
    finally:
        _state.grad_enabled = previous


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as torch's ``_IncompatibleKeys``."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:   # torch's, so that a printed strict load reads the same
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"IncompatibleKeys(missing_keys={self.missing_keys!r}, unexpected_keys={self.unexpected_keys!r})"

    __str__ = __repr__


def _to_numpy(value: Any) -> np.ndarray:
    """A NumPy array from an array, a list, or a torch tensor (``.detach().cpu().numpy()``), without importing torch."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.generic):
        return np.asarray(value.numpy())
    return np.asarray(value)


# Guards every push and pop of the backward stacks and every gradient accumulation: a check and the change it
# allows happen together, so two threads cannot both pass a check (uncontended, it costs well under a microsecond).
_cache_lock = threading.Lock()


# Threads are recorded by ident (an int: a model stays picklable and deep-copyable); an ident may be reused once
# its thread has ended, which can only let a finished thread's forward be back-propagated by a later one (safe).
def _running(ident: int) -> threading.Thread | None:
    """The running thread with this ident, or None when it has ended."""
    return next((t for t in threading.enumerate() if t.ident == ident), None)


def _thread_name(ident: int) -> str:
    t = _running(ident)
    return f"thread {t.name!r}" if t is not None else "a thread that has ended"


def _check_grad_owner(p: "Parameter", me: int, action: str) -> None:
    owner = p._grad_thread
    if p.grad is not None and owner is not None and owner != me and _running(owner) is not None:
        raise RuntimeError(
            f"cannot {action} a parameter's .grad from {_thread_name(me)}: {_thread_name(owner)} accumulated it "
            "and has not reset it (zero_grad()). One model is trained by one thread at a time; no_grad() "
            "inference may run in many threads. Give each training thread its own model (copy.deepcopy).")


class Parameter:
    """A trainable array. ``grad`` is None until a backward writes it (as in torch), then has ``data``'s shape and dtype.

    ``requires_grad`` (default True), as torch's: a frozen parameter (``p.requires_grad = False`` or
    ``p.requires_grad_(False)``) gets no gradient from backward (``grad`` stays as it is, None after ``zero_grad``),
    so the optimizers, which skip parameters whose ``grad`` is None, leave it unchanged. The gradients of the
    inputs still flow through it.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_grad_thread")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        self.data = np.ascontiguousarray(data)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._grad_thread: int | None = None   # the ident of the thread whose backward wrote ``grad``

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._requires_grad = _bool("requires_grad", value)

    def requires_grad_(self, requires_grad: bool = True) -> "Parameter":
        """Set ``requires_grad`` in place and return the parameter, as ``torch.Tensor.requires_grad_``."""
        self.requires_grad = requires_grad
        return self

    def __getstate__(self) -> tuple:
        # a copy (copy.deepcopy, pickle) is nobody's yet: it may be handed to another thread with its grad
        return None, {k: getattr(self, k) for k in self.__slots__ if k != "_grad_thread"}

    def __setstate__(self, state: tuple) -> None:
        for k, v in state[1].items():
            setattr(self, k, v)
        self._grad_thread = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        """The number of elements, as ``torch.Tensor.numel``: ``sum(p.numel() for p in model.parameters())``."""
        return int(self.data.size)

    def accumulate(self, g: np.ndarray) -> None:
        """Add ``g`` into ``grad`` (gradients accumulate across backward calls, as torch's do); nothing when frozen.
        Refused from a thread other than the one that accumulated the current ``grad`` while that one runs (see
        *Threads*)."""
        if not self._requires_grad:
            return
        me = threading.get_ident()
        with _cache_lock:
            if self.grad is None:
                self.grad = np.array(g, dtype=self.data.dtype, copy=True).reshape(self.data.shape)
            else:
                _check_grad_owner(self, me, "accumulate a gradient into")
                self.grad += g
            self._grad_thread = me

    def __repr__(self) -> str:
        frozen = "" if self._requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


def _bool(name: str, value: Any) -> bool:
    """Exactly True or False, as torch checks ``requires_grad`` (1, numpy bools and strings are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r} of type {type(value).__name__}")
    return value


_DEVICE_NAMES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "vulkan", "ipu", "hpu", "mtia", "privateuseone")


def _is_device(value: Any) -> bool:
    """A device name ('cpu', 'cuda:0') or a torch.device (recognised by its type name: torch is not imported)."""
    if type(value).__name__ == "device":
        return True
    return isinstance(value, str) and value.split(":")[0] in _DEVICE_NAMES


def _check_device(value: Any) -> None:
    if value is None:
        return
    if not _is_device(value):
        raise TypeError(f"device: expected 'cpu' (or a torch.device), got {value!r}")
    if str(value).split(":")[0] != "cpu":
        raise ValueError(f"device: minirnn runs on the CPU only (NumPy arrays), got {str(value)!r}")


def _target_dtype(value: Any) -> np.dtype:
    """float32 or float64 from a NumPy dtype, a name ('float64'), a torch dtype (by name) or an array's dtype."""
    from .checks import dtype_of

    if isinstance(value, np.ndarray) or (not isinstance(value, type) and hasattr(value, "dtype")
                                         and hasattr(value, "shape")):
        value = value.dtype                             # .to(other_array), as torch's .to(tensor)
    text = str(value)
    if text.startswith("torch."):                       # torch.float64 -> "float64", without importing torch
        value = {"torch.float": "float32", "torch.double": "float64"}.get(text, text[len("torch."):])
    return dtype_of(value, "dtype")


class Module:
    """Base class: registers Parameters and sub-Modules in assignment order, owns a backward stack."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_cache", [])
        object.__setattr__(self, "_cache_threads", [])   # the ident of the thread that pushed each entry
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        # re-assigning a registered name keeps its place in the order (as torch does, e.g. when tying weights)
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ---- the backward contract -------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, *grads: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _save(self, entry: Any) -> None:
        """Push what backward needs, only while gradients are enabled, with the thread that pushed it."""
        if is_grad_enabled():
            me = threading.get_ident()
            with _cache_lock:
                threads = self._cache_threads
                if threads and threads[-1] != me and _running(threads[-1]) is not None:
                    raise RuntimeError(
                        f"{type(self).__name__}: a forward with gradients enabled from {_thread_name(me)} while "
                        f"{_thread_name(threads[-1])} has a forward waiting for its backward: one model is trained "
                        "by one thread at a time. Run inference from other threads under minirnn.no_grad(), or "
                        "give each training thread its own model (copy.deepcopy)")
                self._cache.append(entry)
                threads.append(me)
                depth = len(self._cache)
            if depth == CACHE_WARN_DEPTH:
                warnings.warn(
                    f"{type(self).__name__} holds {CACHE_WARN_DEPTH} forward caches with no backward; "
                    "wrap evaluation in minirnn.no_grad() or call clear_cache()",
                    ResourceWarning,
                    stacklevel=3,
                )

    def _check_top(self) -> None:
        """The newest entry exists and was pushed by this thread (``_pop`` calls it with _cache_lock held)."""
        threads = self._cache_threads
        owner = threads[-1] if threads else None   # (unlocked in _peek: another thread may clear meanwhile)
        if not self._cache or owner is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called with nothing to back-propagate: every backward needs "
                "one earlier forward call made while gradients were enabled (not under minirnn.no_grad())"
            )
        me = threading.get_ident()
        if owner != me:
            raise RuntimeError(
                f"{type(self).__name__}.backward from {_thread_name(me)}, but the newest forward was run by "
                f"{_thread_name(owner)}: a backward must run in the thread of its forward (one model is trained "
                "by one thread at a time; no_grad() inference may run in many threads). Nothing was changed; "
                "call clear_cache() to drop the other thread's pending forwards.")

    def _peek(self) -> Any:
        """The newest entry, left in place (backward validates its arguments against it before popping). No lock:
        another thread can only cover this thread's entry (then ``_pop``, which checks under the lock, refuses) or
        clear it (then ``_pop`` finds nothing or another thread's entry), never hand it to someone else."""
        self._check_top()
        return self._cache[-1]

    def _pop(self) -> Any:
        with _cache_lock:
            self._check_top()
            self._cache_threads.pop()
            return self._cache.pop()

    def clear_cache(self) -> None:
        """Drop every pending forward cache of this module and its children."""
        with _cache_lock:
            for m in self.modules():
                m._cache.clear()
                m._cache_threads.clear()

    # ---- parameters and children (torch's iterators: a module or parameter shared under two names is listed once)
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
                      ) -> Iterator[tuple[str, "Module"]]:
        """``(name, module)`` for this module (name ``prefix``) and every descendant, depth first, as torch."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """The direct sub-modules with their attribute names."""
        seen: set = set()
        for name, child in self._modules.items():
            if child not in seen:
                seen.add(child)
                yield name, child

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a parameter shared (tied) under several names is listed once
        unless ``remove_duplicate=False`` (as torch; ``state_dict`` lists it under every name, as torch's does).
        ``recurse=False``: only this module's own parameters."""
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_name, m in mods:
            for name, p in m._parameters.items():
                if id(p) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def apply(self, fn: Any) -> "Module":
        """``fn(m)`` for every sub-module (children first, depth first) and then for this one; returns self, as torch.
        E.g. ``model.apply(init_weights)``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter (see ``Parameter.requires_grad``); returns self, as torch."""
        requires_grad = _bool("requires_grad", requires_grad)
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # ---- dtype and device -----------------------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Cast every parameter (and its ``grad``) to float32 or float64, in place, and return self, as torch.

        Accepts torch's forms: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(array)`` (its dtype) and
        the keywords ``device``, ``dtype``, ``non_blocking`` (ignored). A dtype is ``np.float64``, ``"float64"`` or
        ``torch.float64``; float16 and integer dtypes are a TypeError. The only device is the CPU ('cpu' or
        ``torch.device('cpu')``); any other is a ValueError. The ``Parameter`` objects stay the same (an optimizer
        built before keeps working on them); every module's own ``dtype`` attribute follows, so the next forward
        expects (and returns) the new dtype. Changing the dtype while a forward cache awaits its backward is a
        RuntimeError (torch's graph would mix the two dtypes): call backward or ``clear_cache()`` first.
        """
        unknown = set(kwargs) - {"device", "dtype", "non_blocking", "memory_format", "copy"}
        if unknown:
            raise TypeError(f"to() got unexpected keyword argument(s) {sorted(unknown)}")
        if len(args) > 3:
            raise TypeError(f"to() takes at most 3 positional arguments (device, dtype, non_blocking), got {len(args)}")
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        rest = list(args)
        if rest and (rest[0] is None or _is_device(rest[0])):
            device = rest.pop(0)
        if rest and not isinstance(rest[0], bool):
            if dtype is not None:
                raise TypeError("to() got the dtype twice (as an argument and as dtype=)")
            dtype = rest.pop(0)
        if rest and not isinstance(rest[0], bool):
            raise TypeError(f"to(): expected a device, a dtype or an array, got {rest[0]!r}")
        _check_device(device)
        if dtype is None:
            return self
        return self._cast(_target_dtype(dtype))

    def float(self) -> "Module":
        """Cast every parameter to float32 (torch's ``Module.float``); returns self."""
        return self._cast(np.dtype(np.float32))

    def double(self) -> "Module":
        """Cast every parameter to float64 (torch's ``Module.double``); returns self."""
        return self._cast(np.dtype(np.float64))

    def cpu(self) -> "Module":
        """Returns self: minirnn's arrays are always in CPU memory (here so that torch code runs unchanged)."""
        return self

    def _cast(self, dtype: np.dtype) -> "Module":
        mods = list(self.modules())
        pending = sum(len(m._cache) for m in mods)
        params = list(self.parameters())
        if pending and any(p.data.dtype != dtype for p in params):
            raise RuntimeError(f"{type(self).__name__}.to({dtype}): {pending} forward cache(s) still wait for their "
                               "backward; call backward (or clear_cache()) before changing the dtype")
        for p in params:
            if p.data.dtype != dtype:
                p.data = p.data.astype(dtype)
                if p.grad is not None:
                    p.grad = p.grad.astype(dtype)
        for m in mods:
            if isinstance(m.__dict__.get("dtype"), np.dtype):   # the layer's own dtype: what its forward expects
                object.__setattr__(m, "dtype", dtype)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every ``.grad`` (to None, or zeros); refused, with nothing changed, while another running thread
        owns a gradient (see *Threads* in the module docstring)."""
        me = threading.get_ident()
        with _cache_lock:
            params = list(self.parameters())
            for p in params:
                _check_grad_owner(p, me, "reset")
            for p in params:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.fill(0)
                p._grad_thread = None

    def train(self, mode: bool = True) -> "Module":
        """Training mode (False: evaluation) for this module and every descendant; returns self, as torch.
        ``mode`` must be a bool, as torch checks it (``train("False")`` would otherwise mean True)."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r} of type {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # ---- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter under torch's names (``weight_ih_l0``, ``fc.weight``, ...)."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> "IncompatibleKeys":
        """Load arrays by name, all or nothing, as ``torch.nn.Module.load_state_dict``.

        Every problem is reported at once in one ValueError, and nothing is changed when it fails:
        a mis-shaped value, a value that is not a real number array (complex, bool, strings, objects), a finite
        value that overflows the parameter's dtype (1e300 into float32), and with ``strict=True`` (the default)
        every missing and unexpected key. Integer and other float dtypes are cast to the parameter's dtype (torch's
        ``copy_``); NaN and inf are loaded as they are (torch does the same; ``minirnn.save`` refuses them).
        Values are copied into the existing parameter arrays, so references to ``p.data`` stay valid.
        Values may be NumPy arrays or anything with ``.numpy()``/``__array__`` (a torch tensor).

        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``, a namedtuple like torch's ``_IncompatibleKeys``
        (empty lists after a strict load; with ``strict=False`` the keys that were skipped).
        """
        from .checks import flag

        strict = flag("strict", strict)
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a mapping of parameter names to arrays, got {type(state_dict).__name__}")
        own = OrderedDict(self.named_parameters(remove_duplicate=False))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        staged: dict[str, np.ndarray] = {}
        problems: list[str] = []
        for k, p in own.items():
            if k not in state_dict:
                continue
            try:
                arr = _to_numpy(state_dict[k])
            except Exception as e:  # a tensor that cannot become numpy, a ragged list, ...
                problems.append(f"{k}: expected a real numeric array, got {type(state_dict[k]).__name__} ({e})")
                continue
            if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)) \
                    or arr.dtype == np.bool_:
                problems.append(f"{k}: expected a real numeric array, got dtype {arr.dtype}")
            elif arr.shape != p.data.shape:
                problems.append(f"{k}: expected shape {p.data.shape}, got {arr.shape}")
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    cast = arr.astype(p.data.dtype, copy=True)
                if np.issubdtype(arr.dtype, np.floating) and not np.array_equal(
                        np.isfinite(arr), np.isfinite(cast)):
                    problems.append(f"{k}: values overflow the parameter's dtype {p.data.dtype} "
                                    f"(largest magnitude {np.nanmax(np.abs(arr[np.isfinite(arr)])):.3g})")
                else:
                    staged[k] = cast
        if strict:
            problems += [f"missing key {k!r}" for k in missing]
            problems += [f"unexpected key {k!r}" for k in unexpected]
        if problems:
            raise ValueError(
                f"load_state_dict into {type(self).__name__} failed ({len(problems)} problem"
                f"{'s' if len(problems) > 1 else ''}); nothing was changed:\n  " + "\n  ".join(problems)
            )
        for k, arr in staged.items():
            p = own[k]
            if p.data.flags.writeable and p.data.flags.c_contiguous:
                p.data[...] = arr
            else:
                p.data = np.ascontiguousarray(arr)
        return IncompatibleKeys(missing, unexpected)

    def extra_repr(self) -> str:
        """The layer's own settings in its ``repr``, one line per item (torch's hook of the same name)."""
        return ""

    def __repr__(self) -> str:
        """torch's format: ``Name(extra)``, or the extra lines and each ``(child): repr`` indented by two spaces."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(child), 2) for name, child in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first by ``spaces`` (blank lines stay empty), as torch's ``_addindent``."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [(" " * spaces + line) if line.strip() else "" for line in rest])


class Sequential(Module):
    """Children applied in order; backward calls their backward in reverse order."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} must be a Module, got {type(layer).__name__}")
            setattr(self, str(i), layer)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, dy: Any) -> Any:
        for layer in reversed(self._modules.values()):
            dy = layer.backward(dy)
        return dy
