"""Checkpoints: round trips, no pickle, atomic writes that survive failures, refusal of foreign/truncated files and
of non-finite parameters, optimizer state, load_state_dict's all-or-nothing contract, torch state-dict interchange."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import minirnn
from minirnn import serialization
from minirnn.module import IncompatibleKeys


def _all_layers():
    return [
        minirnn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True, bidirectional=True, rng=1),
        minirnn.GRU(3, 4, bias=False, dtype=np.float64, rng=2),
        minirnn.LSTM(3, 5, num_layers=2, proj_size=2, dropout=0.25, rng=3),
        minirnn.RNNCell(3, 4, nonlinearity="sigmoid", rng=4),
        minirnn.GRUCell(3, 4, rng=5),
        minirnn.LSTMCell(3, 4, bias=False, rng=6),
        minirnn.Linear(3, 2, rng=7),
        minirnn.Linear(3, 2, bias=False, dtype=np.float64, rng=8),
        minirnn.Embedding(6, 3, padding_idx=2, rng=9),
        minirnn.Dropout(0.3),
        minirnn.Sequential(minirnn.Embedding(5, 3, rng=10), minirnn.Linear(3, 2, rng=11)),
    ]


def _same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


@pytest.mark.parametrize("layer", _all_layers(), ids=lambda m: type(m).__name__ + repr(m).count(",").__str__())
def test_module_round_trip_rebuilds_the_layer(tmp_path, layer):
    path = tmp_path / "m.npz"
    minirnn.save(layer, path, epoch=7, note="hello", losses=[1.5, 0.25])
    ckpt = minirnn.load_checkpoint(path)
    assert ckpt.format_version == serialization.FORMAT_VERSION
    assert ckpt.metadata == {"epoch": 7, "note": "hello", "losses": [1.5, 0.25]}
    _same_state(layer.state_dict(), ckpt.state_dict)
    rebuilt = minirnn.load_module(path)
    assert type(rebuilt) is type(layer)
    assert repr(rebuilt) == repr(layer)
    _same_state(layer.state_dict(), rebuilt.state_dict())
    assert minirnn.module_config(rebuilt) == ckpt.config


def test_rebuilt_model_computes_the_same(tmp_path, rng):
    gru = minirnn.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64, rng=0)
    minirnn.save(gru, tmp_path / "gru.npz")
    again = minirnn.load_module(tmp_path / "gru.npz")
    x = rng.standard_normal((3, 5, 4))
    with minirnn.no_grad():
        (o1, h1), (o2, h2) = gru(x, lengths=[5, 2, 3]), again(x, lengths=[5, 2, 3])
    assert o1.tobytes() == o2.tobytes() and h1.tobytes() == h2.tobytes()


def test_file_is_a_plain_npz_without_pickle(tmp_path):
    lstm = minirnn.LSTM(2, 3, rng=0)
    path = tmp_path / "lstm.npz"
    minirnn.save(lstm, path)
    with np.load(path, allow_pickle=False) as npz:   # numpy reads it; names are the state-dict keys unchanged
        assert set(npz.files) == set(lstm.state_dict()) | {serialization.HEADER}
        assert all(npz[k].dtype != object for k in npz.files)
        header = json.loads(npz[serialization.HEADER].tobytes())
        np.testing.assert_array_equal(npz["weight_ih_l0"], lstm.weight_ih_l0.data)
    assert header["format"] == "minirnn.checkpoint" and header["format_version"] == 1
    assert header["config"]["class"] == "LSTM" and header["config"]["args"]["hidden_size"] == 3
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            assert info.filename.endswith(".npy")
            assert b"pickle" not in zf.read(info)[:200].lower()


def test_flat_state_dict_round_trip_keeps_order_and_dtypes(tmp_path):
    sd = {"b.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.bias": np.arange(3, dtype=np.float64),
          "count": np.array([1, 2], dtype=np.int64), "flags": np.array([True, False]),
          "scalar": np.array(3.5, dtype=np.float32), "__minirnn__x": np.zeros(1), "dots.and/slash": np.ones((1, 1))}
    minirnn.save(sd, tmp_path / "sd.npz")
    back = minirnn.load_checkpoint(tmp_path / "sd.npz")
    assert back.config is None and back.metadata == {}
    _same_state(sd, back.state_dict)
    assert back.state_dict["scalar"].shape == ()


def test_optimizer_state_round_trip_resumes_identically(tmp_path):
    def make():
        model = minirnn.Sequential(minirnn.Linear(3, 4, rng=0), minirnn.Linear(4, 2, rng=1))
        return model, minirnn.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.95), amsgrad=True)

    def step(model, opt, seed):
        x = np.random.default_rng(seed).standard_normal((5, 3)).astype(np.float32)
        y = model(x)
        opt.zero_grad()
        model.backward(2 * y)
        opt.step()

    model, opt = make()
    for s in range(3):
        step(model, opt, s)
    minirnn.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, tmp_path / "ckpt.npz", run="a")
    with np.load(tmp_path / "ckpt.npz") as npz:   # the documented key scheme: the path of keys joined by "/"
        assert "optim/state/0/exp_avg" in npz.files and "model/0.weight" in npz.files
    ckpt = minirnn.load_checkpoint(tmp_path / "ckpt.npz")
    assert ckpt.metadata == {"run": "a"} and ckpt.state_dict["epoch"] == 3
    saved = opt.state_dict()
    loaded = ckpt.state_dict["optim"]
    assert loaded["param_groups"] == saved["param_groups"]      # tuples stay tuples, int ids stay ints
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)
    assert set(loaded["state"]) == set(saved["state"]) == {0, 1, 2, 3}

    model2, opt2 = make()
    model2.load_state_dict(ckpt.state_dict["model"])
    opt2.load_state_dict(loaded)
    step(model, opt, 10)
    step(model2, opt2, 10)
    _same_state(model.state_dict(), model2.state_dict())


def test_nested_state_types_survive(tmp_path):
    state = {"ints": {0: np.ones(2), 7: [1, 2.5, "x", None, True]}, "t": (np.float32(1.25), np.int64(3)),
             "a/b": np.zeros(2), "a": {"b": np.ones(2)}, "": np.full(1, 4.0), "e": [], "d": {}}
    minirnn.save(state, tmp_path / "t.npz")
    back = minirnn.load(tmp_path / "t.npz")
    assert back["ints"][7] == [1, 2.5, "x", None, True]
    assert isinstance(back["t"], tuple) and back["t"][0] == np.float32(1.25) and back["t"][0].dtype == np.float32
    assert back["t"][1].dtype == np.int64
    assert back["a/b"].tolist() == [0, 0] and back["a"]["b"].tolist() == [1, 1] and back[""].tolist() == [4]
    assert back["e"] == [] and back["d"] == {}


# ---- refusal ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_parameters_are_refused_and_nothing_is_written(tmp_path, bad):
    m = minirnn.GRU(2, 3, rng=0)
    m.weight_hh_l0.data[1, 2] = bad
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError, match=r"m\.npz.*weight_hh_l0.*allow_nonfinite") as e:
        minirnn.save(m, path)
    assert "nothing was written" in str(e.value)
    assert os.listdir(tmp_path) == []
    minirnn.save(m, path, allow_nonfinite=True)
    back = minirnn.load_checkpoint(path).state_dict["weight_hh_l0"]
    assert back[1, 2] == bad or (np.isnan(bad) and np.isnan(back[1, 2]))


def test_nonfinite_refusal_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "m.npz"
    m = minirnn.Linear(2, 2, rng=0)
    minirnn.save(m, path)
    before = path.read_bytes()
    m.bias.data[0] = np.nan
    with pytest.raises(ValueError, match="bias"):
        minirnn.save(m, path)
    with pytest.raises(ValueError, match="lr"):
        minirnn.save({"param_groups": [{"lr": float("nan")}]}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("value, match", [
    (np.array(["a", "b"]), "dtype"),
    (np.array([object()], dtype=object), "dtype"),
    (object(), "object"),
    ({1.5: np.ones(1)}, "keys"),
])
def test_unstorable_state_is_a_type_error(tmp_path, value, match):
    with pytest.raises(TypeError, match=match):
        minirnn.save({"x": value}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_bad_save_arguments(tmp_path):
    m = minirnn.Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="metadata"):
        minirnn.save(m, tmp_path / "m.npz", bad=object())
    with pytest.raises(TypeError, match="obj"):
        minirnn.save([1, 2], tmp_path / "m.npz")
    with pytest.raises(TypeError, match="path"):
        minirnn.save(m, 3)
    with pytest.raises(TypeError, match="allow_nonfinite"):
        minirnn.save(m, tmp_path / "m.npz", allow_nonfinite="yes")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        minirnn.save(m, tmp_path / "nowhere" / "m.npz")
    with pytest.raises(IsADirectoryError):
        minirnn.save(m, tmp_path)
    assert os.listdir(tmp_path) == []


def _good_file(tmp_path):
    path = tmp_path / "good.npz"
    minirnn.save(minirnn.LSTM(3, 4, num_layers=2, rng=0), path, epoch=1)
    return path


def test_truncated_files_are_refused_naming_the_file(tmp_path):
    data = _good_file(tmp_path).read_bytes()
    bad = tmp_path / "cut.npz"
    cuts = sorted(set([0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 22, len(data) - 1]
                      + list(range(0, len(data), max(1, len(data) // 40)))))
    for cut in cuts:
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"cut\.npz.*not a valid minirnn checkpoint"):
            minirnn.load(bad)


def test_corrupted_bytes_are_refused_or_harmless(tmp_path):
    good = _good_file(tmp_path)
    data = good.read_bytes()
    reference = minirnn.load_checkpoint(good)
    bad = tmp_path / "flip.npz"
    refused = 0
    for pos in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[pos] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            ckpt = minirnn.load_checkpoint(bad)
        except ValueError as e:
            assert "flip.npz" in str(e)
            refused += 1
            continue
        # a flip that zip and the header checks cannot see must have left every value intact
        _same_state(reference.state_dict, ckpt.state_dict)
        assert ckpt.metadata == reference.metadata and ckpt.config == reference.config
    assert refused > len(data) // 7 // 2


def test_foreign_files_are_refused(tmp_path):
    cases = {
        "plain.npz": lambda p: np.savez(p, a=np.ones(3)),
        "array.npy": lambda p: np.save(p, np.ones(3)),
        "pickle.pkl": lambda p: p.write_bytes(pickle.dumps({"weight": np.ones(3)})),
        "text.npz": lambda p: p.write_text("hello"),
        "empty.npz": lambda p: p.write_bytes(b""),
        "zip.npz": lambda p: zipfile.ZipFile(p, "w").writestr("x.txt", "hi"),
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}.*not a valid minirnn checkpoint"):
            minirnn.load(path)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        minirnn.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="path"):
        minirnn.load(None)


def _rewrite(path, edit_header=None, extra=None, drop=None):
    """Rewrite a checkpoint's members, optionally editing the header JSON, adding or dropping a member."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if edit_header:
        arr = np.lib.format.read_array(io.BytesIO(members["__minirnn__.npy"]))
        header = edit_header(json.loads(arr.tobytes()))
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
        members["__minirnn__.npy"] = buf.getvalue()
    if extra:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ones(2))
        members[extra + ".npy"] = buf.getvalue()
    if drop:
        members.pop(drop + ".npy")
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)


