"""Benchmarks run as commands (`python -m experiments.bench <name>`); their figures go in the README."""

from __future__ import annotations

import pkgutil
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules in this package (each has a `main(argv)`)."""
    return sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")
    )
