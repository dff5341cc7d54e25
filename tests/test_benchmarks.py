"""The benchmark scripts run end to end in short modes (bench_recurrent ``--quick``: every case of the suite, both
sides when torch is there, a table and a JSON report; the others one short round). No timing is asserted (the
machine is shared); only that the numbers exist, and ceilings on the per-step NumPy call counts."""
import json
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, subprocess_env

ROOT = REPO_ROOT
SCRIPT = os.path.join(ROOT, "benchmarks", "bench_recurrent.py")


def _has_torch() -> bool:
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--json", str(path)], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with open(path) as f:
        return proc.stdout, json.load(f)


def test_quick_covers_every_kind_and_the_extra_cases(quick_report):
    stdout, report = quick_report
    names = [c["name"] for c in report["cases"]]
    for kind in ("rnn", "lstm", "gru"):
        assert f"{kind}-tiny" in names
        assert any(n.startswith(kind) and "2layer-bidir" in n for n in names)
    assert any(n.startswith("name-classifier") for n in names)
    for name in names:
        assert name in stdout                                    # one table row per case
    assert report["quick"] is True and report["threads"] == 2
    assert "x floor" in stdout and "BLAS: " in stdout.splitlines()[0]


def test_quick_reports_the_gemm_floor_and_the_blas_kernel(quick_report):
    """Every row has its GEMM shape floor, measured in the same run, and its ratio; the report names the BLAS
    library and kernel the workers ran."""
    _, report = quick_report
    assert "floor" in report["sides"]
    assert "openblas" in report["blas"]["minirnn"].lower() or "mkl" in report["blas"]["minirnn"].lower()
    for case in report["cases"]:
        for what in ("train", "infer"):
            assert 0 < case["floor"][f"{what}_s"]
            assert case[f"{what}_x_floor"] == case["minirnn"][f"{what}_s"] / case["floor"][f"{what}_s"]


