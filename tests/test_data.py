"""minirnn.data: vocabularies and their unknown-token policy, padding, seeded batching, the name files, streams."""
import csv
import gzip
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirnn.data import (SequenceBatcher, Vocab, fold_to_ascii, pad_sequences, read_name_csv, split_text,
                          stream_batches, unpad_sequences)

DATA = os.environ.get("MINIRNN_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
NAMES_TRAIN = os.path.join(DATA, "names_train.csv.gz")

seq_lists = st.lists(st.lists(st.integers(0, 50), min_size=0, max_size=12), min_size=1, max_size=20)


# ---- ASCII folding and the ASCII vocabulary --------------------------------------------------------------------
@pytest.mark.parametrize("raw, folded", [
    ("Schröder", "Schroder"), ("Échevarría", "Echevarria"), ("Großer", "Grosser"), ("Łukasz", "Lukasz"),
    ("Nakamura", "Nakamura"), ("Søren", "Soren"), ("中村", "中村"), ("", ""),
])
def test_fold_to_ascii(raw, folded):
    assert fold_to_ascii(raw) == folded


@given(st.text(max_size=30))
def test_fold_to_ascii_keeps_ascii_and_never_adds_marks(s):
    out = fold_to_ascii(s)
    if s.isascii():
        assert out == s
    assert fold_to_ascii(out) == out                     # idempotent


def test_ascii_vocab_is_character_codes():
    v = Vocab.ascii()
    assert len(v) == 128 and v.pad_index == 0 and v.unk_index == 26
    np.testing.assert_array_equal(v.encode("Dostoevsky"), [ord(c) for c in "Dostoevsky"])
    np.testing.assert_array_equal(v.encode("Müller"), [ord(c) for c in "Muller"])     # accent folded
    np.testing.assert_array_equal(v.encode("Aß中"), [65, 115, 115, 26])               # no ASCII form -> SUB
    assert v.encode("Müller").dtype == np.int64
    assert v.decode(v.encode("Dürr")) == "Durr"


@given(st.text(max_size=40))
def test_ascii_vocab_indices_always_in_range(s):
    idx = Vocab.ascii().encode(s)
    assert idx.dtype == np.int64 and ((idx >= 0) & (idx < 128)).all()


# ---- general vocabularies ------------------------------------------------------------------------------------
def test_build_sorts_and_puts_specials_first():
    v = Vocab.build(["hello", "world"])
    assert v.itos[:2] == ["<pad>", "<unk>"] and v.pad_index == 0 and v.unk_index == 1
    assert v.itos[2:] == sorted(set("helloworld"))
    np.testing.assert_array_equal(v.encode("hold"), [v.stoi[c] for c in "hold"])
    assert v.encode("xyz").tolist() == [1, 1, 1]                   # unknown characters -> <unk>
    assert v.decode(v.encode("hello")) == "hello"


def test_min_count_and_word_tokens():
    v = Vocab.build([["the", "cat"], ["the", "dog"]], min_count=2)
    assert v.itos == ["<pad>", "<unk>", "the"]
    assert v.encode(["the", "cow"]).tolist() == [2, 1]
    assert v.decode([2, 0, 2], sep=" ") == "the the"               # padding dropped
    assert v.decode([2, 0], sep=" ", skip_pad=False) == "the <pad>"


def test_without_unknown_token_an_unseen_token_is_an_error():
    labels = Vocab.build([["Russian", "Arabic", "Russian"]], pad=None, unk=None)
    assert labels.itos == ["Arabic", "Russian"] and len(labels) == 2
    assert labels.encode(["Russian", "Arabic"]).tolist() == [1, 0]
    with pytest.raises(KeyError, match="Klingon"):
        labels.encode(["Klingon"])
    assert labels.pad_index is None and labels.unk_index is None


def test_normalize_policy_applies_to_lookups():
    v = Vocab.build(["abc"], normalize="ascii")
    assert v.encode("àbç").tolist() == v.encode("abc").tolist()
    plain = Vocab.build(["abc"])
    assert plain.encode("àbç").tolist()[0] == plain.unk_index


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5))
def test_encode_decode_round_trip_over_the_vocabulary(texts):
    v = Vocab.build(texts)
    for t in texts:
        assert v.decode(v.encode(t)) == t


