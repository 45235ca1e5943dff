"""Search-space parameters: one typed range each (int / float / log / step / categorical / fixed), parsed from
YAML, optionally per stage and conditional on other parameters, and drawn through a *suggester*.

A suggester is anything with Optuna's `suggest_int` / `suggest_float` / `suggest_categorical` (an
`optuna.Trial`, or `FixedSuggester` to re-read recorded values, or `RandomSuggester` for cheap random specs
without a study).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

KINDS = ("int", "float", "categorical", "fixed")
PARAM_KEYS = ("type", "low", "high", "step", "log", "choices", "value", "per_stage", "when", "help")
SCALARS = (str, int, float, bool, type(None))


class Suggester(Protocol):
    """What a parameter is drawn through (optuna.Trial satisfies it)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One searchable dimension of a space (see conf/space/README in the module docstring of nas.space)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    value: Any = None
    per_stage: bool = False
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    help: str = ""

    @classmethod
    def parse(cls, name: str, raw: Any, *, space: str) -> Param:
        """A parameter from its YAML mapping; ValueError naming the space and the parameter on bad input."""
        where = f"space {space!r}, param {name!r}"
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"{where}: expected a mapping such as {{type: int, low: 1, high: 4}} or {{choices: [a, b]}}, got {raw!r}"
            )
        unknown = sorted(set(raw) - set(PARAM_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; valid keys: {', '.join(PARAM_KEYS)}")
        kind = raw.get("type")
        if "value" in raw and raw["value"] is not None:
            kind = (
                "fixed"  # a pinned value wins over a range (`space.params.<p>.value=...` on the command line)
            )
        elif kind is None:
            kind = "categorical" if "choices" in raw else _infer_numeric(raw, where)
        if kind == "log":  # `type: log` is shorthand for a log-uniform float
            kind, raw = "float", {**raw, "log": True}
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown type {kind!r}; valid types: {', '.join(KINDS)}, log")
        when = _parse_when(raw.get("when"), where)
        common = {
            "name": name,
            "kind": kind,
            "per_stage": bool(raw.get("per_stage", False)),
            "when": when,
            "help": str(raw.get("help", "")),
        }
        if kind == "fixed":
            return cls(value=_scalar(raw["value"], where), **common)
        if kind == "categorical":
            choices = raw.get("choices")
            if not isinstance(choices, list | tuple) or not choices:
                raise ValueError(f"{where}: categorical needs a non-empty `choices` list, got {choices!r}")
            return cls(choices=tuple(_scalar(c, where) for c in choices), **common)
        for key in ("low", "high"):
            if not isinstance(raw.get(key), int | float) or isinstance(raw.get(key), bool):
                raise ValueError(
                    f"{where}: {kind} needs numeric `low` and `high`, got {key}={raw.get(key)!r}"
                )
        low, high, step, log = raw["low"], raw["high"], raw.get("step"), bool(raw.get("log", False))
        if low > high:
            raise ValueError(f"{where}: low ({low}) > high ({high})")
        if log and low <= 0:
            raise ValueError(f"{where}: a log range needs low > 0, got low={low}")
        if step is not None:
            if log:
                raise ValueError(f"{where}: `step` and `log` cannot be combined (Optuna's rule); drop one")
            if not isinstance(step, int | float) or step <= 0:
                raise ValueError(f"{where}: step must be > 0, got {step!r}")
        if kind == "int":
            if any(isinstance(v, float) and not v.is_integer() for v in (low, high, step) if v is not None):
                raise ValueError(
                    f"{where}: int range needs integer low / high / step, got {low}, {high}, {step}"
                )
            low, high = int(low), int(high)
            step = int(step) if step is not None else None
        else:
            low, high = float(low), float(high)
            step = float(step) if step is not None else None
        return cls(low=low, high=high, step=step, log=log, **common)

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether the `when` conditions hold for already-drawn `values` (an absent parameter fails them)."""
        return all(values.get(dep) in allowed for dep, allowed in self.when.items())

    def draw(self, suggester: Suggester, key: str) -> Any:
        """Draw this parameter through `suggester` under the (study-wide) name `key`."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return suggester.suggest_categorical(key, list(self.choices))
        if self.kind == "int":
            return suggester.suggest_int(
                key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return suggester.suggest_float(key, float(self.low), float(self.high), step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether `value` is a value this parameter can take."""
        if self.kind == "fixed":
            return value == self.value
        if self.kind == "categorical":
            return value in self.choices
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        if not self.low - 1e-12 <= value <= self.high + 1e-12:
            return False
        if self.step:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return True

    def describe(self) -> str:
        """One line: the range, for listings."""
        if self.kind == "fixed":
            text = f"= {self.value!r}"
        elif self.kind == "categorical":
            text = "{" + ", ".join(map(str, self.choices)) + "}"
        else:
            text = f"{self.kind} [{self.low}, {self.high}]" + (" log" if self.log else "")
            text += f" step {self.step}" if self.step else ""
        if self.per_stage:
            text += " per stage"
        if self.when:
            text += " when " + ", ".join(f"{k} in {list(v)}" for k, v in self.when.items())
        return text


def _infer_numeric(raw: Mapping[str, Any], where: str) -> str:
    if "low" not in raw or "high" not in raw:
        raise ValueError(f"{where}: give `choices`, `value`, or `low` and `high` (with an optional `type`)")
    floats = any(isinstance(raw.get(k), float) for k in ("low", "high", "step"))
    return "float" if floats or raw.get("log") and not isinstance(raw.get("low"), int) else "int"


def _scalar(value: Any, where: str) -> Any:
    if not isinstance(value, SCALARS):
        raise ValueError(
            f"{where}: values must be scalars (str, int, float, bool, null), got {value!r}; put structure in the "
            "spec template and choose between named variants instead"
        )
    return value


def _parse_when(raw: Any, where: str) -> dict[str, tuple[Any, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"{where}: `when` must map parameter names to a value or a list, e.g. {{block: bottleneck}}"
        )
    return {str(k): tuple(v) if isinstance(v, list | tuple) else (v,) for k, v in raw.items()}


class FixedSuggester:
    """Re-reads recorded values (a trial's params): compiles the same spec without a study."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.used: set[str] = set()

    def _get(self, name: str) -> Any:
        if name not in self.values:
            raise KeyError(
                f"no value for parameter {name!r}; recorded parameters: {', '.join(sorted(self.values))}"
            )
        self.used.add(name)
        return self.values[name]

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._get(name))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ):
        return float(self._get(name))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        value = self._get(name)
        if value not in choices:
            raise ValueError(f"parameter {name!r}: recorded value {value!r} is not one of {list(choices)}")
        return value


class RandomSuggester:
    """Uniform random draws (log-uniform for log ranges) from a seeded generator; no Optuna study needed."""

    def __init__(self, seed: int | random.Random = 0) -> None:
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if log:  # log-uniform over [low - 0.5, high + 0.5], rounded: every integer gets its share
            value = round(math.exp(self.rng.uniform(math.log(low - 0.5), math.log(high + 0.5))))
            return int(min(high, max(low, value)))
        return low + step * self.rng.randint(0, (high - low) // step)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ):
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return low + step * self.rng.randint(0, int(round((high - low) / step)))
        return self.rng.uniform(low, high)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.rng.choice(list(choices))
