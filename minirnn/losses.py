"""Losses as Modules: CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss, MSELoss, each as torch.nn computes them.

Every loss follows the backward contract (module.py): ``loss = fn(input, target)`` pushes a cache while gradients
are enabled and ``dinput = fn.backward(upstream=None)`` pops it. For reduction ``'mean'``/``'sum'`` the loss is a
Python float and ``upstream`` a scalar (default 1.0); for ``'none'`` the loss is an array with the batch shape and
``upstream`` an array of that shape (it may be omitted only when that shape is ``()``). Backward returns the
gradient with respect to ``input`` alone: targets are data, not parameters.

Notation used in the docstrings: ``x`` the input, ``t`` the target, ``C`` the number of classes, ``*`` any extra
dimensions (d1, d2, ...), ``M`` the number of loss elements (the size of the 'none' output).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import checks
from . import functional as F
from .layers import kept
from .module import Module

_REDUCTIONS = ("none", "mean", "sum")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---- validation shared by every loss -------------------------------------------------------------------
def _float_input(name: str, x: Any) -> np.ndarray:
    """A float32/float64 array; other dtypes are refused rather than silently cast."""
    x = checks.as_array(name, x)
    if x.dtype not in _FLOATS:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {x.dtype}")
    return x


def _real_target(x: np.ndarray, target: Any) -> np.ndarray:
    """Element-wise targets must have exactly the input's shape (no silent broadcasting).

    Real (float, integer or bool) targets are converted to the input's dtype, so float64 labels never turn a
    float32 loss into a float64 one, and 0/1 integer labels work as they read.
    """
    t = checks.as_array("target", target)
    if not (np.issubdtype(t.dtype, np.floating) or np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_):
        raise TypeError(f"target: expected a real numeric array, got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"target: expected the input's shape {x.shape}, got {t.shape}")
    return t.astype(x.dtype, copy=False)


def _class_weight(weight: Any) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight)
    if not np.issubdtype(w.dtype, np.floating) and not np.issubdtype(w.dtype, np.integer):
        raise TypeError(f"weight: expected a real array of per-class weights, got dtype {w.dtype}")
    if w.ndim != 1:
        raise ValueError(f"weight: expected a 1-D array of shape (C,), got shape {w.shape}")
    return w.astype(np.float64, copy=True)


class _Loss(Module):
    """Reduction bookkeeping shared by every loss."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = checks.choice("reduction", reduction, _REDUCTIONS)

    def _reduce(self, elements: np.ndarray, denominator: float) -> float | np.ndarray:
        """'none' -> elements (M-shaped); 'sum' -> sum; 'mean' -> sum / denominator (nan when it is 0, as torch)."""
        if self.reduction == "none":
            return np.asarray(elements)      # NumPy hands back a scalar for 0-d results; torch a 0-d tensor
        with np.errstate(over="ignore"):   # a float32 sum past 3.4e38 is inf, silently, as torch's
            total = float(elements.sum())
        if self.reduction == "sum":
            return total
        # 0/0 is nan in torch too; spelt out so NumPy has no division to warn about.
        return total / denominator if denominator != 0 else float("nan")

    def _upstream(self, upstream: Any, shape: tuple[int, ...], dtype: np.dtype, denominator: float) -> Any:
        """d loss_total / d element, as a scalar or an array broadcastable to the element shape ``shape``."""
        if self.reduction == "none":
            if upstream is None:
                if shape != ():
                    raise ValueError(f"upstream: reduction='none' needs an array of the loss's shape {shape}, got None")
                return np.ones((), dtype)
            g = np.asarray(upstream, dtype=dtype)
            if g.shape != shape:
                raise ValueError(f"upstream: expected the loss's shape {shape}, got {g.shape}")
            return g
        g = 1.0 if upstream is None else upstream
        if np.ndim(g) != 0:
            raise ValueError(f"upstream: reduction={self.reduction!r} gives a scalar loss, so upstream must be a "
                             f"scalar, got shape {np.shape(g)}")
        g = float(g)
        if self.reduction == "mean":
            # torch's 0/0 reaches every counted element as nan (zero class weights); the class-index loss then
            # gives ignored elements 0, so an all-ignored batch gets a zero gradient, as torch's does
            g = g / denominator if denominator != 0 else float("nan")
        return np.asarray(g, dtype)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


# ---- cross-entropy and negative log-likelihood -----------------------------------------------------------
def _class_last(x: np.ndarray) -> np.ndarray:
    """(N, C, *) -> (N, *, C) view; (C,) and (N, C) are already class-last."""
    return np.moveaxis(x, 1, -1) if x.ndim > 2 else x


def _class_first(g: np.ndarray, ndim: int) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(g, -1, 1)) if ndim > 2 else g