def test_workers_run_native_blas(monkeypatch):
    """The benchmark workers drop the variables that force old BLAS kernels; the rest of the environment stays."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_recurrent", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "262144")
    monkeypatch.setenv("MINIRNN_BENCH_PROBE", "kept")
    env = bench.worker_env("/some/checkout")
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env
    assert env["MINIRNN_BENCH_PROBE"] == "kept" and env["OPENBLAS_NUM_THREADS"] == "2"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == "/some/checkout"


def test_quick_measures_both_sides(quick_report):
    _, report = quick_report
    sides = ["minirnn", "torch"] if _has_torch() else ["minirnn"]
    assert report["sides"] == sides + ["floor"]
    for case in report["cases"]:
        for side in sides:
            m = case[side]
            assert m["runs"] == 1
            assert m["train_s"] > 0 and m["infer_s"] > 0
        assert case["minirnn"]["np_peak_bytes"] > 0               # tracemalloc saw the step's arrays
        if "torch" in sides:
            assert case["train_ratio"] > 0 and case["infer_ratio"] > 0
    first = report["cases"][0]
    for side in sides:                                            # peak memory of the first case, both sides
        assert first[side]["mem_bytes"] is not None and first[side]["mem_bytes"] >= 0


def test_binary_addition_comparison_runs_both_programs():
    """benchmarks/binary_addition_vs_seed.py, one round with a short seed program: both run, the summary is printed."""
    script = os.path.join(ROOT, "benchmarks", "binary_addition_vs_seed.py")
    proc = subprocess.run([sys.executable, script, "--rounds", "1", "--seed-steps", "50"], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "round 0: seed program" in proc.stdout and "(exit 0: " in proc.stdout
    assert "seed / example" in proc.stdout
    assert "example runs that reached 100% and added 32/64-bit numbers exactly: 1/1" in proc.stdout


def _per_step_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("per_step", os.path.join(ROOT, "benchmarks", "per_step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Ceilings on the NumPy (and BLAS) calls per time step of the engine and kernels (benchmarks/per_step.py counts
# them): inference, training. A change that adds calls to the time loop shows here; a clearer line that costs no
# call more is free. The exact counts are in per_step.py's report.
CALLS_PER_STEP = {"RNN": (3, 6), "LSTM": (10, 17), "GRU": (12, 18)}


@pytest.mark.parametrize("kind", sorted(CALLS_PER_STEP))
def test_numpy_calls_per_time_step(kind):
    counts = _per_step_module()._count_calls(kind)
    infer, train = CALLS_PER_STEP[kind]
    assert 0 < counts["infer"] <= infer, counts
    assert counts["infer"] < counts["train"] <= train, counts


def test_per_step_script_runs(tmp_path):
    path = tmp_path / "per_step.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "per_step.py"), "--repeats", "1",
                           "--kinds", "rnn", "--no-torch", "--json", str(path)], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "RNN" in proc.stdout
    with open(path) as f:
        report = json.load(f)
    row = report["results"]["RNN"]
    assert row["minirnn_infer_us"] > 0 and row["minirnn_train_us"] > 0
    assert 0 < row["calls"]["infer"] < row["calls"]["train"] <= CALLS_PER_STEP["RNN"][1]


def test_tricks_script_measures_a_trick_both_ways(tmp_path):
    """benchmarks/tricks.py, one trick at the tiny size, one round: both variants timed, and equal numbers."""
    path = tmp_path / "tricks.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "tricks.py"), "--tricks",
                           "prescale,tanh_gates", "--kinds", "lstm", "--sizes", "tiny", "--rounds", "1", "--iters",
                           "1", "--json", str(path)], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(path) as f:
        report = json.load(f)
    assert [(r["trick"], r["case"]) for r in report["results"]] == [("prescale", "lstm-tiny"),
                                                                    ("tanh_gates", "lstm-tiny")]
    for r in report["results"]:
        assert r["train_on_s"] > 0 and r["train_off_s"] > 0 and r["infer_ratio"] > 0
        assert r["max_rel_diff"] < 1e-5                          # float32: the variants agree to rounding
        assert r["max_rel_diff"] > 0 or r["trick"] != "tanh_gates"   # and the plain variant really ran


def test_tricks_step_views_off_makes_each_step_in_the_loop(tmp_path):
    """The step_views variant (views and Step records made at each step) runs forward and backward, as the engine."""
    path = tmp_path / "tricks.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "tricks.py"), "--tricks", "step_views",
                           "--kinds", "gru", "--sizes", "tiny", "--rounds", "1", "--iters", "1", "--json", str(path)],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(path) as f:
        (r,) = json.load(f)["results"]
    assert r["train_on_s"] > 0 and r["train_off_s"] > 0 and r["max_rel_diff"] == 0   # the same operations


def test_instruction_count_script_refuses_a_bad_baseline(tmp_path):
    """benchmarks/ab_instructions.py: --help names every option; a checkout without minirnn/ is one line, exit 2."""
    script = os.path.join(ROOT, "benchmarks", "ab_instructions.py")
    shown = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and all(o in shown.stdout for o in ("--baseline", "--cases", "--steps", "--json"))
    bad = subprocess.run([sys.executable, script, "--baseline", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--baseline" in bad.stderr and "Traceback" not in bad.stderr


def test_direction_processes_benchmark_runs():
    """benchmarks/direction_processes.py, one round of one step at the two smallest sizes: the table is printed."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "direction_processes.py"), "--rounds",
                           "1", "--iters", "1", "--sizes", "2", "--kinds", "gru,lstm"], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = re.findall(r"^(GRU|LSTM) +20 +(1|4) +32 +(\d+) \| +\d+\.\d+ +\d+\.\d+ +\d+\.\d+$", proc.stdout, re.M)
    work = {(kind, b): int(w) for kind, b, w in rows}
    assert work.get(("LSTM", "4")) == 20 * 4 * 4 * 32, proc.stdout
    rows = [(kind, b) for kind, b, _ in rows]
    assert sorted(rows) == [("GRU", "1"), ("GRU", "4"), ("LSTM", "1"), ("LSTM", "4")], proc.stdout
    assert "minirnn uses the second process from T*B*G*H >= 24576" in proc.stdout
