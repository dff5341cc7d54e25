"""Data utilities: vocabularies, padding, seeded batching, and the course's name files.

Everything here is plain Python and NumPy; nothing depends on the layers, so the same pipeline feeds a
minirnn model and its PyTorch twin (``benchmarks/``) index for index.

    Vocab               token <-> index, with explicit padding and unknown tokens and a stated policy for
                        tokens outside it (``Vocab.ascii()``: character codes 0-127, accents folded)
    fold_to_ascii       NFKD accent folding: "Schröder" -> "Schroder", "Großer" -> "Grosser"
    pad_sequences       list of index sequences -> (B, T) padded array + (B,) lengths
    unpad_sequences     the inverse: padded array + lengths -> list of sequences (torch's unpad_sequence)
    SequenceBatcher     seeded, shuffled mini-batches of padded sequences with lengths and targets
    TensorDataset, DataLoader   torch.utils.data's names for in-memory arrays: equal-length arrays indexed
                        together, and seeded (shuffled) mini-batches of them
    read_name_csv       the course's gzip CSV (rows ``name,language``, no header)
    split_text, stream_batches   a long token stream for truncated-BPTT language models

Shapes: B batch, T time (longest sequence in the batch), N number of examples.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import unicodedata
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

__all__ = [
    "Vocab", "fold_to_ascii", "pad_sequences", "unpad_sequences", "Batch", "SequenceBatcher", "read_name_csv",
    "split_text", "stream_batches", "NORMALIZERS", "TensorDataset", "DataLoader", "default_collate",
]

# Letters that NFKD does not decompose but that have a conventional ASCII spelling.
_ASCII_EXTRA = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i", "ŀ": "l", "Ŀ": "L",
}


def fold_to_ascii(text: str) -> str:
    """Fold accented letters to ASCII: Unicode NFKD, then drop the combining marks.

    "Schröder" -> "Schroder", "Echevarría" -> "Echevarria", "Großer" -> "Grosser" (ß, æ, œ, ø, ł, đ, ð, þ, ı
    have no decomposition and use a small fixed table). Characters with no ASCII form (e.g. "中") are kept as
    they are, so a vocabulary then maps them to its unknown token.
    """
    if text.isascii():
        return text
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(ch):
            continue
        out.append(_ASCII_EXTRA.get(ch, ch))
    return "".join(out)


def _identity(text: str) -> str:
    return text


# Named so that a Vocab's policy survives a round trip through a checkpoint (``to_dict``/``from_dict``).
NORMALIZERS: dict[str, Callable[[str], str]] = {"none": _identity, "ascii": fold_to_ascii}


class Vocab:
    """A token <-> index mapping with explicit padding and unknown tokens.

    ``Vocab(tokens, pad="<pad>", unk="<unk>", normalize="none")``: the pad token (if any) gets index 0, the unknown
    token (if any) the next index, then ``tokens`` in their given order (duplicates ignored).

    Policy for tokens outside the vocabulary:
      * a string is first passed through ``normalize`` (``"ascii"``: :func:`fold_to_ascii`, ``"none"``: as is);
      * a token still not in the vocabulary maps to ``unk``; without an unknown token it is an error
        (``KeyError`` naming the token), which is what label vocabularies want.

    ``encode(seq)`` takes a string (its characters are the tokens) or a sequence of tokens and returns an
    int64 array (L,); ``decode(indices)`` joins the tokens back (padding dropped).
    """

    def __init__(self, tokens: Iterable[str] = (), *, pad: str | None = "<pad>", unk: str | None = "<unk>",
                 normalize: str = "none") -> None:
        if normalize not in NORMALIZERS:
            raise ValueError(f"normalize: expected one of {sorted(NORMALIZERS)}, got {normalize!r}")
        if pad is not None and pad == unk:
            raise ValueError(f"pad and unk must be different tokens, both are {pad!r}")
        self.normalize = normalize
        self._norm = NORMALIZERS[normalize]
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        self.pad = pad
        self.unk = unk
        for special in (pad, unk):
            if special is not None:
                self._add(special)
        for tok in tokens:
            if not isinstance(tok, str):
                raise TypeError(f"tokens: expected strings, got {type(tok).__name__} ({tok!r})")
            if tok not in self.stoi:
                self._add(tok)

    def _add(self, tok: str) -> None:
        self.stoi[tok] = len(self.itos)
        self.itos.append(tok)

    # ---- constructors -----------------------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Iterable[Iterable[str]], *, min_count: int = 1, pad: str | None = "<pad>",
              unk: str | None = "<unk>", normalize: str = "none") -> "Vocab":
        """Every token seen at least ``min_count`` times in ``texts`` (after ``normalize``), sorted (deterministic)."""
        if min_count < 1:
            raise ValueError(f"min_count: expected a positive integer, got {min_count!r}")
        norm = NORMALIZERS.get(normalize)
        if norm is None:
            raise ValueError(f"normalize: expected one of {sorted(NORMALIZERS)}, got {normalize!r}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(norm(text) if isinstance(text, str) else text)
        specials = {pad, unk}
        kept = sorted(t for t, n in counts.items() if n >= min_count and t not in specials)
        return cls(kept, pad=pad, unk=unk, normalize=normalize)

    @classmethod
    def ascii(cls) -> "Vocab":
        """Character codes as indices: ``index == ord(c)`` for the 128 ASCII characters (the seed's N_CHARS=128).

        Padding is index 0 (NUL), the unknown token is index 26 (SUB, ASCII's own "substitute character").
        Policy: accents are folded first (``normalize="ascii"``: "Schröder" -> "Schroder", "Großer" ->
        "Grosser"); a character with no ASCII form (e.g. "中") becomes SUB. NUL and SUB never occur in names.
        """
        v = cls.__new__(cls)
        v.normalize, v._norm = "ascii", fold_to_ascii
        v.itos = [chr(i) for i in range(128)]
        v.stoi = {c: i for i, c in enumerate(v.itos)}
        v.pad, v.unk = "\x00", "\x1a"
        return v

    # ---- lookups ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, tok: object) -> bool:
        return tok in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, pad={self.pad!r}, unk={self.unk!r}, normalize={self.normalize!r})"

    @property
    def pad_index(self) -> int | None:
        return None if self.pad is None else self.stoi[self.pad]

    @property
    def unk_index(self) -> int | None:
        return None if self.unk is None else self.stoi[self.unk]

    def index(self, token: str) -> int:
        """The index of one token under the policy (normalize, then unknown or KeyError)."""
        i = self.stoi.get(token)
        if i is None:
            i = self.stoi.get(self._norm(token)) if isinstance(token, str) else None
        if i is None:
            if self.unk is None:
                raise KeyError(f"token {token!r} is not in the vocabulary ({len(self)} tokens) and it has no "
                               "unknown token")
            return self.stoi[self.unk]
        return i

    def encode(self, seq: str | Sequence[str]) -> np.ndarray:
        """A string (tokens = its characters) or a sequence of tokens -> int64 indices (L,)."""
        if isinstance(seq, str):
            seq = self._norm(seq)
            if self.unk is not None and len(seq) > 64:      # long texts: one vectorised lookup per distinct char
                return self._encode_long(seq)
            get, unk = self.stoi.get, self.unk_index
            if unk is not None:
                return np.fromiter((get(c, unk) for c in seq), dtype=np.int64, count=len(seq))
        elif not isinstance(seq, (list, tuple, np.ndarray)):
            raise TypeError(f"encode: expected a string or a sequence of tokens, got {type(seq).__name__}")
        return np.fromiter((self.index(t) for t in seq), dtype=np.int64, count=len(seq))

    def _encode_long(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        uniq, inv = np.unique(codes, return_inverse=True)
        table = np.array([self.stoi.get(chr(c), self.unk_index) for c in uniq], dtype=np.int64)
        return table[inv.reshape(-1)]

    def decode(self, indices: Iterable[int], *, sep: str = "", skip_pad: bool = True) -> str:
        """Indices -> the tokens joined by ``sep`` (padding dropped unless ``skip_pad=False``)."""
        out = []
        pad = self.pad_index
        for i in np.asarray(indices, dtype=np.int64).reshape(-1):
            if not 0 <= i < len(self.itos):
                raise IndexError(f"decode: index {i} is outside the vocabulary [0, {len(self.itos)})")
            if skip_pad and i == pad:
                continue
            out.append(self.itos[i])
        return sep.join(out)

    # ---- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (for checkpoints); ``Vocab.from_dict`` rebuilds the same vocabulary."""
        return {"itos": list(self.itos), "pad": self.pad, "unk": self.unk, "normalize": self.normalize}

    def to_array(self) -> np.ndarray:
        """The vocabulary as a uint8 array (UTF-8 JSON of ``to_dict``), so it travels inside any .npz checkpoint."""
        return np.frombuffer(json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8"), dtype=np.uint8).copy()

    @classmethod
    def from_array(cls, a: Any) -> "Vocab":
        """Inverse of ``to_array``."""
        a = np.asarray(a)
        if a.dtype != np.uint8 or a.ndim != 1:
            raise ValueError(f"from_array: expected a 1-D uint8 array (from Vocab.to_array), got {a.dtype} {a.shape}")
        try:
            d = json.loads(a.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"from_array: not a vocabulary written by Vocab.to_array ({e})") from e
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Vocab":
        itos = list(d["itos"])
        pad, unk = d.get("pad"), d.get("unk")
        v = cls.__new__(cls)
        v.normalize = d.get("normalize", "none")
        if v.normalize not in NORMALIZERS:
            raise ValueError(f"from_dict: unknown normalize policy {v.normalize!r}")
        v._norm = NORMALIZERS[v.normalize]
        v.itos = itos
        v.stoi = {t: i for i, t in enumerate(itos)}
        if len(v.stoi) != len(itos):
            raise ValueError("from_dict: itos holds duplicate tokens")
        for name, tok in (("pad", pad), ("unk", unk)):
            if tok is not None and tok not in v.stoi:
                raise ValueError(f"from_dict: the {name} token {tok!r} is not in itos")
        v.pad, v.unk = pad, unk
        return v


# ------------------------------------------------------------------------------------------------------------
# Padding and batching
# ------------------------------------------------------------------------------------------------------------
def pad_sequences(seqs: Sequence[Sequence[int] | np.ndarray], pad_value: int = 0, *, batch_first: bool = True,
                  total_length: int | None = None, dtype: Any = np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Pad variable-length sequences into one array.

    seqs          B sequences of L_b items each (ints, or arrays of shape (L_b, *feature))
    pad_value     the value written past each length
    total_length  pad to this T instead of max(L_b) (as torch's pad_packed_sequence; error if a sequence is longer)
    returns       padded (B, T, *feature) with batch_first, else (T, B, *feature);  lengths (B,) int64

    Empty sequences are allowed here (length 0); the recurrent layers' ``lengths=`` needs every length >= 1.
    """
    if isinstance(seqs, (str, bytes)) or not hasattr(seqs, "__len__"):
        raise TypeError(f"seqs: expected a sequence of sequences, got {type(seqs).__name__}")
    arrays = [np.asarray(s, dtype=dtype) for s in seqs]
    B = len(arrays)
    for b, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"seqs[{b}]: expected a sequence, got a scalar {a!r}")
    lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=B)
    feat = arrays[0].shape[1:] if B else ()
    for b, a in enumerate(arrays):
        if a.shape[1:] != feat:
            raise ValueError(f"seqs[{b}]: item shape {a.shape[1:]} differs from seqs[0]'s {feat}")
    T = int(lengths.max()) if B else 0
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"total_length={total_length} is shorter than the longest sequence ({T})")
        T = int(total_length)
    out = np.full((B, T) + feat, pad_value, dtype=dtype)
    for b, a in enumerate(arrays):
        out[b, : a.shape[0]] = a
    if not batch_first:
        out = np.ascontiguousarray(np.swapaxes(out, 0, 1))
    return out, lengths


def unpad_sequences(padded: np.ndarray, lengths: Sequence[int] | np.ndarray, *, batch_first: bool = True
                    ) -> list[np.ndarray]:
    """Inverse of :func:`pad_sequences` (torch.nn.utils.rnn.unpad_sequence): cut each row back to its length.

    padded   (B, T, *feature) with batch_first, else (T, B, *feature) -- e.g. a layer's ``out`` run with lengths
    lengths  (B,) ints in [0, T]
    returns  B arrays of shape (L_b, *feature), copies (so they outlive ``padded``)
    """
    padded = np.asarray(padded)
    if padded.ndim < 2:
        raise ValueError(f"padded: expected at least 2 dimensions (batch and time), got shape {padded.shape}")
    if not batch_first:
        padded = np.swapaxes(padded, 0, 1)
    B, T = padded.shape[:2]
    lens = np.asarray(lengths)
    if lens.shape != (B,) or not (np.issubdtype(lens.dtype, np.integer) or lens.size == 0):
        raise ValueError(f"lengths: expected {B} integers (one per sequence), got shape {lens.shape}, "
                         f"dtype {lens.dtype}")
    if lens.size and (lens.min() < 0 or lens.max() > T):
        raise ValueError(f"lengths: expected values in [0, {T}] (T = {T}), got {lens.min()}..{lens.max()}")
    return [padded[b, : int(n)].copy() for b, n in enumerate(lens)]


class Batch(NamedTuple):
    """One mini-batch. x (B, T) padded indices (``(T, B)`` unless batch_first), lengths (B,), y (B,) or None,
    index (B,) the examples' positions in the data set."""

    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    index: np.ndarray


class SequenceBatcher:
    """Seeded, shuffled mini-batches of padded sequences.

    ``for x, lengths, y, index in SequenceBatcher(seqs, targets, batch_size=256, seed=0): ...``

    seqs       N sequences of indices (e.g. ``[vocab.encode(s) for s in names]``)
    targets    (N,) ints (or any array with N rows), or None
    shuffle    a new permutation every pass, drawn from a Generator seeded once: the k-th epoch is the same
               in every run with the same seed, and epochs differ from each other
    bucket     0 = plain shuffled batches. k > 0: take shuffled pools of k*batch_size examples, sort each pool
               by length, cut it into batches and shuffle the batch order; batches then hold similar lengths,
               so less padding (torchtext's BucketIterator)
    sort_within_batch  order each batch by decreasing length (what pack_padded_sequence(enforce_sorted=True) wants)
    drop_last  drop a final batch smaller than batch_size

    Yields ``Batch(x (B, T) int64, lengths (B,), y (B,) or None, index (B,))``; T is the batch's longest length.
    """

    def __init__(self, seqs: Sequence[Sequence[int] | np.ndarray], targets: Any = None, batch_size: int = 32, *,
                 shuffle: bool = True, seed: int | np.random.Generator | None = 0, bucket: int = 0,
                 sort_within_batch: bool = False, drop_last: bool = False, pad_value: int = 0,
                 batch_first: bool = True) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        if isinstance(bucket, bool) or not isinstance(bucket, (int, np.integer)) or bucket < 0:
            raise ValueError(f"bucket: expected a non-negative integer, got {bucket!r}")
        self.seqs = [np.asarray(s, dtype=np.int64) for s in seqs]
        for i, s in enumerate(self.seqs):
            if s.ndim != 1:
                raise ValueError(f"seqs[{i}]: expected a 1-D sequence of indices, got shape {s.shape}")
        self.lengths = np.fromiter((s.shape[0] for s in self.seqs), dtype=np.int64, count=len(self.seqs))
        self.targets = None if targets is None else np.asarray(targets)
        if self.targets is not None and len(self.targets) != len(self.seqs):
            raise ValueError(f"targets: expected {len(self.seqs)} rows (one per sequence), got {len(self.targets)}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.bucket = int(bucket)
        self.sort_within_batch = bool(sort_within_batch)
        self.drop_last = bool(drop_last)
        self.pad_value = pad_value
        self.batch_first = bool(batch_first)

    def __len__(self) -> int:
        n = len(self.seqs)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> list[np.ndarray]:
        n, bs = len(self.seqs), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket:
            pool = bs * self.bucket
            groups = []
            for start in range(0, n, pool):
                chunk = order[start:start + pool]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                groups += [chunk[i:i + bs] for i in range(0, len(chunk), bs)]
            # pools are whole multiples of batch_size, so only the very last batch can be short: keep it last
            full = [g for g in groups if len(g) == bs]
            short = [g for g in groups if len(g) < bs]
            if self.shuffle:
                full = [full[i] for i in self.rng.permutation(len(full))]
            batches = full + short
        else:
            batches = [order[i:i + bs] for i in range(0, n, bs)]
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches = batches[:-1]
        return batches

    def __iter__(self) -> Iterator[Batch]:
        for idx in self._order():
            if self.sort_within_batch:
                idx = idx[np.argsort(-self.lengths[idx], kind="stable")]
            x, lengths = pad_sequences([self.seqs[i] for i in idx], self.pad_value, batch_first=self.batch_first)
            y = None if self.targets is None else self.targets[idx]
            yield Batch(x, lengths, y, idx)


# ------------------------------------------------------------------------------------------------------------
# torch.utils.data for in-memory arrays
# ------------------------------------------------------------------------------------------------------------
class TensorDataset:
    """torch.utils.data.TensorDataset: arrays of N rows each, indexed together along their first axis.

    ``TensorDataset(X, Y)`` with X (N, ...), Y (N, ...): ``ds[i]`` is ``(X[i], Y[i])``, ``len(ds)`` is N, and
    ``ds.tensors`` holds the arrays (converted with ``np.asarray``, not copied when they already are arrays).
    Arrays whose first dimensions differ are a ValueError naming the sizes (torch raises a bare AssertionError,
    "Size mismatch between tensors").
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one array, got none")
        arrays = tuple(np.asarray(t) for t in tensors)
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"tensors[{i}]: expected an array with a first (example) dimension, got a scalar")
        sizes = [a.shape[0] for a in arrays]
        if any(n != sizes[0] for n in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions {sizes} (expected all equal)")
        self.tensors = arrays

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.tensors)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __repr__(self) -> str:
        return f"TensorDataset({', '.join(f'{a.dtype}{list(a.shape)}' for a in self.tensors)})"


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack B samples into one batch, as torch's default_collate: arrays and numbers -> ``np.stack`` (B, ...);
    tuples/lists of fields -> a list with one stacked batch per field (torch returns a list for tuples too);
    dicts -> a dict of stacked batches; strings -> the list of strings."""
    first = samples[0]
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError(f"default_collate: samples hold different numbers of fields "
                             f"({sorted({len(s) for s in samples})})")
        return [default_collate(field) for field in zip(*samples)]
    return np.stack([np.asarray(s) for s in samples])


class DataLoader:
    """torch.utils.data.DataLoader for an in-memory data set: seeded mini-batches, reshuffled every epoch.

    ``for inputs, labels in DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True, seed=0): ...``

    dataset     anything with ``len()`` and ``dataset[i]`` (a TensorDataset is indexed a whole batch at once)
    batch_size  examples per batch (torch's default 1); ``None`` turns batching off: one example at a time,
                as ``dataset[i]``, not stacked (as torch)
    shuffle     False: order 0..N-1. True: a new permutation of all N examples at every ``iter()`` -- every
                epoch -- cut into consecutive batches (torch's RandomSampler + BatchSampler)
    drop_last   drop the last batch when it is smaller than batch_size (otherwise it is kept, and is last)
    generator   a ``numpy.random.Generator`` the permutations are drawn from (torch's ``generator=``, which takes a
                torch.Generator); or
    seed        an int: the same as ``generator=numpy.random.default_rng(seed)``, made once here, so epoch k is
                the same in every run with the same seed and the epochs differ from each other.
                With neither, the permutations come from minirnn's default generator (``minirnn.manual_seed``),
                as torch draws from its global generator (``torch.manual_seed``).
    collate_fn  list of B samples -> batch (default :func:`default_collate`)

    ``len(loader)`` is the number of batches: ceil(N / batch_size), or N // batch_size with drop_last (N with
    batch_size None). A TensorDataset batch is a list of arrays ``[X[idx], Y[idx]]``, each (B, ...), B =
    batch_size except possibly in the last batch; torch gives a list of tensors too.

    The shuffled order cannot equal torch's for the same seed: torch draws its permutation with its own
    generator (``torch.randperm``); here it is ``Generator.permutation``.

    Beyond torch: ``seed=``. Left out: samplers, worker processes, pinning and prefetching (in-memory arrays need
    none of them); for another order, index the arrays in that order first.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool = False, *, drop_last: bool = False,
                 generator: np.random.Generator | None = None, seed: int | None = None,
                 collate_fn: Callable[[list[Any]], Any] | None = None) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"dataset: expected a map-style data set (with len() and [index]), got "
                            f"{type(dataset).__name__}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle: expected True or False, got {shuffle!r} of type {type(shuffle).__name__}")
        if not isinstance(drop_last, (bool, np.bool_)):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last!r}")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if generator is not None and seed is not None:
            raise ValueError("generator and seed: give one of them (seed=s is generator=numpy.random.default_rng(s))")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator: expected a numpy.random.Generator, got {type(generator).__name__}")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
            generator = np.random.default_rng(int(seed))
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn: expected a callable, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _indices(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if self.generator is None:
            from . import init              # minirnn's default generator, reset by manual_seed
            return init.default_generator().permutation(n)
        return self.generator.permutation(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._indices()                  # drawn when the epoch starts, as torch's RandomSampler
        if self.batch_size is None:
            for i in order:
                yield self.dataset[int(i)]
            return
        bs = self.batch_size
        stop = (len(order) // bs) * bs if self.drop_last else len(order)
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for start in range(0, stop, bs):
            idx = order[start:start + bs]
            if fast:                             # one fancy index per array == stacking the rows
                yield [a[idx] for a in self.dataset.tensors]
            else:
                yield (self.collate_fn or default_collate)([self.dataset[int(i)] for i in idx])

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


# ------------------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------------------
def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, "rt", encoding="utf-8", newline="")


def read_name_csv(path: str | os.PathLike, *, limit: int | None = None) -> tuple[list[str], list[str]]:
    """Read the course's name file: CSV rows ``name,language`` with no header, gzip-compressed or plain.

    Returns ``(names, labels)``, two lists of N strings in file order (``limit``: only the first rows).
    Names keep their accents; the vocabulary decides what to do with them. A name holding a comma is quoted
    (``"Lytkin,",Russian``) and read back correctly. A row without exactly two fields, or with an empty
    field, is an error naming the file and line.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"read_name_csv: no such file {os.fspath(path)!r}")
    names: list[str] = []
    labels: list[str] = []
    try:
        with _open_text(path) as f:
            for line_no, row in enumerate(csv.reader(f), start=1):
                if not row:
                    continue
                if len(row) != 2 or not row[0] or not row[1]:
                    shown = repr(row) if len(repr(row)) <= 80 else repr(row)[:77] + "..."
                    raise ValueError(f"{os.fspath(path)}, line {line_no}: expected 'name,language', got {shown}")
                names.append(row[0])
                labels.append(row[1].strip())
                if limit is not None and len(names) >= limit:
                    break
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise ValueError(f"{os.fspath(path)}: not a readable UTF-8 (optionally gzip) CSV file: {e}") from e
    if not names:
        raise ValueError(f"{os.fspath(path)}: no rows")
    return names, labels


# ------------------------------------------------------------------------------------------------------------
# Token streams for language models (truncated BPTT)
# ------------------------------------------------------------------------------------------------------------
def split_text(text: str, holdout: float = 0.1) -> tuple[str, str]:
    """``(train, heldout)``: the last ``holdout`` fraction of the text is held out (no shuffling: text is a stream)."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout: expected a fraction in (0, 1), got {holdout!r}")
    cut = int(round(len(text) * (1.0 - holdout)))
    if cut < 2 or len(text) - cut < 2:
        raise ValueError(f"text of {len(text)} characters is too short to hold out {holdout:.0%} of it")
    return text[:cut], text[cut:]


def stream_batches(ids: np.ndarray, batch_size: int, seq_len: int, *, offset: int = 0
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cut a token stream into B parallel rows and walk them in chunks, for truncated BPTT with a carried state.

    ids (N,) -> the stream is trimmed to B rows of M = (N - 1 - offset) // B tokens; chunk k yields
    ``x (B, L) = rows[:, k*seq_len : k*seq_len + L]`` and ``y`` = the same shifted by one (the next tokens),
    L = seq_len except possibly in the last chunk. Row b of chunk k+1 continues row b of chunk k, so the final
    state of one chunk is the right initial state of the next. ``offset`` shifts the start (vary it per epoch).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids: expected a 1-D integer array, got shape {ids.shape}, dtype {ids.dtype}")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size}, {seq_len}")
    if not 0 <= offset < max(1, len(ids) - 1):
        raise ValueError(f"offset: expected in [0, {len(ids) - 1}), got {offset}")
    M = (len(ids) - 1 - offset) // batch_size
    if M < 1:
        raise ValueError(f"a stream of {len(ids)} tokens is too short for {batch_size} rows")
    x_all = ids[offset: offset + batch_size * M].reshape(batch_size, M)
    y_all = ids[offset + 1: offset + 1 + batch_size * M].reshape(batch_size, M)
    for start in range(0, M, seq_len):
        yield x_all[:, start:start + seq_len], y_all[:, start:start + seq_len]