def _index_targets(x: np.ndarray, target: Any, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate class-index targets; return (safe_target, mask) of the loss shape (N, *) or ().

    ``safe_target`` replaces ignored entries by class 0 so that it can index; ``mask`` is False there.
    """
    t = np.asarray(target)
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    expected = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.dtype == np.bool_ or not np.issubdtype(t.dtype, np.integer):
        raise TypeError(
            f"target: expected integer class indices of shape {expected}, or class probabilities of the input's "
            f"shape {x.shape} and a floating dtype; got dtype {t.dtype} and shape {t.shape}")
    if t.shape != expected:
        raise ValueError(f"target: expected class indices of shape {expected} for input of shape {x.shape}, "
                         f"got shape {t.shape}")
    mask = t != ignore_index
    bad = mask & ((t < 0) | (t >= C))
    if bad.any():
        raise IndexError(f"target: class indices must be in [0, {C}) (C={C}) or equal ignore_index={ignore_index}, "
                         f"got {int(t[bad].flat[0])}")
    return np.where(mask, t, 0), mask


class _IndexLoss(_Loss):
    """The class-index machinery CrossEntropyLoss and NLLLoss share; subclasses differ in ``_log_probs``.

    With per-class weights w (default 1), smoothing e, the mask m (0 where target == ignore_index) and
    log-probabilities L (M, C) (class axis last), each element's loss is the cross-entropy against the target
    distribution q:
        q[i, c] = m_i * ((1 - e) * w[t_i] * [c == t_i] + (e / C) * w[c])
        loss_i  = -sum_c q[i, c] * L[i, c]
    and 'mean' divides the total by D = sum_i m_i * w[t_i] (so smoothing shares the NLL's denominator, as torch).
    """

    smoothing = 0.0

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"ignore_index: expected an int, got {type(ignore_index).__name__}")
        self.ignore_index = int(ignore_index)
        self.weight = _class_weight(weight)

    def _weight_for(self, x: np.ndarray, C: int) -> np.ndarray | None:
        if self.weight is None:
            return None
        if self.weight.shape != (C,):
            raise ValueError(f"weight: expected shape (C,) = ({C},) for input of shape {x.shape}, "
                             f"got {self.weight.shape}")
        return self.weight.astype(x.dtype, copy=False)

    def _log_probs(self, xl: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _index_forward(self, x: np.ndarray, target: Any) -> float | np.ndarray:
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        if C == 0:
            raise ValueError(f"input: expected at least one class, got shape {x.shape}")
        ts, mask = _index_targets(x, target, self.ignore_index)
        w = self._weight_for(x, C)
        e = self.smoothing
        L = self._log_probs(_class_last(x))                         # (M..., C)
        picked = np.take_along_axis(L, ts[..., None], axis=-1)[..., 0]       # L[i, t_i]  (M...)
        w_t = (w[ts] if w is not None else np.ones(ts.shape, x.dtype)) * mask
        elements = -(w_t * picked)                                    # NLL part
        if e > 0:
            smooth = -(L @ w if w is not None else L.sum(axis=-1)) * mask
            elements = (1 - e) * elements + (e / C) * smooth
        D = float(w_t.sum())
        self._save(("index", L, ts, mask, w, w_t, D, x.ndim))
        return self._reduce(elements, D)

    def _index_backward(self, entry: tuple, upstream: Any, softmax_term: bool) -> np.ndarray:
        """d loss / d input.

        Cross-entropy (``softmax_term``):  d loss_i / d x[i, c] = g_i * (p[i, c] * sum_k q[i, k] - q[i, c]),
        p = exp(L) = softmax(x).   NLL:  d loss_i / d L[i, c] = -g_i * q[i, c].   g is the upstream per element.
        """
        _, L, ts, mask, w, w_t, D, ndim = entry
        C = L.shape[-1]
        e = self.smoothing
        g = self._upstream(upstream, ts.shape, L.dtype, D)
        self._pop()
        if self.reduction == "mean" and D == 0:
            g = np.where(mask, g, np.zeros((), L.dtype))   # ignored elements get 0 even when the total is nan
        g = np.broadcast_to(g, ts.shape)
        hit = (1 - e) * g * w_t                                        # g_i (1 - e) w[t_i] m_i
        if softmax_term:
            w_sum = float(w.sum()) if w is not None else float(C)
            q_sum = hit + (e / C) * w_sum * (g * mask)                 # g_i * sum_k q[i, k]
            grad = np.exp(L) * q_sum[..., None]
        else:
            grad = np.zeros_like(L)
        if e > 0:
            spread = ((e / C) * g * mask)[..., None]
            grad -= spread * w if w is not None else spread
        idx = ts[..., None]
        np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=-1) - hit[..., None], axis=-1)
        return _class_first(grad, ndim)

    def extra_repr(self) -> str:
        w = "None" if self.weight is None else f"array(shape={self.weight.shape})"
        return f"weight={w}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class CrossEntropyLoss(_IndexLoss):
    """Softmax cross-entropy from raw logits, as torch.nn.CrossEntropyLoss.

    input   (N, C), (N, C, d1, ...) or unbatched (C,); float32 or float64 logits
    target  class indices: integers of shape (N,), (N, d1, ...) or (), each in [0, C) or == ignore_index;
            or class probabilities: floats of the input's shape (then ignore_index must stay negative)
    output  'none': (N,), (N, d1, ...) or (); 'mean'/'sum': a Python float

    Class indices (see _IndexLoss for q): loss_i = -sum_c q[i, c] log softmax(x_i)[c], i.e.
        (1 - e) * (-w[t_i] log p[i, t_i]) + (e / C) * (-sum_c w[c] log p[i, c]),   0 where t_i is ignored;
        'mean' divides by sum_i w[t_i] over non-ignored i (nan, without a warning, when that is 0).
    Class probabilities T: q[i, c] = ((1 - e) T[i, c] + e / C) * w[c]; loss_i = -sum_c q[i, c] log p[i, c];
        'mean' divides by the number of elements N * d1 * ... (not by the weights: torch does this too).
    Gradient: d loss_i / d x[i, c] = p[i, c] * sum_k q[i, k] - q[i, c]   (times the upstream gradient).
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, ignore_index, reduction)
        ls = float(label_smoothing)
        if not 0.0 <= ls <= 1.0:
            raise ValueError(f"label_smoothing: expected a value in [0.0, 1.0], got {label_smoothing!r}")
        self.label_smoothing = ls
        self.smoothing = ls

    def _log_probs(self, xl: np.ndarray) -> np.ndarray:
        # x - max(x) can pass -3.4e38 for logits near the float32 limit: -inf, a log-probability of 0 (as torch's)
        with np.errstate(over="ignore"):
            return F.log_softmax(xl, axis=-1)

    def forward(self, input: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        x = _float_input("input", input)
        if x.ndim == 0:
            raise ValueError("input: expected shape (C,), (N, C) or (N, C, d1, ...), got a 0-d array")
        t = checks.as_array("target", target)
        if t.shape == x.shape:
            if not np.issubdtype(t.dtype, np.floating):
                index_shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
                raise TypeError(f"target: a target of the input's shape {x.shape} holds class probabilities and must "
                                f"be floating, got dtype {t.dtype} (class indices have shape {index_shape})")
            return self._prob_forward(x, t)
        return self._index_forward(x, t)

    def _prob_forward(self, x: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        if self.ignore_index >= 0:
            raise ValueError(f"ignore_index: not supported with class-probability targets (torch refuses it too), "
                             f"got ignore_index={self.ignore_index}")
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        w = self._weight_for(x, C)
        e = self.smoothing
        q = _class_last(target.astype(x.dtype, copy=False))
        if e > 0:
            q = q * (1 - e) + e / C
        if w is not None:
            q = q * w
        L = F.log_softmax(_class_last(x), axis=-1)
        elements = -(q * L).sum(axis=-1)
        M = x.size // C if C else 0
        self._save(("prob", L, kept(q, target), M, x.ndim))   # the caller may refill its target buffer
        return self._reduce(elements, M)

    def backward(self, upstream: Any = None) -> np.ndarray:
        """upstream: scalar for 'mean'/'sum' (default 1.0), the output's shape for 'none'. Returns dinput."""
        entry = self._peek()
        if entry[0] == "prob":
            _, L, q, M, ndim = entry
            g = np.broadcast_to(self._upstream(upstream, L.shape[:-1], L.dtype, M), L.shape[:-1])
            self._pop()
            grad = np.exp(L) * (g * q.sum(axis=-1))[..., None] - g[..., None] * q
            return _class_first(grad, ndim)
        return self._index_backward(entry, upstream, softmax_term=True)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", label_smoothing={self.label_smoothing}"


class NLLLoss(_IndexLoss):
    """Negative log-likelihood of log-probabilities, as torch.nn.NLLLoss.

    input   log-probabilities (N, C), (N, C, d1, ...) or (C,); target integer indices (N,), (N, d1, ...) or ()
    loss_i = -w[t_i] * input[i, t_i] (0 where t_i == ignore_index); 'mean' divides by sum_i w[t_i] over the
    non-ignored i.  d loss_i / d input[i, c] = -w[t_i] * [c == t_i].
    """

    def _log_probs(self, xl: np.ndarray) -> np.ndarray:
        return xl

    def forward(self, input: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        x = _float_input("input", input)
        if x.ndim == 0:
            raise ValueError("input: expected shape (C,), (N, C) or (N, C, d1, ...), got a 0-d array")
        return self._index_forward(x, target)

    def backward(self, upstream: Any = None) -> np.ndarray:
        """upstream: scalar for 'mean'/'sum' (default 1.0), the output's shape for 'none'. Returns dinput."""
        return self._index_backward(self._peek(), upstream, softmax_term=False)


# ---- element-wise losses ---------------------------------------------------------------------------------
def _broadcast_weight(name: str, w: Any, x: np.ndarray) -> np.ndarray | None:
    """A weight that broadcasts to the input's shape (it may not enlarge the loss, unlike a bare torch broadcast)."""
    if w is None:
        return None
    a = np.asarray(w)
    try:
        ok = np.broadcast_shapes(a.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected a shape that broadcasts to the input's shape {x.shape}, got {a.shape}")
    return a.astype(x.dtype, copy=False)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one stable expression, as torch.nn.BCEWithLogitsLoss.

    input (*) logits; target (*) same shape, values usually in [0, 1]; weight and pos_weight broadcast to (*)
    (pos_weight is typically (C,) for the last axis). output 'none': (*); 'mean'/'sum': a Python float.

    With lw = 1 + (pos_weight - 1) * t and log sigmoid(x) = -log(1 + exp(-x)) (scipy's log_expit, no overflow):
        loss = weight * ((1 - t) * x - lw * log sigmoid(x))
        d loss / d x = weight * ((1 - t) - lw * sigmoid(-x))
    'mean' divides by the number of elements.
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        for name, w in (("weight", weight), ("pos_weight", pos_weight)):
            if w is not None and not (np.issubdtype(np.asarray(w).dtype, np.floating)
                                      or np.issubdtype(np.asarray(w).dtype, np.integer)):
                raise TypeError(f"{name}: expected a real array, got dtype {np.asarray(w).dtype}")
        self.weight = None if weight is None else np.array(weight, dtype=np.float64)
        self.pos_weight = None if pos_weight is None else np.array(pos_weight, dtype=np.float64)

    def forward(self, input: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        x = _float_input("input", input)
        t = _real_target(x, target)
        w = _broadcast_weight("weight", self.weight, x)
        pw = _broadcast_weight("pos_weight", self.pos_weight, x)
        lw = None if pw is None else (pw - 1) * t + 1
        log_sig = F.log_sigmoid(x)
        elements = (1 - t) * x - (log_sig if lw is None else lw * log_sig)
        if w is not None:
            elements = elements * w
        self._save((kept(x, input), kept(t, target), w, lw))   # the caller may refill its buffers before backward
        return self._reduce(elements, x.size)

    def backward(self, upstream: Any = None) -> np.ndarray:
        """upstream: scalar for 'mean'/'sum' (default 1.0), the input's shape for 'none'. Returns dinput."""
        x, t, w, lw = self._peek()
        g = self._upstream(upstream, x.shape, x.dtype, x.size)
        self._pop()
        sig_neg = F.expit(-x)
        grad = (1 - t) - (sig_neg if lw is None else lw * sig_neg)
        if w is not None:
            grad *= w
        grad *= g
        return grad

    def extra_repr(self) -> str:
        return (f"reduction={self.reduction!r}, weight={'None' if self.weight is None else self.weight.shape}, "
                f"pos_weight={'None' if self.pos_weight is None else self.pos_weight.shape}")


class MSELoss(_Loss):
    """Squared error, as torch.nn.MSELoss.

    input (*) and target (*) of the same shape (no broadcasting). output 'none': (*); 'mean'/'sum': a float.
        loss = (x - t)^2;   d loss / d x = 2 (x - t);   'mean' divides by the number of elements.
    In float32, as torch: a difference or square past 3.4e38 is inf (silently); the gradient of 'mean' and 'sum'
    is computed as torch's, (2 g) (x - t) with g the upstream over N, so it is finite wherever torch's is.
    """

    def forward(self, input: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        x = _float_input("input", input)
        t = _real_target(x, target)
        with np.errstate(over="ignore"):
            diff = x - t
            self._save(diff)
            return self._reduce(diff * diff, x.size)

    def backward(self, upstream: Any = None) -> np.ndarray:
        """upstream: scalar for 'mean'/'sum' (default 1.0), the input's shape for 'none'. Returns dinput."""
        diff = self._peek()
        g = self._upstream(upstream, diff.shape, diff.dtype, diff.size)
        self._pop()
        with np.errstate(over="ignore"):
            if self.reduction == "none":
                return 2 * diff * g      # torch's order: 2 (x - t) first, then the upstream
            return (2 * g) * diff        # torch's: norm = 2 / N first; 2 * (1 / N) is exact