def test_long_text_encoding_matches_the_short_path():
    v = Vocab.build(["abcdef\n"])
    text = "abcxyzdef\n" * 50 + "é"
    fast = v.encode(text)
    slow = np.array([v.index(c) for c in text])
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("v", [Vocab.ascii(), Vocab.build(["hello"]), Vocab.build([["x", "y"]], pad=None, unk=None),
                               Vocab.build(["ab"], normalize="ascii", pad="_", unk="~")])
def test_vocab_round_trips_through_dict_and_array(v):
    for w in (Vocab.from_dict(v.to_dict()), Vocab.from_array(v.to_array())):
        assert w == v and w.itos == v.itos and w.pad_index == v.pad_index and w.unk_index == v.unk_index
        assert w.normalize == v.normalize
    assert v.to_array().dtype == np.uint8


def test_vocab_errors_are_clear():
    with pytest.raises(ValueError, match="normalize"):
        Vocab(["a"], normalize="nfc")
    with pytest.raises(ValueError, match="different"):
        Vocab(["a"], pad="<x>", unk="<x>")
    with pytest.raises(TypeError, match="strings"):
        Vocab([1, 2])
    with pytest.raises(ValueError, match="min_count"):
        Vocab.build(["a"], min_count=0)
    with pytest.raises(IndexError, match="outside"):
        Vocab.build(["a"]).decode([99])
    with pytest.raises(ValueError, match="uint8"):
        Vocab.from_array(np.zeros(3))
    with pytest.raises(ValueError, match="not in itos"):
        Vocab.from_dict({"itos": ["a"], "pad": "<pad>", "unk": None})


# ---- padding ---------------------------------------------------------------------------------------------------
@given(seq_lists, st.integers(-3, 99))
def test_pad_sequences_layout(seqs, pad):
    x, lengths = pad_sequences(seqs, pad)
    T = max(len(s) for s in seqs)
    assert x.shape == (len(seqs), T) and x.dtype == np.int64
    assert lengths.tolist() == [len(s) for s in seqs]
    for b, s in enumerate(seqs):
        assert x[b, :len(s)].tolist() == s
        assert (x[b, len(s):] == pad).all()
    xt, lt = pad_sequences(seqs, pad, batch_first=False)
    np.testing.assert_array_equal(xt, x.T)
    np.testing.assert_array_equal(lt, lengths)


