"""The `benchmark` option of a search (conf/benchmark/*.yaml): which table a trial looks its result up in.

Registered as benchmark=nb201 in nas.search.evaluators; parsed and checked by `nas.search.plan.SearchPlan`
before any compute (the device column, the epochs the table has); `nas.search.tabular.TabularEvaluator` does the look-ups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.tabular import nb201

if TYPE_CHECKING:  # the plan imports this module
    from nas.search.plan import SearchPlan

SEED_MODES = ("draw", "mean")
# The data config a dataset's network is sized for (classes); ImageNet16-120 has no data config here.
DATA_CLASSES = {"cifar10": 10, "cifar100": 100}
KEYS = ("name", "dataset", "device", "epochs", "seed_mode", "data_dir", "pickle_dir")


@dataclass(frozen=True)
class BenchmarkOptions:
    """A validated `benchmark` config: table, dataset, latency device column, how 200-epoch seeds are used."""

    name: str
    dataset: str
    device: str
    seed_mode: str  # draw: one seed's run per trial, drawn from its training seed (as if trained once); mean
    data_dir: str | None = (
        None  # folder of the CSV tables (None: $NB201_DIR, else ../shared/benchmarks/nb201)
    )
    pickle_dir: str | None = None  # folder of the 200-epoch pickles (None: $NB201_200_DIR, else the package)
    latency_from_table: ClassVar[bool] = True  # latency is the device column's (ms), not latency.mode's

    @classmethod
    def from_cfg(cls, raw: Mapping[str, Any] | None, *, epochs: int) -> BenchmarkOptions | None:
        """The options of `raw` (None or name none: no benchmark, trials train); ValueError with the valid
        choices. `epochs`: the search fidelity's, which must be one the table has."""
        if not raw or raw.get("name", "none") in (None, "none"):
            return None
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown benchmark keys {unknown}; valid keys: {', '.join(KEYS)}")
        if raw.get("epochs") is not None and int(raw["epochs"]) != epochs:
            raise ValueError(
                f"benchmark.epochs={raw['epochs']} but fidelity.epochs={epochs}: set benchmark.epochs only "
                "(fidelity.epochs follows it)"
            )
        if epochs not in nb201.EPOCHS:
            raise ValueError(
                f"NAS-Bench-201 has results after {' or '.join(map(str, nb201.EPOCHS))} epochs, not "
                f"{epochs}: set benchmark.epochs to one of them"
            )
        opts = cls(
            name=str(raw["name"]),
            dataset=str(raw.get("dataset", "cifar10")),
            device=str(raw.get("device", "gold_6226")),
            seed_mode=str(raw.get("seed_mode", "draw")),
            data_dir=raw.get("data_dir"),
            pickle_dir=raw.get("pickle_dir"),
        )
        if opts.dataset not in nb201.DATASETS:
            raise ValueError(
                f"unknown NAS-Bench-201 dataset {opts.dataset!r}; valid datasets: {', '.join(nb201.DATASETS)}"
            )
        if opts.seed_mode not in SEED_MODES:
            raise ValueError(
                f"unknown benchmark.seed_mode {opts.seed_mode!r}; valid: {', '.join(SEED_MODES)}"
            )
        try:
            results = opts.results()
            results.latency(opts.device)  # the CSVs are there and the device is one of their columns
            if epochs == 200:  # the 200-epoch results are there too (their package or pickles)
                results.results_200(opts.dataset)
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise ValueError(str(e)) from None
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        return opts

    def bind(self, plan: SearchPlan) -> BenchmarkOptions:
        """These options as the plan keeps them: nothing beyond `check_data` depends on the rest of the plan."""
        return self

    def check_data(self, data: Mapping[str, Any]) -> None:
        """The search's data must size the network as the benchmark's (params / MACs are counted on it)."""
        want = DATA_CLASSES.get(self.dataset)
        if want is not None and (data.get("num_classes") != want or data.get("image_size") != 32):
            raise ValueError(
                f"benchmark.dataset={self.dataset} is for 32 px images of {want} classes: set data={self.dataset} "
                f"(got data={data.get('name')}: {data.get('num_classes')} classes, {data.get('image_size')} px)"
            )

    def results(self) -> nb201.Results:
        """The benchmark's results, read from its tables (loaded once per process and folder)."""
        return nb201.load(self.data_dir, pickle_dir=self.pickle_dir)

    def identity(self) -> dict[str, Any]:
        """What a study's latency and results depend on (its identity's `latency` entry under a benchmark)."""
        return {
            "mode": "table",
            "benchmark": self.name,
            "dataset": self.dataset,
            "device": self.device,
            "seed_mode": self.seed_mode,
        }
