"""Declarative search spaces (`conf/space/*.yaml`): typed parameters + a spec template -> model specs.

A space file has:

    name: resnet_like
    family: [resnet]           # reference networks (conf/model/*.yaml `family`) drawn as baselines
    description: one line for listings
    stages: 4                  # stage count: an int, or `$param` naming a shared int parameter
    params:                    # drawn in this order; see nas.space.params for the keys
      block:  {choices: [basic, bottleneck]}
      expansion: {choices: [2, 4], when: {block: bottleneck}}     # conditional
      width:  {type: int, low: 16, high: 128, log: true, per_stage: true}   # width_0 .. width_3
      depth:  {type: int, low: 1, high: 3, per_stage: true}
    derive: {name: regnet}     # optional: per-stage lists computed from shared params (nas.space.derive)
    dag: {none: none, edges: {edge0: [0, 1], ...}}   # optional: a cell's edge ops (nas.space.dag)
    constraints:               # checked before any training; params / macs / latency_ms, min and/or max
      params: {max: 2.0e6}
    spec:                      # the blocks spec template (nas.space.template for the `$` / `=` syntax)
      stages:
        - for_each_stage: {block: $block, channels: $width, repeat: $depth, stride: {by_stage: [1, 2, 2, 2]}}

Adding a space is adding one such file; `python -m nas.search` lists them.

Modules: space (`Space`: a file parsed, checked and sampled into specs; `load_space`, `list_spaces`), params
(the parameter kinds), template (the spec template), derive (derived per-stage lists), dag (a cell's edges),
constraints (cost bounds), references (each textbook network a space holds renders to that network).
"""

from nas.space.constraints import CONSTRAINT_KEYS, Constraints
from nas.space.dag import CellDag
from nas.space.derive import DERIVATIONS, SpecRejected
from nas.space.params import FixedSuggester, Param, RandomSuggester
from nas.space.space import FIDELITY_KEYS, SPACE_KEYS, Sample, Space, list_spaces, load_space, space_dir
from nas.space.template import TemplateError, evaluate, make_divisible

__all__ = [
    "CONSTRAINT_KEYS",
    "CellDag",
    "Constraints",
    "DERIVATIONS",
    "FIDELITY_KEYS",
    "FixedSuggester",
    "Param",
    "RandomSuggester",
    "SPACE_KEYS",
    "Sample",
    "Space",
    "SpecRejected",
    "TemplateError",
    "evaluate",
    "list_spaces",
    "load_space",
    "make_divisible",
    "space_dir",
]
