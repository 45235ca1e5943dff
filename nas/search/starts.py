"""Where a new study starts: the textbook networks its space holds, and the user's own known architectures.

A new study enqueues them as its first trials (Optuna's `enqueue_trial`), so they are trained at the search
fidelity like any trial, the sampler learns from them, and the front starts at the textbook. Each such trial
carries the user attribute `reference` (the network's name) for the progress line, the report and W&B.

- `start.references` (default true): the space's `references` (conf/space/<name>.yaml, checked by
  nas.space.references) that meet the space's constraints at the data's size;
- `start.known`: more, each a model name the space holds or the path of a YAML this platform exported from a
  study of the same space (its header records the space's parameters of the architecture).

A network that is not a point of the space cannot be a trial of it: it stays a follow-up baseline
(`baselines.models`), and naming it here is refused with that advice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nas.search.objectives import ATTR
from nas.space import Space
from nas.space.references import to_params

KEYS = ("references", "known")
REFERENCE_ATTR = "reference"  # the trial user attribute naming the network a trial came from
ENQUEUED_ATTR = ATTR + "starts"  # study attribute: the starting points enqueued when it was created
# The exported YAML's header line that records the architecture's parameters (nas.search.reporting.exports).
PARAMS_LINE = "# Space parameters"
_PARAMS_RE = re.compile(rf"^{PARAMS_LINE} \(space '(?P<space>[^']+)'\): (?P<params>\{{.*\}})\s*$", re.M)


@dataclass(frozen=True)
class Starts:
    """The `start:` options of a search, validated."""

    references: bool = True
    known: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Starts:
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown start keys {unknown}; valid keys: {', '.join(KEYS)}")
        refs = raw.get("references", True)
        if not isinstance(refs, bool):
            raise ValueError(f"start.references is true or false, got {refs!r}")
        known = raw.get("known") or ()
        known = (known,) if isinstance(known, str) else tuple(str(k) for k in known)
        return cls(references=refs, known=known)


def exported_params(path: Path) -> tuple[str, dict[str, Any]]:
    """(space name, parameters) recorded in the header of a YAML exported from a study."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"start.known: cannot read {path}: {e.strerror}") from None
    m = _PARAMS_RE.search(text)
    if m is None:
        raise ValueError(
            f"start.known: {path} has no '{PARAMS_LINE}' header line: only YAMLs exported by a search of the "
            "same space record their parameters; compare other networks as baselines (baselines.models)"
        )
    return m["space"], json.loads(m["params"])


def resolve(starts: Starts, space: Space) -> list[tuple[str, dict[str, Any]]]:
    """(name, the space's parameters) of every starting point, references first; ValueError for a known
    architecture that is not a point of the space."""
    out: dict[str, dict[str, Any]] = {}
    if starts.references:
        out.update({name: to_params(space, name) for name in space.references})
    for item in starts.known:
        path = Path(item)
        if path.suffix in (".yaml", ".yml"):
            where, params = exported_params(path)
            if where != space.name:
                raise ValueError(
                    f"start.known: {path} was exported from space {where!r}, not {space.name!r}: it is not a "
                    "point of this space; compare it as a baseline instead (baselines.models)"
                )
            space.compile(params)  # a changed space file: refuse now, not in trial 1
            out[path.stem] = params
        elif item in space.references:
            out[item] = to_params(space, item)
        else:
            held = ", ".join(space.references) or "none"
            raise ValueError(
                f"start.known: {item!r} is not a point of space {space.name!r} (it holds {held}; or give the "
                "path of a YAML exported from a study of this space); to compare against it, add it to "
                "baselines.models instead"
            )
    return list(out.items())


def enqueue(
    study: optuna.Study,
    points: list[tuple[str, dict[str, Any]]],
    fits: Callable[[dict[str, Any]], str | None],
    echo: Callable[[str], None],
) -> list[str]:
    """Enqueue the points that fit (`fits(params)` is None, else why not) as the new study's first trials,
    once per study; returns their names."""
    if ENQUEUED_ATTR in study.user_attrs or not points:
        return []
    names, skipped = [], []
    for name, params in points:
        why = fits(params)
        if why:
            skipped.append(f"{name} ({why})")
            continue
        study.enqueue_trial(params, user_attrs={REFERENCE_ATTR: name}, skip_if_exists=True)
        names.append(name)
    study.set_user_attr(ENQUEUED_ATTR, names)
    if names:
        echo(f"starting from {len(names)} known network(s): {', '.join(names)}")
    if skipped:
        echo(f"not started from (outside the constraints): {', '.join(skipped)}")
    return names
