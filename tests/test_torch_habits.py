"""The torch habits a user brings, each checked against what torch 2.13 does with the same code.

Checkpoints (``model.load_state_dict(minirnn.load(path))``, train/eval mode kept by ``load_module``, torch files
pointed to ``minirnn.load_torch``), the module API (``numel``, ``to``/``double``/``float``, frozen parameters,
``print(model)``, ``apply``/``modules``/``named_modules``/``children``), and the edge cases where torch has an
answer (an empty batch, a zero-width cell, ``proj_size`` on RNN/GRU, ``dropout=1`` between layers, the types of
``bias``/``batch_first``). Tests that need torch import it inside (``pytest.importorskip``).
"""
from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np
import pytest

import minirnn as mr
from helpers import TORCH_CELL_KINDS, TORCH_SEQ_KINDS, is_lstm, make_cell, make_seq, randomize, torch_twin

# torch's own float32 LSTM-with-projection warns that oneDNN does not do projections (setup.cfg makes warnings errors)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")


def _torch():
    return pytest.importorskip("torch")


def _tensors(sd):
    torch = _torch()
    return {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}


# ---- checkpoints --------------------------------------------------------------------------------------------------
def test_load_gives_back_what_save_was_given(tmp_path):
    torch = _torch()
    model = mr.LSTM(3, 4, num_layers=2, rng=0)
    tm = torch_twin(make_seq("lstm", 3, 4, 2, dtype=np.float32))
    torch.save(tm.state_dict(), tmp_path / "t.pt")
    theirs = torch.load(tmp_path / "t.pt")
    # a saved Module and a saved state dict both load back as the state dict, the type torch.load returns
    mr.save(model, tmp_path / "m.npz", epoch=3)
    mr.save(model.state_dict(), tmp_path / "sd.npz")
    for name in ("m.npz", "sd.npz"):
        back = mr.load(tmp_path / name)
        assert type(back) is type(theirs) is collections.OrderedDict
        assert list(back) == list(theirs) == list(model.state_dict())
        other = mr.LSTM(3, 4, num_layers=2, rng=1)
        result = other.load_state_dict(mr.load(tmp_path / name))            # the idiom: no TypeError
        assert repr(result) == repr(tm.load_state_dict(theirs)) == "<All keys matched successfully>"
        for k, v in model.state_dict().items():
            assert other.state_dict()[k].tobytes() == v.tobytes()
    # nested state comes back as the nested object, as torch.load gives back the dict it saved
    opt = mr.Adam(model.parameters())
    state = {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}
    mr.save(state, tmp_path / "all.npz")
    back = mr.load(tmp_path / "all.npz")
    assert set(back) == {"model", "optim", "epoch"} and back["epoch"] == 3
    model.load_state_dict(back["model"])
    opt.load_state_dict(back["optim"])


def test_load_checkpoint_keeps_what_load_leaves_out(tmp_path):
    model = mr.GRU(3, 4, rng=0)
    mr.save(model, tmp_path / "m.npz", epoch=3, vocab=["a", "b"])
    ckpt = mr.load_checkpoint(tmp_path / "m.npz")
    assert ckpt.metadata == {"epoch": 3, "vocab": ["a", "b"]}
    assert ckpt.config == mr.module_config(model) and ckpt.training == {"": True}
    assert list(ckpt.state_dict) == list(mr.load(tmp_path / "m.npz"))
    assert repr(ckpt.build()) == repr(model)


def _net_pair(torch):
    """The same model in both frameworks: a GRU, a Dropout and a Linear in a Sequential-like container."""
    ours = mr.Sequential(mr.GRU(3, 4, num_layers=2, dropout=0.5, rng=0), mr.Dropout(0.3), mr.Linear(4, 2, rng=1))
    theirs = torch.nn.Sequential(torch.nn.GRU(3, 4, num_layers=2, dropout=0.5), torch.nn.Dropout(0.3),
                                 torch.nn.Linear(4, 2))
    return ours, theirs


