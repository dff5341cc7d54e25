"""The README's quick start runs as printed and learns what its comment says."""
import os
import re
import subprocess
import sys

from helpers import REPO_ROOT, subprocess_env


def test_quick_start_runs_and_learns():
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("## Quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 16
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=subprocess_env(PYTHONWARNINGS="error::RuntimeWarning"), cwd=REPO_ROOT)
    assert p.returncode == 0, p.stderr
    loss = float(re.search(r"^loss after 50 steps: (\d+\.\d+)$", p.stdout, re.M).group(1))
    assert loss < 0.1
