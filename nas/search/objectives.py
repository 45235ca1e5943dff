"""The search's objectives: their Optuna directions and the trial user attribute holding each one.

A leaf module (no imports from the project), so the plan, the study, the trial, the front maths and the
outputs all read the same two tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Objective name -> Optuna direction. "latency" is whatever the latency mode gives (ms for measured /
# predicted, MACs or parameters for the macs / params modes).
OBJECTIVES = {"accuracy": "maximize", "latency": "minimize", "params": "minimize", "macs": "minimize"}
# Objective name -> the trial user attribute (and record column) that holds its value.
ATTR_OF = {"accuracy": "accuracy", "latency": "latency", "params": "n_params", "macs": "macs"}
# Prefix of the study's own user attributes (identity, cached baselines / retraining), so they never
# collide with a user's.
ATTR = "nas:"


def directions(objectives: Sequence[str]) -> list[str]:
    """Optuna directions of `objectives`, in order."""
    return [OBJECTIVES[o] for o in objectives]


def values_of(attrs: Mapping[str, Any], objectives: Sequence[str]) -> list[float]:
    """The objective values a trial (or record) with user attributes `attrs` is told with."""
    return [float(attrs[ATTR_OF[o]]) for o in objectives]
