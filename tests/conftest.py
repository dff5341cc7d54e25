"""Shared test settings: bounded hypothesis profiles, no deadlines (the machine is shared and noisy)."""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_sessionstart(session):
    """In CI (``CI=true``, set by the CI runner) or with ``MINIRNN_REQUIRE_TORCH=1`` a missing torch is an error,
    not a silent skip of every cross-check: the README's test command installs it, so CI proves the checks ran."""
    required = os.environ.get("MINIRNN_REQUIRE_TORCH", "") not in ("", "0") or os.environ.get("CI", "") == "true"
    if required:
        try:
            import torch  # noqa: F401
        except Exception as e:  # pragma: no cover - only without torch
            raise pytest.UsageError(f"CI or MINIRNN_REQUIRE_TORCH is set but torch cannot be imported ({e}); "
                                    "install it with pip install -e '.[torch]'") from None


# fault_counts lives beside this file; put this directory on the path whatever the import mode (prepend does it,
# importlib does not), so that the tests and this hook share the one COUNTS.
_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def pytest_terminal_summary(terminalreporter):
    """The fault suite's counts (tests/fault_counts.py), one line each: ``fault suite: <what>: <ok>/<tried>``."""
    from fault_counts import COUNTS

    for what, (tried, ok) in COUNTS.items():
        terminalreporter.write_line(f"fault suite: {what}: {ok}/{tried}")