def test_load_module_restores_train_and_eval_modes_as_torch_load_does(tmp_path):
    torch = _torch()
    ours, theirs = _net_pair(torch)
    for m in (ours, theirs):
        m.eval()
        m[1].train()          # a mixed state: only the Dropout in training mode
    mr.save(ours, tmp_path / "m.npz")
    torch.save(theirs, tmp_path / "m.pt")
    back = mr.load_module(tmp_path / "m.npz")
    their_back = torch.load(tmp_path / "m.pt", weights_only=False)
    modes = [(n, m.training) for n, m in back.named_modules()]
    assert modes == [(n, m.training) for n, m in their_back.named_modules()]
    assert modes == [("", False), ("0", False), ("1", True), ("2", False)]
    ours.train()
    mr.save(ours, tmp_path / "m.npz")
    assert all(m.training for m in mr.load_module(tmp_path / "m.npz").modules())


def _edit_header(path, edit):
    import io
    import json

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    header = json.loads(np.lib.format.read_array(io.BytesIO(members["__minirnn__.npy"])).tobytes())
    edit(header)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
    members["__minirnn__.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)


def test_checkpoints_without_modes_build_in_training_mode_and_bad_modes_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    mr.save(mr.Sequential(mr.Linear(2, 3, rng=0), mr.Dropout(0.5)).eval(), path)
    _edit_header(path, lambda h: h.pop("training"))                # a file written before modes were saved
    assert mr.load_checkpoint(path).training is None
    assert all(m.training for m in mr.load_module(path).modules())
    _edit_header(path, lambda h: h.update(training={"": "no"}))
    with pytest.raises(ValueError, match="m.npz.*modes"):
        mr.load(path)


def test_torch_files_are_refused_with_a_pointer_to_load_torch(tmp_path):
    # torch.save's zip format (an archive holding <name>/data.pkl) and its legacy pickle, written without torch ...
    with zipfile.ZipFile(tmp_path / "fake.pt", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({}))
        zf.writestr("archive/version", "3\n")
    legacy_magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)   # torch/serialization.py's MAGIC_NUMBER
    (tmp_path / "legacy.pt").write_bytes(legacy_magic + pickle.dumps(1001, protocol=2))
    for name, fmt in (("fake.pt", "zip format"), ("legacy.pt", "legacy")):
        with pytest.raises(ValueError, match=rf"{name}.*PyTorch file.*{fmt}.*minirnn\.load_torch\(path\)"):
            mr.load(tmp_path / name)
    # ... and by torch itself
    torch = _torch()
    torch.save(torch.nn.GRU(3, 4).state_dict(), tmp_path / "real.pt")
    torch.save({"w": torch.ones(2)}, tmp_path / "real_legacy.pt", _use_new_zipfile_serialization=False)
    for name, fmt in (("real.pt", "zip format"), ("real_legacy.pt", "legacy")):
        with pytest.raises(ValueError, match=rf"{name}.*PyTorch file.*{fmt}.*load_torch"):
            mr.load(tmp_path / name)
    # any other pickle is still "not a valid minirnn checkpoint"
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(ValueError, match="other.pkl.*not a valid minirnn checkpoint"):
        mr.load(tmp_path / "other.pkl")


# ---- the module API -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS + TORCH_CELL_KINDS)
def test_numel_matches_torch(kind):
    _torch()
    m = make_seq(kind, 3, 4, 2, True) if kind in TORCH_SEQ_KINDS else make_cell(kind, 3, 4)
    tm = torch_twin(m)
    assert [p.numel() for p in m.parameters()] == [p.numel() for p in tm.parameters()]
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in tm.parameters()) > 0
    assert isinstance(m.weight_ih_l0.numel() if kind in TORCH_SEQ_KINDS else m.weight_ih.numel(), int)


class _Net(mr.Module):
    """GRU -> last step -> Linear, the same as _TorchNet."""

    def __init__(self, dtype=np.float32):
        super().__init__()
        self.rnn = mr.GRU(3, 5, batch_first=True, dtype=dtype, rng=0)
        self.fc = mr.Linear(5, 2, dtype=dtype, rng=1)

    def forward(self, x):
        out, _ = self.rnn(x)
        self.T = out.shape[1]
        return self.fc(out[:, -1])

    def backward(self, dy):
        dlast = self.fc.backward(dy)
        dout = np.zeros((dlast.shape[0], self.T, dlast.shape[1]), dlast.dtype)
        dout[:, -1] = dlast
        dx, _ = self.rnn.backward(dout, None)
        return dx