def test_pad_sequences_features_and_total_length():
    seqs = [np.ones((2, 3)), np.full((4, 3), 2.0)]
    x, lengths = pad_sequences(seqs, -1, dtype=np.float32, total_length=6)
    assert x.shape == (2, 6, 3) and x.dtype == np.float32 and lengths.tolist() == [2, 4]
    assert (x[0, 2:] == -1).all() and (x[1, :4] == 2).all()
    with pytest.raises(ValueError, match="shorter than the longest"):
        pad_sequences(seqs, total_length=3)
    with pytest.raises(ValueError, match="differs"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(TypeError, match="sequence of sequences"):
        pad_sequences("abc")
    x, lengths = pad_sequences([])
    assert x.shape == (0, 0) and lengths.shape == (0,)


@given(seq_lists, st.booleans())
def test_unpad_inverts_pad(seqs, batch_first):
    x, lengths = pad_sequences(seqs, 7, batch_first=batch_first)
    back = unpad_sequences(x, lengths, batch_first=batch_first)
    assert [b.tolist() for b in back] == seqs


def test_unpad_with_features_and_errors():
    seqs = [np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(4, 3)]
    x, lengths = pad_sequences(seqs, 0, dtype=np.float64, batch_first=False, total_length=5)
    for a, b in zip(unpad_sequences(x, lengths, batch_first=False), seqs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="one per sequence"):
        unpad_sequences(x, [2, 4, 1], batch_first=False)
    with pytest.raises(ValueError, match=r"in \[0, 5\]"):
        unpad_sequences(x, [2, 6], batch_first=False)
    with pytest.raises(ValueError, match="2 dimensions"):
        unpad_sequences(np.zeros(3), [1])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_padded_batch_with_lengths_equals_each_sequence_alone(kind):
    """The data pipeline end to end: pad -> layer(lengths=) -> unpad gives what each sequence gives on its own
    (the backward direction starts at each sequence's own last step; padding never enters)."""
    import minirnn as mr
    rng = np.random.default_rng(5)
    layer = getattr(mr, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64, rng=rng)
    seqs = [rng.standard_normal((n, 3)) for n in (4, 1, 6, 3)]
    x, lengths = pad_sequences(seqs, 99.0, dtype=np.float64)        # a loud pad value: it must not leak
    with mr.no_grad():
        out, state = layer(x, lengths=lengths)
        alone_runs = [layer(s[None]) for s in seqs]
    h_n = state[0] if kind == "LSTM" else state
    for b, (s, o, (alone, st_alone)) in enumerate(zip(seqs, unpad_sequences(out, lengths), alone_runs)):
        np.testing.assert_allclose(o, alone[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(h_n[:, b], (st_alone[0] if kind == "LSTM" else st_alone)[:, 0], rtol=1e-12,
                                   atol=1e-12)
        assert (out[b, len(s):] == 0).all()                          # pad_packed_sequence's zeros


# ---- batching --------------------------------------------------------------------------------------------------
@given(st.integers(1, 60), st.integers(1, 17), st.integers(0, 4), st.booleans(), st.integers(0, 2**16))
def test_batcher_covers_every_example_once(n, batch_size, bucket, drop_last, seed):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, 9, size=rng.integers(1, 8)) for _ in range(n)]
    targets = np.arange(n) * 10
    b = SequenceBatcher(seqs, targets, batch_size, seed=seed, bucket=bucket, drop_last=drop_last)
    batches = list(b)
    assert len(batches) == len(b)
    seen = np.concatenate([bt.index for bt in batches]) if batches else np.array([], dtype=int)
    assert len(set(seen.tolist())) == len(seen)                    # no example twice
    assert len(seen) == (n // batch_size * batch_size if drop_last else n)
    for bt in batches:
        assert bt.x.shape == (len(bt.index), bt.lengths.max())
        np.testing.assert_array_equal(bt.y, targets[bt.index])    # targets stay with their sequences
        for row, i, L in zip(bt.x, bt.index, bt.lengths):
            assert L == len(seqs[i]) and row[:L].tolist() == seqs[i].tolist() and (row[L:] == 0).all()
        if drop_last:
            assert len(bt.index) == batch_size
    assert all(len(bt.index) == batch_size for bt in batches[:-1])  # only the last batch may be short


def test_batcher_is_seeded_and_reshuffles_every_epoch():
    seqs = [np.arange(1, 2 + i % 7) for i in range(100)]
    a, b = SequenceBatcher(seqs, None, 16, seed=3), SequenceBatcher(seqs, None, 16, seed=3)
    ea1, ea2 = [x.index for x in a], [x.index for x in a]
    eb1, eb2 = [x.index for x in b], [x.index for x in b]
    for u, v in zip(ea1 + ea2, eb1 + eb2):                        # same seed: same epochs
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(u, v) for u, v in zip(ea1, ea2))   # epochs differ
    c = SequenceBatcher(seqs, None, 16, seed=4)
    assert not all(np.array_equal(u, v.index) for u, v in zip(ea1, c))
    fixed = SequenceBatcher(seqs, None, 16, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([x.index for x in fixed]), np.arange(100))


def test_bucketing_reduces_padding_and_sort_within_batch():
    rng = np.random.default_rng(0)
    seqs = [np.ones(rng.integers(1, 30), dtype=np.int64) for _ in range(1000)]
    plain = sum(x.x.size for x in SequenceBatcher(seqs, None, 50, seed=0))
    bucketed = sum(x.x.size for x in SequenceBatcher(seqs, None, 50, seed=0, bucket=10))
    assert bucketed < 0.75 * plain
    for bt in SequenceBatcher(seqs, None, 50, seed=0, sort_within_batch=True):
        assert (np.diff(bt.lengths) <= 0).all()


def test_batcher_time_major_and_errors():
    bt = next(iter(SequenceBatcher([[1, 2, 3], [4]], [0, 1], 2, shuffle=False, batch_first=False, pad_value=9)))
    assert bt.x.tolist() == [[1, 4], [2, 9], [3, 9]] and bt.lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="batch_size"):
        SequenceBatcher([[1]], None, 0)
    with pytest.raises(ValueError, match="targets"):
        SequenceBatcher([[1], [2]], [0], 1)
    with pytest.raises(ValueError, match="1-D"):
        SequenceBatcher([[[1]]], None, 1)
    with pytest.raises(ValueError, match="bucket"):
        SequenceBatcher([[1]], None, 1, bucket=-1)


