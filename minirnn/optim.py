"""Optimizers and gradient clipping with torch.optim's update rules, defaults and state layout.

Each update below is torch 2.x's single-tensor ("for-loop") implementation, operation for operation, so a run
matches torch's to rounding. Updates are in place on ``p.data`` and keep its dtype: hyperparameters are Python
floats, which NumPy (NEP 50) applies in the array's own dtype, so float32 parameters and state stay float32.
Parameters whose ``.grad`` is None are skipped and their state is left alone, as in torch. Non-finite gradients
propagate silently into the parameters, as they do in torch; ``clip_grad_norm(..., error_if_nonfinite=True)`` is
the guard.

State layout (``state_dict()``; NumPy arrays and plain Python numbers only, as torch's but without tensors)::

    {"state": {0: {"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray}, 1: {...}, ...},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1]}, ...]}

Parameters are numbered in order across the groups; a parameter that has not been stepped yet has no entry
(except Adagrad's, created at construction, as torch does). Per-optimizer state keys are torch's:
SGD ``momentum_buffer``; Adam/AdamW ``step, exp_avg, exp_avg_sq[, max_exp_avg_sq]``; Adagrad ``step, sum``;
RMSprop ``step, square_avg[, momentum_buffer][, grad_avg]``. A checkpoint can flatten it into an ``.npz`` with
keys like ``state/0/exp_avg``; ``load_state_dict`` accepts integer or string indices and torch tensors too.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from . import checks
from .module import Module, Parameter

ParamsT = Iterable[Parameter] | Iterable[dict[str, Any]]


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def _at_least_zero(name: str, value: Any, what: str) -> None:
    # torch's wording ("Invalid learning rate: -1") after the argument's name
    if not 0.0 <= _real(name, value):
        raise ValueError(f"{name}: Invalid {what}: {value} (expected {name} >= 0)")


def _lerp_(a: np.ndarray, b: np.ndarray, weight: float) -> None:
    """a <- a + weight * (b - a) in place, with torch's two-branch formula (the one its CPU kernel rounds)."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)


def _as_array(value: Any) -> Any:
    if hasattr(value, "detach"):            # a torch tensor from torch's own state_dict
        value = value.detach().cpu().numpy()
    return value


