"""RNN/LSTM/GRU and their cells, all on the one engine (``engine.py``) with pointwise kernels (``kernels.py``).

Names, shapes, defaults and parameter names follow torch.nn. Beyond torch, and said where it applies:
``nonlinearity='sigmoid'`` (the classic Elman SRN) and ``lengths=`` on the sequence layers (the semantics of
``pack_padded_sequence(x, lengths, enforce_sorted=False)`` -> layer -> ``pad_packed_sequence(total_length=T)``).
Edge cases as torch 2.13 answers them: an empty batch (B = 0) gives empty outputs and states, and its backward
empty input gradients and zero parameter gradients; the cells take ``hidden_size=0`` (the sequence layers refuse
it, as torch's do); ``proj_size`` passed to RNN or GRU is a ValueError; ``dropout`` is in [0, 1] (1 zeroes every
layer's output but the last); ``bias`` and ``batch_first`` of the sequence layers must be bools.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from . import engine, init, kernels
from . import checks
from .checks import dtype_of, float_array, positive_int, shape_is
from .layers import check_dropout, dropout_mask, freeze, frozen
from .machinery.runners import LOCAL, runner_for, runner_of
from .module import Module, Parameter, is_grad_enabled

State = Any  # np.ndarray, or (h, c) for the LSTM


def _kernel_for(mode: str, nonlinearity: str) -> kernels.Kernel:
    if mode == "RNN":
        return kernels.RNN_KERNELS[checks.choice("nonlinearity", nonlinearity, tuple(kernels.RNN_KERNELS))]
    return kernels.LSTM if mode == "LSTM" else kernels.GRU


def _check_nonlinearity(m: Module) -> None:
    """``nonlinearity`` set after construction: the layer would still run the kernel it was built with (torch's
    RNN ignores the attribute too) while its repr and saved configuration say the new one (a checkpoint would
    load as another network). Refused where it is used, as the other attributes that shaped the layer."""
    if m.mode == "RNN" and m.nonlinearity != m.kernel.name:
        raise ValueError(f"{type(m).__name__}: nonlinearity={m.nonlinearity!r} was set after construction (built "
                         f"with {m.kernel.name!r}); build a new layer with the nonlinearity you want")


def _accumulate(params: dict[str, Parameter | None], g: engine.Grads) -> None:
    for key, value in (("W_ih", g.W_ih), ("W_hh", g.W_hh), ("b_ih", g.b_ih), ("b_hh", g.b_hh), ("W_hr", g.W_hr)):
        p = params.get(key)
        if p is not None:
            p.accumulate(value)


def _own_input(tape: engine.Tape, x: np.ndarray, given: Any) -> None:
    """Give the tape its own copy of the input when it still holds the caller's memory (``x`` validated from
    ``given``): a caller refilling its buffer before backward would change the weight gradients otherwise
    (torch raises "modified by an inplace operation"). A private conversion or a frozen array is kept as it is."""
    X = getattr(tape, "X", None)   # a RemoteTape (second process) holds a copy already
    if X is not None and np.may_share_memory(X, x) and not (x is not given and x.base is None) and not frozen(x):
        tape.X = X.copy()


# ----------------------------------------------------------------------------------------------------------------
# Cells: one time step, the engine run with T = 1
# ----------------------------------------------------------------------------------------------------------------
class _CellBase(Module):
    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype=np.float32, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        # hidden_size=0 is allowed, as torch's cells allow it: the state is (B, 0) and the weights are empty
        self.hidden_size = checks.nonnegative_int("hidden_size", hidden_size)
        self.bias = checks.flag("bias", bias)
        self.nonlinearity = nonlinearity
        self.kernel = _kernel_for(self.mode, nonlinearity)
        self.dtype = dtype_of(dtype)
        g, G, H = init.resolve(rng), self.kernel.gates, self.hidden_size
        k = 1.0 / math.sqrt(H) if H else 0.0
        self.weight_ih = Parameter(init.uniform(g, (G * H, input_size), k, self.dtype))
        self.weight_hh = Parameter(init.uniform(g, (G * H, H), k, self.dtype))
        self.bias_ih = Parameter(init.uniform(g, (G * H,), k, self.dtype)) if bias else None
        self.bias_hh = Parameter(init.uniform(g, (G * H,), k, self.dtype)) if bias else None

    def _params(self) -> dict[str, Parameter | None]:
        return {"W_ih": self.weight_ih, "W_hh": self.weight_hh, "b_ih": self.bias_ih, "b_hh": self.bias_hh}

    def _weights(self) -> engine.Weights:
        p = self._params()
        return engine.Weights(*(None if p[k] is None else p[k].data for k in ("W_ih", "W_hh", "b_ih", "b_hh")))

    def _state(self, name: str, s: Any, B: int, batched: bool) -> np.ndarray:
        if s is None:
            return np.zeros((B, self.hidden_size), dtype=self.dtype)
        what = "(B, hidden_size)" if batched else "(hidden_size,)"
        s = float_array(name, s, self.dtype, (2,) if batched else (1,), what)
        shape_is(name, s, (B, self.hidden_size) if batched else (self.hidden_size,), what)
        return s if batched else s[None]

    def _step(self, x: np.ndarray, h: Any, c: Any) -> tuple[np.ndarray, np.ndarray | None, bool]:
        _check_nonlinearity(self)
        given = x
        x = float_array("input", x, self.dtype, (1, 2), "(B, input_size) or (input_size,)")
        batched = x.ndim == 2
        checks.last_dim("input", x, self.input_size, "input_size")
        x2 = x if batched else x[None]
        B = x2.shape[0]
        h0 = self._state("hx[0]" if self.kernel.has_cell else "hx", h, B, batched)
        c0 = self._state("hx[1]", c, B, batched) if self.kernel.has_cell else None
        if B == 0 or self.hidden_size == 0:   # torch's empty results, without running the engine on empty arrays
            self._save((_Empty(1, B, x2.shape), batched))
            h1 = np.zeros((B, self.hidden_size), self.dtype)
            c1 = h1.copy() if self.kernel.has_cell else None
            return (h1, c1, batched) if batched else (h1[0], None if c1 is None else c1[0], batched)
        keep_tape = is_grad_enabled()   # under no_grad a step keeps nothing for backward
        _, h1, c1, tape = engine.forward(self.kernel, self._weights(), x2[None], h0, c0, None, keep_tape)
        if keep_tape:   # the tape is backward's own: no caller's buffer in it, h1 and c1 read-only
            _own_input(tape, x, given)
            freeze(h1, c1)
            self._save((tape, batched))
        if not batched:
            return h1[0], (c1[0] if c1 is not None else None), batched
        return h1, c1, batched

    def _step_backward(self, dh: Any, dc: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        tape, batched = self._peek()   # validate first, then pop
        B = tape.B
        dh = None if dh is None else self._state("dh", dh, B, batched)
        dc = None if dc is None else self._state("dc", dc, B, batched)
        self._pop()
        if isinstance(tape, _Empty):
            dx, dh0 = _empty_backward(self._params().values(), tape.x_shape, (B, self.hidden_size))
            dc0 = dh0.copy() if self.kernel.has_cell else None
            return (dx, dh0, dc0) if batched else (dx[0], dh0[0], None if dc0 is None else dc0[0])
        dX, dh0, dc0, grads = engine.backward(self.kernel, self._weights(), tape, None, dh, dc)
        _accumulate(self._params(), grads)
        dx = dX[0]
        if not batched:
            return dx[0], dh0[0], (dc0[0] if dc0 is not None else None)
        return dx, dh0, dc0

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"   # unquoted, as torch prints it
        return s


class _Empty:
    """The forward cache of a call on an empty batch (B = 0) or a zero-width cell (hidden_size = 0): torch returns
    empty (or zero-width) results there and its backward gives empty input gradients and zero weight gradients;
    minirnn does the same at the layer, without running the engine."""

    def __init__(self, T: int, B: int, x_shape: tuple[int, ...]) -> None:
        self.T, self.B, self.x_shape = T, B, x_shape


def _empty_backward(params: Any, x_shape: tuple[int, ...], state_shape: tuple[int, ...]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Zero gradients for an ``_Empty`` forward: each parameter's grad gets zeros (torch's, not None)."""
    dtype = None
    for p in params:
        if p is not None:
            p.accumulate(np.zeros_like(p.data))
            dtype = p.data.dtype
    return np.zeros(x_shape, dtype), np.zeros(state_shape, dtype)


