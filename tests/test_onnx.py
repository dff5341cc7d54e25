"""ONNX export, served by onnxruntime: its outputs equal minirnn's to float32 tolerance, for every recurrent kind,
layers, bidirectional, batch_first, lengths, initial states, other batch and sequence sizes than the example's,
Embedding/Linear/Sequential and the two example models."""
import importlib.util
import os

import numpy as np
import pytest
from helpers import REPO_ROOT, make_seq

import minirnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ATOL = 1e-5


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _flat(out):
    if isinstance(out, tuple):
        return [leaf for item in out for leaf in _flat(item)]
    return [out]


def _run_both(model, path, inputs, names):
    """minirnn's outputs and onnxruntime's for the same inputs (a structure like export_onnx's example_inputs)."""
    with minirnn.no_grad():
        mine = _flat(model(*inputs))
    leaves = [a for a in _flat(tuple(inputs))]
    feed = {n: a for n, a in zip(names, leaves) if a is not None}
    sess = _session(path)
    theirs = sess.run(None, feed)
    assert len(theirs) == len(mine)
    return mine, theirs


CONFIGS = [  # kind, num_layers, bidirectional, batch_first, with lengths, with h0
    ("rnn_tanh", 1, False, False, False, False),
    ("rnn_tanh", 2, True, True, True, True),
    ("rnn_relu", 2, True, False, True, False),
    ("rnn_sigmoid", 1, True, False, False, True),
    ("lstm", 1, False, False, False, False),
    ("lstm", 2, True, True, True, True),
    ("lstm", 2, False, False, True, False),
    ("gru", 1, False, True, False, False),
    ("gru", 2, True, False, True, True),
    ("gru", 3, False, False, False, True),
]


def _inputs(m, T, B, rng, lengths, h0):
    x = rng.standard_normal((B, T, 3) if m.batch_first else (T, B, 3)).astype(np.float32)
    state = None
    if h0:
        shape = (m.num_layers * m.num_directions, B, m.hidden_size)
        h = rng.standard_normal(shape).astype(np.float32)
        state = (h, rng.standard_normal(shape).astype(np.float32)) if m.mode == "LSTM" else h
    ls = rng.integers(1, T + 1, size=B) if lengths else None
    if lengths:
        ls[0] = T
    return (x, state, ls)


@pytest.mark.parametrize("config", CONFIGS, ids=["-".join(map(str, c)) for c in CONFIGS])
def test_recurrent_layers_match_onnxruntime(tmp_path, config):
    kind, L, bi, bf, lengths, h0 = config
    m = make_seq(kind, 3, 5, L=L, bi=bi, bf=bf, dtype=np.float32, rng=1)
    for p in m.parameters():                  # larger weights than the default init: gates away from 0
        p.data[...] = np.random.default_rng(2).uniform(-0.8, 0.8, p.shape)
    rng = np.random.default_rng(0)
    example = _inputs(m, 6, 4, rng, lengths, h0)
    names = ["x", *(["h0", "c0"] if kind == "lstm" and h0 else ["h0"]), "lengths"]
    result = minirnn.export_onnx(m, tmp_path / "m.onnx", example, input_names=names)
    assert result.max_abs_diff <= ATOL
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)
    types = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert kind.split("_")[0].upper() in types                       # ONNX's own recurrent operator
    for T, B in ((6, 4), (3, 2), (9, 5)):                            # dynamic axes: other sizes than the example's
        inputs = _inputs(m, T, B, np.random.default_rng(T), lengths, h0)
        mine, theirs = _run_both(m, tmp_path / "m.onnx", inputs, names)
        for a, b in zip(mine, theirs):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, rtol=0, atol=ATOL)


def test_float64_models_export_as_float32(tmp_path):
    m = minirnn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    result = minirnn.export_onnx(m, tmp_path / "m.onnx", (x,))
    assert result.max_abs_diff < 1e-6
    out = _session(tmp_path / "m.onnx").run(None, {"input0": x.astype(np.float32)})
    assert out[0].dtype == np.float32


