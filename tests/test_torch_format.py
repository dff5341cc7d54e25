"""torch's own checkpoint files read and written with NumPy only (minirnn.load_torch / minirnn.save_torch).

Files written by real torch load to the same arrays and give the same model outputs; files minirnn writes load in
torch with weights_only=True. Hostile files (built here by hand, so these tests need no torch) are refused with a
ValueError naming the file, allocate nothing beyond their size and run nothing (a canary file that executing the
pickle would create stays absent).
"""
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from helpers import REPO_ROOT, subprocess_env

import minirnn
from minirnn.torch_format import _write_zip


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_importing_the_format_modules_imports_no_optional_package():
    code = ("import sys, minirnn, minirnn.torch_format, minirnn.safetensors_format, minirnn.onnx_export; "
            "bad = [m for m in ('torch', 'onnx', 'onnxruntime', 'safetensors') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env(), cwd=REPO_ROOT, timeout=120)


# ---- files written by torch ------------------------------------------------------------------------------------
def _pairs(torch):
    nn = torch.nn
    return {
        "rnn_tanh_2layers": (lambda: nn.RNN(3, 4, num_layers=2),
                             lambda: minirnn.RNN(3, 4, num_layers=2, dtype=np.float64)),
        "rnn_relu_bi": (lambda: nn.RNN(3, 4, nonlinearity="relu", bidirectional=True),
                        lambda: minirnn.RNN(3, 4, nonlinearity="relu", bidirectional=True, dtype=np.float64)),
        "lstm_bi_2layers": (lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True),
                            lambda: minirnn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)),
        "lstm_proj": (lambda: nn.LSTM(3, 5, num_layers=2, proj_size=2, batch_first=True),
                      lambda: minirnn.LSTM(3, 5, num_layers=2, proj_size=2, batch_first=True, dtype=np.float64)),
        "gru_bi_nobias": (lambda: nn.GRU(3, 4, bidirectional=True, bias=False),
                          lambda: minirnn.GRU(3, 4, bidirectional=True, bias=False, dtype=np.float64)),
        "gru_2layers": (lambda: nn.GRU(3, 4, num_layers=2), lambda: minirnn.GRU(3, 4, num_layers=2, dtype=np.float64)),
    }


KINDS = ["rnn_tanh_2layers", "rnn_relu_bi", "lstm_bi_2layers", "lstm_proj", "gru_bi_nobias", "gru_2layers"]


def _first(out):
    while isinstance(out, tuple):
        out = out[0]
    return out


def _outputs(ours, theirs, torch, batch_first=False):
    x = np.random.default_rng(0).standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    with minirnn.no_grad(), torch.no_grad():
        mine, ref = ours(x), theirs(torch.from_numpy(x))
    flat_mine = [mine[0], *(mine[1] if isinstance(mine[1], tuple) else (mine[1],))]
    flat_ref = [ref[0], *(ref[1] if isinstance(ref[1], tuple) else (ref[1],))]
    return flat_mine, [t.numpy() for t in flat_ref]


@pytest.mark.parametrize("kind", KINDS)
def test_a_torch_saved_state_dict_loads_and_gives_torchs_outputs(tmp_path, torch, kind):
    make_torch, make_ours = _pairs(torch)[kind]
    torch.manual_seed(0)
    tm = make_torch().double()
    for p in tm.parameters():                 # random non-zero biases too
        p.data.uniform_(-0.5, 0.5)
    torch.save(tm.state_dict(), tmp_path / "m.pt")
    state = minirnn.load_torch(tmp_path / "m.pt")
    assert isinstance(state, OrderedDict) and list(state) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert state[k].dtype == np.float64 and state[k].flags.writeable
        np.testing.assert_array_equal(state[k], v.numpy())
    ours = make_ours()
    ours.load_state_dict(state)
    mine, ref = _outputs(ours, tm, torch, batch_first=kind == "lstm_proj")
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_float32_model_from_a_pt_file_matches_torch(tmp_path, torch):
    torch.manual_seed(1)
    tm = torch.nn.LSTM(3, 8, num_layers=2, bidirectional=True)
    torch.save(tm.state_dict(), tmp_path / "m.pt")
    ours = minirnn.LSTM(3, 8, num_layers=2, bidirectional=True)
    ours.load_state_dict(minirnn.load_torch(tmp_path / "m.pt"))
    x = np.random.default_rng(0).standard_normal((7, 3, 3)).astype(np.float32)
    with minirnn.no_grad(), torch.no_grad():
        d = np.abs(ours(x)[0] - tm(torch.from_numpy(x))[0].numpy()).max()
    assert d < 1e-5, d


