"""Stateless, numerically safe elementwise math shared by the layers and losses.

Every function here is finite and silent (no RuntimeWarning) for any finite input, however large.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow for any input, one transcendental call
    (scipy's expit was ~8x slower here; the recurrent kernels use ``GateActivation``, which is faster still).
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
    ``T`` tanh, all from one ``np.exp`` call (NumPy's float32 exp is ~1.5-1.9x faster than its tanh here, and the
    block's transcendentals are most of a step's pointwise cost at B*H in the thousands):

        sigmoid(x) = 1 / (1 + exp(-x))           tanh(x) = 2 / (1 + exp(-2x)) - 1

    The argument must arrive already multiplied by ``input_scale`` (-1 on ``s`` blocks, -2 on ``T`` blocks): the
    engine folds that factor into the input projection and the recurrent weights once per sequence, exactly
    (powers of two), instead of paying a multiply per step. Then a step is exp, +1, numerator / ., and the
    -1 shift of the tanh blocks: four calls. exp overflows to inf for arguments beyond ~88 (float32) and gives
    the exact limits 0 (sigmoid) and -1 (tanh); run it under ``np.errstate(over="ignore")`` to keep that silent.
    Absolute error of the tanh blocks: a few eps (cancellation in 2/(1+e) - 1 near 0), the sigmoid's is relative.
    """

    def __init__(self, pattern: str, H: int, dtype) -> None:
        if not pattern or set(pattern) - {"s", "T"}:
            raise ValueError(f"pattern: expected letters 's' (sigmoid) and 'T' (tanh), got {pattern!r}")
        blocks = lambda s_val, t_val: np.repeat(np.array([s_val if p == "s" else t_val for p in pattern],
                                                         dtype=dtype), H)
        self.input_scale = blocks(-1.0, -2.0)
        all_sigmoid = "T" not in pattern
        self._num = np.asarray(1.0, dtype=dtype) if all_sigmoid else blocks(1.0, 2.0)
        self._shift = None if all_sigmoid else blocks(0.0, -1.0)
        self._one = np.ones((), dtype=dtype)           # a 0-d array: a Python float costs ~0.4 us more per call
        for a in (self.input_scale, self._num, self._shift, self._one):
            if a is not None:
                a.flags.writeable = False              # shared through gate_activation's cache

    def __call__(self, a: np.ndarray) -> np.ndarray:
        np.exp(a, out=a)                               # a holds input_scale * x
        np.add(a, self._one, out=a)
        np.divide(self._num, a, out=a)                 # sigmoid, or 2 sigmoid(2x) on tanh blocks
        if self._shift is not None:
            np.add(a, self._shift, out=a)              # tanh = 2 sigmoid(2x) - 1
        return a


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