def _torch_net(ours):
    torch = _torch()

    class _TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(3, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, -1])

    tm = _TorchNet().to(torch.float64 if ours.fc.dtype == np.float64 else torch.float32)
    tm.load_state_dict(_tensors(ours.state_dict()))
    return tm


def test_double_and_float_cast_parameters_grads_and_the_layers_dtype_as_torch():
    torch = _torch()
    rng = np.random.default_rng(0)
    ours = _Net()
    randomize(ours, rng)
    theirs = _torch_net(ours)
    x = rng.standard_normal((4, 6, 3))
    y = ours(x.astype(np.float32))
    ours.backward(np.ones_like(y))
    theirs(torch.from_numpy(x).float()).sum().backward()
    assert ours.double() is ours and theirs.double() is theirs               # both return self
    for (n, p), (tn, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert n == tn and p.dtype == np.float64 and tp.dtype == torch.float64
        assert p.grad.dtype == np.float64 and tp.grad.dtype == torch.float64   # grads are cast too
        np.testing.assert_array_equal(p.data, tp.detach().numpy())
    assert ours.rnn.dtype == ours.fc.dtype == np.float64                       # the next forward expects float64
    ours.zero_grad()
    theirs.zero_grad()
    xt = torch.from_numpy(x).requires_grad_()
    yt = theirs(xt)
    y = ours(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = ours.backward(dy)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-12)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="input.*float64"):
        ours(x.astype(np.float32))                                             # no silent cast either way
    assert ours.float() is ours and ours.fc.weight.dtype == np.float32 and ours.rnn.dtype == np.float32
    assert ours(x.astype(np.float32)).dtype == np.float32


def test_to_takes_torchs_forms():
    torch = _torch()
    m = mr.Linear(2, 3, rng=0)
    w = m.weight
    for args, kwargs, want in [((np.float64,), {}, np.float64), (("float32",), {}, np.float32),
                               ((torch.float64,), {}, np.float64), ((torch.float,), {}, np.float32),
                               ((torch.double,), {}, np.float64), (("cpu",), {}, np.float64),
                               ((torch.device("cpu"),), {}, np.float64), (("cpu", np.float32), {}, np.float32),
                               ((), {"dtype": np.float64}, np.float64), ((np.zeros(1, np.float32),), {}, np.float32),
                               ((torch.zeros(1, dtype=torch.float64),), {}, np.float64),
                               ((), {"device": "cpu", "dtype": torch.float32, "non_blocking": True}, np.float32)]:
        assert m.to(*args, **kwargs) is m, (args, kwargs)
        assert m.weight is w and w.dtype == want and m.dtype == want, (args, kwargs)
    assert m.cpu() is m
    torch.nn.Linear(2, 3).to("cpu", torch.float64)                            # the forms torch accepts too
    for bad, exc, match in [(("cuda",), ValueError, "device.*CPU only"), ((torch.device("meta"),), ValueError, "CPU"),
                            ((np.int64,), TypeError, "dtype"), ((torch.float16,), TypeError, "dtype"),
                            (("banana",), TypeError, "dtype")]:
        with pytest.raises(exc, match=match):
            m.to(*bad)
    with pytest.raises(TypeError):
        torch.nn.Linear(2, 3).to(torch.int64)                               # torch refuses integer dtypes too
    assert m.weight.dtype == np.float32


def test_casting_with_a_pending_forward_cache_is_refused_until_it_is_cleared():
    m = mr.Linear(2, 3, rng=0)
    m(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="backward.*clear_cache"):
        m.double()
    assert m.weight.dtype == np.float32 and m.dtype == np.float32             # nothing changed
    m.float()                                                                  # no change of dtype: allowed
    m.clear_cache()
    assert m.double().weight.dtype == np.float64


def test_an_optimizer_built_before_double_keeps_training_the_same_parameters_as_torch():
    torch = _torch()
    rng = np.random.default_rng(1)
    ours = _Net()
    randomize(ours, rng)
    theirs = _torch_net(ours)
    opt, topt = mr.SGD(ours.parameters(), lr=0.1, momentum=0.9), torch.optim.SGD(theirs.parameters(), lr=0.1,
                                                                                  momentum=0.9)
    ours.double()
    theirs.double()
    x = rng.standard_normal((3, 4, 3))
    for _ in range(2):
        opt.zero_grad()
        topt.zero_grad()
        ours.backward(ours(x))                           # loss = sum(y^2) / 2
        (theirs(torch.from_numpy(x)) ** 2).sum().div(2).backward()
        opt.step()
        topt.step()
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=0, atol=1e-12)


