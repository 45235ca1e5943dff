"""An architecture of a space as a row of numbers for the surrogate's models.

Every parameter of the space gives columns, read from its declaration (`Space.params`), not from the data:

- a numeric one (int / float) its position in its range, in [0, 1] (on a log scale for a log range);
- a categorical one a one-hot group, a column per choice;
- a per-stage one (`width` -> `width_0`, `width_1`, ...) those columns for every stage the space can have
  (`stages: $n_stages` -> the largest count `n_stages` allows; a derivation -> its `max_stages`);
- a value that can be absent (a conditional parameter when inactive, a stage the network does not have) one
  more column saying so, its other columns 0: "no fourth stage" is then a value of its own, not a guess.

Two more columns hold the network's cost at the data's size, log10 MACs and log10 parameters: they summarise
depth and width the way accuracy depends on them, which trees and kernels cannot add up from the parts.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.space import Param, Space
from nas.space.derive import get_derivation

COST_COLUMNS = ("log10_macs", "log10_params")


def stage_range(space: Space) -> tuple[int, int]:
    """(fewest, most) stages a network of `space` has ((0, 0) for a space without stages)."""
    if isinstance(space.stages, int):
        return space.stages, space.stages
    if isinstance(space.stages, str):
        p = space.params[space.stages.removeprefix("$")]
        if p.kind == "categorical":
            return int(min(p.choices)), int(max(p.choices))
        if p.kind == "fixed":
            return int(p.value), int(p.value)
        return int(p.low), int(p.high)  # type: ignore[arg-type]
    if space.derive is not None:  # the derivation's options, else its defaults
        defaults = inspect.signature(get_derivation(space.derive["name"])).parameters
        lo, hi = (
            space.derive.get(k, getattr(defaults.get(k), "default", None))
            for k in ("min_stages", "max_stages")
        )
        if isinstance(lo, int) and isinstance(hi, int):
            return lo, hi
        raise ValueError(f"space {space.name!r}: derivation {space.derive['name']!r} states no max_stages")
    return 0, 0


@dataclass(frozen=True)
class Slot:
    """One recorded key of a space's parameters (`act`, `width_2`) and how it is encoded."""

    key: str
    param: Param
    optional: bool  # can be absent: conditional, or a stage not every network has

    @property
    def columns(self) -> list[str]:
        p = self.param
        out = [f"{self.key}={c}" for c in p.choices] if p.kind == "categorical" else [self.key]
        return [*out, f"{self.key}:absent"] if self.optional else out

    def encode(self, value: Any) -> list[float]:
        """The slot's columns for `value` (None: absent)."""
        p = self.param
        width = len(p.choices) if p.kind == "categorical" else 1
        if value is None:
            if not self.optional:
                raise ValueError(f"parameter {self.key!r} has no value, and the space always draws it")
            return [0.0] * width + [1.0]
        if p.kind == "categorical":
            if value not in p.choices:
                raise ValueError(f"parameter {self.key!r}: {value!r} is not one of {list(p.choices)}")
            row = [1.0 if value == c else 0.0 for c in p.choices]
        else:
            lo, hi, v = float(p.low), float(p.high), float(value)  # type: ignore[arg-type]
            if p.log:
                lo, hi, v = math.log(lo), math.log(hi), math.log(v)
            row = [(v - lo) / (hi - lo) if hi > lo else 0.0]
        return [*row, 0.0] if self.optional else row


class Encoder:
    """The columns of a space's architectures (see the module docstring); `encode` turns rows into a matrix."""

    def __init__(self, space: Space) -> None:
        self.space = space
        lowest, n = stage_range(space)
        slots = []
        for p in space.params.values():
            if p.kind == "fixed":  # the same in every network: no information, and not recorded
                continue
            if p.per_stage:
                slots += [Slot(f"{p.name}_{i}", p, bool(p.when) or i >= lowest) for i in range(n)]
            else:
                slots.append(Slot(p.name, p, bool(p.when)))
        self.slots = slots

    @property
    def columns(self) -> list[str]:
        """The name of every column, in order (parameters, then COST_COLUMNS)."""
        return [c for s in self.slots for c in s.columns] + list(COST_COLUMNS)

    def encode_one(self, params: Mapping[str, Any], macs: float, n_params: float) -> list[float]:
        """One architecture's row: its recorded parameters (absent keys are absent values) and costs."""
        unknown = sorted(set(params) - {s.key for s in self.slots})
        if unknown:
            raise ValueError(
                f"parameters {unknown} are not in space {self.space.name!r} (changed since the data was "
                f"recorded?); its parameters: {', '.join(s.key for s in self.slots)}"
            )
        row = [x for s in self.slots for x in s.encode(params.get(s.key))]
        return [*row, math.log10(max(float(macs), 1.0)), math.log10(max(float(n_params), 1.0))]

    def encode(self, rows: Sequence[tuple[Mapping[str, Any], float, float]]) -> np.ndarray:
        """(n, columns) matrix of (params, MACs, parameter count) rows."""
        out = np.array([self.encode_one(*r) for r in rows], dtype=float)
        return out.reshape(len(rows), len(self.columns))