# ---- the course's name files -----------------------------------------------------------------------------------
def _write_csv(path, rows, compress):
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


@pytest.mark.parametrize("compress", [True, False])
def test_read_name_csv(tmp_path, compress):
    p = tmp_path / ("n.csv.gz" if compress else "n.csv")
    rows = [("Schröder", "German"), ("Lytkin,", "Russian"), ("Nakamura", "Japanese")]
    _write_csv(p, rows, compress)
    names, langs = read_name_csv(p)
    assert names == ["Schröder", "Lytkin,", "Nakamura"] and langs == ["German", "Russian", "Japanese"]
    assert read_name_csv(p, limit=2) == (names[:2], langs[:2])


def test_read_name_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_name_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Abe,Japanese\nonlyname\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2: expected 'name,language'"):
        read_name_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no rows"):
        read_name_csv(empty)
    binary = tmp_path / "latin1.csv"
    binary.write_bytes("Schr\xf6der,German\n".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        read_name_csv(binary)


@pytest.mark.skipif(not os.path.exists(NAMES_TRAIN),
                    reason=f"course data not found at {NAMES_TRAIN} (set MINIRNN_DATA to its folder)")
def test_real_names_file():
    names, langs = read_name_csv(NAMES_TRAIN)
    assert len(names) == 13389 and len(set(langs)) == 18
    v = Vocab.ascii()
    codes = [v.encode(n) for n in names]
    assert all(len(c) >= 1 and c.max() < 128 for c in codes)
    assert sum(int((c == v.unk_index).sum()) for c in codes) == 0    # every letter in the file folds to ASCII


# ---- token streams ---------------------------------------------------------------------------------------------
def test_split_text():
    tr, ho = split_text("abcdefghij" * 10, 0.1)
    assert len(tr) == 90 and len(ho) == 10 and tr + ho == "abcdefghij" * 10
    with pytest.raises(ValueError, match="fraction"):
        split_text("abc", 1.5)
    with pytest.raises(ValueError, match="too short"):
        split_text("abc", 0.1)


@given(st.integers(20, 400), st.integers(1, 6), st.integers(1, 30), st.integers(0, 5))
def test_stream_batches_continue_each_row(n, batch, seq_len, offset):
    ids = np.arange(n, dtype=np.int64)
    M = (n - 1 - offset) // batch
    if M < 1:
        with pytest.raises(ValueError):
            list(stream_batches(ids, batch, seq_len, offset=offset))
        return
    chunks = list(stream_batches(ids, batch, seq_len, offset=offset))
    xs = np.concatenate([x for x, _ in chunks], axis=1)
    ys = np.concatenate([y for _, y in chunks], axis=1)
    assert xs.shape == (batch, M)
    np.testing.assert_array_equal(ys, xs + 1)                    # targets are the next tokens
    np.testing.assert_array_equal(xs[:, 0], offset + np.arange(batch) * M)   # row b starts at offset + b*M
    assert (np.diff(xs, axis=1) == 1).all()                       # each row continues across chunks
    assert all(x.shape[1] == seq_len for x, _ in chunks[:-1])


def test_stream_batches_errors():
    with pytest.raises(TypeError, match="1-D integer"):
        list(stream_batches(np.zeros(10), 2, 3))
    with pytest.raises(ValueError, match="too short"):
        list(stream_batches(np.arange(3), 5, 2))


# ---- TensorDataset and DataLoader (torch.utils.data's names for in-memory arrays) ---------------------------------
from minirnn import manual_seed  # noqa: E402
from minirnn.data import DataLoader, TensorDataset, default_collate  # noqa: E402


def _ds(n=10):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return X, np.arange(n) % 2, TensorDataset(X, np.arange(n) % 2)


def test_tensor_dataset_indexes_every_array_together():
    X, Y, ds = _ds()
    assert len(ds) == 10 and ds.tensors[0] is X
    x, y = ds[3]
    np.testing.assert_array_equal(x, X[3])
    assert y == Y[3]
    xs, ys = ds[[1, 4]]
    np.testing.assert_array_equal(xs, X[[1, 4]])
    with pytest.raises(ValueError, match=r"Size mismatch between tensors: first dimensions \[10, 9\]"):
        TensorDataset(X, Y[:9])
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()
    with pytest.raises(ValueError, match=r"tensors\[1\]: .*scalar"):
        TensorDataset(X, 3)


@pytest.mark.parametrize("n, bs, drop_last, lens", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, False, [4, 4]), (8, 4, True, [4, 4]),
    (3, 5, False, [3]), (3, 5, True, []), (1000, 32, False, [32] * 31 + [8]),
])
def test_dataloader_len_and_batches_without_shuffle(n, bs, drop_last, lens):
    X, Y, ds = _ds(n)
    dl = DataLoader(ds, batch_size=bs, drop_last=drop_last)
    batches = list(dl)
    assert len(dl) == len(lens) == len(batches)
    assert [len(b[1]) for b in batches] == lens
    assert all(isinstance(b, list) and len(b) == 2 for b in batches)
    if batches:                                          # order 0..N-1, consecutive batches
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), X[:sum(lens)])
        assert batches[0][0].shape == (lens[0], 3) and batches[0][0].dtype == np.float32


