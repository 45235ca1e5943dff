"""The platform's own measurements, run from a checkout as commands (`python -m experiments.bench <name>`; not in
the wheel); their figures go in docs/benchmarks.md."""

from __future__ import annotations

import pkgutil
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules in this package (each has a `main(argv)`)."""
    return sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")
    )
