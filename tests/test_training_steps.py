"""Training, twice and more: several optimisation steps of every layer kind, each step's parameters compared
with the identical loop in torch (so state left behind by one step cannot go unnoticed in the next), and a
cell run T times in a loop, back-propagated by T backward calls in reverse order, against the sequence layer.
"""
from __future__ import annotations

import numpy as np
import pytest

import minirnn as mr
from helpers import (CELL_KINDS, SEQ_KINDS, assert_close, cell_state, flatten, is_lstm, like, make_cell, make_seq,
                     randomize, seq_state, torch_twin)

STEPS, LR = 4, 0.1


def sgd_step(module, lr=LR):
    for p in module.parameters():
        p.data -= lr * p.grad


def _torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------------------------------------------------
# Sequence layers and cells: STEPS steps of manual SGD, ours and torch's, compared after every step
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"])
def test_seq_layer_trains_like_torch(kind):
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    rng = np.random.default_rng(SEQ_KINDS.index(kind))
    T, B = 5, 3
    m = make_seq(kind, 3, 4, 2, True, bf=True, rng=rng)
    randomize(m, rng, scale=0.5)
    tm = torch_twin(m)
    for step in range(STEPS):
        x = rng.uniform(-2, 2, (B, T, 3))
        hx = seq_state(m, rng, B) if step % 2 else None             # alternate: given, None
        lens = [[5, 2, 4], None, [1, 5, 3], [3, 3, 3]][step]
        out, state = m(x, hx, lengths=lens)
        target = rng.standard_normal(out.shape)
        w_state = like(state, rng)
        # loss = 0.5 |out - target|^2 (masked by the lengths) + <w_state, state>
        mask = np.ones((B, T, 1)) if lens is None else (np.arange(T)[None, :] < np.array(lens)[:, None])[..., None]
        m.zero_grad()
        m.backward((out - target) * mask, w_state)
        assert not m._cache
        sgd_step(m)

        xt = torch.tensor(x)
        hxt = None if hx is None else (tuple(torch.tensor(s) for s in hx) if is_lstm(m) else torch.tensor(hx))
        inp = xt if lens is None else pack_padded_sequence(xt, torch.tensor(lens), batch_first=True,
                                                           enforce_sorted=False)
        tout, tstate = tm(inp, hxt)
        if lens is not None:
            tout, _ = pad_packed_sequence(tout, batch_first=True, total_length=T)
        loss = 0.5 * (((tout - torch.tensor(target)) * torch.tensor(mask)) ** 2).sum()
        for (_, s), (_, w) in zip(flatten(tstate), flatten(w_state)):
            loss = loss + (s * torch.tensor(w)).sum()
        tm.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in tm.parameters():
                p -= LR * p.grad
        assert_close(out, tout.detach().numpy(), 1e-9, f"step {step} out")
        tp = dict(tm.named_parameters())
        for n, p in m.named_parameters():
            assert_close(p.data, tp[n].detach().numpy(), 1e-9, f"step {step} {n}")


@pytest.mark.parametrize("kind", ["rnncell_tanh", "rnncell_relu", "lstmcell", "grucell"])
def test_cell_trains_like_torch(kind):
    torch = _torch()
    rng = np.random.default_rng(CELL_KINDS.index(kind))
    c = make_cell(kind, 3, 4, rng=rng)
    randomize(c, rng)
    tc = torch_twin(c)
    for step in range(STEPS):
        x = rng.uniform(-2, 2, (2, 3))
        hx = cell_state(c, rng, 2) if step % 2 == 0 else None
        out = c(x, hx)
        w = like(out, rng)
        c.zero_grad()
        c.backward(w)
        sgd_step(c)
        thx = None if hx is None else (tuple(torch.tensor(s) for s in hx) if is_lstm(c) else torch.tensor(hx))
        tout = tc(torch.tensor(x), thx)
        tc.zero_grad()
        sum((o * torch.tensor(g)).sum() for (_, o), (_, g) in zip(flatten(tout), flatten(w))).backward()
        with torch.no_grad():
            for p in tc.parameters():
                p -= LR * p.grad
        tp = dict(tc.named_parameters())
        for n, p in c.named_parameters():
            assert_close(p.data, tp[n].detach().numpy(), 1e-9, f"step {step} {n}")