def test_dataloader_len_and_order_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader as TDL
    from torch.utils.data import TensorDataset as TDS
    for n, bs, drop_last in [(10, 4, False), (10, 4, True), (33, 32, False), (31, 32, True), (7, 1, False)]:
        ours = DataLoader(TensorDataset(np.arange(n)), batch_size=bs, drop_last=drop_last)
        theirs = TDL(TDS(torch.arange(n)), batch_size=bs, drop_last=drop_last)
        assert len(ours) == len(theirs)
        assert [b[0].tolist() for b in ours] == [b[0].tolist() for b in theirs]
        # shuffled: the same batch sizes and every example once per epoch (the permutation itself is each library's)
        ours = DataLoader(TensorDataset(np.arange(n)), batch_size=bs, shuffle=True, drop_last=drop_last, seed=0)
        theirs = TDL(TDS(torch.arange(n)), batch_size=bs, shuffle=True, drop_last=drop_last)
        assert [len(b[0]) for b in ours] == [len(b[0]) for b in theirs]
    # batch_size=None: one example at a time, not stacked
    assert [tuple(int(v) for v in s) for s in DataLoader(TensorDataset(np.arange(3), np.arange(3) * 2),
                                                         batch_size=None)] == [(0, 0), (1, 2), (2, 4)]
    assert len(DataLoader(TensorDataset(np.arange(3)), batch_size=None)) == 3


