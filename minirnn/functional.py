"""Stateless, numerically safe elementwise math shared by the layers and losses.

Every function here is finite and silent (no RuntimeWarning) for any finite input, however large.
"""
from __future__ import annotations

import numpy as np
from scipy import special


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow (scipy's expit). Derivative: s * (1 - s)."""
    return special.expit(x, out=out) if out is not None else special.expit(x)


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """tanh(x). Derivative: 1 - tanh(x)**2."""
    return np.tanh(x, out=out) if out is not None else np.tanh(x)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0). Derivative: 1 where the output is positive, else 0 (torch's convention at 0)."""
    return np.maximum(x, 0, out=out) if out is not None else np.maximum(x, 0)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) via the max shift (scipy's log_softmax): finite for logits of any magnitude."""
    return special.log_softmax(x, axis=axis)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return special.softmax(x, axis=axis)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) computed as logaddexp(0, x): no overflow."""
    return np.logaddexp(0, x)
