"""The seed-program examples, each run as a subprocess: exit codes and the lines a user reads.

binary_addition.py is the README's main command, so it runs in full with its defaults (a couple of seconds).
"""
import os
import re

import numpy as np
import pytest
from helpers import REPO_ROOT, run_example

ROOT = REPO_ROOT
EXAMPLES = os.path.join(ROOT, "examples")


run = run_example


# ---- seed 004, part 4: binary addition --------------------------------------------------------------------------
def test_binary_addition_default_run_learns_and_adds_64_bit_numbers():
    code, out, err = run("binary_addition.py", "--seed", 3)
    assert code == 0, out + err
    assert re.search(r"^step +\d+  loss \d\.\d{4}  exact sums in the last 25 batches +\d+\.\d\d%  +\d+\.\d\d s$", out,
                     re.M)
    assert re.search(r"^step +\d+  a whole batch right; all 16384 sums: 100\.00% exact$", out, re.M)
    assert re.search(r"^learned all 16384 sums in \d+ steps \(\d+ examples\) in \d+\.\d\d s$", out, re.M)
    # the hard cases are printed with their exact sums (65 bits for 64-bit operands: Python ints)
    for bits in (32, 64):
        top = (1 << bits) - 1
        assert f"\n  {top} + 1 = {top + 1}\n" in out
        assert f"\n  {top} + {top} = {2 * top}\n" in out
        assert f"\n{bits}-bit numbers: 1002/1002 sums exact\n" in out
    # every printed sum is a correct one (the example would have marked it WRONG otherwise)
    sums = re.findall(r"^  (\d+) \+ (\d+) = (\d+)$", out, re.M)
    assert len(sums) == 8 and all(int(a) + int(b) == int(s) for a, b, s in sums)
    assert "WRONG" not in out and "FAILED" not in out
    assert re.search(r"^total \d+\.\d\d s$", out.strip().splitlines()[-1])


def test_binary_addition_exits_nonzero_when_it_cannot_learn_in_time():
    code, out, err = run("binary_addition.py", "--max-steps", 1, "--require-goal")
    assert code == 1
    m = re.fullmatch(r"FAILED: only (\d+\.\d\d)% of the 16,384 sums exact after 1 steps \(--max-steps 1\)",
                     out.strip().splitlines()[-1])
    assert m and float(m.group(1)) < 100
    assert "bit numbers" not in out                      # no length demonstration after a failed training
    # without --require-goal a shortened run only reports
    code, out, err = run("binary_addition.py", "--max-steps", 1)
    assert code == 0, err
    assert re.fullmatch(r"not learned yet: only \d+\.\d\d% of the 16,384 sums exact after 1 steps \(--max-steps 1\); "
                        r"not checked \(fewer steps than the default 2000; add --require-goal to check it\)",
                        out.strip().splitlines()[-1])


# ---- seeds 000/002: hello -> ohlol --------------------------------------------------------------------------------
def test_hello_all_three_ways_predict_ohlol():
    code, out, err = run("hello.py")
    assert code == 0, out + err
    finals = re.findall(r"^Predicted: (\w{5}), Epoch \[15/15\] loss=(\d+\.\d{4})$", out, re.M)
    assert [text for text, _ in finals] == ["ohlol"] * 3
    for way in ("(a) RNNCell", "(b) RNN over the whole sequence", "(c) Embedding + 2-layer RNN + Linear"):
        assert way in out
    assert out.strip().splitlines()[-1] == "all three ways predict ohlol"


# ---- seed 004, parts 1-3: the SRN with fixed weights --------------------------------------------------------------
def test_srn_fixed_weights_prints_the_seeds_numbers():
    code, out, err = run("srn_fixed_weights.py")
    assert code == 0, out + err
    # 1. no activation, 2. tanh: the seed's NumPy prints, digit for digit
    for y in ("4.0", "12.0", "32.0", "1.9280551601516338", "1.9984510891336251", "1.9999753470497836"):
        assert f"\noutput_y is  {y} {y}\n" in out
    # 3. RNNCell and RNN, printed to 4 places as torch does
    cell = re.findall(r"^output : \[\[(\d\.\d{4}) (\d\.\d{4})\]\]$", out, re.M)
    layer = re.findall(r"^Output: \[\[(\d\.\d{4}) (\d\.\d{4})\]\]$", out, re.M)
    expected = [("1.9281", "1.9281"), ("1.9985", "1.9985"), ("2.0000", "2.0000")]
    assert cell == expected and layer == expected
    assert re.findall(r"^hidden: \[\[(\d\.\d{4}) \d\.\d{4}\]\]$", out, re.M) == ["0.9640", "0.9992"]
    assert out.strip().splitlines()[-1].startswith("all numbers match the tutorial's: 4, 12, 32")


