"""Export to ONNX for serving (onnxruntime, on CPUs and GPUs), with ONNX's own RNN, LSTM and GRU operators.

Needs the optional extra ``pip install "minirnn[onnx]"`` (``onnx``, and ``onnxruntime`` for the check); nothing
here imports them until ``export_onnx`` is called.

    minirnn.export_onnx(model, "m.onnx", (x,))                      # Embedding, Linear, RNN/LSTM/GRU, Sequential
    minirnn.export_onnx(model, "m.onnx", (x, lengths), forward=f)   # a model of your own: f(g, x, lengths) below

A model of your own has a NumPy ``forward`` that cannot be traced, so its graph is written once more with the
builder ``g`` (an ``OnnxGraph``), one line per line of ``forward``::

    def f(g, x, lengths):                                      # the name classifier of examples/name_classifier.py
        emb = g.module(model.embedding, g.transpose(x, (1, 0)))
        _, h_n = g.module(model.gru, emb, None, lengths=lengths)
        return g.module(model.fc, g.concat([g.select(h_n, -2), g.select(h_n, -1)], axis=1))

How minirnn's layers map (ONNX's operator specs, onnx/docs/Operators.md):

* ``Embedding`` -> ``Gather(weight, indices)``; ``Linear`` -> ``MatMul(x, W^T) + bias`` (any leading dims);
  ``Dropout`` -> nothing (the export is for inference); ``Sequential`` -> its children in order.
* ``RNN``/``LSTM``/``GRU`` -> one ONNX ``RNN``/``LSTM``/``GRU`` node per layer with ``direction`` ``forward`` or
  ``bidirectional``; ONNX's ``Y`` (T, D, B, H) is transposed and reshaped to torch's (T, B, D*H), the layers'
  ``Y_h`` (``Y_c``) concatenated to h_n (c_n) (num_layers * D, B, H); ``h0``/``c0`` are sliced per layer;
  ``batch_first`` by a Transpose (onnxruntime's CPU kernels take only ``layout=0``); ``lengths=`` (beyond torch)
  by ``sequence_lens`` (outputs past a length are 0, h_n is each sequence's own last state, as in minirnn).
  Weight layouts: W (D, G*H, input), R (D, G*H, H), B (D, 2*G*H) = [W biases, R biases], with the gates
  reordered: LSTM torch (i, f, g, o) -> ONNX (i, o, f, c); GRU torch (r, z, n) -> ONNX (z, r, h) with
  ``linear_before_reset=1`` (torch applies r to ``W_hn h + b_hn``, ONNX's default applies it before the
  product). RNN activations ``Tanh``, ``Relu`` and ``Sigmoid`` (minirnn's SRN, beyond torch). No bias: B omitted.
* ``LSTM(proj_size>0)`` is refused: ONNX's LSTM has no projection.

The graph is float32 (onnxruntime's recurrent kernels are float32); a float64 model's weights are rounded to
float32. ``export_onnx`` checks the model with ``onnx.checker`` and, by default, runs it with onnxruntime on
the example inputs and compares every output with minirnn's (``verify=True``; the maximum difference is returned).
"""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .serialization import atomic_write
from .layers import Dropout, Embedding, Linear
from .module import Module, Sequential, no_grad
from .recurrent import LSTM, RNN

OPSET = 17
_LSTM_ORDER = (0, 3, 1, 2)   # torch (i, f, g, o) -> ONNX (i, o, f, c)
_GRU_ORDER = (1, 0, 2)       # torch (r, z, n)    -> ONNX (z, r, h)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the onnx package: pip install 'minirnn[onnx]' (onnx, onnxruntime)") \
            from None
    return onnx