class Optimizer:
    """Base class: param groups, per-parameter state, zero_grad, state_dict/load_state_dict.

    params: an iterable of Parameters (e.g. ``model.parameters()``), of ``(name, Parameter)`` pairs (e.g.
    ``model.named_parameters()``), or a list of dicts ``{"params": [...], "lr": ..., ...}`` whose missing
    hyperparameters take the optimizer's defaults.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, Parameter):
            raise TypeError("params: expected an iterable of Parameters or of param-group dicts, got a single "
                            "Parameter (wrap it in a list)")
        if isinstance(params, Module):
            raise TypeError("params: expected an iterable of Parameters, got a Module (pass module.parameters())")
        if isinstance(params, (set, frozenset)):
            raise TypeError("params: expected an ordered collection, got a set (its order changes between runs)")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"params: expected an iterable of Parameters or dicts, got {type(params).__name__}") from None
        if not groups:
            raise ValueError("params: optimizer got an empty parameter list")
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- subclasses ----------------------------------------------------------------------------------------
    def _validate(self, group: Mapping[str, Any]) -> None:
        """Raise ValueError/TypeError naming the bad hyperparameter."""

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ---- groups --------------------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (the rest come from the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group: expected a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group: expected a 'params' key")
        raw = param_group["params"]
        if isinstance(raw, Parameter):
            raw = [raw]
        elif isinstance(raw, (set, frozenset)):
            raise TypeError("params: expected an ordered collection, got a set (its order changes between runs)")
        params: list[Parameter] = []
        for i, item in enumerate(raw):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Parameter):
                item = item[1]                       # (name, Parameter) from named_parameters()
            if not isinstance(item, Parameter):
                raise TypeError(f"params: optimizer can only optimize Parameters, but element {i} is "
                                f"{type(item).__name__}")
            params.append(item)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("params: a parameter group holds the same parameter twice")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError("params: some parameters appear in more than one parameter group")
        group = {k: v for k, v in param_group.items() if k != "params"}
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._validate(group)
        group["params"] = params
        self.param_groups.append(group)
        for p in params:
            fresh = self._eager_state(p, group)
            if fresh is not None:
                self.state[p] = fresh

    def _eager_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any] | None:
        """State created at construction (torch's Adagrad does this); None means lazily at the first step."""
        return None

    # ---- the training-loop API -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every ``.grad`` to None (default, as torch) or fill it with zeros; either way the gradient is
        nobody's afterwards, as after ``Module.zero_grad`` (another thread may train the model next)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.fill(0)
                    p._grad_thread = None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient. Returns ``closure()`` if one is given."""
        loss = closure() if closure is not None else None
        # inf - inf or overflowing squares give nan/inf exactly as in torch, without NumPy's warnings
        with np.errstate(over="ignore", invalid="ignore"):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    if g.shape != p.data.shape:
                        raise ValueError(f"grad: expected the parameter's shape {p.data.shape}, got {g.shape}")
                    if g.dtype != p.data.dtype:
                        g = g.astype(p.data.dtype)
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = self._init_state(p, group)
                    self._update(p, g, state, group)
        return loss

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def _index(self) -> list[Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """A snapshot (copies) in torch's layout; see the module docstring."""
        order = self._index()
        state = {}
        for i, p in enumerate(order):
            if p in self.state:
                state[i] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.state[p].items()}
        groups = []
        start = 0
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(entry)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (ours or torch's), all or nothing.

        Groups must have the same sizes as this optimizer's; arrays are copied and cast to their parameter's
        dtype, and must have its shape.
        """
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict: expected a mapping with 'state' and 'param_groups' keys")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"state_dict: parameter group {i} has {len(saved['params'])} parameters, this "
                                 f"optimizer's has {len(mine['params'])}")
        # saved ids (torch's may not be 0..n-1 in order) -> our parameters, group by group
        by_id: dict[int, Parameter] = {}
        for mine, saved in zip(self.param_groups, saved_groups):
            for pid, p in zip(saved["params"], mine["params"]):
                by_id[int(pid)] = p
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, entry in dict(state_dict["state"]).items():
            try:
                pid = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"state_dict: state key {key!r} is not a parameter index") from None
            if pid not in by_id:
                raise ValueError(f"state_dict: state for parameter {pid}, which no parameter group lists")
            p = by_id[pid]
            restored: dict[str, Any] = {}
            for name, value in dict(entry).items():
                value = _as_array(value)
                if name == "step":
                    restored[name] = int(round(float(np.asarray(value))))
                elif np.ndim(value) == 0 and not isinstance(value, np.ndarray):
                    restored[name] = value
                else:
                    arr = np.asarray(value)
                    if arr.shape != p.data.shape:
                        raise ValueError(f"state_dict: state[{pid}][{name!r}] has shape {arr.shape}, its parameter "
                                         f"has shape {p.data.shape}")
                    restored[name] = np.array(arr, dtype=p.data.dtype, copy=True)
            new_state[p] = restored
        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            group = {k: v for k, v in saved.items() if k != "params"}
            group = {**{k: v for k, v in mine.items() if k != "params"}, **group}
            if "betas" in group:
                group["betas"] = tuple(float(b) for b in group["betas"])
            self._validate(group)
            group["params"] = mine["params"]
            new_groups.append(group)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as torch.optim.SGD.

        g <- -g if maximize;  g <- g + weight_decay * p
        b <- g (first step) or momentum * b + (1 - dampening) * g
        g <- g + momentum * b if nesterov else b            (when momentum != 0)
        p <- p - lr * g
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _validate(self, group: Mapping[str, Any]) -> None:
        _at_least_zero("lr", group["lr"], "learning rate")
        _at_least_zero("momentum", group["momentum"], "momentum value")
        _real("dampening", group["dampening"])
        _at_least_zero("weight_decay", group["weight_decay"], "weight_decay value")
        checks.flag("maximize", group["maximize"])
        if checks.flag("nesterov", group["nesterov"]) and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"nesterov: Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, momentum, wd = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


class Adam(Optimizer):
    """Adam (and, with ``decoupled_weight_decay``, AdamW), as torch.optim.Adam.

        t <- t + 1;  g <- -g if maximize
        p <- p * (1 - lr * weight_decay)   if decoupled,  else  g <- g + weight_decay * p
        m <- m + (1 - beta1) * (g - m);    v <- beta2 * v + (1 - beta2) * g * g
        v_max <- max(v_max, v) if amsgrad (and used in place of v below)
        p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def _validate(self, group: Mapping[str, Any]) -> None:
        _at_least_zero("lr", group["lr"], "learning rate")
        _at_least_zero("eps", group["eps"], "epsilon value")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= _real(f"betas[{i}]", b) < 1.0:
                raise ValueError(f"betas: Invalid beta parameter at index {i}: {b} (expected 0 <= betas[{i}] < 1)")
        _at_least_zero("weight_decay", group["weight_decay"], "weight_decay value")
        for name in ("amsgrad", "maximize", "decoupled_weight_decay"):
            checks.flag(name, group[name])

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        return state

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if group["maximize"]:
            g = -g
        state["step"] += 1
        step = state["step"]
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.data *= 1 - lr * wd
            else:
                g = g + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        sq = (1 - beta2) * g
        sq *= g
        v += sq
        step_size = lr / (1 - beta1 ** step)
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:        # amsgrad switched on after the first steps
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v)
        denom /= bias_correction2_sqrt
        denom += eps
        upd = -step_size * m            # torch's addcdiv rounds (value * m) / denom
        upd /= denom
        p.data += upd


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW: p <- p * (1 - lr * weight_decay)."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad.

        t <- t + 1;  g <- -g if maximize;  g <- g + weight_decay * p
        clr <- lr / (1 + (t - 1) * lr_decay)
        s <- s + g * g           (s starts at initial_accumulator_value)
        p <- p - clr * g / (sqrt(s) + eps)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))

    def _validate(self, group: Mapping[str, Any]) -> None:
        _at_least_zero("lr", group["lr"], "learning rate")
        _at_least_zero("lr_decay", group["lr_decay"], "lr_decay value")
        _at_least_zero("weight_decay", group["weight_decay"], "weight_decay value")
        _at_least_zero("initial_accumulator_value", group["initial_accumulator_value"],
                       "initial_accumulator_value value")
        _at_least_zero("eps", group["eps"], "epsilon value")
        checks.flag("maximize", group["maximize"])

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "sum": np.full_like(p.data, float(group["initial_accumulator_value"]))}

    _eager_state = _init_state

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        state["step"] += 1
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p.data
        clr = lr / (1 + (state["step"] - 1) * float(group["lr_decay"]))
        s = state["sum"]
        s += g * g
        std = np.sqrt(s)
        std += eps
        upd = -clr * g
        upd /= std
        p.data += upd


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop.

        g <- -g if maximize;  g <- g + weight_decay * p
        v <- alpha * v + (1 - alpha) * g * g
        centered: a <- a + (1 - alpha) * (g - a);  d <- sqrt(v - a * a) + eps;  else d <- sqrt(v) + eps
        momentum > 0: b <- momentum * b + g / d;  p <- p - lr * b;   else p <- p - lr * g / d
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _validate(self, group: Mapping[str, Any]) -> None:
        _at_least_zero("lr", group["lr"], "learning rate")
        _at_least_zero("eps", group["eps"], "epsilon value")
        _at_least_zero("momentum", group["momentum"], "momentum value")
        _at_least_zero("weight_decay", group["weight_decay"], "weight_decay value")
        _at_least_zero("alpha", group["alpha"], "alpha value")
        checks.flag("centered", group["centered"])
        checks.flag("maximize", group["maximize"])

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {"step": 0, "square_avg": np.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(p.data)
        return state

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        wd, momentum = float(group["weight_decay"]), float(group["momentum"])
        if group["maximize"]:
            g = -g
        state["step"] += 1
        if wd != 0:
            g = g + wd * p.data
        v = state["square_avg"]
        v *= alpha
        sq = (1 - alpha) * g
        sq *= g
        v += sq
        if group["centered"]:
            a = state.setdefault("grad_avg", np.zeros_like(p.data))
            _lerp_(a, g, 1 - alpha)
            # v >= a*a in exact arithmetic; a rounding-negative difference gives nan, as in torch
            avg = np.sqrt(v - a * a)
        else:
            avg = np.sqrt(v)
        avg += eps
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buf *= momentum
            buf += g / avg
            p.data -= lr * buf
        else:
            upd = -lr * g
            upd /= avg
            p.data += upd


# ---- gradient clipping -----------------------------------------------------------------------------------
def _grads_of(parameters: Parameter | Iterable[Parameter]) -> list[np.ndarray]:
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    elif isinstance(parameters, Module):
        raise TypeError("parameters: expected Parameters, got a Module (pass module.parameters())")
    grads = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters: expected Parameters, but element {i} is {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


def _total_norm(grads: list[np.ndarray], norm_type: float) -> float:
    """The p-norm of all gradients seen as one vector: (sum_i |g_i|^p)^(1/p), max_i |g_i| for p = inf.

    Computed in float64 and scaled by the largest |g_i|, so huge or tiny gradients neither overflow nor underflow
    (torch's float32 norm of float32 gradients above ~1e19 is inf; this one stays finite).
    """
    nonempty = [g for g in grads if g.size]
    if not nonempty:
        return 0.0
    biggest = max(float(np.max(np.abs(g))) for g in nonempty)
    if norm_type == math.inf or biggest == 0.0 or not math.isfinite(biggest):
        if not math.isfinite(biggest) and any(np.isnan(g).any() for g in nonempty):
            return math.nan
        return biggest
    total = 0.0
    for g in nonempty:
        r = np.abs(g, dtype=np.float64)
        r /= biggest
        if norm_type == 2.0:
            r *= r                   # not np.dot: a BLAS call is slower here and can spin threads
        else:
            np.power(r, norm_type, out=r)
        total += float(r.sum())
    return biggest * total ** (1.0 / norm_type)


def clip_grad_norm(parameters: Parameter | Iterable[Parameter], max_norm: float, norm_type: float | str = 2.0,
                   error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``, as torch.

    total = || concat(g) ||_p (p = ``norm_type``, a positive number or inf / 'inf');
    every g <- g * min(max_norm / (total + 1e-6), 1) in place. Parameters without a gradient are skipped.
    Returns ``total`` (before clipping) as a Python float; 0.0 when no parameter has a gradient.
    ``error_if_nonfinite``: raise RuntimeError when total is nan or inf (otherwise gradients become nan/0).
    """
    max_norm = _real("max_norm", max_norm)
    if max_norm < 0:
        raise ValueError(f"max_norm: expected a value >= 0, got {max_norm}")
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type: expected a positive number or 'inf', got {norm_type!r}") from None
    if not p > 0:
        raise ValueError(f"norm_type: expected a positive number or inf, got {norm_type!r}")
    error_if_nonfinite = checks.flag("error_if_nonfinite", error_if_nonfinite)
    grads = _grads_of(parameters)
    if not grads:
        return 0.0
    total = _total_norm(grads, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`")
    coef = max_norm / (total + 1e-6) if math.isfinite(total) else (math.nan if math.isnan(total) else 0.0)
    if not coef < 1.0 and not math.isnan(coef):
        return total                           # scaling by 1 changes nothing
    with np.errstate(invalid="ignore"):      # inf * 0 -> nan, as torch's non-finite clipping gives
        for g in grads:
            g *= coef
    return total


def clip_grad_value(parameters: Parameter | Iterable[Parameter], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place, as torch (nan stays nan)."""
    c = _real("clip_value", clip_value)
    if c < 0:
        raise ValueError(f"clip_value: expected a value >= 0, got {clip_value}")
    for g in _grads_of(parameters):
        np.clip(g, -c, c, out=g)


clip_grad_norm_ = clip_grad_norm
clip_grad_value_ = clip_grad_value
