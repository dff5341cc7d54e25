"""Input validation shared by every public entry: errors name the argument, what was expected and what came."""
from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def dtype_of(dtype: Any) -> np.dtype:
    d = np.dtype(dtype)
    if d not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {d}")
    return d


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def float_array(name: str, x: Any, dtype: np.dtype, ndims: tuple[int, ...]) -> np.ndarray:
    """A real floating array of the layer's dtype with one of the allowed ranks (no silent casts)."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__array__") or isinstance(x, (list, tuple)):
            x = np.asarray(x)
        else:
            raise TypeError(f"{name}: expected a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name}: expected a floating array of dtype {dtype}, got dtype {x.dtype}"
            + (" (class indices go to Embedding)" if np.issubdtype(x.dtype, np.integer) else "")
        )
    if x.dtype != dtype:
        raise TypeError(
            f"{name}: dtype {x.dtype} does not match the layer's parameters ({dtype}); "
            f"convert with x.astype(np.{dtype}) or build the layer with dtype=np.{x.dtype}"
        )
    if x.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name}: expected a {want} array, got shape {x.shape}")
    return x


def shape_is(name: str, x: np.ndarray, expected: tuple[int, ...]) -> None:
    if x.shape != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}, got {x.shape}")


def index_array(name: str, x: Any, upper: int) -> np.ndarray:
    """Integer indices in [0, upper)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array of indices, got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() >= upper):
        bad = x.min() if x.min() < 0 else x.max()
        raise IndexError(f"{name}: indices must be in [0, {upper}), got {bad}")
    return x
