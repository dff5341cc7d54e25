"""Linear, Embedding and Dropout, each forward beside its backward; what keeps the tapes safe from in-place changes.

In-place changes between forward and backward (torch raises "modified by an inplace operation" at backward):
here they cannot change a gradient. What a layer keeps for backward is its own memory: an input the layer keeps
(Linear's x, Embedding's indices, a recurrent layer's x) is copied unless it is already private (converted by
the layer) or read-only (``frozen``: typically the read-only output of the layer before); and while gradients
are enabled, the arrays a recurrent layer or cell returns (out, h_n, c_n, h', c'), which are its tape, are made
read-only (``freeze``): changing one raises NumPy's "assignment destination is read-only" at once. Copy it
(``out.copy()``) to change it. Under ``no_grad()`` nothing is kept and the outputs stay writeable.
The copy of an input costs its size in memory until backward (one (T, B, input_size) array for a sequence layer);
an input you will not change can be passed read-only (``x.flags.writeable = False``) and is then kept as it is.
""" 
from __future__ import annotations

import math

import numpy as np

from . import init
from . import checks
from .checks import dtype_of, float_array, index_array, positive_int
from .module import Module, Parameter, is_grad_enabled


def frozen(a: np.ndarray) -> bool:
    """True when no one can change ``a`` without first setting a writeable flag back on: ``a`` is read-only and
    so is the memory under it (its base arrays; immutable bytes)."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        if a.base is None:
            return True
        a = a.base
    return isinstance(a, bytes)


def freeze(*arrays: np.ndarray | None) -> None:
    """Make arrays the layer returns, and the tape memory under them, read-only (see the module docstring)."""
    for a in arrays:
        while isinstance(a, np.ndarray) and a.flags.writeable:
            a.flags.writeable = False
            a = a.base


def kept(a: np.ndarray, given: object) -> np.ndarray:
    """``a`` (the layer's validated input, ``given`` as the caller passed it), safe to keep for backward: ``a``
    itself when it is private (a conversion made it) or frozen, else a copy (the caller may reuse its buffer)."""
    if (a is not given and a.base is None) or frozen(a):
        return a
    return a.copy()


class Linear(Module):
    """y = x W^T + b, as torch.nn.Linear.

    x (*, in_features) -> y (*, out_features); weight (out_features, in_features), bias (out_features,).
    backward(dy (*, out)) -> dx (*, in); dW = dy^T x, db = sum dy over the leading dims.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        bias = checks.flag("bias", bias)
        self.dtype = dtype_of(dtype)
        g = init.resolve(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(init.uniform(g, (out_features, in_features), bound, self.dtype))
        self.bias = Parameter(init.uniform(g, (out_features,), bound, self.dtype)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        given = x
        x = float_array("x", x, self.dtype, range(1, 65), "(*, in_features)")
        checks.last_dim("x", x, self.in_features, "in_features")
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        if is_grad_enabled():
            self._save(kept(x, given))      # backward's dW = dy^T x must see the x of this forward
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self._peek()   # validate first, then pop
        dy = float_array("dy", dy, self.dtype, (x.ndim,), "(*, out_features)")
        checks.shape_is("dy", dy, x.shape[:-1] + (self.out_features,), "(*, out_features)")
        self._pop()
        dy2 = dy.reshape(-1, self.out_features)
        self.weight.accumulate(dy2.T @ x.reshape(-1, self.in_features))
        if self.bias is not None:
            self.bias.accumulate(dy2.sum(axis=0))
        return dy @ self.weight.data

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """Row lookup, as torch.nn.Embedding: indices (*) -> vectors (*, embedding_dim).

    weight (num_embeddings, embedding_dim) ~ N(0, 1), the ``padding_idx`` row zero and never updated.
    backward(dy (*, D)) scatters dy into the looked-up rows and returns None (indices have no gradient).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype=np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.num_embeddings = positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        padding_idx = checks.optional_index("padding_idx", padding_idx, self.num_embeddings)
        self.padding_idx = padding_idx
        self.dtype = dtype_of(dtype)
        w = init.normal(init.resolve(rng), (num_embeddings, embedding_dim), self.dtype)
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w)

    def forward(self, indices: np.ndarray) -> np.ndarray:
        idx = index_array("indices", indices, self.num_embeddings)
        if is_grad_enabled():
            self._save(kept(idx, indices))
        return self.weight.data[idx]

    def backward(self, dy: np.ndarray) -> None:
        idx = self._peek()   # validate first, then pop
        dy = float_array("dy", dy, self.dtype, (idx.ndim + 1,), "(*indices.shape, embedding_dim)")
        checks.shape_is("dy", dy, idx.shape + (self.embedding_dim,), "(*indices.shape, embedding_dim)")
        self._pop()
        dW = np.zeros_like(self.weight.data)
        # repeated indices add up: rows grouped by index with a sort and summed by reduceat (~10x faster than
        # np.add.at, which updates one row at a time)
        flat = idx.reshape(-1)
        if len(flat):
            order = np.argsort(flat, kind="stable")
            ordered = flat[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])   # first row of each index's run
            dW[ordered[starts]] = np.add.reduceat(dy.reshape(-1, self.embedding_dim)[order], starts, axis=0)
        if self.padding_idx is not None:
            dW[self.padding_idx] = 0
        self.weight.accumulate(dW)
        return None

    @classmethod
    def from_pretrained(cls, embeddings: np.ndarray, freeze: bool = True, padding_idx: int | None = None
                        ) -> "Embedding":
        """An Embedding holding a copy of ``embeddings`` (num_embeddings, embedding_dim), as torch's: frozen
        (``weight.requires_grad`` False, never trained) unless ``freeze=False``; torch's argument order."""
        e = float_array("embeddings", embeddings, None, (2,), "(num_embeddings, embedding_dim)")
        freeze = checks.flag("freeze", freeze)
        m = cls(e.shape[0], e.shape[1], padding_idx=padding_idx, dtype=e.dtype)
        m.weight.data = np.array(e, copy=True)
        m.weight.requires_grad = not freeze
        return m

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


def check_dropout(p: float, name: str = "dropout") -> float:
    """A drop probability in [0, 1], as torch's. Called where the probability is used too, so that a value set
    after construction (``rnn.dropout = 1.5``) is refused there as well."""
    return checks.probability(name, p)


def dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype) -> np.ndarray:
    """Inverted dropout: keep with probability 1-p and scale by 1/(1-p), so evaluation needs no rescaling.

    Each element keeps when 32 raw random bits are >= ceil(p * 2**32): a keep probability within 2.4e-10 of 1-p,
    at half the cost of drawing floats (the mask was 3% of a name-classifier epoch)."""
    if p == 1.0:   # everything dropped, as torch's x * 0 (no 1 / (1 - p)); a NaN input stays NaN, as there
        return np.zeros(shape, dtype)
    size = math.prod(shape)
    bits = rng.bit_generator.random_raw((size + 1) // 2).view(np.uint32)[:size].reshape(shape)
    threshold = np.uint32(min(math.ceil(p * 2.0 ** 32), 2 ** 32 - 1))
    return np.multiply(bits >= threshold, dtype.type(1.0 / (1.0 - p)), dtype=dtype)


class Dropout(Module):
    """Inverted dropout, active only in training mode: y = x * mask / (1 - p); dx = dy * mask / (1 - p).

    p in [0, 1], as torch: p = 1 gives zeros (and zero gradients)."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.p = check_dropout(p, "p")
        self.rng = init.resolve(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = float_array("x", x, None, range(0, 65))
        p = check_dropout(self.p, "p")   # attributes a user may have set since construction
        if not checks.flag("training", self.training) or p == 0.0:
            self._save((None, x.shape, x.dtype))
            return x
        mask = dropout_mask(self.rng, x.shape, p, x.dtype)
        self._save((mask, x.shape, x.dtype))
        return x * mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        mask, shape, dtype = self._peek()   # validate first, then pop
        dy = float_array("dy", dy, dtype, (len(shape),), "(the shape of the forward's input)")
        checks.shape_is("dy", dy, shape, "(the shape of the forward's input)")
        self._pop()
        return dy if mask is None else dy * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"   # torch's repr (minirnn's Dropout is never in place)
