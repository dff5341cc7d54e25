"""Stateless, numerically safe elementwise math shared by the layers and losses.

Every function here is finite and silent (no RuntimeWarning) for any finite input, however large.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow for any input, one transcendental call
    (the recurrent kernels use ``GateActivation``, the same identity with the x / 2 folded into the weights).
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


class GateActivation:
    """In-place activation of a (b, len(pattern) * H) block of gates, one H-wide block per letter: ``s`` sigmoid,
    ``T`` tanh, all from one ``np.tanh`` call over the block:

        sigmoid(x) = 0.5 + 0.5 tanh(x / 2)

    The argument must arrive already multiplied by ``input_scale`` (1/2 on ``s`` blocks, 1 on ``T`` blocks): the
    recurrent engine folds that factor into the weight rows once per sequence, exactly (a power of two), instead
    of paying a multiply per step. A step is then tanh, and * 1/2 + 1/2 on the ``s`` blocks: three calls. tanh
    never overflows; the sigmoid blocks' error is a few eps in absolute terms (relative for x above about -17)."""

    def __init__(self, pattern: str, H: int, dtype) -> None:
        if not pattern or set(pattern) - {"s", "T"}:
            raise ValueError(f"pattern: expected letters 's' (sigmoid) and 'T' (tanh), got {pattern!r}")
        blocks = lambda s_val, t_val: np.repeat(np.array([s_val if p == "s" else t_val for p in pattern],
                                                         dtype=dtype), H)
        self.input_scale = blocks(0.5, 1.0)
        all_sigmoid = "T" not in pattern
        # 0-d arrays when every block is a sigmoid: a Python float costs more per call
        self._mul = np.asarray(0.5, dtype=dtype) if all_sigmoid else blocks(0.5, 1.0)
        self._add = np.asarray(0.5, dtype=dtype) if all_sigmoid else blocks(0.5, 0.0)
        for a in (self.input_scale, self._mul, self._add):
            a.flags.writeable = False                  # shared through gate_activation's cache

    def __call__(self, a: np.ndarray) -> np.ndarray:
        np.tanh(a, out=a)                              # a holds input_scale * x
        np.multiply(a, self._mul, out=a)
        return np.add(a, self._add, out=a)             # sigmoid on s blocks, tanh unchanged on T blocks


@lru_cache(maxsize=64)
def gate_activation(pattern: str, H: int, dtype: np.dtype) -> GateActivation:
    """The shared GateActivation for (pattern, H, dtype): building one costs more than a tiny sequence's step."""
    return GateActivation(pattern, H, np.dtype(dtype))


def sigmoid_(a: np.ndarray) -> np.ndarray:
    """sigmoid in place."""
    return sigmoid(a, out=a)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0). Derivative: 1 where the output is positive, else 0 (torch's convention at 0)."""
    return np.maximum(x, 0, out=out) if out is not None else np.maximum(x, 0)


def _special():
    """scipy.special, imported on first use: its import is ~0.3 s, most of a small script's start-up, and only the
    losses need it."""
    from scipy import special
    return special


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) via the max shift (scipy's log_softmax): finite for logits of any magnitude."""
    return _special().log_softmax(x, axis=axis)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return _special().softmax(x, axis=axis)


def expit(x: np.ndarray) -> np.ndarray:
    """sigmoid with full relative precision for large negative x (scipy's expit): for gradients, where the tanh
    form's absolute error would show."""
    return _special().expit(x)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log(sigmoid(x)) = -log(1 + exp(-x)) (scipy's log_expit): no overflow, exact for large |x|."""
    return _special().log_expit(x)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) computed as logaddexp(0, x): no overflow."""
    return np.logaddexp(0, x)