def test_frozen_parameters_get_no_grad_and_optimizers_skip_them_as_torch():
    torch = _torch()
    rng = np.random.default_rng(2)
    ours = _Net(np.float64)
    randomize(ours, rng)
    theirs = _torch_net(ours)
    assert ours.rnn.requires_grad_(False) is ours.rnn and theirs.rnn.requires_grad_(False) is theirs.rnn
    assert ours.fc.bias.requires_grad_(False) is ours.fc.bias
    theirs.fc.bias.requires_grad = False
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in theirs.parameters()]
    assert [p.requires_grad for p in ours.parameters()] == [False] * 4 + [True, False]
    frozen = {n: p.data.copy() for n, p in ours.named_parameters() if not p.requires_grad}
    opt, topt = mr.Adam(ours.parameters(), lr=0.05), torch.optim.Adam(theirs.parameters(), lr=0.05)
    x = rng.standard_normal((3, 4, 3))
    for _ in range(2):
        opt.zero_grad()
        topt.zero_grad()
        xt = torch.from_numpy(x).requires_grad_()
        yt = theirs(xt)
        dy = rng.standard_normal(tuple(yt.shape))
        dx = ours.backward(np.asarray(dy)) if ours(x) is not None else None
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-12)   # the input gradient still flows
        assert [p.grad is None for p in ours.parameters()] == [p.grad is None for p in theirs.parameters()]
        opt.step()
        topt.step()
    for (n, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=0, atol=1e-12)
        if n in frozen:
            assert p.data.tobytes() == frozen[n].tobytes()
    assert len(opt.state) == len(topt.state) == 1                            # state only for fc.weight
    ours.requires_grad_()
    assert all(p.requires_grad for p in ours.parameters())


def test_embedding_from_pretrained_is_frozen_by_default_as_torch():
    torch = _torch()
    w = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    for args, kwargs in (((), {}), ((False,), {}), ((), {"freeze": True}), ((False, 1), {}), ((), {"padding_idx": 2})):
        ours = mr.Embedding.from_pretrained(w, *args, **kwargs)
        theirs = torch.nn.Embedding.from_pretrained(torch.from_numpy(w), *args, **kwargs)
        assert ours.weight.requires_grad == theirs.weight.requires_grad, (args, kwargs)
        assert ours.padding_idx == theirs.padding_idx, (args, kwargs)
        np.testing.assert_array_equal(ours.weight.data, theirs.weight.detach().numpy())
        idx = np.array([[0, 1], [2, 4]])
        ours.backward(np.ones_like(ours(idx)))
        assert (ours.weight.grad is None) == (not theirs.weight.requires_grad), (args, kwargs)
    with pytest.raises(TypeError, match="freeze"):
        mr.Embedding.from_pretrained(w, "no")


def test_requires_grad_takes_a_bool_as_torch():
    torch = _torch()
    p, tp = mr.Parameter(np.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    for bad in (1, 0, "False", None, np.True_):
        with pytest.raises(TypeError, match="requires_grad"):
            p.requires_grad = bad
        with pytest.raises(TypeError, match="requires_grad"):
            p.requires_grad_(bad)
        with pytest.raises(TypeError, match="requires_grad"):
            mr.Linear(2, 2).requires_grad_(bad)
        with pytest.raises((TypeError, RuntimeError), match="requires_grad"):   # torch: RuntimeError on assignment
            tp.requires_grad = bad
    assert p.requires_grad is True and "requires_grad=False" in repr(p.requires_grad_(False))


class _Tagged(mr.Module):
    def __init__(self):
        super().__init__()
        self.rnn = mr.LSTM(3, 6, num_layers=2, proj_size=2, batch_first=True, bidirectional=True, rng=0)
        self.head = mr.Sequential(mr.Dropout(0.1), mr.Linear(4, 5, bias=False, rng=0))
        self.cell = mr.RNNCell(4, 3, nonlinearity="relu", rng=0)

    def extra_repr(self):
        return "tagged\nsecond line"


def _torch_modules(torch):
    nn = torch.nn

    class _Tagged(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 6, num_layers=2, proj_size=2, batch_first=True, bidirectional=True)
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(4, 5, bias=False))
            self.cell = nn.RNNCell(4, 3, nonlinearity="relu")

        def extra_repr(self):
            return "tagged\nsecond line"

    return _Tagged


