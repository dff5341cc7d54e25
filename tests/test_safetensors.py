"""safetensors read and written with NumPy only; checked against the safetensors package both ways (when it is
installed), and malformed headers refused before any tensor byte is read."""
import json
import os
import struct
import tracemalloc

import numpy as np
import pytest

import minirnn

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32,
          np.uint16, np.uint8, np.bool_]


def _arrays():
    rng = np.random.default_rng(0)
    out = {}
    for dt in DTYPES:
        a = rng.standard_normal((3, 4)) * 50
        out[np.dtype(dt).name] = (a > 0) if dt is np.bool_ else a.astype(dt)
    out["empty"] = np.zeros((0, 5), np.float32)
    out["scalar"] = np.array(2.5)
    out["strided"] = np.arange(20.0).reshape(4, 5)[:, ::2]            # non-contiguous: written contiguous
    return out


def test_round_trip_every_dtype_with_metadata(tmp_path):
    arrays = _arrays()
    minirnn.save_safetensors(arrays, tmp_path / "a.safetensors", metadata={"epoch": "3", "format": "np"})
    got, meta = minirnn.load_safetensors(tmp_path / "a.safetensors", return_metadata=True)
    assert meta == {"epoch": "3", "format": "np"} and set(got) == set(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v)
        assert got[k].flags.writeable


def test_a_model_round_trips(tmp_path):
    m = minirnn.LSTM(3, 5, num_layers=2, bidirectional=True, rng=0)
    minirnn.save_safetensors(m, tmp_path / "m.safetensors")
    m2 = minirnn.LSTM(3, 5, num_layers=2, bidirectional=True, rng=1)
    m2.load_state_dict(minirnn.load_safetensors(tmp_path / "m.safetensors"))
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    with minirnn.no_grad():
        np.testing.assert_array_equal(m(x)[0], m2(x)[0])


def test_the_layout_is_aligned_and_padded(tmp_path):
    minirnn.save_safetensors({"b": np.ones(3, np.uint8), "a": np.ones(2), "c": np.ones(1, np.float32)},
                             tmp_path / "x.safetensors")
    raw = (tmp_path / "x.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert [k for k in header] == ["a", "c", "b"]                 # largest itemsize first, then by name
    for k, e in header.items():
        assert e["data_offsets"][0] % np.dtype({"F64": "f8", "F32": "f4", "U8": "u1"}[e["dtype"]]).itemsize == 0


def test_package_files_load_and_ours_load_in_the_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    arrays = _arrays()
    arrays["strided"] = np.ascontiguousarray(arrays["strided"])
    st.save_file(arrays, str(tmp_path / "theirs.safetensors"), metadata={"who": "package"})
    got, meta = minirnn.load_safetensors(tmp_path / "theirs.safetensors", return_metadata=True)
    assert meta == {"who": "package"}
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype
        np.testing.assert_array_equal(got[k], v)
    minirnn.save_safetensors(arrays, tmp_path / "ours.safetensors", metadata={"who": "minirnn"})
    back = st.load_file(str(tmp_path / "ours.safetensors"))
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k], v)
    with safe_open(str(tmp_path / "ours.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"who": "minirnn"}


def test_bfloat16_is_widened_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    t = torch.tensor([1.5, -2.25, 3e38, 1e-40, float("inf")], dtype=torch.bfloat16)
    st.save_file({"t": t, "m": torch.nn.Linear(3, 2).weight.detach()}, str(tmp_path / "bf.safetensors"))
    got = minirnn.load_safetensors(tmp_path / "bf.safetensors")
    assert got["t"].dtype == np.float32
    np.testing.assert_array_equal(got["t"], t.float().numpy())


def _file(path, header, data=b"", raw_header=None):
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


F32x4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
BAD = {
    "header length beyond the file": dict(raw_header=b"{}", length=10**12),
    "header not JSON": dict(raw_header=b"{not json"),
    "header not an object": dict(raw_header=b"[1, 2]"),
    "header not UTF-8": dict(raw_header=b"{\"\xff\": 1}"),
    "unknown dtype": dict(header={"w": {**F32x4, "dtype": "F8_E4M3"}}),
    "missing field": dict(header={"w": {"dtype": "F32", "shape": [4]}}),
    "extra field": dict(header={"w": {**F32x4, "code": "x"}}),
    "shape not matching the span": dict(header={"w": {**F32x4, "shape": [5]}}),
    "negative dim": dict(header={"w": {**F32x4, "shape": [-4]}}),
    "bool dim": dict(header={"w": {**F32x4, "shape": [True, 4]}}),
    "float offsets": dict(header={"w": {**F32x4, "data_offsets": [0.0, 16.0]}}),
    "offsets past the buffer": dict(header={"w": {**F32x4, "shape": [8], "data_offsets": [0, 32]}}),
    "reversed offsets": dict(header={"w": {**F32x4, "data_offsets": [16, 0]}}),
    "overlap": dict(header={"w": F32x4, "v": {**F32x4, "shape": [2], "data_offsets": [8, 16]}}),
    "gap": dict(header={"w": {**F32x4, "shape": [2], "data_offsets": [8, 16]}}),
    "trailing bytes": dict(header={"w": {**F32x4, "shape": [2], "data_offsets": [0, 8]}}),
    "huge shape": dict(header={"w": {**F32x4, "shape": [2**40, 2**40]}}),
    "metadata not strings": dict(header={"__metadata__": {"a": 1}, "w": F32x4}),
    "repeated name": dict(raw_header=b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
                                     b'"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}'),
}


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_files_are_refused_before_reading(tmp_path, name):
    spec = BAD[name]
    path = tmp_path / "bad.safetensors"
    if "length" in spec:
        path.write_bytes(struct.pack("<Q", spec["length"]) + spec["raw_header"])
    else:
        _file(path, spec.get("header"), np.arange(4, dtype=np.float32).tobytes(), spec.get("raw_header"))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"load_safetensors .*bad\.safetensors'?: not a valid safetensors"):
            minirnn.load_safetensors(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


def test_the_good_version_of_the_malformed_file_loads(tmp_path):
    path = _file(tmp_path / "ok.safetensors", {"w": F32x4}, np.arange(4, dtype=np.float32).tobytes())
    np.testing.assert_array_equal(minirnn.load_safetensors(path)["w"], np.arange(4, dtype=np.float32))


def test_truncated_and_missing_files(tmp_path):
    minirnn.save_safetensors({"w": np.ones(100)}, tmp_path / "ok.safetensors")
    raw = (tmp_path / "ok.safetensors").read_bytes()
    for cut in (0, 4, 20, len(raw) - 1):
        (tmp_path / "cut.safetensors").write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"cut\.safetensors"):
            minirnn.load_safetensors(tmp_path / "cut.safetensors")
    with pytest.raises(FileNotFoundError):
        minirnn.load_safetensors(tmp_path / "absent.safetensors")


def test_save_refuses_what_the_format_cannot_hold_and_is_atomic(tmp_path):
    path = tmp_path / "m.safetensors"
    minirnn.save_safetensors({"w": np.ones(2)}, path)
    before = path.read_bytes()
    for bad, kwargs in (({"w": np.ones(2, np.complex64)}, {}), ({"w": np.array(["a"])}, {}),
                        ({"__metadata__": np.ones(1)}, {}), ({"w": np.ones(1)}, {"metadata": {"a": 1}}),
                        ({1: np.ones(1)}, {})):
        with pytest.raises(TypeError):
            minirnn.save_safetensors(bad, path, **kwargs)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.safetensors"]
