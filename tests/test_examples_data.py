"""The examples, each run as a subprocess in a short mode: exit codes and the lines a user reads.

The name classifier needs the course's files (../shared/data from the repository root) and is skipped with a
reason when they are absent; the char LM and the seq2seq run on text written here, so they never skip.
"""
import csv
import gzip
import json
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, run_example, subprocess_env

ROOT = REPO_ROOT
EXAMPLES = os.path.join(ROOT, "examples")
# the course's files: $MINIRNN_DATA, else ../shared/data next to the checkout
DATA = os.path.abspath(os.environ.get("MINIRNN_DATA") or os.path.join(ROOT, "..", "shared", "data"))
NAMES_TRAIN = os.path.join(DATA, "names_train.csv.gz")
NAMES_TEST = os.path.join(DATA, "names_test.csv.gz")
needs_names = pytest.mark.skipif(not (os.path.exists(NAMES_TRAIN) and os.path.exists(NAMES_TEST)),
                                 reason=f"the course's name files are not at {DATA} (the repository never ships them; "
                                        "set MINIRNN_DATA to their folder)")


run = run_example


# ---- name classifier --------------------------------------------------------------------------------------------
def _tiny_names_csv(path, rows_per_language=12):
    """Two easy languages (names ending in -ov / -moto) so that a few epochs learn them."""
    rows = []
    for i in range(rows_per_language):
        stem = "abcdefghijkl"[i]
        rows += [(f"Iv{stem}nov", "Russian"), (f"Y{stem}moto", "Japanese"), (f"Schr{stem}öder", "German")]
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


def test_name_classifier_save_predict_and_errors(tmp_path):
    train, test, ckpt = tmp_path / "train.csv.gz", tmp_path / "test.csv.gz", tmp_path / "names.npz"
    _tiny_names_csv(train)
    _tiny_names_csv(test, 4)
    code, out, err = run("name_classifier.py", "--train", train, "--test", test, "--epochs", 2, "--hidden", 16,
                         "--batch-size", 8, "--goal", 0, "--save", ckpt, "--predict", "Ivanov")
    assert code == 0, err
    assert re.search(r"^epoch +1  loss \d+\.\d+  test acc \d\.\d+  train \d+\.\d+ s  eval \d+\.\d+ s$", out, re.M)
    assert out.strip().splitlines()[-1].startswith("test accuracy: ")
    assert ckpt.exists()
    code, out, err = run("name_classifier.py", "--load", ckpt, "--predict", "Dostoevsky", "Nakamura")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ("Dostoevsky", "Nakamura")):
        m = re.fullmatch(rf"{name}: (\w+) (\d\.\d+), (\w+) (\d\.\d+), (\w+) (\d\.\d+)", line)
        assert m, line
        probs = [float(m.group(i)) for i in (2, 4, 6)]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1.0) < 0.01   # 3 languages: all of them
    # an unreachable goal exits 1 but still reports
    code, out, err = run("name_classifier.py", "--train", train, "--test", test, "--epochs", 1, "--hidden", 8,
                         "--lr", 1e-6, "--goal", 1.0)
    assert code == 1 and "missed the goal" in err and out.strip().splitlines()[-1].startswith("test accuracy")
    # a diverging run stops with a clear message and writes nothing
    bad = tmp_path / "bad.npz"
    code, out, err = run("name_classifier.py", "--train", train, "--test", test, "--epochs", 3, "--hidden", 8,
                         "--lr", 1e30, "--save", bad)
    assert code == 3 and "stopping without saving" in err and not bad.exists()
    code, _, err = run("name_classifier.py", "--test", test)
    assert code == 2 and "--train and --test are required" in err


def test_name_classifier_plot_is_optional(tmp_path):
    train = tmp_path / "train.csv.gz"
    _tiny_names_csv(train, 3)
    png = tmp_path / "curves.png"
    code, out, err = run("name_classifier.py", "--train", train, "--test", train, "--epochs", 1, "--hidden", 8,
                         "--goal", 0, "--plot", png)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert code == 2 and "--plot needs matplotlib" in err and not png.exists()
    else:
        assert code == 0 and png.exists(), err


_STUB_PYPLOT = """
import json
class _Axes:
    def __init__(self, fig): self.fig = fig
    def plot(self, x, y, **kw): self.fig.lines.append([list(map(float, x)), list(map(float, y))])
    def set(self, **kw): self.fig.labels.append(kw)
class _Figure:
    def __init__(self): self.lines, self.labels = [], []
    def tight_layout(self): pass
    def savefig(self, path):
        with open(path, "w") as f:
            json.dump({"lines": self.lines, "labels": self.labels}, f)
def subplots(rows, cols, figsize=None):
    fig = _Figure()
    return fig, tuple(_Axes(fig) for _ in range(rows * cols))
def close(fig): pass
"""


