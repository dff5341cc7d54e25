"""Finite-difference checking of any Module (or forward/backward pair) that follows the backward contract.

The check projects the outputs onto a fixed random upstream gradient u, so one scalar
f(inputs, params) = sum_k <u_k, out_k> is differentiated two ways: the hand-written backward, and central
differences (f(z + eps) - f(z - eps)) / 2 eps for every element of every float input and every parameter.
Run it in float64; the forward must be deterministic (eval mode, or dropout 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .module import Module, no_grad


@dataclass
class GradcheckReport:
    ok: bool
    worst: float                 # max over elements of |analytic - numeric| / (atol + rtol * |numeric|); ok iff <= 1
    worst_abs: float             # max |analytic - numeric|
    where: str                   # the array and index of the worst element
    checked: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __str__(self) -> str:
        state = "passed" if self.ok else "FAILED"
        return (f"gradcheck {state}: worst scaled error {self.worst:.3g} (abs {self.worst_abs:.3g}) at {self.where}; "
                f"checked {', '.join(self.checked)}")


def _leaves(tree: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(tree, (tuple, list)):
        out = []
        for i, t in enumerate(tree):
            out += _leaves(t, f"{prefix}[{i}]")
        return out
    return [(prefix, tree)]


def _is_float_array(a: Any) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def gradcheck(fn: Module | Callable[..., Any], inputs: Sequence[Any], *, kwargs: dict | None = None,
              backward: Callable[..., Any] | None = None, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-4, seed: int = 0, check_params: bool = True,
              raise_on_failure: bool = False) -> GradcheckReport:
    """Compare the hand-written backward of ``fn`` with central differences.

    fn        a Module (its ``backward`` is used) or a function together with ``backward=``
    inputs    the positional inputs; float arrays (also inside tuples, e.g. an LSTM's (h0, c0)) are checked,
              None and integer arrays (indices, targets) are passed through
    kwargs    keyword arguments for every forward call (e.g. ``lengths=``)
    backward  for plain functions: called like a module's backward with the upstream gradients
    check_params  also check every parameter's ``.grad`` (frozen ones, ``requires_grad`` False, are skipped)

    Outputs may be an array, a float (a loss: backward is then called with no argument), or a (nested) tuple of
    arrays, whose top-level items are passed to backward as separate arguments (``rnn.backward(dout, dh_n)``).
    Backward returns the gradient of ``inputs[0]`` alone, or a tuple aligned with ``inputs``.
    """
    from .checks import finite_real

    for name, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        v = finite_real(name, value)
        if v < 0 or (name == "eps" and v == 0):
            raise ValueError(f"{name}: expected a {'positive' if name == 'eps' else 'non-negative'} finite number, "
                             f"got {value!r}")
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(f"inputs: expected a list or tuple of the forward's positional inputs, "
                        f"got {type(inputs).__name__}")
    kwargs = kwargs or {}
    module = fn if isinstance(fn, Module) else None
    bwd = backward if backward is not None else getattr(fn, "backward", None)
    if bwd is None:
        raise TypeError("gradcheck: fn must be a Module, or pass backward= with a plain function")
    rng = np.random.default_rng(seed)

    def run() -> Any:
        return fn(*inputs, **kwargs)

    out = run()
    scalar = not isinstance(out, (tuple, list)) and np.ndim(out) == 0
    if scalar:
        upstream = None
    else:
        upstream = _fill(out, rng)

    def objective() -> float:
        with no_grad():
            o = run()
        if scalar:
            return float(o)
        return float(sum(np.sum(u * np.asarray(v)) for (_, u), (_, v) in zip(_leaves(upstream, ""), _leaves(o, ""))))

    if module is not None:
        module.zero_grad()
    if scalar:
        grads = bwd()
    elif isinstance(out, (tuple, list)):
        grads = bwd(*upstream)
    else:
        grads = bwd(upstream)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    elif len(inputs) == 1:
        # one input: a tuple is its gradient when the input is a tuple too, else the gradients of the forward's
        # positional arguments, the first for it (a layer called with x alone returns (dx, dh0))
        grads = (grads,) if isinstance(inputs[0], (tuple, list)) else tuple(grads[:1])
    grads = tuple(grads) + (None,) * (len(inputs) - len(grads))

    targets: list[tuple[str, np.ndarray, np.ndarray]] = []
    for i, (inp, g) in enumerate(zip(inputs, grads)):
        g_leaves = dict(_leaves(g, "")) if g is not None else {}
        for path, leaf in _leaves(inp, ""):
            if _is_float_array(leaf) and g_leaves.get(path) is not None:
                targets.append((f"inputs[{i}]{path}", leaf, np.asarray(g_leaves[path])))
    if module is not None and check_params:
        for name, p in module.named_parameters():
            if not p.requires_grad:   # frozen: backward gives it no gradient (torch checks only what requires grad)
                continue
            grad = p.grad if p.grad is not None else np.zeros_like(p.data)
            targets.append((name, p.data, grad))

    worst, worst_abs, where = 0.0, 0.0, "nowhere"
    for name, arr, analytic in targets:
        if analytic.shape != arr.shape:
            raise ValueError(f"gradcheck: gradient of {name} has shape {analytic.shape}, expected {arr.shape}")
        flat = arr.reshape(-1)   # a view: perturbing it perturbs what forward reads
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            f_plus = objective()
            flat[j] = orig - eps
            f_minus = objective()
            flat[j] = orig
            numeric = (f_plus - f_minus) / (2 * eps)
            a = analytic.reshape(-1)[j]
            diff = abs(a - numeric)
            scaled = diff / (atol + rtol * abs(numeric))
            if scaled > worst:
                worst, where = scaled, f"{name}{tuple(int(i) for i in np.unravel_index(j, arr.shape))}: analytic {a:.10g}, numeric {numeric:.10g}"
            worst_abs = max(worst_abs, diff)
    report = GradcheckReport(bool(worst <= 1.0), float(worst), float(worst_abs), where, [n for n, _, _ in targets])
    if raise_on_failure and not report.ok:
        raise AssertionError(str(report))
    return report


def _fill(out: Any, rng: np.random.Generator) -> Any:
    if isinstance(out, (tuple, list)):
        return type(out)(_fill(o, rng) for o in out)
    if out is None:
        return None
    a = np.asarray(out)
    return rng.standard_normal(a.shape).astype(a.dtype)