@pytest.mark.parametrize("dtype_name", ["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16",
                                        "int8", "uint8", "bool", "complex64", "complex128"])
def test_every_dtype_loads_with_its_values(tmp_path, torch, dtype_name):
    dtype = getattr(torch, dtype_name)
    base = torch.arange(-6, 6, dtype=torch.float64).reshape(3, 4) * 1.25
    t = base.to(dtype) if dtype != torch.bool else base > 0
    torch.save({"t": t, "p": torch.nn.Parameter(t.clone(), requires_grad=False)}, tmp_path / "t.pt")
    got = minirnn.load_torch(tmp_path / "t.pt")
    want = t.float().numpy() if dtype == torch.bfloat16 else t.numpy()    # bfloat16 widened to float32
    for k in ("t", "p"):
        assert got[k].dtype == want.dtype and got[k].shape == want.shape
        np.testing.assert_array_equal(got[k], want)


def test_non_contiguous_and_shared_storages(tmp_path, torch):
    a = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"a": a, "t": a.t(), "s": a[1:, ::2], "v": a.view(-1)[5:11], "e": a[:1].expand(3, 6),
           "c": torch.tensor([1 + 2j, 3 - 4j]).conj(), "scalar": a[2, 3], "empty": a[:0]}
    torch.save(obj, tmp_path / "v.pt")
    ref = torch.load(tmp_path / "v.pt", weights_only=True)
    assert ref["t"].untyped_storage().data_ptr() == ref["a"].untyped_storage().data_ptr()   # shared in the file
    got = minirnn.load_torch(tmp_path / "v.pt")
    for k, v in ref.items():
        want = v.resolve_conj().numpy()
        assert got[k].shape == want.shape and got[k].dtype == want.dtype, k
        np.testing.assert_array_equal(got[k], want)
    got["a"][0, 0] = 100.0                                  # copies: changing one does not change the others
    assert got["t"][0, 0] == 0.0 and got["v"][0] == 5.0


def test_a_nested_checkpoint_with_an_optimizer(tmp_path, torch):
    torch.manual_seed(0)
    m = torch.nn.GRU(3, 4)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.randn(5, 2, 3))[0].sum().backward()
    opt.step()
    ckpt = {"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "note": "x", "loss": 0.25,
            "flags": [True, None, (1, 2.5)], "big": 2**70, "neg": -5, "bytes": b"\x00\xff", "set": {1, 2}}
    torch.save(ckpt, tmp_path / "c.pt")
    ref = torch.load(tmp_path / "c.pt", weights_only=True)
    got = minirnn.load_torch(tmp_path / "c.pt")

    def same(a, b, where):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, np.ndarray), where
            np.testing.assert_array_equal(a, b.detach().numpy())
        elif isinstance(b, dict):
            assert type(a) is type(b) and list(a) == list(b), where
            for k in b:
                same(a[k], b[k], f"{where}/{k}")
        elif isinstance(b, (list, tuple)):
            assert type(a) is type(b) and len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}[{i}]")
        else:
            assert type(a) is type(b) and a == b, (where, a, b)

    same(got, ref, "ckpt")
    ours = minirnn.GRU(3, 4)
    ours.load_state_dict(got["model"])


