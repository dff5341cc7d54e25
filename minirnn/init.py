"""PyTorch's default initialisations, drawn from an explicit, seedable numpy.random.Generator.

Every layer takes ``rng=``; without one it draws from the module-level default generator, which
``manual_seed`` resets (as ``torch.manual_seed`` does for torch's).
"""
from __future__ import annotations

import numpy as np

_default = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator used by layers built without ``rng=``; returns it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    return _default


def resolve(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype) -> np.ndarray:
    """U(-bound, bound): torch's default for Linear (bound 1/sqrt(fan_in)) and recurrent layers (1/sqrt(H))."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def normal(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """N(0, 1): torch's default for Embedding."""
    return rng.standard_normal(size=shape).astype(dtype)