def test_dataloader_reshuffles_every_epoch_and_is_seeded():
    X, Y, ds = _ds(100)
    dl = DataLoader(ds, batch_size=32, shuffle=True, seed=7)
    epochs = [np.concatenate([y for _, y in dl]) for _ in range(3)]
    orders = [np.concatenate([x[:, 0] for x, _ in dl]) for _ in range(2)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), X[:, 0])        # every example exactly once
    assert not np.array_equal(orders[0], orders[1])                    # a new permutation each epoch
    # the same seed gives the same sequence of epochs; a generator is the same thing
    again = DataLoader(ds, batch_size=32, shuffle=True, seed=7)
    gen = DataLoader(ds, batch_size=32, shuffle=True, generator=np.random.default_rng(7))
    for dl2 in (again, gen):
        for e in epochs:
            np.testing.assert_array_equal(np.concatenate([y for _, y in dl2]), e)
    # the rows stay paired: label = row index % 2
    for x, y in dl:
        np.testing.assert_array_equal((x[:, 0] // 3) % 2, y)
    # drop_last with shuffle drops the short batch, not particular examples
    assert [len(y) for _, y in DataLoader(ds, batch_size=32, shuffle=True, drop_last=True, seed=0)] == [32] * 3
    # neither seed nor generator: minirnn's default generator, reset by manual_seed
    manual_seed(3)
    a = [y.tolist() for _, y in DataLoader(ds, batch_size=50, shuffle=True)]
    manual_seed(3)
    b = [y.tolist() for _, y in DataLoader(ds, batch_size=50, shuffle=True)]
    assert a == b


def test_dataloader_generic_dataset_and_collate():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i]), i % 2, {"k": float(i)}

    batches = list(DataLoader(Squares(), batch_size=2))
    assert len(batches) == 3
    x, y, d = batches[0]
    np.testing.assert_array_equal(x, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1])
    np.testing.assert_array_equal(d["k"], [0.0, 1.0])
    assert default_collate(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (1,)])
    got = list(DataLoader(Squares(), batch_size=4, collate_fn=lambda s: len(s)))
    assert got == [4, 1]


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(batch_size=0), ValueError, "batch_size should be a positive integer value, but got batch_size=0"),
    (dict(batch_size=-3), ValueError, "batch_size=-3"),
    (dict(batch_size=2.0), ValueError, "batch_size=2.0"),
    (dict(batch_size=True), ValueError, "batch_size=True"),
    (dict(batch_size=None, drop_last=True), ValueError, "mutually exclusive with drop_last"),
    (dict(drop_last=1), ValueError, "drop_last should be a boolean value"),
    (dict(shuffle="yes"), TypeError, "shuffle: expected True or False"),
    (dict(seed=-1), ValueError, "seed: expected a non-negative integer, got -1"),
    (dict(seed=1.5), ValueError, "seed: expected a non-negative integer"),
    (dict(seed=1, generator=np.random.default_rng(1)), ValueError, "give one of them"),
    (dict(generator=0), TypeError, "generator: expected a numpy.random.Generator, got int"),
    (dict(collate_fn=3), TypeError, "collate_fn: expected a callable"),
])
def test_dataloader_bad_arguments(kwargs, err, match):
    _, _, ds = _ds()
    with pytest.raises(err, match=match):
        DataLoader(ds, **kwargs)


def test_dataloader_rejects_a_non_dataset():
    with pytest.raises(TypeError, match="dataset: expected a map-style data set"):
        DataLoader(5, batch_size=2)
    with pytest.raises(TypeError, match="dataset: expected a map-style"):
        DataLoader(iter([1, 2]), batch_size=2)
