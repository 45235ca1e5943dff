"""A space's constraints: bounds on a candidate's cost (parameters, MACs, latency) checked before it trains."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONSTRAINT_KEYS = ("params", "macs", "latency_ms")


@dataclass(frozen=True)
class Constraints:
    """Bounds on a candidate's cost, checked before training: {metric: (min or None, max or None)}."""

    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any, *, where: str) -> Constraints:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"{where}: constraints must map {'/'.join(CONSTRAINT_KEYS)} to {{min, max}}, got {raw!r}"
            )
        bounds: dict[str, tuple[float | None, float | None]] = {}
        for key, b in raw.items():
            if key not in CONSTRAINT_KEYS:
                raise ValueError(f"{where}: unknown constraint {key!r}; valid: {', '.join(CONSTRAINT_KEYS)}")
            if b is None:
                continue
            if not isinstance(b, Mapping) or set(b) - {"min", "max"}:
                raise ValueError(
                    f"{where}: constraint {key} must be {{min: ..., max: ...}} (either optional), got {b!r}"
                )
            lo, hi = (_number(b.get(k), f"{where}: constraint {key}.{k}") for k in ("min", "max"))
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{where}: constraint {key}: min ({lo}) > max ({hi})")
            if lo is not None or hi is not None:
                bounds[key] = (lo, hi)
        return cls(bounds)

    def violations(self, measured: Mapping[str, float]) -> list[str]:
        """Human reasons for every bound `measured` breaks (metrics absent from `measured` are skipped)."""
        out = []
        for key, (lo, hi) in self.bounds.items():
            v = measured.get(key)
            if v is None:
                continue
            if lo is not None and v < lo:
                out.append(f"{key} {_fmt(v)} < min {_fmt(lo)}")
            if hi is not None and v > hi:
                out.append(f"{key} {_fmt(v)} > max {_fmt(hi)}")
        return out

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        return {k: {"min": lo, "max": hi} for k, (lo, hi) in self.bounds.items()}

    def describe(self) -> list[str]:
        """One line per bounded metric, as a space's listing shows it (`  constraint params: max 2M`)."""
        lines = []
        for key, (lo, hi) in self.bounds.items():
            ends = [f"min {_fmt(lo)}" if lo is not None else "", f"max {_fmt(hi)}" if hi is not None else ""]
            lines.append(f"  constraint {key}: " + " ".join(e for e in ends if e))
        return lines


def _number(v: Any, where: str) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number, got {v!r}") from None


def _fmt(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"
