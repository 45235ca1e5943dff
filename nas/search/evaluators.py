"""The registry of evaluators: `benchmark=<name>` -> how a trial's candidate is evaluated, in one place.

Each entry names the `Evaluator` class a search builds (`Evaluator.build`) and the options class that parses
and checks the `benchmark` config group (conf/benchmark/<name>.yaml) before any compute (`from_cfg`, then
`check_data` and `bind` against the plan). `none`, the default, trains each candidate (nas.search.evaluator);
the others look results up. A new evaluator is its module (an `Evaluator` and its options) plus one entry here
and its config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.search.evaluator import Evaluator, TrainingEvaluator
from nas.search.tabular import TabularEvaluator
from nas.surrogate.evaluator import SurrogateEvaluator
from nas.surrogate.options import SurrogateOptions
from nas.tabular.options import BenchmarkOptions

if TYPE_CHECKING:  # the plan parses its `benchmark` group here
    from nas.search.guard import InterruptGuard
    from nas.search.plan import SearchPlan

Options = BenchmarkOptions | SurrogateOptions


@dataclass(frozen=True)
class EvaluatorKind:
    """A registered evaluator: its class, and the class of its `benchmark` options (None: it has none)."""

    evaluator: type[Evaluator]
    options: type[BenchmarkOptions] | type[SurrogateOptions] | None = None


# benchmark=<name> -> its evaluator and options (conf/benchmark/<name>.yaml); `none`: trials train
EVALUATORS: dict[str, EvaluatorKind] = {
    "none": EvaluatorKind(TrainingEvaluator),
    "nb201": EvaluatorKind(TabularEvaluator, BenchmarkOptions),  # NAS-Bench-201's tables (nas.tabular)
    "surrogate": EvaluatorKind(SurrogateEvaluator, SurrogateOptions),  # a trained space's surrogate
}
DEFAULT = "none"


def benchmark_options(raw: Mapping[str, Any] | None, epochs: int) -> Options | None:
    """The `benchmark` options by name (None or name none: trials train); ValueError with the valid names.
    `epochs`: the search fidelity's."""
    name = (raw or {}).get("name", DEFAULT)
    if name in (None, DEFAULT):
        return None
    kind = EVALUATORS.get(name)
    if kind is None or kind.options is None:
        looked_up = [n for n, k in EVALUATORS.items() if k.options is not None]
        raise ValueError(f"unknown benchmark {name!r}; valid benchmarks: none, {', '.join(looked_up)}")
    return kind.options.from_cfg(raw, epochs=epochs)  # type: ignore[arg-type]


def make_evaluator(plan: SearchPlan, study_dir: Path, guard: InterruptGuard | None) -> Evaluator:
    """The one place that chooses how a search's trials are evaluated: the plan's benchmark's evaluator."""
    name = DEFAULT if plan.benchmark is None else plan.benchmark.name
    return EVALUATORS[name].evaluator.build(plan, study_dir=study_dir, guard=guard)