def test_name_classifier_plot_draws_the_printed_curves(tmp_path):
    """--plot's drawing, through a stand-in matplotlib that records the calls (matplotlib is not a dependency, so
    the real one may be absent): one curve of the per-epoch losses and one of the test accuracies, as printed."""
    stub = tmp_path / "stub"
    (stub / "matplotlib").mkdir(parents=True)
    (stub / "matplotlib" / "__init__.py").write_text("def use(backend):\n    pass\n")
    (stub / "matplotlib" / "pyplot.py").write_text(_STUB_PYPLOT)
    train, out_path = tmp_path / "train.csv.gz", tmp_path / "curves.json"
    _tiny_names_csv(train, 3)
    code, out, err = run("name_classifier.py", "--train", train, "--test", train, "--epochs", 3, "--hidden", 8,
                         "--goal", 0, "--plot", out_path, path_first=stub)
    assert code == 0, err
    assert f"saved curves to {out_path}" in out
    printed = re.findall(r"^epoch +(\d+)  loss (\d+\.\d+)  test acc (\d\.\d+)", out, re.M)
    assert len(printed) == 3
    drawn = json.loads(out_path.read_text())
    (ex, losses), (ea, accs) = drawn["lines"]
    assert ex == ea == [1.0, 2.0, 3.0]
    assert [f"{v:.4f}" for v in losses] == [loss for _, loss, _ in printed]
    assert [f"{v:.4f}" for v in accs] == [acc for _, _, acc in printed]
    assert [d["title"] for d in drawn["labels"]] == ["loss", "accuracy"]


def test_name_classifier_cosine_schedule_is_torchs():
    """The example's per-epoch learning rate equals torch's CosineAnnealingLR(T_max=epochs) stepped per epoch."""
    torch = pytest.importorskip("torch")
    import importlib.util
    spec = importlib.util.spec_from_file_location("name_classifier", os.path.join(EXAMPLES, "name_classifier.py"))
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    for epochs in (1, 2, 30):
        opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=3e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        for epoch in range(1, epochs + 1):
            assert example.epoch_lr(3e-3, epoch, epochs, "cosine") == pytest.approx(opt.param_groups[0]["lr"],
                                                                                   rel=1e-12, abs=1e-18)
            assert example.epoch_lr(3e-3, epoch, epochs, "constant") == 3e-3
            opt.step()
            sched.step()


@needs_names
def test_name_classifier_on_the_course_data(tmp_path):
    code, out, err = run("name_classifier.py", "--train", NAMES_TRAIN, "--test", NAMES_TEST, "--limit", 1500,
                         "--epochs", 2, "--goal", 0.2, "--seed", 1)
    assert code == 0, err
    assert "1500 train / 1500 test names" in out
    acc = float(out.strip().splitlines()[-1].split(":")[1])
    assert 0.2 <= acc <= 1.0


