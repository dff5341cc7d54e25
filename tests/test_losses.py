"""Losses: gradcheck, torch cross-checks, extreme inputs and input errors."""
import numpy as np

import minirnn


def test_cross_entropy_sanity():
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    fn = minirnn.CrossEntropyLoss()
    loss = fn(x, np.array([2, 0]))
    ref = np.mean([-np.log(np.exp(3) / np.exp([1, 2, 3]).sum()), -np.log(np.exp(0.5) / np.exp([0.5, -1, 0]).sum())])
    assert abs(loss - ref) < 1e-12
    assert fn.backward().shape == x.shape
