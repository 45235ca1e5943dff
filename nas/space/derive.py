"""Derivations: named functions that turn a few drawn numbers into per-stage lists (pycls's design-space idea).

A space opts in with `derive: {name: regnet, ...options}`; the function receives the drawn shared values and
returns the stage count and per-stage lists the template can reference. A new space that reuses a
derivation is still one YAML file; a new kind of derivation is one function registered here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any


class SpecRejected(ValueError):
    """A drawn configuration that cannot become a valid network (rejected before any training)."""


Derivation = Callable[..., tuple[int, dict[str, list[Any]]]]
DERIVATIONS: dict[str, Derivation] = {}


def derivation(name: str) -> Callable[[Derivation], Derivation]:
    def register(fn: Derivation) -> Derivation:
        if name in DERIVATIONS:
            raise ValueError(f"derivation {name!r} is already registered")
        DERIVATIONS[name] = fn
        return fn

    return register


def get_derivation(name: str) -> Derivation:
    if name not in DERIVATIONS:
        raise KeyError(f"unknown derivation {name!r}; valid derivations: {', '.join(sorted(DERIVATIONS))}")
    return DERIVATIONS[name]


def _need(values: Mapping[str, Any], names: tuple[str, ...], what: str) -> list[Any]:
    missing = [n for n in names if values.get(n) is None]
    if missing:
        raise ValueError(f"derivation {what!r} needs parameters {list(names)}; the space has no {missing}")
    return [values[n] for n in names]


@derivation("regnet")
def regnet(
    values: Mapping[str, Any], *, quantum: int = 8, max_stages: int = 4, min_stages: int = 1
) -> tuple[int, dict]:
    """RegNet's quantised linear widths (Radosavovic et al. 2020), from parameters w0, wa, wm, depth,
    group_width and bottleneck_ratio.

    Block j of `depth` gets the linear width u_j = w0 + wa * j, snapped to the geometric grid w0 * wm^k
    and to a multiple of `quantum`; consecutive blocks of equal width form a stage. Each stage's inner
    (bottleneck) width w / bottleneck_ratio is then made a multiple of its group width (the group width
    is capped at the inner width), and the stage width follows from it, as in pycls. Returns per-stage
    `stage_width`, `stage_depth`, `stage_group_width` (and `stage_inner`). More than `max_stages` stages
    (a feature map would shrink too far) is a `SpecRejected`.
    """
    w0, wa, wm, depth, gw, ratio = _need(
        values, ("w0", "wa", "wm", "depth", "group_width", "bottleneck_ratio"), "regnet"
    )
    if w0 <= 0 or wa < 0 or wm <= 1 or depth < 1 or gw < 1 or ratio <= 0:
        raise ValueError(
            f"regnet needs w0 > 0, wa >= 0, wm > 1, depth >= 1, group_width >= 1, bottleneck_ratio > 0; got "
            f"w0={w0}, wa={wa}, wm={wm}, depth={depth}, group_width={gw}, bottleneck_ratio={ratio}"
        )
    widths = []
    for j in range(int(depth)):
        u = w0 + wa * j
        k = round(math.log(u / w0) / math.log(wm))
        widths.append(max(quantum, int(round(w0 * wm**k / quantum)) * quantum))
    stage_width: list[int] = []
    stage_depth: list[int] = []
    for w in widths:
        if stage_width and stage_width[-1] == w:
            stage_depth[-1] += 1
        else:
            stage_width.append(w)
            stage_depth.append(1)
    if not min_stages <= len(stage_width) <= max_stages:
        raise SpecRejected(
            f"regnet widths {stage_width} form {len(stage_width)} stages; this space allows "
            f"{min_stages}..{max_stages}"
        )
    inner = [max(1, int(round(w / ratio))) for w in stage_width]
    groups = [min(gw, b) for b in inner]
    inner = [max(g, int(round(b / g)) * g) for b, g in zip(inner, groups, strict=True)]
    stage_width = [max(1, int(round(b * ratio))) for b in inner]
    return len(stage_width), {
        "stage_width": stage_width,
        "stage_depth": stage_depth,
        "stage_group_width": groups,
        "stage_inner": inner,
    }