@pytest.mark.parametrize("kind, match", [
    ("newer", "format version 99"),
    ("format", "format"),
    ("shape", "header says"),
    ("extra", "unexpected"),
    ("drop", "missing"),
    ("kind", "kind"),
    ("structure", "structure"),
])
def test_inconsistent_checkpoints_are_refused(tmp_path, kind, match):
    path = tmp_path / "c.npz"
    if kind == "structure":
        minirnn.save({"a": {"b": np.ones(2)}}, path)
    else:
        minirnn.save(minirnn.Linear(2, 3, rng=0), path)

    def edit(h):
        if kind == "newer":
            h["format_version"] = 99
        elif kind == "format":
            h["format"] = "something.else"
        elif kind == "shape":
            h["arrays"][0][1] = [9, 9]
        elif kind == "kind":
            h["kind"] = "mystery"
        elif kind == "structure":
            h["structure"] = {"dict": [["a", {"array": "nope"}]]}
        return h

    _rewrite(path, edit_header=edit if kind in ("newer", "format", "shape", "kind", "structure") else None,
             extra="stowaway" if kind == "extra" else None, drop="bias" if kind == "drop" else None)
    with pytest.raises(ValueError, match=rf"c\.npz.*{match}"):
        minirnn.load(path)


# ---- atomic writes ------------------------------------------------------------------------------------------------
class Boom(Exception):
    pass