class _Wrap(mr.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def extra_repr(self):
        return "k=1"


def test_print_model_is_torchs_repr():
    torch = _torch()
    nn = torch.nn

    class _TorchWrap(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def extra_repr(self):
            return "k=1"

    _TorchWrap.__name__ = "_Wrap"
    pairs = [
        (_Tagged(), _torch_modules(torch)()),
        (_Wrap(_Wrap(mr.Linear(2, 2))), _TorchWrap(_TorchWrap(nn.Linear(2, 2)))),
        (mr.Sequential(mr.Embedding(7, 3, padding_idx=0), mr.GRU(3, 4, num_layers=2, dropout=0.25),
                       mr.Sequential(mr.Linear(4, 4), mr.Dropout())),
         nn.Sequential(nn.Embedding(7, 3, padding_idx=0), nn.GRU(3, 4, num_layers=2, dropout=0.25),
                       nn.Sequential(nn.Linear(4, 4), nn.Dropout()))),
        (mr.RNN(3, 4, bias=False, batch_first=True, bidirectional=True), nn.RNN(3, 4, bias=False, batch_first=True,
                                                                               bidirectional=True)),
        (mr.LSTM(3, 4, num_layers=3, dropout=1.0), nn.LSTM(3, 4, num_layers=3, dropout=1.0)),
        (mr.GRUCell(3, 4, bias=False), nn.GRUCell(3, 4, bias=False)),
        (mr.LSTMCell(3, 0), nn.LSTMCell(3, 0)),
        (mr.Embedding(5, 2, padding_idx=-1), nn.Embedding(5, 2, padding_idx=-1)),
        (mr.Module(), nn.Module()),
        (mr.Sequential(), nn.Sequential()),
    ]
    for ours, theirs in pairs:
        assert str(ours) == repr(ours) == repr(theirs)
    assert "(cell): RNNCell(4, 3, nonlinearity=relu)" in repr(pairs[0][0])
    # beyond torch: the RNN's nonlinearity (torch's RNN repr leaves it out) and the sigmoid SRN
    assert repr(mr.RNN(3, 4, nonlinearity="relu", num_layers=2)) == "RNN(3, 4, num_layers=2, nonlinearity=relu)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu", num_layers=2)) == "RNN(3, 4, num_layers=2)"


def test_module_iterators_and_apply_visit_what_torchs_do():
    torch = _torch()
    ours, theirs = _Tagged(), _torch_modules(torch)()

    def names(pairs):
        return [(n, type(m).__name__.lstrip("_")) for n, m in pairs]

    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert names(ours.named_modules(prefix="net")) == names(theirs.named_modules(prefix="net"))
    assert names(ours.named_children()) == names(theirs.named_children())
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]
    seen, tseen = [], []
    assert ours.apply(lambda m: seen.append(type(m).__name__)) is ours
    theirs.apply(lambda m: tseen.append(type(m).__name__))
    assert seen == tseen and seen[-1] == "_Tagged" and seen[0] == "LSTM"     # children first, self last
    assert [n for n, _ in ours.named_parameters(recurse=False)] == []
    assert [n for n, _ in ours.rnn.named_parameters(recurse=False)] == [n for n, _ in
                                                                       theirs.rnn.named_parameters(recurse=False)]
    # a module shared under two names: listed once by the iterators, under both names by state_dict
    lin, tlin = mr.Linear(2, 2, rng=0), torch.nn.Linear(2, 2)
    shared, tshared = mr.Sequential(lin, lin), torch.nn.Sequential(tlin, tlin)
    assert names(shared.named_modules()) == names(tshared.named_modules()) == [("", "Sequential"), ("0", "Linear")]
    assert names(shared.named_modules(remove_duplicate=False)) == names(tshared.named_modules(remove_duplicate=False))
    assert names(shared.named_children()) == names(tshared.named_children())
    assert [n for n, _ in shared.named_parameters()] == [n for n, _ in tshared.named_parameters()]
    assert list(shared.state_dict()) == list(tshared.state_dict())
    assert sum(p.numel() for p in shared.parameters()) == sum(p.numel() for p in tshared.parameters()) == 6
    # apply as torch's docs use it: initialise every Linear
    ours.apply(lambda m: m.weight.data.fill(0.5) if isinstance(m, mr.Linear) else None)
    assert (ours.head[1].weight.data == 0.5).all()


