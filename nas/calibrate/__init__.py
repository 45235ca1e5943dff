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

from nas.calibrate.agreement import CEILING_SHARE, RHO_BAR, summarise, top_overlap
from nas.calibrate.archs import added_archs, pick_archs, seeded, spread_by
from nas.calibrate.options import compose_plan, label, parse, parse_fidelity
from nas.calibrate.runs import calibrate

__all__ = [
    "CEILING_SHARE",
    "RHO_BAR",
    "added_archs",
    "calibrate",
    "compose_plan",
    "label",
    "parse",
    "parse_fidelity",
    "pick_archs",
    "seeded",
    "spread_by",
    "summarise",
    "top_overlap",
]
