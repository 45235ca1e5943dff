"""Small NAS-Bench-201 tables written by the tests, in the real files' formats."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import pytest

from nas.tabular import nb201

DEVICES = ("gold_6226", "raspi4")
FEW = ("421211", "334131", "433444", "410001", "000000", "333333", "111111", "222222")


def write_tables(folder: Path, codes: list[str], *, seed: int = 0) -> Path:
    """Write latency / 12-epoch CSVs and 200-epoch pickles for `codes` (rows in that order); returns `folder`.

    Values are a deterministic function of the code so tests can recompute them: latency (ms) grows with
    the number of convolutions, accuracy too; odd rows have 2 seeds of 200-epoch results, even rows 3.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    convs = np.array([sum(c in "23" for c in code) for code in codes], dtype=float)
    lat = {d: 1.0 + convs * (k + 1) + rng.uniform(0, 0.5, len(codes)) for k, d in enumerate(DEVICES)}
    acc = 50.0 + 6.0 * convs + rng.uniform(0, 3, len(codes))
    with open(folder / nb201.LATENCY_CSV, "w") as fh:
        fh.write(",".join(["index", "code", "arch", *DEVICES]) + "\n")
        for i, c in enumerate(codes):
            fh.write(
                f"{i},{c},{nb201.code_to_arch(c)}," + ",".join(f"{lat[d][i]:.6f}" for d in DEVICES) + "\n"
            )
    cols = [f"{d}-{s}" for d in nb201.DATASETS for s in ("test", "val")]
    with open(folder / nb201.ACC12_CSV, "w") as fh:
        fh.write(",".join(["index", "code", "arch", *cols]) + "\n")
        for i, c in enumerate(codes):
            vals = [acc[i] - 10 - k for k in range(len(cols))]
            fh.write(f"{i},{c},{nb201.code_to_arch(c)}," + ",".join(f"{v:.4f}" for v in vals) + "\n")
    for k, ds in enumerate(nb201.DATASETS):
        table = {}
        for i, c in enumerate(codes):
            n = 2 if i % 2 else 3
            table[c] = {
                # plain floats, as in the real files (the loader refuses pickled objects)
                "val_acc": [float(acc[i] - 5 * k + j) for j in range(n)],
                "train_time": [float(100.0 * (1 + convs[i]) * (k + 1))] * n,
                "model_size": [float(0.1 + 0.05 * convs[i])] * n,
                "latency": [0.01] * n,
            }
        with open(folder / f"{ds}.pkl", "wb") as fh:
            pickle.dump(table, fh)
    return folder


@pytest.fixture
def few_tables(tmp_path):
    """A table of the eight cells in FEW."""
    return write_tables(tmp_path / "nb201", list(FEW))


@pytest.fixture(scope="session")
def full_tables(tmp_path_factory):
    """A synthetic table of all 15,625 cells (what a sampler over the six edges can propose)."""
    codes = ["".join(p) for p in itertools.product("01234", repeat=6)]
    return write_tables(tmp_path_factory.mktemp("nb201_full"), codes)
