"""malloc: ``import minirnn`` leaves it alone; ``minirnn.machinery.keep_freed_memory()`` (an explicit call) makes
steady training steps reuse their freed memory (glibc)."""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys

import pytest

from helpers import subprocess_env

pytestmark = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="not glibc: minirnn leaves malloc alone there")

# Where a 64 MiB block comes from tells the mmap threshold: glibc's default (dynamic, at most 32 MiB on 64-bit
# systems) maps it on its own; keep_freed_memory's (256 MiB) takes it from the heap. After a bidirectional layer
# with lengths ran, so that a lazily done setting would show too.
WHERE = r"""
import sys
import numpy as np
import minirnn as mr
if sys.argv[1] == "keep":
    assert mr.machinery.keep_freed_memory()
gru = mr.GRU(3, 4, bidirectional=True, rng=0)
out, h = gru(np.ones((5, 2, 3), dtype=np.float32), lengths=[5, 3])
gru.backward(np.ones_like(out))
a = np.ones(64 << 20, dtype=np.uint8)
addr = a.__array_interface__["data"][0]
heap = []
with open("/proc/self/maps") as f:
    for line in f:
        if line.rstrip().endswith("[heap]"):
            heap.append([int(v, 16) for v in line.split()[0].split("-")])
print("heap" if any(lo <= addr < hi for lo, hi in heap) else "mapped")
"""


def _where(mode: str) -> str:
    proc = subprocess.run([sys.executable, "-c", WHERE, mode], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_leaves_malloc_alone():
    assert _where("import") == "mapped"               # glibc's default threshold: nothing set it
    assert _where("keep") == "heap"                   # the check sees the setting when it is made


STEPS = r"""
import json, resource, sys
import numpy as np
import minirnn as mr
keeps = mr.machinery.keep_freed_memory() if sys.argv[1] == "keep" else False
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
print(json.dumps({"keeps": keeps, "faults_per_step": faults}))
"""


def _steps(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", STEPS, mode], env=subprocess_env(OPENBLAS_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_training_steps_reuse_freed_memory_when_asked():
    kept, default = _steps("keep"), _steps("import")
    assert kept["keeps"] is True
    # glibc's defaults hand a step's memory back and fault it in again the next step (several MB of pages)
    assert default["faults_per_step"] > 500, default
    assert kept["faults_per_step"] < 50, kept
