"""Parameter, Module, Sequential and the grad switch: the backward contract in one place.

The contract (see DESIGN.md): ``y = m(x)`` runs ``forward`` and, while gradients are enabled, the module
pushes what its backward needs onto its own stack. ``m.backward(dy)`` pops the most recent entry (LIFO),
accumulates into every parameter's ``.grad`` and returns the gradients of the inputs. A cell called T times
is therefore back-propagated by T calls of ``backward`` in reverse order, exactly as BPTT is written by hand.
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


def _to_numpy(value: Any) -> np.ndarray:
    """A NumPy array from an array, a list, or a torch tensor (``.detach().cpu().numpy()``), without importing torch."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.generic):
        return np.asarray(value.numpy())
    return np.asarray(value)


class Parameter:
    """A trainable array. ``grad`` is None until a backward writes it (as in torch), then has ``data``'s shape and dtype."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = np.ascontiguousarray(data)
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate(self, g: np.ndarray) -> None:
        """Add ``g`` into ``grad`` (gradients accumulate across backward calls, as torch's do)."""
        if self.grad is None:
            self.grad = np.array(g, dtype=self.data.dtype, copy=True).reshape(self.data.shape)
        else:
            self.grad += g

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: registers Parameters and sub-Modules in assignment order, owns a backward stack."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_cache", [])
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
        """Push what backward needs, only while gradients are enabled."""
        if is_grad_enabled():
            self._cache.append(entry)
            if len(self._cache) == CACHE_WARN_DEPTH:
                warnings.warn(
                    f"{type(self).__name__} holds {CACHE_WARN_DEPTH} forward caches with no backward; "
                    "wrap evaluation in minirnn.no_grad() or call clear_cache()",
                    ResourceWarning,
                    stacklevel=3,
                )

    def _pop(self) -> Any:
        if not self._cache:
            raise RuntimeError(
                f"{type(self).__name__}.backward called with nothing to back-propagate: every backward needs "
                "one earlier forward call made while gradients were enabled (not under minirnn.no_grad())"
            )
        return self._cache.pop()

    def clear_cache(self) -> None:
        """Drop every pending forward cache of this module and its children."""
        for m in self.modules():
            m._cache.clear()

    # ---- parameters and children -----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a parameter shared (tied) under several names is listed once
        unless ``remove_duplicate=False`` (as torch; ``state_dict`` lists it under every name, as torch's does)."""
        seen: set[int] = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if not remove_duplicate or id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
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
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")


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