# ---- character-level language model ----------------------------------------------------------------------------
def test_char_lm_trains_saves_resumes_and_samples(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("the cat sat on the mat. " * 60 + "é", encoding="utf-8")
    ckpt = tmp_path / "lm.npz"
    small = ["--hidden", 24, "--embed", 8, "--batch", 4, "--seq-len", 16]
    code, out, err = run("char_lm.py", "--text", text, "--max-steps", 6, *small, "--save", ckpt, "--sample", 30,
                         "--prompt", "the ", "--temperature", 0.5)
    assert code == 0, err
    assert re.search(r"^step +6  train loss \d+\.\d+ nats", out, re.M)
    m = re.search(r"^final held-out loss (\d+\.\d+) nats, (\d+\.\d+) bpc after .* \(6 steps\)$", out, re.M)
    assert m and abs(float(m.group(2)) - float(m.group(1)) / 0.6931471805599453) < 1e-3
    assert "saved model, optimizer, vocabulary and step 6" in out and ckpt.exists()
    sample_lines = out.split(" sample (temperature 0.5) ")[1]
    assert sample_lines.split("\n", 1)[1].startswith("the ")
    # resume: the step counter continues and training goes on from the saved optimizer state
    code, out, err = run("char_lm.py", "--text", text, "--resume", ckpt, "--max-steps", 2, *small)
    assert code == 0, err
    assert "resumed" in out and "step 6" in out and "(8 steps)" in out
    # sample only from the checkpoint (no text needed), greedy; a prompt character never seen maps to <unk>
    code, out, err = run("char_lm.py", "--resume", ckpt, "--minutes", 0, "--sample", 10, "--temperature", 0,
                         "--prompt", "Zebra")
    assert code == 0, err
    assert "Zebra" in out and "held-out" not in out
    code, _, err = run("char_lm.py", "--minutes", 1)
    assert code == 2 and "--text is required" in err


def test_char_lm_goal_and_divergence(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("abcabcabd " * 80, encoding="utf-8")
    small = ["--hidden", 8, "--embed", 4, "--batch", 2, "--seq-len", 8]
    code, out, err = run("char_lm.py", "--text", text, "--max-steps", 2, *small, "--goal", 0.01)
    assert code == 1 and "missed the goal" in err
    bad = tmp_path / "bad.npz"
    code, out, err = run("char_lm.py", "--text", text, "--max-steps", 20, *small, "--lr", 1e30, "--clip", 1e30,
                         "--save", bad)
    assert code == 3 and "stopping without saving" in err and not bad.exists()


def _load_script(path, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_char_lm_torch_twin_runs_and_evaluates_like_the_example(tmp_path):
    """The PyTorch twin (benchmarks/char_lm_torch.py): a tiny run, and the same held-out number for the same weights."""
    torch = pytest.importorskip("torch", reason="torch is not installed: the twin benchmark cannot run")
    text = tmp_path / "tiny.txt"
    text.write_text("the cat sat on the mat. " * 60 + "é", encoding="utf-8")
    small = ["--hidden", 24, "--embed", 8, "--batch", 4, "--seq-len", 16, "--threads", 1]
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "char_lm_torch.py"), "--text", str(text),
                        *map(str, ["--max-steps", 6, *small])], capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env=subprocess_env())
    assert p.returncode == 0, p.stderr
    m = re.search(r"^final held-out loss (\d+\.\d+) nats, (\d+\.\d+) bpc after .* \(6 steps\)$", p.stdout, re.M)
    assert m and p.stdout.strip().splitlines()[-1] == m.group(0)
    # the same split, vocabulary, initial weights, offsets and batches: the same losses up to float32 rounding
    split = re.compile(r"\d+ characters: \d+ train, \d+ held out; vocabulary \d+")
    code, out, err = run("char_lm.py", "--text", text, "--max-steps", 6, *small[:-2])
    assert code == 0, err
    assert split.search(p.stdout).group(0) == split.search(out).group(0)
    final = re.compile(r"^final held-out loss (\d+\.\d+) nats", re.M)
    assert abs(float(final.search(p.stdout).group(1)) - float(final.search(out).group(1))) <= 2e-4
    train = re.compile(r"^step +6  train loss (\d+\.\d+) nats", re.M)
    assert abs(float(train.search(p.stdout).group(1)) - float(train.search(out).group(1))) <= 2e-4
    # same weights -> the same held-out loss from both programs' evaluation code
    lm = _load_script(os.path.join(EXAMPLES, "char_lm.py"), "_char_lm_example")
    tw = _load_script(os.path.join(ROOT, "benchmarks", "char_lm_torch.py"), "_char_lm_twin")
    import numpy as np
    from minirnn.data import Vocab, split_text
    train_text, held_text = split_text(text.read_text(encoding="utf-8"), 0.1)
    vocab = Vocab.build([train_text], pad=None, unk="<unk>")
    ours = lm.CharLM(len(vocab), 8, 24, 2, rng=np.random.default_rng(0))
    twin = tw.CharLM(len(vocab), 8, 24, 2).double()
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in ours.state_dict().items()})
    held = vocab.encode(held_text)
    a, b = lm.heldout_loss(ours, held, seq_len=16), tw.heldout_loss(twin, held, seq_len=16)
    assert abs(a - b) < 1e-5 * max(1.0, abs(b)), (a, b)


# ---- seq2seq -------------------------------------------------------------------------------------------------
def test_seq2seq_learns_every_pair():
    code, out, err = run("seq2seq.py", "--epochs", 400)
    assert code == 0, out + err
    for src, tgt in [("man", "women"), ("black", "white"), ("king", "queen"), ("girl", "boy"), ("up", "down"),
                     ("high", "low")]:
        assert f"\n{src} -> {tgt}\n" in out
    assert out.strip().splitlines()[-1] == "training pairs decoded correctly: 6/6"


def test_seq2seq_exits_nonzero_when_undertrained_and_the_goal_is_asked_for():
    code, out, err = run("seq2seq.py", "--epochs", 1, "--require-goal")
    assert code == 1 and "(expected" in out and "missed the goal" in err
    code, out, err = run("seq2seq.py", "--epochs", 1)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == ("not every pair learnt yet (not checked: 1 epochs instead of 5000; add "
                                            "--require-goal to check it)")


@needs_names
def test_name_classifier_epoch_time_comparison_runs():
    """benchmarks/name_classifier_epoch_time.py, one short round: both programs run and the summary is printed."""
    pytest.importorskip("torch", reason="torch is not installed: the twin benchmark cannot run")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "name_classifier_epoch_time.py"),
                        "--train", NAMES_TRAIN, "--test", NAMES_TEST, "--limit", "300", "--rounds", "1",
                        "--epochs", "1", "--threads", "1", "--one-process-too"], capture_output=True, text=True,
                       timeout=300, cwd=ROOT, env=subprocess_env())
    assert p.returncode == 0, p.stderr + p.stdout
    num = r"\d+\.\d+"
    assert re.search(rf"^round 1: minirnn {num} s, torch {num} s, minirnn 1 {num} s per epoch; ratio minirnn / torch "
                     rf"{num}, minirnn 1 / torch {num}$", p.stdout, re.M), p.stdout
    assert re.search(rf"^median seconds per epoch: minirnn {num}, torch {num}, minirnn 1 {num}; ratio minirnn / torch "
                     rf"{num}, minirnn 1 / torch {num} \(median of 1 rounds, 1 threads\)$", p.stdout, re.M), p.stdout