# ---- edge cases ---------------------------------------------------------------------------------------------------
def _run_torch(tm, x, hx, lstm):
    torch = _torch()
    xt = torch.from_numpy(x).requires_grad_()
    hxt = None if hx is None else (tuple(torch.from_numpy(s) for s in hx) if lstm else torch.from_numpy(hx))
    out, state = tm(xt) if hxt is None else tm(xt, hxt)
    loss = out.sum() + (state[0].sum() + state[1].sum() if lstm else state.sum())
    loss.backward()
    return out, state, xt.grad


@pytest.mark.parametrize("kind", TORCH_SEQ_KINDS)
@pytest.mark.parametrize("bf", [False, True])
def test_an_empty_batch_gives_torchs_empty_shapes_and_zero_grads(kind, bf):
    _torch()
    m = make_seq(kind, 3, 4, 2, True, bf=bf)
    randomize(m, np.random.default_rng(0))
    tm = torch_twin(m)
    lstm = is_lstm(m)
    x = np.zeros((0, 5, 3) if bf else (5, 0, 3))
    LD, P = 4, m.proj_size or 4
    for hx in (None, (np.zeros((LD, 0, P)), np.zeros((LD, 0, 4))) if lstm else np.zeros((LD, 0, P))):
        m.zero_grad()
        out, state = m(x) if hx is None else m(x, hx)
        tout, tstate, tdx = _run_torch(tm, x, hx, lstm)
        assert out.shape == tuple(tout.shape) and out.dtype == np.float64
        if lstm:
            assert (state[0].shape, state[1].shape) == (tuple(tstate[0].shape), tuple(tstate[1].shape))
            dx, (dh0, dc0) = m.backward(np.ones_like(out), (np.ones_like(state[0]), np.ones_like(state[1])))
            assert dc0.shape == state[1].shape
        else:
            assert state.shape == tuple(tstate.shape)
            dx, dh0 = m.backward(np.ones_like(out), np.ones_like(state))
        assert dx.shape == tuple(tdx.shape) == x.shape and dh0.shape == (LD, 0, P)
        for (n, p), tp in zip(m.named_parameters(), tm.parameters()):       # torch: zero grads, not None
            assert p.grad is not None and tp.grad is not None, n
            np.testing.assert_array_equal(p.grad, tp.grad.numpy())
        assert not m._cache
    m(x, lengths=np.zeros(0, np.int64))                       # lengths for no sequences: the same empty result
    m.clear_cache()


@pytest.mark.parametrize("kind", TORCH_CELL_KINDS)
def test_cells_with_an_empty_batch_or_hidden_size_0_give_torchs_shapes(kind):
    torch = _torch()
    for I, H, xshape in ((3, 4, (0, 3)), (3, 0, (2, 3)), (3, 0, (3,))):
        c = make_cell(kind, I, H)
        randomize(c, np.random.default_rng(0))
        tc = torch_twin(c)
        assert [p.shape for p in c.parameters()] == [tuple(p.shape) for p in tc.parameters()]
        x = np.ones(xshape)
        xt = torch.from_numpy(x).requires_grad_()
        ty = tc(xt)
        ty = ty if isinstance(ty, tuple) else (ty,)
        sum(t.sum() for t in ty).backward()
        y = c(x)
        y = y if isinstance(y, tuple) else (y,)
        assert [a.shape for a in y] == [tuple(t.shape) for t in ty]
        dx, dstate = c.backward(tuple(np.ones_like(a) for a in y) if len(y) == 2 else y[0])
        assert dx.shape == tuple(xt.grad.shape)
        np.testing.assert_array_equal(dx, xt.grad.numpy())
        for p, tp in zip(c.parameters(), tc.parameters()):
            np.testing.assert_array_equal(p.grad, tp.grad.numpy())


