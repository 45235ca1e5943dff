"""The tabular evaluator: a trial looks its candidate's result up in a tabular benchmark instead of training it.

Under `benchmark=nb201` (conf/benchmark/nb201.yaml) a candidate of a space that renders the NAS-Bench-201
network (conf/space/nb201.yaml) is evaluated in milliseconds: its accuracy is the table's at the rung's
epochs (200: the run of one of the cell's 2-3 training seeds, drawn from the trial's training seed as if
trained once, or their mean; 12: the 12-epoch table), its latency the device column's (ms), and the
table's training time is recorded as the simulated cost (`simulated_time_s`, summed over the trial's rungs,
so a scheduler's total simulated time is the sum over trials; a reused trial costs nothing). Everything
else (sampling, constraints, reuse, resume, reports, W&B) is the path of a trained trial.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import optuna

from blocks.families.nb201 import parse_cell
from nas.latency import spec_costs
from nas.search.evaluator import Candidate, Evaluation, Evaluator
from nas.search.scheduler import Rung
from nas.tabular import nb201
from nas.tabular.options import BenchmarkOptions

if TYPE_CHECKING:  # the plan parses benchmarks through the registry of evaluators (nas.search.evaluators)
    from nas.search.plan import SearchPlan

# Network shape (its deployed spec without cells) -> (all-"none" cost, per-op increments): counted once
# per process, so a benchmark of many searches counts each shape once (see TabularEvaluator.cost).
_COST_MODELS: dict[str, tuple[dict[str, int], dict[str, dict[str, int]]]] = {}


class TabularEvaluator(Evaluator):
    """Results from NAS-Bench-201's tables (see the module docstring); nothing trains, no W&B run per trial."""

    deterministic = True  # a table row; under seed_mode=draw one seed's run, drawn from the training seed

    def __init__(self, plan: SearchPlan, options: BenchmarkOptions) -> None:
        self.plan = plan
        self.options = options
        self.results = options.results()
        self._spent: dict[int, dict[str, float]] = {}  # trial -> simulated seconds per rung epochs

    def describe(self) -> str:
        """One header line: what the trials look up."""
        o = self.options
        seeds = "one seed's run per trial" if o.seed_mode == "draw" else "the mean of the seeds"
        return (
            f"evaluation: NAS-Bench-201 table ({o.dataset}, {self.plan.fidelity.epochs} epochs, {seeds}), "
            f"latency of {o.device} (ms); nothing trains"
        )

    def code(self, spec: dict[str, Any]) -> str:
        """The six-digit code of the one cell a spec's stages use (ValueError if none, or several)."""
        cells = {_code(s["cell"]) for s in spec.get("stages", []) if s.get("block") == "nb201_cell"}
        if len(cells) != 1:
            raise ValueError(
                "a NAS-Bench-201 table has results for networks of one cell repeated in every stage "
                f"(conf/space/nb201.yaml); this spec has {len(cells)} different cells"
            )
        return cells.pop()

    def cost(
        self, plan: SearchPlan, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        # Counting a 15-cell network on the meta device takes 0.3-2 s, a look-up microseconds. Every edge of
        # a cell maps C to C channels at one resolution and runs whatever the other edges hold (a node's sum
        # counts nothing), so params and MACs are the cost of the all-"none" network plus one increment per
        # edge op: 5 counts per network shape, then exact sums for all 15,625 cells (a test checks them).
        trained, deployed = plan.resolved_spec(spec), plan.deployed_spec(spec)
        ops = parse_cell(self.code(deployed))
        base, extra = self._op_costs(deployed)
        cost = {k: base[k] + sum(extra[op][k] for op in ops) for k in base}
        return trained, deployed, cost

    def _op_costs(self, deployed: dict[str, Any]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """(cost of the network with all-"none" cells, extra cost of each op on one edge) for its shape."""
        key = json.dumps(_without_cells(deployed), sort_keys=True, default=str)
        if key not in _COST_MODELS:
            base = _counts(spec_costs(_with_cell(deployed, "0" * len(nb201.EDGES))))
            extra = {}
            for k, op in enumerate(nb201.OPS):
                one = str(k) + "0" * (len(nb201.EDGES) - 1)  # op on the first edge, none elsewhere
                c = _counts(spec_costs(_with_cell(deployed, one))) if k else base
                extra[op] = {m: c[m] - base[m] for m in base}
            _COST_MODELS[key] = (base, extra)
        return _COST_MODELS[key]

    def latency(
        self, deployed: dict[str, Any], cfg: dict[str, Any], *, costs: dict[str, Any] | None = None
    ) -> tuple[float, dict[str, Any]]:
        o = self.options
        value = float(self.results.latency(o.device)[self.results.row(self.code(deployed))])
        record = {
            "mode": "table",
            "unit": "ms",
            "value": value,
            "benchmark": o.name,
            "device": o.device,
            "fingerprint": f"{o.name}:{o.device}",
            "batch_size": _batch_size(o.device),
        }
        return value, record

    def prepare(self, trial: optuna.Trial, candidate: Candidate) -> dict[str, Any]:
        self._spent[candidate.number] = {}
        return {"benchmark": self.options.identity()}

    def evaluate(self, trial: optuna.Trial, candidate: Candidate, rung: Rung) -> Evaluation:
        o = self.options
        code = self.code(candidate.deployed)
        seed = self.plan.base["seed"] if o.seed_mode == "draw" else None  # the trial's training seed
        found = self.results.lookup(code, dataset=o.dataset, device=o.device, epochs=rung.epochs, seed=seed)
        spent = self._spent.setdefault(candidate.number, {})
        spent[str(rung.epochs)] = found.cost_s
        return Evaluation(
            "COMPLETE",
            attrs={
                "accuracy": found.accuracy,
                "val_size": nb201.VAL_SIZE[o.dataset],  # the trial tests it against chance, as a trained one
                "metrics": {self.plan.metric: found.accuracy},
                "cell_code": code,
                "simulated_time_s": round(sum(spent.values()), 3),
                "simulated_time_by_epochs": dict(spent),
            },
        )

    def finished(self, trial: optuna.Trial, evaluation: Evaluation) -> None:
        self._spent.pop(trial.number, None)


def _code(cell: Any) -> str:
    """The six-digit code of a cell given as the benchmark's string or as a code."""
    return "".join(str(nb201.OPS.index(op)) for op in parse_cell(cell))


def _batch_size(device: str) -> int:
    """The batch size of a latency column: `_32` / `_256` name it, the others (`_1`, CPUs, phones) are 1."""
    suffix = device.rsplit("_", 1)[-1]
    return int(suffix) if suffix in ("32", "256") else 1


def _counts(cost: dict[str, Any]) -> dict[str, int]:
    return {"params": int(cost["params"]), "macs": int(cost["macs"])}


def _with_cell(spec: dict[str, Any], code: str) -> dict[str, Any]:
    """`spec` with every nb201 cell set to `code`."""
    stages = [{**s, "cell": code} if s.get("block") == "nb201_cell" else s for s in spec["stages"]]
    return {**spec, "stages": stages}


def _without_cells(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with each stage's cell removed (the cost key carries the cell's ops instead)."""
    stages = [{k: v for k, v in s.items() if k != "cell"} for s in spec.get("stages", [])]
    return {**spec, "stages": stages}