# ---- seed 003: shapes ------------------------------------------------------------------------------------------
def test_shapes_tour_prints_the_seeds_shapes():
    code, out, err = run("shapes_tour.py")
    assert code == 0, out + err
    lines = [re.sub(r"\s+", " ", line.strip()) for line in out.strip().splitlines()]
    for line in ["RNN(100, 20)",                                         # print(nn.RNN(100, 20))
                 "out, h (10, 3, 20) (1, 3, 20)",                        # (10, 3, 100) input, h0 (1, 3, 20)
                 "RNN(100, 20, num_layers=4)",
                 "out, h (4 layers) (10, 3, 20) (4, 3, 20)",
                 "h1 (3, 20)",                                           # RNNCell(100, 20) over the 10 steps
                 "h2 (two stacked cells) (3, 20)",                       # RNNCell(100, 30) -> RNNCell(30, 20)
                 "LSTM(100, 20, num_layers=4)",
                 "out, h, c (10, 3, 20) (4, 3, 20) (4, 3, 20)",
                 "h, c (3, 20) (3, 20)",                                 # one LSTMCell
                 "h2, c2 (3, 20) (3, 20)",                               # two stacked LSTMCells
                 "all shapes match torch's"]:
        assert line in lines, line


def _load_example(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


# ---- the random-data classifier: RNN(5, 64) + Linear(64, 2), TensorDataset + DataLoader -------------------------
def test_random_classifier_prints_a_line_per_epoch_and_memorises(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: --plot cannot draw")
    png = tmp_path / "loss.png"
    code, out, err = run("random_classifier.py", "--plot", png)
    assert code == 0, out + err
    epochs = re.findall(r"^Epoch \[(\d+)/60\], Loss: (\d\.\d{4}), Accuracy: (\d+\.\d\d)%$", out, re.M)
    assert [int(e) for e, _, _ in epochs] == list(range(1, 61))
    losses = [float(loss) for _, loss, _ in epochs]
    assert 0.68 < losses[0] < 0.71 and losses[-1] < 0.3             # starts at ln 2 (random labels), then memorises
    m = re.search(r"^Test Accuracy: (\d+\.\d\d)%$", out, re.M)
    assert m and float(m.group(1)) >= 90.0
    assert f"saved the loss curve to {png}" in out and _png(png)


def test_random_classifier_steps_match_torch_on_the_same_batches():
    """Same initial weights and the same batches (the DataLoader's order, which torch's RNG cannot reproduce):
    the same losses and weights as torch's nn.RNN + nn.Linear + Adam, batch after batch."""
    torch = pytest.importorskip("torch")
    ex = _load_example("random_classifier")
    import minirnn
    minirnn.manual_seed(0)
    X, Y = ex.make_data(0, num_samples=100)
    ours = ex.SimpleRNN(5, 16, 2)
    tn = torch.nn
    rnn, fc = tn.RNN(5, 16, batch_first=True), tn.Linear(16, 2)
    with torch.no_grad():
        for name, p in ours.rnn.state_dict().items():
            getattr(rnn, name).copy_(torch.from_numpy(p))
        for name, p in ours.fc.state_dict().items():
            getattr(fc, name).copy_(torch.from_numpy(p))
    opt_t = torch.optim.Adam([*rnn.parameters(), *fc.parameters()], lr=1e-3)
    opt = minirnn.Adam(ours.parameters(), lr=1e-3)
    crit = minirnn.CrossEntropyLoss()
    loader = minirnn.DataLoader(minirnn.TensorDataset(X, Y), batch_size=32, shuffle=True, seed=0)
    for _ in range(2):
        for inputs, labels in loader:
            loss = crit(ours(inputs), labels)
            opt.zero_grad()
            ours.backward(crit.backward())
            opt.step()
            out, _ = rnn(torch.from_numpy(inputs))
            loss_t = tn.functional.cross_entropy(fc(out[:, -1, :]), torch.from_numpy(labels))
            opt_t.zero_grad()
            loss_t.backward()
            opt_t.step()
            assert abs(loss - loss_t.item()) < 1e-5
    np.testing.assert_allclose(ours.rnn.weight_hh_l0.data, rnn.weight_hh_l0.detach().numpy(), atol=1e-5)


# ---- "hello" -> "elloh", the hidden state carried across epochs ---------------------------------------------
def test_hello_elloh_prints_every_20_epochs_and_predicts_elloh(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: --plot cannot draw")
    png = tmp_path / "loss.png"
    code, out, err = run("hello_elloh.py", "--plot", png)
    assert code == 0, out + err
    lines = re.findall(r"^Epoch \[(\d+)/200\], Loss: (\d\.\d{4})$", out, re.M)
    assert [int(e) for e, _ in lines] == list(range(20, 201, 20))
    assert float(lines[-1][1]) < 0.01
    assert "\nInput sequence:  hello\nPredicted sequence:  elloh\n" in out
    assert _png(png)


def test_hello_elloh_matches_torch_with_detach():
    """The seed's torch loop (hidden carried, hidden.detach()) from the same initial weights: the same losses."""
    torch = pytest.importorskip("torch")
    ex = _load_example("hello_elloh")
    logged = []
    model, losses = ex.train(epochs=60, seed=3, log=logged.append)
    import minirnn
    minirnn.manual_seed(3)
    init = ex.RNNModel(5, 8, 5)                              # the same initial weights as train() drew
    rnn, fc = torch.nn.RNN(5, 8, batch_first=True), torch.nn.Linear(8, 5)
    with torch.no_grad():
        for name, p in init.rnn.state_dict().items():
            getattr(rnn, name).copy_(torch.from_numpy(p))
        for name, p in init.fc.state_dict().items():
            getattr(fc, name).copy_(torch.from_numpy(p))
    opt = torch.optim.Adam([*rnn.parameters(), *fc.parameters()], lr=0.1)
    inputs, targets = torch.from_numpy(ex.inputs), torch.from_numpy(ex.targets)
    hidden, theirs = None, []
    for _ in range(60):
        opt.zero_grad()
        out, hidden = rnn(inputs.unsqueeze(0), hidden)
        hidden = hidden.detach()
        loss = torch.nn.functional.cross_entropy(fc(out).view(-1, 5), targets)
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    np.testing.assert_allclose(losses[:20], theirs[:20], rtol=1e-3, atol=1e-6)
    assert abs(losses[-1] - theirs[-1]) < 1e-3
    assert len(logged) == 3 and logged[0].startswith("Epoch [20/60], Loss: ")
    assert ex.predict(model) == "elloh"


# ---- vanishing gradients, per step -------------------------------------------------------------------------
def test_gradient_flow_default_run_reaches_its_goal_and_prints_the_table(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: --plot cannot draw")
    png = tmp_path / "grads.png"
    code, out, err = run("gradient_flow.py", "--plot", png, timeout=300)
    assert code == 0, out + err
    for kind in ("LSTM", "GRU"):
        assert re.search(rf"^{kind} +trained +\d+ steps, reached length 100, held-out accuracy at T=100: "
                         rf"(0\.9\d\d|1\.000)$", out, re.M), out
    num = r"(\d\.\d\de[-+]\d\d)"
    rows = re.findall(rf"^(SRN tanh|SRN sigmoid|LSTM|GRU|) +(init|after) +{num} +{num} +{num} +{num}$", out, re.M)
    assert [w for _, w, *_ in rows] == ["init", "after"] * 4
    ratio = {}
    for i, (kind, when, at_T, _, at_1, r) in enumerate(rows):
        assert float(r) == pytest.approx(float(at_1) / float(at_T), rel=0.02)
        assert float(r) < 1e-10 or when == "after"               # vanished at initialisation, every model
        if when == "after":
            ratio[rows[i - 1][0]] = float(r)
    assert ratio["LSTM"] >= 1e4 * ratio["SRN tanh"] and ratio["GRU"] >= 1e4 * ratio["SRN tanh"]
    assert _png(png)


def test_gradient_flow_step_norms_match_torch_autograd():
    """The cell-loop norms of dL/dh_t equal torch autograd's (retain_grad on every step's state), float64."""
    torch = pytest.importorskip("torch")
    ex = _load_example("gradient_flow")
    x, y = ex.make_batch(np.random.default_rng(1), 5, 12)
    for kind, cell_cls in (("SRN tanh", torch.nn.RNNCell), ("LSTM", torch.nn.LSTMCell), ("GRU", torch.nn.GRUCell)):
        import minirnn
        minirnn.manual_seed(2)
        model = ex.Recall(kind, 6)
        ours = ex.step_gradients(model, x, y)
        cell = cell_cls(ex.SYMBOLS, 6).double()
        fc = torch.nn.Linear(6, ex.SYMBOLS).double()
        with torch.no_grad():
            for name, p in model.rnn.state_dict().items():
                getattr(cell, name[:-3]).copy_(torch.from_numpy(p.astype(np.float64)))
            for name, p in model.fc.state_dict().items():
                getattr(fc, name).copy_(torch.from_numpy(p.astype(np.float64)))
        h = torch.zeros(5, 6, dtype=torch.float64, requires_grad=True)
        c = torch.zeros(5, 6, dtype=torch.float64)
        states = [h]
        for t in range(12):
            if kind == "LSTM":
                h, c = cell(torch.from_numpy(x[t]).double(), (h, c))
            else:
                h = cell(torch.from_numpy(x[t]).double(), h)
            h.retain_grad()
            states.append(h)
        torch.nn.functional.cross_entropy(fc(h), torch.from_numpy(y)).backward()
        theirs = np.array([s.grad.norm(dim=1).mean().item() for s in states])
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=0)
