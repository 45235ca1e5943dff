"""Calibrating a search fidelity: does a cheap training rank a space's networks as a longer one does?

`nas-calibrate --space <space> --data <data> --fidelities <epochs:fraction[:image_size]> ...` (or
`python -m nas.calibrate`) trains architectures of a space at a reference fidelity and at each candidate,
and writes per candidate its rank agreement with the reference into `conf/calibration/<space>-<data>.json`,
the committed file a search reads (nas.search.calibration) to say in its header whether its fidelity is
calibrated. Resumable, and split between processes: one per core started alike share the file's runs.

- nas.calibrate.options: the command's options, the candidate syntax and the search plan of a fidelity;
- nas.calibrate.archs: which architectures (spread over the space's MACs; added to a file for a changed
  space) and which get a second reference seed;
- nas.calibrate.runs: the runs the file lacks, each trained under a claim and merged into the file;
- nas.calibrate.agreement: per candidate its Spearman with the reference, the seed ceiling, the bar, the table;
- nas.calibrate.__main__: the command.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> its module: loaded on first use, so `nas-calibrate --help` does not load the training stack
_HOMES = {
    "CEILING_SHARE": "agreement", "RHO_BAR": "agreement", "summarise": "agreement", "top_overlap": "agreement",
    "added_archs": "archs", "pick_archs": "archs", "seeded": "archs", "spread_by": "archs",
    "compose_plan": "options", "label": "options", "parse": "options", "parse_fidelity": "options",
    "calibrate": "runs",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nas.calibrate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nas.calibrate.{_HOMES[name]}"), name)


__all__ = sorted(_HOMES)