@pytest.mark.parametrize("where", ["write_array", "fsync", "replace", "interrupt"])
def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where):
    path = tmp_path / "model.npz"
    old = minirnn.GRU(3, 4, rng=0)
    minirnn.save(old, path, version=1)
    before = path.read_bytes()
    new = minirnn.GRU(3, 4, rng=1)

    if where in ("write_array", "interrupt"):
        real = np.lib.format.write_array
        calls = []

        def failing(*a, **k):
            calls.append(1)
            if len(calls) == 3:   # fail in the middle of writing the arrays
                raise Boom("disk full") if where == "write_array" else KeyboardInterrupt()
            return real(*a, **k)

        monkeypatch.setattr(np.lib.format, "write_array", failing)
    elif where == "fsync":
        def failing(fd):
            raise Boom("fsync failed")
        monkeypatch.setattr(serialization.os, "fsync", failing)
    else:
        def failing(src, dst):
            raise Boom("replace failed")
        monkeypatch.setattr(serialization.os, "replace", failing)

    with pytest.raises(KeyboardInterrupt if where == "interrupt" else Boom):
        minirnn.save(new, path, version=2)
    monkeypatch.undo()
    assert path.read_bytes() == before                    # the old checkpoint is intact ...
    assert os.listdir(tmp_path) == ["model.npz"]          # ... and no temporary file is left behind
    ckpt = minirnn.load_checkpoint(path)
    assert ckpt.metadata == {"version": 1}
    _same_state(old.state_dict(), ckpt.state_dict)
    minirnn.save(new, path, version=2)                     # and the next save works
    assert minirnn.load_checkpoint(path).metadata == {"version": 2}


