"""Input validation shared by every public entry: errors name the argument, what was expected and what came.

One place for every check, so each public entry reads as a few lines of ``checks.x(name, value, ...)`` and
every message has the same shape: ``"<argument>: expected <what>, got <what came>"``. The exception types:

    TypeError    the wrong kind of thing: not an array, a dtype that is not allowed (integers where floats are
                 needed, floats or bools where indices are needed, complex, object, strings), a float where an
                 integer size is needed, a flag that is not a bool
    ValueError   the right kind but a wrong value: rank, shape, a size <= 0, a probability outside [0, 1],
                 lengths outside [1, T], an unknown option
    IndexError   an index outside [0, num_embeddings)

NaN and inf inside float inputs are passed through (as torch does); only the saving of a checkpoint refuses them.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(value: Any) -> str:
    """A short description of what came, for error messages (never a huge array repr)."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__} of length {len(value)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- constructor arguments ------------------------------------------------------------------------------------
def dtype_of(dtype: Any, name: str = "dtype") -> np.dtype:
    """float32 or float64 (None means float32, torch's default)."""
    if dtype is None:
        return FLOAT_DTYPES[0]
    try:
        d = np.dtype(dtype)
    except Exception:
        raise TypeError(f"{name}: expected float32 or float64, got {_describe(dtype)}") from None
    if d not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {d}")
    return d


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value: Any) -> int:
    """A size: an int > 0. A float (even 3.0) or a bool is a TypeError, as in torch; 0 or less a ValueError."""
    if not _is_int(value):
        raise TypeError(f"{name}: expected a positive integer, got {_describe(value)} of type {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    if not _is_int(value):
        raise TypeError(f"{name}: expected a non-negative integer, got {_describe(value)} of type {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    """A switch: True/False (numpy bools and the ints 0/1 too). Anything else, e.g. the string 'False', is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if _is_int(value) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {_describe(value)}")


def probability(name: str, p: Any) -> float:
    """A drop probability in [0, 1], as torch's (``p = 1`` drops everything: the output is zero, not a 0/0)."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a probability in [0, 1], got {_describe(p)} of type {type(p).__name__}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
    return float(p)


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        want = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name}: expected one of {want}, got {_describe(value)}")
    return value


def optional_index(name: str, value: Any, size: int) -> int | None:
    """None, or an int in [-size, size) normalised to [0, size) (Embedding's padding_idx)."""
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"{name}: expected an integer or None, got {_describe(value)} of type {type(value).__name__}")
    if not -size <= value < size:
        raise ValueError(f"{name}: expected an integer in [-{size}, {size}) or None, got {value!r}")
    return int(value) % size


# ---- arrays ---------------------------------------------------------------------------------------------------
def as_array(name: str, x: Any) -> np.ndarray:
    """Anything array-like (ndarray, nested lists, an object with ``__array__`` such as a CPU torch tensor)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (tuple, list)) and x and any(
            hasattr(v, "__array__") and not isinstance(v, np.generic) for v in x):
        raise TypeError(f"{name}: expected one array, got a {type(x).__name__} of {len(x)} arrays"
                        + (" (only the LSTM takes a pair (h_0, c_0))" if len(x) == 2 else ""))
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise TypeError(f"{name}: expected a numpy array, got {type(x).__name__}")
    if not (hasattr(x, "__array__") or isinstance(x, (list, tuple, int, float, complex, np.generic))):
        raise TypeError(f"{name}: expected a numpy array, got {type(x).__name__}")
    try:
        return np.asarray(x)
    except Exception as e:  # ragged nesting, a tensor that requires grad, ...
        raise TypeError(f"{name}: expected a numpy array, got a {type(x).__name__} that numpy cannot convert ({e})") from None


_KINDS = {"b": "bool", "i": "integer", "u": "integer", "c": "complex", "f": "floating"}


def _kind(dtype: np.dtype) -> str:
    """What a dtype holds, from its one-letter ``kind`` (np.issubdtype's answer, at a fraction of its cost)."""
    return _KINDS.get(dtype.kind, "non-numeric")


def float_array(name: str, x: Any, dtype: np.dtype | None, ndims: Iterable[int], layout: str = "") -> np.ndarray:
    """A real floating array of the layer's ``dtype`` (any float dtype when None) with an allowed rank.

    No silent casts: integers, bools, complex numbers and a float dtype other than the layer's are TypeErrors.
    ``layout`` (e.g. "(T, B, input_size)") is quoted in rank errors.
    """
    from_python = isinstance(x, (list, tuple, float)) and not isinstance(x, np.generic)
    x = as_array(name, x)
    kind = _kind(x.dtype)
    if from_python and kind == "floating" and dtype is not None:
        x = x.astype(dtype)   # Python floats carry no dtype: take the layer's, as torch.tensor takes the default
    if kind != "floating":
        hint = {"integer": " (integer class indices go to Embedding or to a loss as targets)",
                "bool": " (convert a mask with .astype(np.float32))",
                "complex": " (minirnn works on real numbers)"}.get(kind, "")
        want = f"a real floating array of dtype {dtype}" if dtype is not None else "a real floating array"
        raise TypeError(f"{name}: expected {want}, got {kind} dtype {x.dtype}{hint}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name}: expected dtype {dtype} (the layer's parameters), got dtype {x.dtype}; "
            f"convert with x.astype(np.{dtype}) or build the layer with dtype=np.{x.dtype}"
        )
    ndims = tuple(ndims)
    if x.ndim not in ndims:
        if len(ndims) > 4:
            want = f"an array with at least {min(ndims)} dimension(s)"
        else:
            want = "a " + " or ".join(f"{n}-D" for n in ndims) + " array"
        raise ValueError(f"{name}: expected {want}{' ' + layout if layout else ''}, got shape {x.shape}")
    return x


def shape_is(name: str, x: np.ndarray, expected: tuple[int, ...], layout: str = "") -> None:
    if x.shape != tuple(expected):
        lay = f" {layout}" if layout else ""
        raise ValueError(f"{name}: expected shape {tuple(expected)}{lay}, got {x.shape}")


def last_dim(name: str, x: np.ndarray, size: int, what: str) -> None:
    if x.shape[-1] != size:
        raise ValueError(f"{name}: expected last dimension {what}={size}, got shape {x.shape}")


def index_array(name: str, x: Any, upper: int) -> np.ndarray:
    """Integer indices in [0, upper): bools and floats are TypeErrors, out-of-range an IndexError."""
    x = as_array(name, x)
    kind = _kind(x.dtype)
    if kind != "integer":
        raise TypeError(f"{name}: expected an integer array of indices in [0, {upper}), got {kind} dtype {x.dtype}")
    if x.size:
        lo, hi = x.min(), x.max()
        if lo < 0 or hi >= upper:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name}: expected indices in [0, {upper}), got {bad}")
    return x


def lengths_array(name: str, lengths: Any, T: int, B: int) -> np.ndarray:
    """One integer length per sequence, each in [1, T]; returned as int64 of shape (B,)."""
    arr = as_array(name, lengths)
    if arr.shape != (B,):
        raise ValueError(f"{name}: expected one length per sequence, shape ({B},), got shape {arr.shape}")
    kind = _kind(arr.dtype)
    if kind != "integer":
        raise TypeError(f"{name}: expected integers (one length per sequence), got {kind} dtype {arr.dtype}")
    if arr.size and (arr.min() < 1 or arr.max() > T):
        raise ValueError(f"{name}: expected every length in [1, T={T}], got min {arr.min()}, max {arr.max()}")
    return arr.astype(np.int64)


def pair(name: str, value: Any, items: tuple[str, str] = ("h", "c"), allow_none_items: bool = True
         ) -> tuple[Any, Any]:
    """None -> (None, None); a 2-tuple/list -> its items. ``allow_none_items=False`` needs both (torch's forward)."""
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        what = f"a {type(value).__name__} of length {len(value)}" if isinstance(value, (tuple, list)) \
            else _describe(value) if not isinstance(value, np.ndarray) else f"a single array of shape {value.shape}"
        raise TypeError(f"{name}: expected a pair ({items[0]}, {items[1]}) or None, got {what}")
    if not allow_none_items and (value[0] is None or value[1] is None):
        raise TypeError(f"{name}: expected a pair ({items[0]}, {items[1]}) of arrays (or None for both), "
                        f"got ({'None' if value[0] is None else 'array'}, {'None' if value[1] is None else 'array'})")
    return value[0], value[1]


def finite_real(name: str, value: Any) -> float:
    """A finite real number (learning rates, clipping norms)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {_describe(value)} of type {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v

