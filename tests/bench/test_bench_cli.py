"""`python -m experiments.bench <name>`: every name it offers is a benchmark it can run."""

from __future__ import annotations

import importlib

from experiments.bench import available
from experiments.bench.__main__ import main


def test_every_offered_benchmark_has_a_main_and_a_helper_module_is_not_offered(capsys):
    names = available()
    assert {"throughput", "fronts", "search"} <= set(names)
    assert "fidelity" not in names  # calibrating is the engine's command (nas.calibrate), not a benchmark
    for name in names:  # `bench common` was offered and ended in an AttributeError traceback
        assert callable(getattr(importlib.import_module(f"experiments.bench.{name}"), "main", None)), name
    assert main(["common"]) == 2
    assert "unknown benchmark 'common'" in capsys.readouterr().err