def test_save_fsyncs_file_and_directory_then_replaces(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(serialization.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(serialization.os, "replace", lambda a, b: (events.append(("replace", os.path.dirname(a) ==
                                                                                 os.path.dirname(str(b)))),
                                                                   real_replace(a, b))[1])
    minirnn.save(minirnn.Linear(2, 2, rng=0), tmp_path / "m.npz")
    assert events == ["fsync", ("replace", True), "fsync"]


def test_new_file_mode_follows_umask_and_existing_mode_is_kept(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "m.npz"
        minirnn.save(minirnn.Linear(2, 2, rng=0), path)
        assert (path.stat().st_mode & 0o777) == 0o644
        os.chmod(path, 0o600)
        minirnn.save(minirnn.Linear(2, 2, rng=1), path)
        assert (path.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)


# ---- configuration ----------------------------------------------------------------------------------------------
class Tagger(minirnn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.vocab, self.hidden = vocab, hidden
        self.emb = minirnn.Embedding(vocab, 4, rng=0)
        self.rnn = minirnn.GRU(4, hidden, rng=1)

    def get_config(self):
        return {"vocab": self.vocab, "hidden": self.hidden}


class Plain(minirnn.Module):
    def __init__(self):
        super().__init__()
        self.fc = minirnn.Linear(2, 2, rng=0)


def test_user_models_with_and_without_get_config(tmp_path):
    minirnn.save(Tagger(7, 5), tmp_path / "t.npz")
    ckpt = minirnn.load_checkpoint(tmp_path / "t.npz")
    assert ckpt.config == {"class": "Tagger", "module": __name__, "args": {"vocab": 7, "hidden": 5}}
    with pytest.raises(ValueError, match="Tagger.*classes="):
        ckpt.build()
    model = ckpt.build({"Tagger": Tagger})
    _same_state(Tagger(7, 5).state_dict(), model.state_dict())

    minirnn.save(Plain(), tmp_path / "p.npz")
    ckpt = minirnn.load_checkpoint(tmp_path / "p.npz")
    assert ckpt.config["args"] is None
    with pytest.raises(ValueError, match="no constructor arguments"):
        ckpt.build({"Plain": Plain})
    fresh = Plain()
    fresh.load_state_dict(ckpt.state_dict)     # the weights are there all the same
    minirnn.save(Plain().state_dict(), tmp_path / "sd.npz")
    with pytest.raises(ValueError, match="no layer configuration"):
        minirnn.load_checkpoint(tmp_path / "sd.npz").build()


# ---- load_state_dict -------------------------------------------------------------------------------------------
def _snapshot(m):
    return {k: v.tobytes() for k, v in m.state_dict().items()}


def test_load_state_dict_reports_every_problem_at_once_and_changes_nothing():
    m = minirnn.LSTM(3, 4, num_layers=2, rng=0)
    before = _snapshot(m)
    sd = m.state_dict()
    sd["weight_ih_l0"] = np.zeros((16, 2), np.float32)            # mis-shaped
    sd["weight_hh_l0"] = sd["weight_hh_l0"].astype(np.complex64)    # complex
    sd["bias_ih_l0"] = np.ones(16, dtype=bool)                      # bool
    sd["bias_hh_l0"] = np.full(16, 1e300)                           # overflows float32
    sd["weight_ih_l1"] = ["a"] * 3                                  # strings
    del sd["bias_hh_l1"]                                            # missing
    sd["extra.weight"] = np.ones(2)                                 # unexpected
    with pytest.raises(ValueError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    for key in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1", "bias_hh_l1",
                "extra.weight"):
        assert key in msg, key
    assert "7 problems" in msg and "nothing was changed" in msg
    assert _snapshot(m) == before
    with pytest.raises(ValueError, match="weight_ih_l0"):       # shape problems fail with strict=False too (torch)
        m.load_state_dict(sd, strict=False)
    assert _snapshot(m) == before


def test_load_state_dict_non_strict_returns_incompatible_keys_like_torch():
    torch = pytest.importorskip("torch")
    m = minirnn.GRU(3, 4, rng=0)
    tm = torch.nn.GRU(3, 4)
    sd = m.state_dict()
    del sd["bias_hh_l0"]
    sd["junk"] = np.ones(1, np.float32)
    ours = m.load_state_dict(sd, strict=False)
    theirs = tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    assert isinstance(ours, IncompatibleKeys) and isinstance(ours, tuple)
    assert ours.missing_keys == theirs.missing_keys == ["bias_hh_l0"]
    assert ours.unexpected_keys == theirs.unexpected_keys == ["junk"]
    assert ours._fields == ("missing_keys", "unexpected_keys")
    assert tuple(m.load_state_dict(m.state_dict())) == ([], [])


def test_load_state_dict_casts_numbers_keeps_nan_and_copies_in_place():
    m = minirnn.Linear(2, 3, rng=0)
    w_ref = m.weight.data
    sd = {"weight": np.arange(6, dtype=np.int64).reshape(3, 2), "bias": np.array([np.nan, 1.0, np.inf])}
    m.load_state_dict(sd)
    assert m.weight.data is w_ref and m.weight.dtype == np.float32            # copied into the same array
    np.testing.assert_array_equal(m.weight.data, sd["weight"])
    assert np.isnan(m.bias.data[0]) and np.isinf(m.bias.data[2])              # NaN passes (as torch); save refuses
    sd["weight"][0, 0] = 99
    assert m.weight.data[0, 0] == 0                                           # no aliasing of the caller's array
    with pytest.raises(TypeError, match="state_dict"):
        m.load_state_dict([("weight", np.ones((3, 2)))])
    with pytest.raises(TypeError, match="strict"):
        m.load_state_dict(m.state_dict(), strict="no")


# ---- torch interchange ----------------------------------------------------------------------------------------------
def test_from_torch_state_dict_and_back():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tmodel = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    sd = minirnn.from_torch_state_dict(tmodel.state_dict())
    assert list(sd) == list(tmodel.state_dict())
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in sd.values())
    with torch.no_grad():
        tmodel.weight_hh_l0.zero_()
    assert np.abs(sd["weight_hh_l0"]).sum() > 0                  # a copy, not a view of torch's memory
    ours = minirnn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, rng=9)
    ours.load_state_dict(sd)
    back = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})   # the documented one-liner
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k])
    with pytest.raises(TypeError, match="state_dict"):
        minirnn.from_torch_state_dict([1, 2])
    with pytest.raises(TypeError, match="'w'"):
        minirnn.from_torch_state_dict({"w": np.array(["x"])})
