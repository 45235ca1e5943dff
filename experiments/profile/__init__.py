"""Canziani et al.'s practical analysis of the reference networks on this machine: `nas-profile` or
`python -m experiments.profile` (its `--help` says what it measures and writes).

Modules: run (one profile run: measuring each network across batch sizes, writing and logging the results),
analysis (the dense-convolution line, the separable networks' distance from it, the figures), tracking (the
profile's W&B run), __main__ (the command).
"""

from experiments.profile.analysis import fit_dense_line, line_ms, plot, summarize
from experiments.profile.run import (
    DEFAULT_BATCHES,
    ProfileReport,
    is_separable,
    load_models,
    profile_model,
    run_profile,
    runtime_line,
)

__all__ = [
    "DEFAULT_BATCHES",
    "ProfileReport",
    "fit_dense_line",
    "is_separable",
    "line_ms",
    "load_models",
    "plot",
    "profile_model",
    "run_profile",
    "runtime_line",
    "summarize",
]