def test_hidden_size_0_is_refused_by_the_sequence_layers_as_by_torch():
    torch = _torch()
    for ours, theirs in ((mr.RNN, torch.nn.RNN), (mr.GRU, torch.nn.GRU), (mr.LSTM, torch.nn.LSTM)):
        with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
            theirs(3, 0)
        with pytest.raises(ValueError, match="hidden_size"):
            ours(3, 0)


def test_proj_size_on_rnn_or_gru_is_torchs_value_error():
    torch = _torch()
    for ours, theirs in ((mr.RNN, torch.nn.RNN), (mr.GRU, torch.nn.GRU)):
        for proj in (0, 2):
            with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
                theirs(3, 4, proj_size=proj)
            with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
                ours(3, 4, proj_size=proj)
    assert mr.LSTM(3, 4, proj_size=2).proj_size == 2


@pytest.mark.parametrize("kind", ["rnn_tanh", "gru", "lstm", "lstm_proj"])
def test_dropout_1_between_layers_zeroes_as_torch(kind):
    torch = _torch()
    rng = np.random.default_rng(3)
    m = make_seq(kind, 3, 4, 3, True, dropout=1.0)
    randomize(m, rng)
    tm = torch_twin(m)
    tm.dropout = 1.0
    assert m.dropout == tm.dropout == 1.0
    x, lstm = rng.standard_normal((5, 2, 3)), is_lstm(m)
    for training in (True, False):
        m.train(training)
        tm.train(training)
        m.zero_grad()
        tm.zero_grad()
        out, state = m(x)
        tout, tstate, tdx = _run_torch(tm, x, None, lstm)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=0, atol=1e-12)
        if lstm:
            dx, _ = m.backward(np.ones_like(out), (np.ones_like(state[0]), np.ones_like(state[1])))
        else:
            dx, _ = m.backward(np.ones_like(out), np.ones_like(state))
        np.testing.assert_allclose(dx, tdx.numpy(), rtol=0, atol=1e-12)
        for (n, p), tp in zip(m.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=0, atol=1e-12, err_msg=n)
        if training:   # the last layer sees a zero input: its input weights get no gradient, its others do
            assert not m.weight_ih_l2.grad.any() and not m.weight_ih_l2_reverse.grad.any()
            assert m.weight_hh_l2.grad.any()
    drop, tdrop = mr.Dropout(1.0), torch.nn.Dropout(1.0)
    y = drop(np.ones((2, 3), np.float32))
    assert (y == 0).all() and (tdrop(torch.ones(2, 3)) == 0).all()
    assert (drop.backward(np.ones_like(y)) == 0).all()


def test_bias_and_batch_first_types_are_checked_as_torch_checks_them():
    torch = _torch()
    for ours, theirs in ((mr.RNN, torch.nn.RNN), (mr.GRU, torch.nn.GRU), (mr.LSTM, torch.nn.LSTM)):
        for name in ("bias", "batch_first"):
            for value in (True, False, 1, 0, np.True_, "True", None, 1.0):
                try:
                    theirs(3, 4, **{name: value})
                    torch_error = None
                except TypeError as e:
                    torch_error = str(e)
                if torch_error is None:
                    assert getattr(ours(3, 4, **{name: value}), name) is value
                else:
                    assert torch_error.startswith(f"{name} should be of type bool, got: ")
                    with pytest.raises(TypeError, match=rf"^{name} should be of type bool, got: "):
                        ours(3, 4, **{name: value})
    # bidirectional: torch does not check it; minirnn takes what torch takes as a switch (bools, 0 and 1) and
    # refuses what would be silently truthy ("False")
    assert mr.GRU(3, 4, bidirectional=1).bidirectional is True and torch.nn.GRU(3, 4, bidirectional=1).bidirectional
    with pytest.raises(TypeError, match="bidirectional"):
        mr.GRU(3, 4, bidirectional="False")


def test_train_takes_a_bool_as_torch():
    torch = _torch()
    ours, theirs = mr.Linear(2, 2), torch.nn.Linear(2, 2)
    for bad in (1, 0, "False", None, np.True_):
        with pytest.raises(ValueError, match="training mode is expected to be boolean"):
            theirs.train(bad)
        with pytest.raises(ValueError, match="training mode is expected to be boolean"):
            ours.train(bad)
    assert ours.training is True
    assert ours.train(False) is ours and ours.training is False and ours.eval() is ours
