"""Optimizers and gradient clipping against hand-computed and torch updates."""
import numpy as np

import minirnn


def test_sgd_sanity():
    p = minirnn.Parameter(np.array([1.0, 2.0], dtype=np.float32))
    p.grad = np.array([0.5, -1.0], dtype=np.float32)
    minirnn.SGD([p], lr=0.1).step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, [0.95, 2.1], rtol=1e-6)
