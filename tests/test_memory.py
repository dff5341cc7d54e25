"""minirnn keeps freed memory for the next training step (glibc): steady training steps touch no new pages."""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys

import pytest

from helpers import subprocess_env

STEPS = r"""
import json, resource, sys
import numpy as np
import minirnn as mr
rng = np.random.default_rng(0)
T, B = 12, 256
gru = mr.GRU(64, 100, num_layers=2, bidirectional=True, rng=1)
x = rng.standard_normal((T, B, 64)).astype(np.float32)
lengths = rng.integers(2, T + 1, B)

def step():
    gru.zero_grad()
    out, h_n = gru(x, lengths=lengths)
    gru.backward(np.ones_like(out), np.ones_like(h_n))

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
print(json.dumps({"keeps": mr.KEEPS_FREED_MEMORY, "faults_per_step": faults}))
"""


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version
        return True
    except (OSError, AttributeError):
        return False


def _run(**env: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", STEPS], env=subprocess_env(OPENBLAS_NUM_THREADS="1", **env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _glibc(), reason="not glibc: minirnn leaves malloc alone there")
def test_training_steps_reuse_freed_memory():
    kept, default = _run(), _run(MINIRNN_KEEP_FREED_MEMORY="0")
    assert kept["keeps"] is True and default["keeps"] is False
    # glibc's defaults hand a step's memory back and fault it in again the next step (several MB of pages)
    assert default["faults_per_step"] > 500, default
    assert kept["faults_per_step"] < 50, kept