def test_user_model_trains_like_torch_with_our_sgd_momentum():
    """Embedding(padding_idx) -> 2-layer bidirectional LSTM with projection -> Linear, SGD with momentum:
    optimiser state and every layer's cache carry across steps."""
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Ours(mr.Module):
        def __init__(self):
            super().__init__()
            self.emb = mr.Embedding(8, 3, padding_idx=0, dtype=np.float64, rng=1)
            self.rnn = mr.LSTM(3, 5, 2, bidirectional=True, proj_size=2, dtype=np.float64, rng=2)
            self.fc = mr.Linear(4, 2, dtype=np.float64, rng=3)

        def forward(self, idx, lens):
            out, _ = self.rnn(self.emb(idx), lengths=lens)
            return self.fc(out)

        def backward(self, dy):
            dx, _ = self.rnn.backward(self.fc.backward(dy))
            self.emb.backward(dx)

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(8, 3, padding_idx=0)
            self.rnn = torch.nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, idx, lens):
            packed = pack_padded_sequence(self.emb(idx), torch.tensor(lens), enforce_sorted=False)
            out, _ = pad_packed_sequence(self.rnn(packed)[0], total_length=idx.shape[0])
            return self.fc(out)

    ours, theirs = Ours(), Theirs().double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    opt = mr.SGD(ours.parameters(), lr=0.2, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.2, momentum=0.9)
    rng = np.random.default_rng(0)
    T, B = 4, 3
    for step in range(STEPS):
        lens = [[4, 1, 3], [2, 4, 4], [4, 4, 4], [1, 2, 3]][step]
        idx = rng.integers(1, 8, (T, B))
        for b, n in enumerate(lens):
            idx[n:, b] = 0                                       # padding positions use padding_idx
        target = rng.standard_normal((T, B, 2))
        mask = (np.arange(T)[:, None] < np.array(lens)[None])[..., None]
        opt.zero_grad()
        y = ours(idx, lens)
        ours.backward((y - target) * mask)
        opt.step()
        topt.zero_grad()
        ty = theirs(torch.from_numpy(idx), lens)
        (0.5 * (((ty - torch.from_numpy(target)) * torch.from_numpy(mask)) ** 2).sum()).backward()
        topt.step()
        assert_close(y, ty.detach().numpy(), 1e-9, f"step {step} output")
        tp = dict(theirs.named_parameters())
        for n, p in ours.named_parameters():
            assert_close(p.data, tp[n].detach().numpy(), 1e-9, f"step {step} {n}")
        assert not any(mod._cache for mod in ours.modules())
    np.testing.assert_array_equal(ours.emb.weight.data[0], 0.0)   # the padding row never moves


# ------------------------------------------------------------------------------------------------------------
# A cell in a loop (T forwards, T backwards in reverse order) is the sequence layer
# ------------------------------------------------------------------------------------------------------------
SEQ_OF_CELL = {"rnncell_tanh": "rnn_tanh", "rnncell_relu": "rnn_relu", "rnncell_sigmoid": "rnn_sigmoid",
               "lstmcell": "lstm", "grucell": "gru"}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_loop_bptt_equals_sequence_layer_over_training_steps(kind, bias):
    rng = np.random.default_rng([CELL_KINDS.index(kind), bias])
    T, B, I, H = 5, 3, 2, 4
    cell = make_cell(kind, I, H, bias=bias, rng=rng)
    randomize(cell, rng)
    seq = make_seq(SEQ_OF_CELL[kind], I, H, bias=bias, rng=rng)
    seq.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    lstm = is_lstm(cell)
    for step in range(3):                                        # train both; they must stay identical
        x = rng.uniform(-2, 2, (T, B, I))
        h0 = cell_state(cell, rng, B)
        dout = rng.standard_normal((T, B, H))
        dstate = cell_state(cell, rng, B)                        # upstream on h_T (and c_T)

        # the layer
        seq.zero_grad()
        out, state = seq(x, (h0[0][None], h0[1][None]) if lstm else h0[None])
        dx_seq, dstate0_seq = seq.backward(dout, (dstate[0][None], dstate[1][None]) if lstm else dstate[None])

        # the cell, T times forward, then T backward calls in reverse order
        cell.zero_grad()
        s, hs = h0, []
        for t in range(T):
            s = cell(x[t], s)
            hs.append(s[0] if lstm else s)
        assert len(cell._cache) == T
        carry = dstate
        dxs = [None] * T
        for t in range(T - 1, -1, -1):
            if lstm:
                dxs[t], carry = cell.backward((dout[t] + carry[0], carry[1]))
            else:
                dxs[t], carry = cell.backward(dout[t] + carry)
        assert not cell._cache

        np.testing.assert_allclose(np.stack(hs), out, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.stack(dxs), dx_seq, rtol=1e-11, atol=1e-13)
        for (_, a), (_, b) in zip(flatten(carry), flatten(dstate0_seq)):
            np.testing.assert_allclose(a, b[0], rtol=1e-11, atol=1e-13)
        sg = dict(seq.named_parameters())
        for n, p in cell.named_parameters():
            np.testing.assert_allclose(p.grad, sg[n + "_l0"].grad, rtol=1e-11, atol=1e-13, err_msg=n)
        sgd_step(cell)
        sgd_step(seq)


def test_sequence_layer_is_unchanged_by_an_abandoned_forward():
    """A forward whose backward never comes (e.g. evaluation without no_grad, then clear_cache) must not
    change the next training step."""
    rng = np.random.default_rng(9)
    a, b = make_seq("gru", 2, 3, 2, True, rng=1), make_seq("gru", 2, 3, 2, True, rng=1)
    x, dout = rng.uniform(-2, 2, (4, 2, 2)), rng.standard_normal((4, 2, 6))
    b(rng.uniform(-2, 2, (7, 5, 2)))                             # abandoned, other shapes
    b.clear_cache()
    for m in (a, b):
        m.zero_grad()
        m(x)
        m.backward(dout)
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.grad, pb.grad, err_msg=n)
