"""The surrogate evaluator: under `benchmark=surrogate` a trial looks its candidate up in the space's fitted
surrogate (nas.surrogate.model) instead of training it: a millisecond, after the count of its network's params
and MACs (once per network and process).

Its accuracy is the surrogate's mean prediction plus, with `benchmark.noise` (the default), one draw of the
fidelity's seed noise from the trial's training seed and the network (as if trained once: the same network
under the same seed gets the same result; another seed, another draw). Its latency is the search's
`latency.mode` through the usual seam (MACs by default; `predicted` sums the per-layer table). Params and
MACs are counted, and the constraints, reuse, resume and the report are those of a trained trial; the chance
test sees the fidelity's validation images.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import optuna

from nas.search.evaluator import Candidate, Evaluation, Evaluator
from nas.search.scheduler import Rung
from nas.surrogate.options import SurrogateOptions

if TYPE_CHECKING:  # the plan parses benchmarks through the registry of evaluators (nas.search.evaluators)
    from nas.search.plan import SearchPlan

# Rendered spec -> (trained spec, deployed spec, costs): a network's params and MACs are counted once per process
# (0.1-0.5 s on the meta device, the bulk of a looked-up trial), however many searches of a benchmark meet it.
_COSTS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}


class SurrogateEvaluator(Evaluator):
    """Results from a space's surrogate (see the module docstring); nothing trains, no W&B run per trial."""

    deterministic = True  # the mean prediction, plus noise drawn from the training seed and the network

    def __init__(self, plan: SearchPlan, options: SurrogateOptions) -> None:
        self.plan = plan
        self.options = options
        self.surrogate = options.load(plan)

    def describe(self) -> str:
        """One header line: what the trials look up."""
        d, noise = self.surrogate.doc, self.surrogate.noise_sd
        draws = (
            f"plus seed noise (sd {noise:.4f}) drawn from the trial's seed"
            if self.options.noise
            else "no noise"
        )
        return (
            f"evaluation: surrogate ({d['model']}, fitted on {d['n_archs']} {d['space']} architectures trained on "
            f"{d['data']}), its mean accuracy {draws}; latency: latency.mode={self.plan.latency.get('mode')}; "
            "nothing trains"
        )

    def cost(
        self, plan: SearchPlan, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        key = json.dumps({"spec": spec, "data": plan.base["data"], "deployed": plan.full["data"]}, sort_keys=True,
                         default=str)  # fmt: skip
        if key not in _COSTS:
            _COSTS[key] = plan.cost(spec)
        return copy.deepcopy(_COSTS[key])

    def prepare(self, trial: optuna.Trial, candidate: Candidate) -> dict[str, Any]:
        return {"benchmark": self.options.identity()}

    def evaluate(self, trial: optuna.Trial, candidate: Candidate, rung: Rung) -> Evaluation:
        a = candidate.attrs
        mean = float(self.surrogate.predict([(candidate.params, a["macs"], a["n_params"])])[0])
        accuracy = (
            self.surrogate.draw(mean, candidate.params, self.plan.base["seed"])
            if self.options.noise
            else mean
        )
        signature = self.surrogate.doc.get("signature") or {}
        return Evaluation(
            "COMPLETE",
            attrs={
                "accuracy": accuracy,
                "surrogate_mean": mean,
                "metrics": {self.plan.metric: accuracy},
                "val_size": (signature.get("data") or {}).get("val_size"),  # the chance test, as if trained
            },
        )