class OnnxGraph:
    """A small ONNX graph builder: values are names (str); ``module`` emits a minirnn layer, the rest are the
    few tensor operations a model's own ``forward`` needs between layers."""

    def __init__(self, name: str = "minirnn") -> None:
        self.onnx = _onnx()
        self.name = name
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self._count = 0
        self.ranks: dict[str, int] = {}   # the ranks of the graph's inputs, to refuse what ONNX cannot take

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def input(self, name: str, example: np.ndarray) -> str:
        """A graph input shaped like ``example`` (float -> float32, integer -> int64). Every axis is dynamic but
        a float input's last (its feature size)."""
        helper, TP = self.onnx.helper, self.onnx.TensorProto
        example = np.asarray(example)
        if example.dtype.kind == "f":
            elem, dims = TP.FLOAT, [f"{name}_d{i}" for i in range(example.ndim - 1)] + list(example.shape[-1:])
        elif example.dtype.kind in "iu":
            elem, dims = TP.INT64, [f"{name}_d{i}" for i in range(example.ndim)]
        else:
            raise TypeError(f"{name}: expected a float or integer array, got dtype {example.dtype}")
        self.inputs.append(helper.make_tensor_value_info(name, elem, dims))
        self.ranks[name] = example.ndim
        return name

    def constant(self, value: np.ndarray, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, value: np.ndarray, hint: str) -> str:
        return self.constant(np.ascontiguousarray(value, dtype=np.float32), hint)

    def op(self, op_type: str, *inputs: str | None, outputs: int = 1, **attrs: Any) -> Any:
        """One node; ``None`` inputs are ONNX's empty (omitted optional) inputs. Returns a name or a list."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, ["" if i is None else i for i in inputs], names,
                                                     **attrs))
        return names[0] if outputs == 1 else names

    # ---- tensor operations for a model's own forward ------------------------------------------------------
    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.op("Transpose", x, perm=list(perm))

    def concat(self, xs: Sequence[str], axis: int) -> str:
        return self.op("Concat", *xs, axis=axis)

    def select(self, x: str, index: int, axis: int = 0) -> str:
        """``x[index]`` along ``axis`` (that axis removed), e.g. ``h_n[-1]``."""
        return self.op("Gather", x, self.constant(np.array(index, dtype=np.int64), "index"), axis=axis)

    # ---- minirnn layers ---------------------------------------------------------------------------------
    def module(self, m: Module, *args: Any, **kwargs: Any) -> Any:
        """Emit layer ``m`` applied to ``args`` (names), returning names shaped as ``m(...)``'s outputs."""
        if isinstance(m, Sequential):
            out: Any = args
            for child in m._modules.values():
                out = self.module(child, *(out if isinstance(out, tuple) else (out,)))
            return out
        if isinstance(m, (RNN, LSTM)):     # GRU is an RNN subclass
            return self._recurrent(m, *args, **kwargs)
        if kwargs or len(args) != 1:
            raise TypeError(f"{type(m).__name__}: expected one input, got {len(args)} and {sorted(kwargs)}")
        (x,) = args
        if isinstance(m, Embedding):
            return self.op("Gather", self.weight(m.weight.data, "embedding"), x, axis=0)
        if isinstance(m, Linear):
            y = self.op("MatMul", x, self.weight(m.weight.data.T, "linear_weight_t"))
            return y if m.bias is None else self.op("Add", y, self.weight(m.bias.data, "linear_bias"))
        if isinstance(m, Dropout):
            return x
        raise TypeError(f"export_onnx: no ONNX form for {type(m).__name__}; write its graph with forward= (see "
                        "minirnn.onnx_export)")

    def _recurrent(self, m: Any, x: str, hx: Any = None, lengths: str | None = None) -> Any:
        kind = m.mode
        if kind == "LSTM" and m.proj_size:
            raise ValueError(f"export_onnx: LSTM(proj_size={m.proj_size}) cannot be exported: ONNX's LSTM "
                             "operator has no projection (weight_hr)")
        if self.ranks.get(x, 3) != 3:
            raise ValueError(f"export_onnx: {kind} input {x!r} has rank {self.ranks[x]}; ONNX's {kind} takes "
                             "batched input (T, B, input_size) or (B, T, input_size) with batch_first")
        D, H, L = m.num_directions, m.hidden_size, m.num_layers
        h0, c0 = (hx if hx is not None else (None, None)) if kind == "LSTM" else (hx, None)
        order = {"LSTM": _LSTM_ORDER, "GRU": _GRU_ORDER}.get(kind, (0,))
        attrs: dict[str, Any] = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
        if kind == "RNN":
            attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}[m.nonlinearity]] * D
        if kind == "GRU":
            attrs["linear_before_reset"] = 1
        seq = None if lengths is None else self.op("Cast", lengths, to=self.onnx.TensorProto.INT32)
        layer_in = self.transpose(x, (1, 0, 2)) if m.batch_first else x
        h_parts, c_parts = [], []
        for layer in range(L):
            W, R, B = [], [], []
            for d in range(D):
                w = m._weights(layer, d)
                W.append(_reorder(w.W_ih, order, H))
                R.append(_reorder(w.W_hh, order, H))
                if m.bias:
                    B.append(np.concatenate([_reorder(w.b_ih, order, H), _reorder(w.b_hh, order, H)]))
            states = []
            for s in (h0, c0) if kind == "LSTM" else (h0,):
                states.append(None if s is None else self.op(
                    "Slice", s, self.constant(np.array([layer * D]), "start"),
                    self.constant(np.array([(layer + 1) * D]), "end"), self.constant(np.array([0]), "axes")))
            outs = self.op(kind, layer_in, self.weight(np.stack(W), "W"), self.weight(np.stack(R), "R"),
                           self.weight(np.stack(B), "B") if m.bias else None, seq, *states,
                           outputs=3 if kind == "LSTM" else 2, **attrs)
            h_parts.append(outs[1])
            if kind == "LSTM":
                c_parts.append(outs[2])
            y = self.transpose(outs[0], (0, 2, 1, 3))                    # (T, D, B, H) -> (T, B, D, H)
            layer_in = self.op("Reshape", y, self.constant(np.array([0, 0, -1]), "shape"))   # (T, B, D*H)
        out = self.transpose(layer_in, (1, 0, 2)) if m.batch_first else layer_in
        h_n = h_parts[0] if L == 1 else self.concat(h_parts, axis=0)
        if kind == "LSTM":
            return out, (h_n, c_parts[0] if L == 1 else self.concat(c_parts, axis=0))
        return out, h_n

    def build(self, outputs: Sequence[str], output_names: Sequence[str], ranks: Sequence[int]) -> Any:
        """The ModelProto, outputs renamed to ``output_names`` (by Identity nodes), of the given ranks."""
        helper = self.onnx.helper
        infos = []
        for value, name, rank in zip(outputs, output_names, ranks):
            self.nodes.append(helper.make_node("Identity", [value], [name]))
            infos.append(helper.make_tensor_value_info(name, self.onnx.TensorProto.FLOAT,
                                                       [f"{name}_d{i}" for i in range(rank)]))
        graph = helper.make_graph(self.nodes, self.name, self.inputs, infos, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="minirnn")
        model.ir_version = 8   # the IR of opset 17: readable by every onnxruntime that runs opset 17
        return model