def test_embedding_linear_sequential(tmp_path):
    m = minirnn.Sequential(minirnn.Embedding(10, 4, rng=0), minirnn.Dropout(0.5), minirnn.Linear(4, 3, rng=1))
    idx = np.random.default_rng(0).integers(0, 10, size=(5, 2))
    result = minirnn.export_onnx(m, tmp_path / "m.onnx", (idx,))
    assert m.training                                                # the export restores the training mode
    idx2 = np.random.default_rng(1).integers(0, 10, size=(8, 3))     # other sizes (the rank is the example's)
    m.eval()
    mine, theirs = _run_both(m, tmp_path / "m.onnx", (idx2,), ["input0"])
    np.testing.assert_allclose(theirs[0], mine[0], rtol=0, atol=ATOL)
    assert result.max_abs_diff <= ATOL
    lin = minirnn.Linear(4, 3, bias=False, rng=0)
    minirnn.export_onnx(lin, tmp_path / "l.onnx", (np.ones((2, 4), np.float32),))


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(REPO_ROOT, "examples",
                                                                                   f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_name_classifier_example_model(tmp_path):
    nc = _example("name_classifier")
    model = nc.NameClassifier(n_chars=30, hidden=8, n_classes=5, n_layers=2, rng=np.random.default_rng(0))
    model.eval()
    rng = np.random.default_rng(0)
    x = rng.integers(1, 30, size=(6, 9))
    lengths = rng.integers(1, 10, size=6)
    lengths[0] = 9

    def forward(g, x, lengths):   # NameClassifier.forward, line for line
        emb = g.module(model.embedding, g.transpose(x, (1, 0)))
        _, h_n = g.module(model.gru, emb, None, lengths=lengths)
        return g.module(model.fc, g.concat([g.select(h_n, -2), g.select(h_n, -1)], axis=1))

    result = minirnn.export_onnx(model, tmp_path / "nc.onnx", (x, lengths), forward=forward,
                                 input_names=["x", "lengths"], output_names=["logits"])
    assert result.max_abs_diff <= ATOL
    x2, l2 = rng.integers(1, 30, size=(3, 4)), np.array([4, 1, 3])
    mine, theirs = _run_both(model, tmp_path / "nc.onnx", (x2, l2), ["x", "lengths"])
    np.testing.assert_allclose(theirs[0], mine[0], rtol=0, atol=ATOL)


def test_the_char_lm_example_model(tmp_path):
    lm = _example("char_lm")
    model = lm.CharLM(20, embed=6, hidden=10, layers=2, rng=np.random.default_rng(0))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, size=(7, 3))
    state = tuple(rng.standard_normal((2, 3, 10)).astype(np.float32) for _ in range(2))

    def forward(g, x, state):     # CharLM.forward, line for line
        out, state = g.module(model.lstm, g.module(model.embedding, x), state)
        return g.module(model.fc, out), state

    result = minirnn.export_onnx(model, tmp_path / "lm.onnx", (x, state), forward=forward,
                                 input_names=["x", "h0", "c0"], output_names=["logits", "h_n", "c_n"])
    assert result.max_abs_diff <= ATOL
    sess = _session(tmp_path / "lm.onnx")
    h, c = state
    with minirnn.no_grad():                   # a few chunks, the state carried, as the sampler does
        for chunk in range(3):
            xs = rng.integers(0, 20, size=(4, 3))
            (logits, (h_m, c_m)) = model(xs, (h, c))
            lo, h_o, c_o = sess.run(None, {"x": xs, "h0": h, "c0": c})
            for a, b in ((logits, lo), (h_m, h_o), (c_m, c_o)):
                np.testing.assert_allclose(b, a, rtol=0, atol=ATOL)
            h, c = h_m, c_m


def test_refusals(tmp_path):
    lstm = minirnn.LSTM(3, 5, proj_size=2, rng=0)
    with pytest.raises(ValueError, match="proj_size=2.*no projection"):
        minirnn.export_onnx(lstm, tmp_path / "p.onnx", (np.ones((2, 1, 3), np.float32),))
    with pytest.raises(TypeError, match="no ONNX form for GRUCell"):
        minirnn.export_onnx(minirnn.GRUCell(3, 4, rng=0), tmp_path / "c.onnx", (np.ones((2, 3), np.float32),))
    with pytest.raises(ValueError, match="rank 2.*batched"):
        minirnn.export_onnx(minirnn.GRU(3, 4, rng=0), tmp_path / "u.onnx", (np.ones((5, 3), np.float32),))
    with pytest.raises(ValueError, match="input_names"):
        minirnn.export_onnx(minirnn.Linear(3, 2, rng=0), tmp_path / "l.onnx", (np.ones((2, 3), np.float32),),
                            input_names=["a", "b"])
    assert not os.listdir(tmp_path)


def test_a_wrong_graph_is_caught_and_not_written(tmp_path, monkeypatch):
    """verify=True compares with onnxruntime: a gate order mistake (torch's GRU order given to ONNX) is refused."""
    import minirnn.onnx_export as ox

    monkeypatch.setattr(ox, "_GRU_ORDER", (0, 1, 2))
    m = minirnn.GRU(3, 4, rng=0)
    with pytest.raises(ValueError, match="differs from minirnn's"):
        minirnn.export_onnx(m, tmp_path / "g.onnx", (np.ones((5, 2, 3), np.float32),))
    assert not os.listdir(tmp_path)
