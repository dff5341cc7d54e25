"""Every example's command line (examples/torch_interop.py aside): --help lists each option with its default and the
exit codes; a bad argument is one line on stderr naming it, exit 2, no traceback; a shortened run is not a failure
unless the goal is asked for; Ctrl-C is one line and exit 130.

Everything here fails before any training (argument errors) or runs a few steps, so each case takes well under a
second or two.
"""
import csv
import gzip
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO_ROOT, run_example, subprocess_env

EXAMPLES = os.path.join(REPO_ROOT, "examples")
SCRIPTS = ["binary_addition.py", "char_lm.py", "gradient_flow.py", "hello.py", "hello_elloh.py", "name_classifier.py",
           "random_classifier.py", "seq2seq.py", "shapes_tour.py", "srn_fixed_weights.py"]


run = run_example


def test_every_example_is_listed_here():
    found = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py") and not f.startswith("_"))
    assert found == sorted(SCRIPTS + ["torch_interop.py"])


def _options(help_text):
    """{'--epochs': 'passes over ... (default: 30)', ...} from an argparse --help text."""
    block = help_text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    options, current = {}, None
    for line in block.splitlines():
        m = re.match(r"^  (-\w, )?(--[\w-]+)(.*)$", line)
        if m:
            current = m.group(2)
            options[current] = m.group(3)
        elif current:
            options[current] += " " + line.strip()
    return options


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_every_option_with_its_default_and_the_exit_codes(script):
    code, out, err = run(script, "--help")
    assert code == 0 and not err, err
    options = _options(out)
    for name, text in options.items():
        if name != "--help":
            assert "(default: " in text, f"{script} {name}: {text}"
    assert re.search(r"^exit codes: 0 .*; 1 .*; 2 bad arguments; .*130 interrupted \(Ctrl-C\)$", out, re.M), out
    if "--require-goal" in options:
        assert re.search(r"^goal: .*--require-goal", out, re.M)
    for word in ("seed 00", "Seed 00", "issue"):
        assert word not in out, f"{script}: {word!r} in --help"


# ---- bad arguments: one line, naming the argument, exit 2 --------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "text.txt").write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    with gzip.open(d / "names.csv.gz", "wt", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("Ivanov", "Russian"), ("Yamamoto", "Japanese")] * 32)
    (d / "three.csv").write_text("a,b,c\n", encoding="utf-8")
    (d / "latin1.txt").write_bytes("Schr\xf6der ".encode("latin-1") * 50)
    (d / "broken.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    return d


BAD = [
    ("binary_addition.py", ["--max-steps", "0"], "--max-steps"),
    ("binary_addition.py", ["--seed", "-1"], "--seed"),
    ("binary_addition.py", ["--hidden", "0"], "--hidden"),
    ("binary_addition.py", ["--lr", "-0.1"], "--lr"),
    ("binary_addition.py", ["--batch", "two"], "--batch"),
    ("char_lm.py", ["--text", "{d}"], "--text"),                                 # a directory
    ("char_lm.py", ["--text", "{d}/names.csv.gz"], "--text"),                    # gzip data, not text
    ("char_lm.py", ["--text", "{d}/latin1.txt"], "--text"),                      # not UTF-8
    ("char_lm.py", ["--text", "{d}/missing.txt"], "--text"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--seq-len", "0"], "--seq-len"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--max-steps", "0"], "--max-steps"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--holdout", "1.5"], "--holdout"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--batch", "500"], "--text"),     # too short for 500 streams
    ("char_lm.py", ["--text", "{d}/text.txt", "--minutes", "-1"], "--minutes"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--temperature", "-1"], "--temperature"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--save", "{d}"], "--save"),
    ("char_lm.py", ["--text", "{d}/text.txt", "--save", "{d}/no/such/folder/lm.npz"], "--save"),
    ("char_lm.py", ["--resume", "{d}/text.txt", "--minutes", "0", "--sample", "5"], "--resume"),   # not a checkpoint
    ("char_lm.py", ["--resume", "{d}/text.txt", "--minutes", "0"], "--sample"),  # nothing to do
    ("char_lm.py", ["--minutes", "1"], "--text"),
    ("gradient_flow.py", ["--steps", "1"], "--steps"),
    ("gradient_flow.py", ["--max-steps", "0"], "--max-steps"),
    ("gradient_flow.py", ["--goal-acc", "1.5"], "--goal-acc"),
    ("gradient_flow.py", ["--plot", "{d}"], "--plot"),
    ("hello.py", ["--seed", "-1"], "--seed"),
    ("hello.py", ["--bogus"], "--bogus"),
    ("hello_elloh.py", ["--epochs", "0"], "--epochs"),
    ("hello_elloh.py", ["--lr", "nan"], "--lr"),
    ("name_classifier.py", ["--train", "{d}", "--test", "{d}/names.csv.gz"], "--train"),
    ("name_classifier.py", ["--train", "{d}/names.csv.gz", "--test", "{d}/three.csv"], "--test"),
    ("name_classifier.py", ["--train", "{d}/broken.gz", "--test", "{d}/names.csv.gz"], "--train"),
    ("name_classifier.py", ["--train", "{d}/latin1.txt", "--test", "{d}/names.csv.gz"], "--train"),
    ("name_classifier.py", ["--train", "{d}/names.csv.gz", "--test", "{d}/names.csv.gz", "--epochs", "0"], "--epochs"),
    ("name_classifier.py", ["--train", "{d}/names.csv.gz", "--test", "{d}/names.csv.gz", "--dropout", "1"],
     "--dropout"),
    ("name_classifier.py", ["--train", "{d}/names.csv.gz", "--test", "{d}/names.csv.gz", "--goal", "2"], "--goal"),
    ("name_classifier.py", ["--train", "{d}/names.csv.gz", "--test", "{d}/names.csv.gz", "--bucket", "-1"],
     "--bucket"),
    ("name_classifier.py", ["--train", "{d}/names.csv.gz", "--test", "{d}/names.csv.gz", "--limit", "0"], "--limit"),
    ("name_classifier.py", ["--load", "{d}/text.txt", "--predict", "Ivanov"], "--load"),
    ("name_classifier.py", ["--load", "{d}", "--predict", "Ivanov"], "--load"),
    ("name_classifier.py", ["--test", "{d}/names.csv.gz"], "--train"),
    ("random_classifier.py", ["--batch-size", "0"], "--batch-size"),
    ("random_classifier.py", ["--seed", "-3"], "--seed"),
    ("random_classifier.py", ["--epochs", "1.5"], "--epochs"),
    ("random_classifier.py", ["--goal", "101"], "--goal"),
    ("seq2seq.py", ["--epochs", "0"], "--epochs"),
    ("seq2seq.py", ["--print-every", "0"], "--print-every"),
    ("seq2seq.py", ["--hidden", "-5"], "--hidden"),
    ("shapes_tour.py", ["--bogus"], "--bogus"),
    ("srn_fixed_weights.py", ["--bogus"], "--bogus"),
]


