"""sampler=ehvi passes Optuna's own sampler contract tests (optuna.testing.pytest_samplers): basic, relative and
multi-objective. The suites' studies have other objectives than (accuracy, latency), so the sampler proposes its
start-up design there, once without a latency oracle (random) and once with one (spread over latency); the model
itself is tested in test_ehvi.py."""

from __future__ import annotations

import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from nas.search.ehvi import KnownLatencyEHVI


def _latency(params):
    """A latency oracle for any parameters: it grows with their number and values (None: not a point)."""
    return 1.0 + sum(abs(v) for v in params.values() if isinstance(v, int | float))


class TestKnownLatencyEHVI(BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase):
    @pytest.fixture(params=["random design", "latency design"])
    def sampler(self, request):
        known = _latency if request.param == "latency design" else None
        return lambda: KnownLatencyEHVI(known, seed=0, pool=200)