class RNNCell(_CellBase):
    """h' = f(W_ih x + b_ih + W_hh h + b_hh), f in {'tanh', 'relu', 'sigmoid'} ('sigmoid' is beyond torch).

    ``h1 = cell(x, h)``: x (B, input_size) or (input_size,), h of (B, hidden_size)/(hidden_size,) or None (zeros).
    ``dx, dh = cell.backward(dh1)``: one call per forward call, in reverse order (LIFO).
    """

    def forward(self, input: np.ndarray, hx: np.ndarray | None = None) -> np.ndarray:
        h, _, _ = self._step(input, hx, None)
        return h

    def backward(self, dh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dh0, _ = self._step_backward(dh)
        return dx, dh0


class GRUCell(_CellBase):
    """torch.nn.GRUCell: ``h1 = cell(x, h)``; ``dx, dh = cell.backward(dh1)``. Equations in ``kernels.GRUKernel``."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, "tanh", dtype, rng)

    forward = RNNCell.forward
    backward = RNNCell.backward


class LSTMCell(_CellBase):
    """torch.nn.LSTMCell: ``h1, c1 = cell(x, (h, c))`` or ``cell(x)``; ``dx, (dh, dc) = cell.backward((dh1, dc1))``.

    Either of dh1, dc1 may be None; ``cell.backward(dh1, dc1)`` is accepted too. Equations in ``kernels.LSTMKernel``.
    """

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, "tanh", dtype, rng)

    def forward(self, input: np.ndarray, hx: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        h, c = checks.pair("hx", hx, ("h_0", "c_0"), allow_none_items=False)
        h1, c1, _ = self._step(input, h, c)
        return h1, c1

    def backward(self, dhc: Any, dc: np.ndarray | None = None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        if isinstance(dhc, (tuple, list)):
            if dc is not None:
                raise TypeError("dc: expected None when the first argument is the pair (dh, dc), got an array")
            dh, dc = checks.pair("dhc", dhc, ("dh", "dc"))
        else:
            dh = dhc
        dx, dh0, dc0 = self._step_backward(dh, dc)
        return dx, (dh0, dc0)


# ----------------------------------------------------------------------------------------------------------------
# Sequence layers: stacking, directions, dropout between layers and lengths around the engine
# ----------------------------------------------------------------------------------------------------------------
class _TimeMap:
    """How each direction visits time, and lengths as a shrinking batch.

    With ``lengths`` the batch is sorted longest first (``order``), as ``pack_padded_sequence`` does, so that at
    step t the active sequences are the first ``batch_sizes[t]`` rows: the engine shrinks its batch instead of
    masking it. Inside the stack everything is in sorted order; ``sort``/``unsort`` cross the boundary (on axis 1,
    the batch axis of (T, B, ...) sequences and (L*D, B, ...) states). Lengths all equal to T are no lengths.
    Forward visits time as given; reverse runs each sequence from its own last valid step: ``rev`` (T, B) maps
    step t of the reversed run to the original step of (sorted) sequence b, and is its own inverse.
    """

    def __init__(self, T: int, B: int, lengths: np.ndarray | None) -> None:
        self.order = self.inverse = self.batch_sizes = self.rev = None
        if lengths is None or (lengths == T).all():
            return
        order = np.argsort(-lengths, kind="stable")
        if (order != np.arange(B)).any():
            self.order, self.inverse = order, np.argsort(order)
        ls = lengths[order]
        t = np.arange(T)[:, None]
        active = t < ls[None, :]                            # (T, B): step t of sequence b is within its length
        self.batch_sizes = active.sum(axis=1)
        self.rev = np.where(active, ls[None, :] - 1 - t, t)
        self.cols = np.arange(B)
        steps, seqs = np.nonzero(active)                    # the active (step, sequence) pairs, step after step
        self.rev_rows = (self.rev[steps, seqs], seqs)

    def sort(self, a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or self.order is None else a[:, self.order]

    def unsort(self, a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or self.order is None else a[:, self.inverse]

    def reverse(self, a: np.ndarray) -> np.ndarray:
        return a[::-1] if self.rev is None else a[self.rev, self.cols]

    def reversed_input(self, a: np.ndarray) -> np.ndarray:
        """The reverse run's input: reverse(a) (T, B, ...), or with lengths its packed rows (N, ...) as the engine
        takes them, gathered straight from a: no padded reversed copy (4 MB of the name classifier's peak)."""
        return a[::-1] if self.rev is None else a[self.rev_rows]

    def put_reversed(self, dst: np.ndarray, src: np.ndarray) -> None:
        """dst[...] = reverse(src), written in place (a scatter with lengths): no reversed temporary."""
        if self.rev is None:
            np.copyto(dst, src[::-1])
        else:
            dst[self.rev, self.cols] = src

    def add_reversed(self, dst: np.ndarray, src: np.ndarray) -> None:
        """dst += reverse(src) for (T, B, ...) arrays, a few steps at a time: no (T, B, ...) temporary (with
        lengths, reverse() is a gather; a whole one was 4 MB of the name classifier's peak). Exact: each (step,
        sequence) pair of src lands on one of dst, so a chunk never repeats a target."""
        if self.rev is None:
            np.add(dst, src[::-1], out=dst)
            return
        k = max(1, (1 << 20) // max(1, src[0].nbytes))
        for t0 in range(0, len(src), k):
            dst[self.rev[t0:t0 + k], self.cols] += src[t0:t0 + k]


_NOT_GIVEN: Any = object()


def _no_proj_size(proj_size: Any) -> None:
    """torch's RNN and GRU refuse the argument whenever it is passed (even 0), in these words."""
    if proj_size is not _NOT_GIVEN:
        raise ValueError(f"proj_size argument is only supported for LSTM, not RNN or GRU (got proj_size={proj_size!r})")


def _strict_bool(name: str, value: Any) -> bool:
    """torch 2.13's check of ``bias`` and ``batch_first`` on RNN/LSTM/GRU: exactly a bool."""
    if not isinstance(value, bool):
        kind = type(value).__name__
        if type(value).__module__ != "builtins":
            kind = f"{type(value).__module__}.{kind}"   # numpy.bool, not torch's ambiguous "bool"
        raise TypeError(f"{name} should be of type bool, got: {kind} ({value!r:.40})")
    return value


@lru_cache(maxsize=None)
def _param_names(layer: int, d: int) -> tuple[tuple[str, str], ...]:
    """(engine name, torch name) of layer ``layer``, direction ``d``: ("W_ih", "weight_ih_l0_reverse"), ..."""
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    return tuple((k, v + sfx) for k, v in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"),
                                           ("b_hh", "bias_hh"), ("W_hr", "weight_hr")))


class _RNNBase(Module):
    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=np.float32, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.num_layers = positive_int("num_layers", num_layers)
        self.nonlinearity = nonlinearity
        self.kernel = _kernel_for(self.mode, nonlinearity)
        # torch 2.13 accepts exactly a bool here (1 and numpy bools are TypeErrors, in its words)
        self.bias = _strict_bool("bias", bias)
        self.batch_first = _strict_bool("batch_first", batch_first)
        self.dropout = check_dropout(dropout)
        if self.dropout > 0 and self.num_layers == 1:   # torch's warning, word for word, pointing at the caller
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        self.bidirectional = checks.flag("bidirectional", bidirectional)
        proj_size = checks.nonnegative_int("proj_size", proj_size)
        if proj_size >= hidden_size and proj_size:
            raise ValueError(f"proj_size: expected less than hidden_size={hidden_size}, got {proj_size}")
        self.proj_size = int(proj_size)
        self.dtype = dtype_of(dtype)
        self.rng = init.resolve(rng)
        D, G, H = self.num_directions, self.kernel.gates, self.hidden_size
        P = self.proj_size or H
        k = 1.0 / math.sqrt(H)
        for layer in range(self.num_layers):
            layer_input = input_size if layer == 0 else P * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "weight_ih" + sfx, Parameter(init.uniform(self.rng, (G * H, layer_input), k, self.dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(init.uniform(self.rng, (G * H, P), k, self.dtype)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(init.uniform(self.rng, (G * H,), k, self.dtype)))
                    setattr(self, "bias_hh" + sfx, Parameter(init.uniform(self.rng, (G * H,), k, self.dtype)))
                if self.proj_size:
                    setattr(self, "weight_hr" + sfx, Parameter(init.uniform(self.rng, (P, H), k, self.dtype)))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _out_size(self) -> int:
        return self.proj_size or self.hidden_size

    def _params(self, layer: int, d: int) -> dict[str, Parameter | None]:
        """The engine's names for one layer and direction's parameters (None where there is none), looked up by
        torch's names at every call: a parameter re-assigned after construction (tied weights) is the one used."""
        get = self._parameters.get
        return {k: get(name) for k, name in _param_names(layer, d)}

    def _weights(self, layer: int, d: int) -> engine.Weights:
        return engine.Weights(*(None if p is None else p.data for p in self._params(layer, d).values()))

    # ---- argument handling ------------------------------------------------------------------------------
    def _lengths(self, lengths: Any, T: int, B: int) -> np.ndarray | None:
        if lengths is None:
            return None
        return checks.lengths_array("lengths", lengths, T, B)

    def _state(self, name: str, s: Any, B: int, batched: bool, size: int) -> np.ndarray:
        LD = self.num_layers * self.num_directions
        if s is None:
            return np.zeros((LD, B, size), dtype=self.dtype)
        what = "num_layers * num_directions, " + ("B, " if batched else "") + ("proj_size" if size != self.hidden_size
                                                                             else "hidden_size")
        s = float_array(name, s, self.dtype, (3,) if batched else (2,), f"({what})")
        shape_is(name, s, (LD, B, size) if batched else (LD, size), f"({what})")
        return s if batched else s[:, None, :]

    def _to_seq_first(self, name: str, a: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return a[:, None, :]
        return a.transpose(1, 0, 2) if self.batch_first else a

    def _from_seq_first(self, a: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return a[:, 0, :]
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.batch_first else a

    def _check_structure(self) -> None:
        """The attributes that shaped the parameters (num_layers, bidirectional, input_size, hidden_size,
        proj_size) must still describe them: one set after construction would otherwise run another network (a
        2-layer RNN told num_layers = 1 silently drops its second layer)."""
        L = self.num_layers
        D = 2 if self.bidirectional is True else (1 if self.bidirectional is False else 0)
        p = self._parameters
        last = p.get(f"weight_hh_l{L - 1}" + ("_reverse" if D == 2 else "")) if type(L) is int and L >= 1 else None
        first = p.get("weight_ih_l0")
        if (last is None or D == 0 or f"weight_ih_l{L}" in p or (D == 1 and "weight_ih_l0_reverse" in p)
                or last.data.shape != (self.kernel.gates * self.hidden_size, self._out_size)
                or first.data.shape[1] != self.input_size):
            raise ValueError(
                f"{type(self).__name__}: num_layers={L!r}, bidirectional={self.bidirectional!r}, "
                f"input_size={self.input_size!r}, hidden_size={self.hidden_size!r}, proj_size={self.proj_size!r} "
                "no longer describe its parameters (changed after construction?); build a new layer instead")

    # ---- forward and BPTT -----------------------------------------------------------------------------------
    def _run(self, x: np.ndarray, h0: Any, c0: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        # attributes a user may have set since construction, checked where they are used
        self._check_structure()
        _check_nonlinearity(self)
        checks.flag("batch_first", self.batch_first)
        training = checks.flag("training", self.training)
        dropout = check_dropout(self.dropout) if training else 0.0
        given = x
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        x = float_array("input", x, self.dtype, (2, 3), f"{layout} or unbatched (T, input_size)")
        batched = x.ndim == 3
        checks.last_dim("input", x, self.input_size, "input_size")
        X = self._to_seq_first("input", x, batched)
        T, B, _ = X.shape
        if T == 0:   # as torch ("Expected sequence length to be larger than 0")
            raise ValueError(f"input: expected at least one time step (T >= 1) in {layout}, got shape {x.shape}")
        if not batched and lengths is not None and np.ndim(lengths) == 0:
            lengths = [lengths]
        lens = self._lengths(lengths, T, B) if batched else self._lengths(lengths, T, 1)
        h0 = self._state("hx" if self.mode != "LSTM" else "h_0", h0, B, batched, self._out_size)
        c0 = self._state("c_0", c0, B, batched, self.hidden_size) if self.kernel.has_cell else None
        if B == 0:   # an empty batch: torch's empty outputs (T, 0, D * P) and states (L * D, 0, P), no engine run
            self._save(([_Empty(T, 0, x.shape)], None, _TimeMap(T, 0, None), batched, x.shape))
            out = np.zeros((T, 0, self.num_directions * self._out_size), self.dtype)
            return self._from_seq_first(out, batched), h0.copy(), None if c0 is None else c0.copy()
        tm = _TimeMap(T, B, lens)
        X, h0, c0 = tm.sort(X), tm.sort(h0), tm.sort(c0)
        keep_tape = is_grad_enabled()
        D = self.num_directions
        layer_in, tapes, drops, h_n = X, [], [], []
        c_n = [] if c0 is not None else None
        for layer in range(self.num_layers):
            layer_out, states = self._layer_forward(layer, layer_in, tm, h0, c0, keep_tape)
            for h, c, tape in states:
                tapes.append(tape)
                h_n.append(h)
                if c_n is not None:
                    c_n.append(c)
            # the tapes hold what backward needs: let this layer's input go before the next one is built
            # (the peak memory of a training step is reached here)
            X = layer_in = None
            layer_in, layer_out = layer_out, None
            drop = None
            if dropout > 0 and layer < self.num_layers - 1:
                drop = dropout_mask(self.rng, layer_in.shape, dropout, self.dtype)   # i.i.d.: no unsort
                layer_in = layer_in * drop
            drops.append(drop)
        out = self._from_seq_first(tm.unsort(layer_in), batched)
        hn = tm.unsort(np.array(h_n))                            # (L * D, B, P): np.stack's result, in less time
        cn = tm.unsort(np.array(c_n)) if c_n is not None else None
        if not batched:
            hn = hn[:, 0]
            cn = cn[:, 0] if cn is not None else None
        if keep_tape:   # the tapes are backward's own: no caller's buffer in them, the outputs read-only
            for tape in tapes[:D]:
                _own_input(tape, x, given)
            freeze(out, hn, cn)
            self._save((tapes, drops, tm, batched, x.shape))
        return out, hn, cn

    def _layer_forward(self, layer: int, layer_in: np.ndarray, tm: _TimeMap, h0: np.ndarray, c0: np.ndarray | None,
                       keep_tape: bool) -> tuple[np.ndarray, list[tuple]]:
        """Every direction of one layer: its output (T, B, D * P) in forward time order, and [(h_n, c_n, tape)] in
        direction order. The forward direction runs here; the reverse one where ``runner_for`` says (here, or in
        the second process meanwhile: ``machinery``), on its time-reversed input, and its output is written
        reversed straight into its half of the layer's output (no reversed copy)."""
        D, P = self.num_directions, self._out_size
        T, B, _ = layer_in.shape
        k = layer * D

        def forward(d: int, run) -> Any:
            X = layer_in if d == 0 else tm.reversed_input(layer_in)
            return run.forward(self.kernel, self._weights(layer, d), X, tm.batch_sizes, h0[k + d],
                               None if c0 is None else c0[k + d], keep_tape)

        if D == 1:
            out, h, c, tape = forward(0, LOCAL).get()
            return out, [(h, c, tape)]
        layer_out = np.empty((T, B, D * P), dtype=self.dtype)
        reverse = forward(1, runner_for(T, B, self.kernel.gates, self.hidden_size))
        try:
            out, h_f, c_f, tape_f = forward(0, LOCAL).get()
            np.copyto(layer_out[:, :, :P], out)
        except BaseException:
            reverse.cancel()                             # its reply, if any, is discarded by the next request
            raise
        with reverse.result() as (out, h, c, tape):     # out may be the second process's memory: used in the block
            tm.put_reversed(layer_out[:, :, P:], out)
        return layer_out, [(h_f, c_f, tape_f), (h, c, tape)]

    def _layer_backward(self, layer: int, d_layer_out: np.ndarray | None, tm: _TimeMap, tapes: list,
                        dh_n: np.ndarray | None, dc_n: np.ndarray | None, dh0: np.ndarray, dc0: np.ndarray | None
                        ) -> np.ndarray:
        """BPTT of every direction of one layer: accumulates the parameter gradients, writes dh0[k] (dc0[k]) of
        each direction k, and returns dX (T, B, I) in forward time order, summed over the directions in place
        (one (T, B, I) array less at the peak). Each direction's backward runs where its forward ran."""
        D, P = self.num_directions, self._out_size

        def backward(d: int) -> Any:
            k = layer * D + d
            dout_d = None if d_layer_out is None else d_layer_out[:, :, d * P:(d + 1) * P]
            if d == 1 and dout_d is not None:
                dout_d = tm.reverse(dout_d)              # into the order the reverse run visits time
            tape, tapes[k] = tapes[k], None              # back-propagated: its memory goes before the next one's
            return runner_of(tape).backward(self.kernel, self._weights(layer, d), tape, dout_d,
                                            None if dh_n is None else dh_n[k], None if dc_n is None else dc_n[k])

        def keep(d: int, dh: np.ndarray, dc: np.ndarray | None, grads: engine.Grads) -> None:
            _accumulate(self._params(layer, d), grads)
            dh0[layer * D + d] = dh
            if dc0 is not None:
                dc0[layer * D + d] = dc

        reverse = backward(1) if D == 2 else None
        try:
            dX, dh, dc, grads = backward(0).get()
            keep(0, dh, dc, grads)
        except BaseException:
            if reverse is not None:
                reverse.cancel()
            raise
        if reverse is not None:
            with reverse.result() as (dX1, dh, dc, grads):   # copied or summed in the block (see _layer_forward)
                keep(1, dh, dc, grads)
                tm.add_reversed(dX, dX1)
        return dX

    def _run_backward(self, dout: Any, dh_n: Any, dc_n: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        # validate against the newest cache before popping it: a bad dout leaves the cache for a corrected retry
        tapes, drops, tm, batched, x_shape = self._peek()
        D, P = self.num_directions, self._out_size
        B = tapes[0].B
        out_shape = x_shape[:-1] + (D * P,)
        if dout is not None:
            dout = float_array("dout", dout, self.dtype, (len(x_shape),), "(the shape of the forward's output)")
            shape_is("dout", dout, out_shape, "(the shape of the forward's output)")
            dout = self._to_seq_first("dout", dout, batched)
        dh_n = None if dh_n is None else self._state("dh_n", dh_n, B, batched, P)
        dc_n = None if dc_n is None else self._state("dc_n", dc_n, B, batched, self.hidden_size)
        self._pop()
        if isinstance(tapes[0], _Empty):
            LD = self.num_layers * D
            dx, dh0 = _empty_backward(self._parameters.values(), x_shape, (LD, 0, P))
            return dx, dh0, np.zeros((LD, 0, self.hidden_size), self.dtype) if self.kernel.has_cell else None
        dout, dh_n, dc_n = tm.sort(dout), tm.sort(dh_n), tm.sort(dc_n)
        dh0 = np.zeros((self.num_layers * D, B, P), dtype=self.dtype)
        dc0 = np.zeros((self.num_layers * D, B, self.hidden_size), dtype=self.dtype) if self.kernel.has_cell else None
        d_layer_out = dout
        for layer in range(self.num_layers - 1, -1, -1):
            if drops[layer] is not None and d_layer_out is not None:
                d_layer_out = d_layer_out * drops[layer]
            d_layer_out = self._layer_backward(layer, d_layer_out, tm, tapes, dh_n, dc_n, dh0, dc0)
        dx = self._from_seq_first(tm.unsort(d_layer_out), batched)
        dh0, dc0 = tm.unsort(dh0), tm.unsort(dc0)
        if not batched:
            dh0 = dh0[:, 0]
            dc0 = dc0[:, 0] if dc0 is not None else None
        return dx, dh0, dc0

    def extra_repr(self) -> str:
        """torch's items in torch's order; ``nonlinearity`` (which torch's RNN repr leaves out) is added last."""
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("proj_size", 0), ("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.mode == "RNN" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNN(_RNNBase):
    """Elman RNN, as torch.nn.RNN: h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), f = tanh | relu | sigmoid.

    ``out, h_n = rnn(x, h0=None, lengths=None)``
        x     (T, B, input_size), (B, T, input_size) with batch_first, or unbatched (T, input_size)
        h0    (num_layers * D, B, H) whatever batch_first is ((num_layers * D, H) unbatched), None -> zeros
        out   (T, B, D * H) (batch_first: (B, T, D * H)),   h_n like h0.     D = 2 if bidirectional else 1
    ``dx, dh0 = rnn.backward(dout, dh_n)``: either argument may be None; shapes as out and h_n.

    Beyond torch: ``nonlinearity='sigmoid'``; ``lengths`` (B,) ints in [1, T] = pack_padded_sequence(x, lengths,
    enforce_sorted=False) -> rnn -> pad_packed_sequence(total_length=T): outputs past a length are 0, h_n is each
    sequence's state at its own last step, the reverse direction starts at each sequence's own end.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, rng: np.random.Generator | int | None = None, *, proj_size: Any = _NOT_GIVEN
                 ) -> None:
        _no_proj_size(proj_size)
        super().__init__(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
                         bidirectional, 0, dtype, rng)

    def forward(self, input: np.ndarray, hx: np.ndarray | None = None, lengths: Any = None
                ) -> tuple[np.ndarray, np.ndarray]:
        out, hn, _ = self._run(input, hx, None, lengths)
        return out, hn

    def backward(self, dout: np.ndarray | None = None, dh_n: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        dx, dh0, _ = self._run_backward(dout, dh_n, None)
        return dx, dh0


class GRU(RNN):
    """torch.nn.GRU (equations in ``kernels.GRUKernel``); shapes, ``lengths`` and backward as ``RNN``."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, rng: np.random.Generator | int | None = None, *, proj_size: Any = _NOT_GIVEN
                 ) -> None:
        _no_proj_size(proj_size)
        _RNNBase.__init__(self, input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout,
                          bidirectional, 0, dtype, rng)


class LSTM(_RNNBase):
    """torch.nn.LSTM (equations in ``kernels.LSTMKernel``), gates (i, f, g, o), optional ``proj_size``.

    ``out, (h_n, c_n) = lstm(x, (h0, c0))`` or ``lstm(x)``; h0/h_n (num_layers * D, B, P), c0/c_n
    (num_layers * D, B, H), P = proj_size or H; out (T, B, D * P). ``lengths`` as for ``RNN`` (beyond torch).
    ``dx, (dh0, dc0) = lstm.backward(dout, (dh_n, dc_n))``: any of these may be None.
    """

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 dtype=np.float32, rng: np.random.Generator | int | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout, bidirectional,
                         proj_size, dtype, rng)

    def forward(self, input: np.ndarray, hx: tuple[np.ndarray, np.ndarray] | None = None, lengths: Any = None
                ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        h0, c0 = checks.pair("hx", hx, ("h_0", "c_0"), allow_none_items=False)
        out, hn, cn = self._run(input, h0, c0, lengths)
        return out, (hn, cn)

    def backward(self, dout: np.ndarray | None = None, dstate: tuple[Any, Any] | None = None
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        dh_n, dc_n = checks.pair("dstate", dstate, ("dh_n", "dc_n"))
        dx, dh0, dc0 = self._run_backward(dout, dh_n, dc_n)
        return dx, (dh0, dc0)