@pytest.mark.parametrize("script, args, names", BAD, ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD])
def test_a_bad_argument_is_one_line_naming_it_and_exit_2(files, script, args, names):
    code, out, err = run(script, *[a.replace("{d}", str(files)) for a in args])
    assert code == 2, (out, err)
    assert "Traceback" not in err and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{script}: error: ") and names in lines[0], lines[0]


# ---- a shortened run reports; the goal is checked on default-length runs or when asked for ----------------------
QUICK = [
    ("binary_addition.py", ["--max-steps", "2"], "not learned yet"),
    ("random_classifier.py", ["--epochs", "1"], "not checked"),
    ("hello_elloh.py", ["--epochs", "1"], "not checked"),
    ("seq2seq.py", ["--epochs", "1"], "not checked"),
    ("gradient_flow.py", ["--steps", "20", "--max-steps", "3", "--hidden", "4"], "not checked"),
]


@pytest.mark.parametrize("script, args, note", QUICK, ids=[s for s, _, _ in QUICK])
def test_a_shortened_run_is_not_a_failure_unless_the_goal_is_required(script, args, note):
    code, out, err = run(script, *args)
    assert code == 0, out + err
    assert note in out and "--require-goal" in out
    code, out, err = run(script, *args, "--require-goal")
    assert code == 1, out + err
    assert "Traceback" not in err


def test_name_classifier_short_run_is_not_a_failure(files):
    data = str(files / "names.csv.gz")
    code, out, err = run("name_classifier.py", "--train", data, "--test", data, "--epochs", 1, "--hidden", 4,
                         "--lr", 1e-9, "--processes", 1)
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("test accuracy: ")
    assert "not checked: 1 epochs instead of 30" in err
    code, out, err = run("name_classifier.py", "--train", data, "--test", data, "--epochs", 1, "--hidden", 4,
                         "--lr", 1e-9, "--processes", 1, "--require-goal")
    assert code == 1 and "missed the goal" in err


def test_char_lm_has_no_goal_unless_given(files):
    text = str(files / "text.txt")
    small = ["--hidden", 8, "--embed", 4, "--batch", 2, "--seq-len", 8, "--max-steps", 2]
    code, out, err = run("char_lm.py", "--text", text, *small)
    assert code == 0 and "missed the goal" not in err
    code, out, err = run("char_lm.py", "--text", text, *small, "--goal", 0.01)
    assert code == 1 and "missed the goal" in err


# ---- Ctrl-C ------------------------------------------------------------------------------------------------------
def _interrupt(args, wait_for):
    """Start an example in its own process group, wait for a line starting with ``wait_for``, then send SIGINT to
    the group (what a terminal's Ctrl-C does). Returns (exit code, stderr)."""
    env = subprocess_env(OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="error::RuntimeWarning")
    p = subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=REPO_ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line or line.startswith(wait_for):
                break
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err


@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_is_one_line_and_exit_130():
    code, err = _interrupt([os.path.join(EXAMPLES, "random_classifier.py"), "--epochs", 10000], "Epoch [1/")
    assert code == 130, err
    assert err.strip() == "random_classifier.py: interrupted"


@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_with_the_second_process_is_one_line_too(files):
    """name_classifier's default runs a helper process; the terminal's SIGINT reaches it too, and it must not print
    a traceback of its own. Sizes large enough for the helper to be used (64 names x 6 steps x 3 gates x 32)."""
    data = str(files / "names.csv.gz")
    code, err = _interrupt([os.path.join(EXAMPLES, "name_classifier.py"), "--train", data, "--test", data,
                            "--epochs", 100000, "--hidden", 32, "--processes", 2], "epoch ")
    assert code == 130, err
    assert err.strip() == "name_classifier.py: interrupted"