def test_big_endian_files_are_byteswapped(tmp_path, torch):
    want = np.arange(6, dtype=np.float32).reshape(2, 3) / 3
    path = tmp_path / "be.pt"
    minirnn.save_torch({"w": want}, path)
    with zipfile.ZipFile(path) as zf:
        records = [(i.filename, zf.read(i)) for i in zf.infolist()]
    records = [(n, b"big" if n.endswith("/byteorder") else want.astype(">f4").tobytes() if n.endswith("/data/0")
                else d) for n, d in records]
    with open(path, "wb") as f:
        _write_zip(f, records)
    np.testing.assert_array_equal(minirnn.load_torch(path)["w"], want)
    np.testing.assert_array_equal(torch.load(path, weights_only=True)["w"].numpy(), want)   # torch agrees


def test_legacy_torchscript_and_whole_module_files_are_refused_with_advice(tmp_path, torch):
    torch.save({"w": torch.ones(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match=r"legacy.pt.*legacy.*torch.save\(obj, path\)"):
        minirnn.load_torch(tmp_path / "legacy.pt")
    with warnings.catch_warnings():               # torch.jit.script is deprecated, and warns so
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "ts.pt")
    with pytest.raises(ValueError, match=r"ts.pt.*TorchScript"):
        minirnn.load_torch(tmp_path / "ts.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"whole.pt.*torch.nn.modules.linear.Linear"):
        minirnn.load_torch(tmp_path / "whole.pt")


# ---- files written by minirnn, read by torch --------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_minirnn_files_load_in_torch_weights_only(tmp_path, torch, kind):
    make_torch, make_ours = _pairs(torch)[kind]
    ours = make_ours()
    ours.rng = None
    minirnn.save_torch(ours, tmp_path / "m.pt")
    tm = make_torch().double()
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert tm.load_state_dict(state) is not None and list(state) == list(ours.state_dict())
    mine, ref = _outputs(ours, tm, torch, batch_first=kind == "lstm_proj")
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    again = minirnn.load_torch(tmp_path / "m.pt")                # and back
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(again[k], v)


def test_minirnn_nested_state_in_torch_and_mmap_offsets(tmp_path, torch, monkeypatch):
    from torch.utils.serialization import config

    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    state = OrderedDict(w=w, tied=w, h=np.ones(3, np.float16), b=np.array([True, False]), i=np.arange(3),
                        e=np.zeros((0, 2)), s=np.float64(2.5), t=np.asfortranarray(np.eye(3)), after=np.arange(5.0))
    ckpt = {"model": state, "epoch": 7, "lr": 1e-3, "betas": (0.9, 0.999), "name": "adam", "none": None,
            "list": [1, -2, 2**40, 2**80], "nested": {"a": {"b": [np.int32(4)]}}}
    path = tmp_path / "n.pt"
    minirnn.save_torch(ckpt, path)
    monkeypatch.setenv("TORCH_SERIALIZATION_DEBUG", "1")          # torch asserts its predicted offsets are right
    old = config.load.calculate_storage_offsets
    config.load.calculate_storage_offsets = True
    try:
        for mmap in (False, True):
            got = torch.load(path, weights_only=True, mmap=mmap)
            assert list(got["model"]) == list(state)
            for k, v in state.items():
                np.testing.assert_array_equal(got["model"][k].numpy(), v)
            assert got["model"]["w"].untyped_storage().data_ptr() == got["model"]["tied"].untyped_storage().data_ptr()
            assert got["model"]["s"].dtype == torch.float64 and got["model"]["s"].shape == ()
            assert (got["epoch"], got["lr"], got["betas"], got["name"], got["none"]) == (7, 1e-3, (0.9, 0.999),
                                                                                        "adam", None)
            assert got["list"] == [1, -2, 2**40, 2**80] and int(got["nested"]["a"]["b"][0]) == 4
    finally:
        config.load.calculate_storage_offsets = old
    back = minirnn.load_torch(path)
    assert back["epoch"] == 7 and back["model"]["s"].shape == () and back["list"][-1] == 2**80


def test_the_archive_is_laid_out_like_torchs(tmp_path, torch):
    torch.save({"w": torch.ones(3)}, tmp_path / "t.pt")
    minirnn.save_torch({"w": np.ones(3, np.float32)}, tmp_path / "m.pt")

    def layout(path):
        with zipfile.ZipFile(path) as zf:
            return [(i.filename.split("/", 1)[1], i.compress_type, i.flag_bits) for i in zf.infolist()
                    if not i.filename.endswith(".data/serialization_id")]

    assert layout(tmp_path / "m.pt") == layout(tmp_path / "t.pt")
    raw = (tmp_path / "m.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "m.pt") as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename   # 64-byte aligned


def test_save_torch_is_atomic_and_refuses_what_torch_cannot_hold(tmp_path):
    path = tmp_path / "m.pt"
    minirnn.save_torch({"w": np.ones(2)}, path)
    before = path.read_bytes()
    for bad in ({"w": np.array(["a"])}, {"w": object()}, {(1, 2): np.ones(1)}, {"w": np.ones(2, np.uint16)}):
        with pytest.raises(TypeError):
            minirnn.save_torch(bad, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.pt"]
    with pytest.raises(FileNotFoundError):
        minirnn.save_torch({"w": np.ones(2)}, tmp_path / "no" / "m.pt")


# ---- hostile files (no torch needed) ---------------------------------------------------------------------------
def _archive(path, pkl: bytes, records=None, prefix="archive"):
    recs = [(f"{prefix}/data.pkl", pkl), (f"{prefix}/byteorder", b"little")]
    recs += [(f"{prefix}/data/{k}", v) for k, v in (records or {}).items()]
    recs.append((f"{prefix}/version", b"3\n"))
    with open(path, "wb") as f:
        _write_zip(f, recs)
    return path


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _str(s):
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _tensor(storage="FloatStorage", key="0", numel=4, offset=b"K\x00", size=b"K\x04\x85", stride=b"K\x01\x85"):
    """The opcodes torch writes for one tensor; each argument as raw opcodes so that tests can corrupt it."""
    pid = b"(" + _str("storage") + _global("torch", storage) + _str(key) + _str("cpu") + numel + b"t"
    return (_global("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"Q" + offset + size + stride + b"\x89"
            + _global("collections", "OrderedDict") + b")R" + b"tR")


def _int(v):
    raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _dict_of(value_ops):
    return b"\x80\x02}(" + _str("w") + value_ops + b"u."


FOUR_FLOATS = {"0": np.arange(4, dtype=np.float32).tobytes()}


def test_the_hand_built_archive_is_valid(tmp_path):
    """The hostile files below are corruptions of this one, which loads."""
    path = _archive(tmp_path / "ok.pt", _dict_of(_tensor(numel=_int(4))), FOUR_FLOATS)
    np.testing.assert_array_equal(minirnn.load_torch(path)["w"], np.arange(4, dtype=np.float32))


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _canary_pickles(canary):
    import builtins

    touch = f"open({str(canary)!r}, 'w').close()"
    return {
        "os.system": pickle.dumps({"w": _Evil(os.system, f"touch {canary}")}, protocol=2, fix_imports=False),
        "builtins.eval": pickle.dumps({"w": _Evil(builtins.eval, touch)}, protocol=2, fix_imports=False),
        "builtins.exec": pickle.dumps({"w": _Evil(builtins.exec, touch)}, protocol=2, fix_imports=False),
        "subprocess.Popen": pickle.dumps({"w": _Evil(subprocess.Popen, ["touch", str(canary)])}, protocol=2,
                                         fix_imports=False),
    }


def test_the_canary_works(tmp_path):
    """Proof that the hostile pickles below do run code when a normal unpickler reads them."""
    canary = tmp_path / "canary"
    pickle.loads(_canary_pickles(canary)["builtins.exec"])
    assert canary.exists()


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen"])
def test_pickles_naming_other_globals_are_refused_and_run_nothing(tmp_path, name):
    canary = tmp_path / "canary"
    pkl = _canary_pickles(canary)[name]
    module = name.split(".")[0]
    assert module.encode() in pkl
    path = _archive(tmp_path / "evil.pt", pkl)
    with pytest.raises(ValueError, match=r"evil\.pt.*global .*" + {"os": "(os|posix)"}.get(module, module)):
        minirnn.load_torch(path)
    assert not canary.exists()


HOSTILE_PICKLES = {
    # opcodes that build arbitrary objects
    "INST": b"\x80\x02(i" + b"os\nsystem\n" + b".",
    "OBJ": b"\x80\x02(" + _global("collections", "OrderedDict") + b"o.",
    "NEWOBJ": b"\x80\x02" + _global("collections", "OrderedDict") + b")\x81.",
    "STACK_GLOBAL": b"\x80\x02" + _str("os") + _str("system") + b"\x93.",
    "protocol 4": pickle.dumps({"w": 1}, protocol=4),
    # REDUCE on something that is not an allowed function
    "REDUCE on a string": b"\x80\x02" + _str("os.system") + _str("ls") + b"\x85R.",
    "REDUCE on a storage type": b"\x80\x02" + _global("torch", "FloatStorage") + b")R.",
    "REDUCE OrderedDict with junk": b"\x80\x02" + _global("collections", "OrderedDict") + _str("x") + b"\x85R.",
    "rebuild of a non-storage": _dict_of(_global("torch._utils", "_rebuild_tensor_v2") + b"(" + _str("x")
                                         + b"K\x00K\x04\x85K\x01\x85\x89}tR"),
    "rebuild_from_type of a non-tensor": b"\x80\x02" + _global("torch._tensor", "_rebuild_from_type_v2") + b"("
                                         + _global("collections", "OrderedDict") + _global("torch", "Tensor")
                                         + b")}tR.",
    # BUILD tricks (setting attributes is how __setstate__/__dict__ attacks work)
    "BUILD on a dict": b"\x80\x02}}" + _str("__class__") + _str("x") + b"sb.",
    "BUILD on an OrderedDict with other keys": b"\x80\x02" + _global("collections", "OrderedDict") + b")R}"
                                               + _str("__class__") + _str("x") + b"sb.",
    "BUILD on a list": b"\x80\x02]}b.",
    "APPEND to a dict": b"\x80\x02}K\x01a.",
    "SETITEM on a list": b"\x80\x02]K\x01K\x02s.",
    "persistent id that is not storage": b"\x80\x02(" + _str("module") + _str("x") + _str("0") + _str("cpu")
                                         + b"K\x01tQ.",
    # malformed streams
    "stack underflow": b"\x80\x02R.",
    "memo never stored": b"\x80\x02h\x05.",
    "no STOP": b"\x80\x02}",
    "string longer than the pickle": b"\x80\x02X\xff\xff\xff\x7fabc.",
    "two values at STOP": b"\x80\x02NN.",
    "unterminated GLOBAL": b"\x80\x02cos",
    # allowed pieces that are not a checkpoint
    "a bare storage": b"\x80\x02(" + _str("storage") + _global("torch", "FloatStorage") + _str("0") + _str("cpu")
                      + b"K\x04tQ.",
    "an uncalled rebuild function": b"\x80\x02]" + _global("torch._utils", "_rebuild_tensor_v2") + b"a.",
}


@pytest.mark.parametrize("name", list(HOSTILE_PICKLES))
def test_hostile_pickles_are_refused(tmp_path, name):
    path = _archive(tmp_path / "evil.pt", HOSTILE_PICKLES[name], FOUR_FLOATS)
    with pytest.raises(ValueError, match=r"load_torch .*evil\.pt'?: not a readable torch checkpoint"):
        minirnn.load_torch(path)


HOSTILE_TENSORS = {
    "numel larger than the record": (dict(numel=_int(10**12)), "needs"),
    "record too short": (dict(numel=_int(5)), "needs 20"),
    "missing record": (dict(key="7"), "no record"),
    "negative offset": (dict(offset=_int(-1)), "storage offset -1"),
    "huge offset": (dict(offset=_int(2**70)), "reaches element"),
    "negative stride": (dict(stride=_int(-1) + b"\x85"), "non-negative"),
    "overflowing stride": (dict(size=b"K\x02\x85", stride=_int(2**63) + b"\x85"), "reaches element"),
    "size past the storage": (dict(size=b"K\x05\x85"), "reaches element"),
    "size and stride of different lengths": (dict(size=b"K\x02K\x02\x86"), "equally long"),
    "huge expanded view": (dict(size=_int(10**9) + _int(10**9) + b"\x86", stride=b"K\x00K\x00\x86"),
                           "times the file's size"),
    "unknown storage type": (dict(storage="QInt8Storage"), "global 'torch.QInt8Storage'"),
    "float size": (dict(size=b"G" + struct.pack(">d", 4.0) + b"\x85"), "non-negative integers"),
}


@pytest.mark.parametrize("name", list(HOSTILE_TENSORS))
def test_hostile_tensor_headers_are_refused_before_allocating(tmp_path, name):
    kwargs, message = HOSTILE_TENSORS[name]
    kwargs = {"numel": _int(4), **kwargs}
    path = _archive(tmp_path / "evil.pt", _dict_of(_tensor(**kwargs)), FOUR_FLOATS)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"evil\.pt.*" + message):
            minirnn.load_torch(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


def test_many_views_of_one_storage_hit_the_budget(tmp_path):
    """A small pickle asking for thousands of full copies of one storage (quadratic memory) is refused."""
    data = np.zeros(4096, np.float32).tobytes()
    view = _tensor(numel=_int(4096), size=_int(4096) + b"\x85")
    pkl = b"\x80\x02](" + view * 2000 + b"e."
    path = _archive(tmp_path / "many.pt", pkl, {"0": data})
    with pytest.raises(ValueError, match=r"many\.pt.*times the file's size"):
        minirnn.load_torch(path)


def test_damaged_archives_are_refused(tmp_path):
    good = _archive(tmp_path / "good.pt", _dict_of(_tensor(numel=_int(4))), FOUR_FLOATS).read_bytes()
    for cut in (10, len(good) // 2, len(good) - 30, len(good) - 1):
        (tmp_path / "cut.pt").write_bytes(good[:cut])
        with pytest.raises(ValueError, match=r"cut\.pt"):
            minirnn.load_torch(tmp_path / "cut.pt")
    flipped = bytearray(good)
    flipped[good.index(np.arange(4, dtype=np.float32).tobytes()) + 5] ^= 0xFF     # a data byte: the CRC catches it
    (tmp_path / "crc.pt").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"crc\.pt.*(CRC|Bad)"):
        minirnn.load_torch(tmp_path / "crc.pt")
    with zipfile.ZipFile(tmp_path / "good.pt") as src, zipfile.ZipFile(tmp_path / "deflated.pt", "w",
                                                                        zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(ValueError, match=r"deflated\.pt.*compressed"):
        minirnn.load_torch(tmp_path / "deflated.pt")
    (tmp_path / "legacy.pt").write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19." + b"\0" * 20)
    with pytest.raises(ValueError, match=r"legacy\.pt.*legacy.*_use_new_zipfile_serialization=True"):
        minirnn.load_torch(tmp_path / "legacy.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.pt.*not a zip"):
        minirnn.load_torch(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        minirnn.load_torch(tmp_path / "absent.pt")


def test_a_record_claiming_more_than_the_file_is_refused(tmp_path):
    path = _archive(tmp_path / "big.pt", _dict_of(_tensor(numel=_int(4))), FOUR_FLOATS)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("archive/data/0")
    pos = 0                                   # patch the sizes of data/0 in the central directory to 2 GiB
    while True:
        pos = raw.index(b"PK\x01\x02", pos)
        name_len = struct.unpack("<H", raw[pos + 28:pos + 30])[0]
        if raw[pos + 46:pos + 46 + name_len] == b"archive/data/0":
            raw[pos + 20:pos + 28] = struct.pack("<II", 2**31, 2**31)
            break
        pos += 46
    assert info.file_size == 16
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"big\.pt.*(beyond the file|more than the file)"):
            minirnn.load_torch(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak
