"""The seed-program examples, each run as a subprocess: exit codes and the lines a user reads.

binary_addition.py is the README's main command, so it runs in full with its defaults (a couple of seconds).
"""
import os
import re
import subprocess
import sys

from helpers import REPO_ROOT, subprocess_env

ROOT = REPO_ROOT
EXAMPLES = os.path.join(ROOT, "examples")


def run(script, *args, timeout=120):
    env = subprocess_env(OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="error::RuntimeWarning")
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, cwd=ROOT, env=env)
    return p.returncode, p.stdout, p.stderr


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
    code, out, err = run("binary_addition.py", "--max-steps", 1)
    assert code == 1
    m = re.fullmatch(r"FAILED: only (\d+\.\d\d)% of the 16,384 sums exact after 1 steps \(--max-steps 1\)",
                     out.strip().splitlines()[-1])
    assert m and float(m.group(1)) < 100
    assert "bit numbers" not in out                      # no length demonstration after a failed training


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
    assert out.strip().splitlines()[-1].startswith("all numbers match seed 004")


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
                 "all shapes match seed 003"]:
        assert line in lines, line
