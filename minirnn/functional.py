"""Stateless, numerically safe elementwise math shared by the layers and losses.

Every function here is finite and silent (no RuntimeWarning) for any finite input, however large.
"""
from __future__ import annotations

import numpy as np
from scipy import special


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow for any input, and one transcendental
    call (NumPy's SIMD float32 tanh was measured faster here than exp, and ~8x faster than scipy's expit).
    Exact to the dtype's precision in absolute terms (|error| <= eps); for x below about -17 (float32) it
    returns 0 where the true value is under 5e-8. Derivative: s * (1 - s)."""
    if out is None:
        return 0.5 * np.tanh(0.5 * np.asarray(x)) + 0.5
    y = np.multiply(x, 0.5, out=out)
    np.tanh(y, out=y)
    np.multiply(y, 0.5, out=y)
    return np.add(y, 0.5, out=y)


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """tanh(x). Derivative: 1 - tanh(x)**2."""
    return np.tanh(x, out=out) if out is not None else np.tanh(x)


def gate_activation(pattern: str, H: int, dtype):
    """An in-place activation of a (b, len(pattern) * H) block of gates, one H-wide block per letter:
    ``s`` sigmoid, ``T`` tanh. Both come from one ``np.tanh`` call over the whole block, since
    sigmoid(x) = 0.5 * tanh(0.5 * x) + 0.5: scale, tanh, scale, shift (LSTM: ``"ssTs"``, GRU's r, z: ``"ss"``)."""
    if set(pattern) == {"s"}:
        return sigmoid_
    scale = np.repeat(np.array([0.5 if p == "s" else 1.0 for p in pattern], dtype=dtype), H)
    shift = np.repeat(np.array([0.5 if p == "s" else 0.0 for p in pattern], dtype=dtype), H)

    def activate(a: np.ndarray) -> np.ndarray:
        np.multiply(a, scale, out=a)
        np.tanh(a, out=a)
        np.multiply(a, scale, out=a)
        return np.add(a, shift, out=a)

    return activate


def sigmoid_(a: np.ndarray) -> np.ndarray:
    """sigmoid in place."""
    return sigmoid(a, out=a)


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