def _reorder(a: np.ndarray, order: Sequence[int], H: int) -> np.ndarray:
    """The gate blocks of rows (each H long) of a weight (G*H, n) or bias (G*H,) in ONNX's order."""
    return np.concatenate([a[g * H:(g + 1) * H] for g in order]) if len(order) > 1 else a


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in _flatten(item)]
    return [out]


def _like(structure: Any, leaves: Any) -> Any:
    """``leaves`` (an iterator) put back into the nesting of tuples and lists of ``structure``."""
    if isinstance(structure, (tuple, list)):
        return tuple(_like(s, leaves) for s in structure)
    return next(leaves)


class OnnxExport(NamedTuple):
    """What ``export_onnx`` returns: the path written and, with ``verify=True``, the largest absolute difference
    between onnxruntime's outputs and minirnn's on the example inputs (None without verification)."""

    path: str
    max_abs_diff: float | None


def export_onnx(model: Module, path: str | os.PathLike, example_inputs: Sequence[Any], *,
                forward: Callable[..., Any] | None = None, input_names: Sequence[str] | None = None,
                output_names: Sequence[str] | None = None, verify: bool = True, atol: float = 1e-4,
                rtol: float = 1e-4) -> OnnxExport:
    """Write ``model`` as an ONNX graph (opset 17) to ``path``, atomically (see the module docstring).

    ``example_inputs``: the arguments ``model(*example_inputs)`` takes: arrays, None (an absent h0: passed to
    ``forward`` as None) or tuples of them (an LSTM's ``(h0, c0)``: one graph input per array, passed to
    ``forward`` as a tuple of names). Their ranks and dtypes fix the graph's inputs (float -> float32, integer
    -> int64, every axis dynamic but a float input's last). ``forward(g, *input_names)`` writes the graph of a
    model of your own; by default ``g.module(model, *inputs)``. ``input_names`` default ``input0, input1, ...``;
    ``output_names`` default ``output0, ...``, one per array ``model(...)`` returns (nested tuples flattened).

    ``verify``: run the graph with onnxruntime on ``example_inputs`` and compare every output with
    ``model(*example_inputs)`` (in eval mode, without gradients); a difference beyond ``atol + rtol * |minirnn|``
    is a ValueError and nothing is written. Needs onnxruntime.
    """
    onnx = _onnx()
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a minirnn Module, got {type(model).__name__}")
    if not isinstance(example_inputs, (tuple, list)):
        raise TypeError(f"example_inputs: expected a tuple of arrays, got {type(example_inputs).__name__}")
    leaves = [None if a is None else np.asarray(a) for a in _flatten(example_inputs)]
    names = list(input_names) if input_names is not None else [f"input{i}" for i in range(len(leaves))]
    if len(names) != len(leaves):
        raise ValueError(f"input_names: expected {len(leaves)} names (one per array of example_inputs, nested "
                         f"tuples flattened), got {len(names)}")
    g = OnnxGraph(type(model).__name__)
    args = _like(example_inputs, iter([None if a is None else g.input(n, a) for n, a in zip(names, leaves)]))
    arrays = _like(example_inputs, iter(leaves))
    outs = _flatten(forward(g, *args) if forward is not None else g.module(model, *args))
    if not all(isinstance(o, str) for o in outs):
        raise TypeError("forward: expected graph values (names returned by the builder), got "
                        f"{[type(o).__name__ for o in outs]}")
    onames = list(output_names) if output_names is not None else [f"output{i}" for i in range(len(outs))]
    if len(onames) != len(outs):
        raise ValueError(f"output_names: expected {len(outs)} names (the graph has {len(outs)} outputs), "
                         f"got {len(onames)}")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            expected = [np.asarray(e) for e in _flatten(model(*arrays))]
    finally:
        model.train(was_training)
    if len(expected) != len(outs):
        raise ValueError(f"forward: the graph has {len(outs)} outputs, the model returns {len(expected)} arrays")
    proto = g.build(outs, onames, [e.ndim for e in expected])
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    diff = _verify(expected, data, leaves, names, onames, atol, rtol) if verify else None

    def write(f: Any) -> None:
        f.write(data)

    return OnnxExport(atomic_write(path, write, "export_onnx"), diff)


def _verify(expected: list[np.ndarray], data: bytes, arrays: list[Any], names: list[str], onames: list[str],
            atol: float, rtol: float) -> float:
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("export_onnx(verify=True) needs onnxruntime: pip install 'minirnn[onnx]', or pass "
                          "verify=False") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feed = {n: a.astype(np.float32 if a.dtype.kind == "f" else np.int64)
            for n, a in zip(names, arrays) if a is not None}
    got = session.run(onames, feed)
    worst = 0.0
    for name, e, o in zip(onames, expected, got):
        if o.shape != e.shape:
            raise ValueError(f"export_onnx: output {name!r} is {o.shape} in onnxruntime, {e.shape} in minirnn")
        d = np.abs(o.astype(np.float64) - e.astype(np.float64))
        worst = max(worst, float(d.max(initial=0.0)))
        if not (d <= atol + rtol * np.abs(e)).all():
            raise ValueError(f"export_onnx: output {name!r} differs from minirnn's by up to {float(d.max()):.3g} "
                             f"(tolerance {atol:g} + {rtol:g}*|value|); nothing was written")
    return worst
