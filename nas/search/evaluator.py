"""The evaluation seam: what a trial does with a candidate that passed its checks, behind one interface.

`TrainingEvaluator` trains the candidate at the rung's fidelity through `nas.fit.fit`;
`nas.search.tabular.TabularEvaluator` reads a NAS-Bench-201 cell's result from the benchmark's table. An
evaluator also says what a candidate costs (params / MACs) and its latency objective, so a table's latency
column replaces the measurement through the same seam: the trial code does not change. Evaluators are
registered by `benchmark` name, with their options, in nas.search.evaluators.
"""

from __future__ import annotations

import contextlib
import gc
import math
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
import torch

from nas import fit as fitting
from nas import latency as latencies
from nas.module import NonFiniteLossError
from nas.search.guard import InterruptGuard, StopRequested
from nas.search.pruning import LightningPruning
from nas.search.scheduler import Rung
from nas.tracking import trial_summary

if TYPE_CHECKING:  # the plan parses benchmarks through the registry of evaluators (nas.search.evaluators)
    from nas.search.plan import SearchPlan


@dataclass
class Candidate:
    """A sampled architecture that passed the cheap checks: what an evaluator gets."""

    number: int  # the trial's number
    params: dict[str, Any]  # the sampled parameters
    spec: dict[str, Any]  # the rendered spec (not sized for any data)
    trained: dict[str, Any]  # sized for the data at the training fidelity
    deployed: dict[str, Any]  # sized for the data as deployed (latency, MACs, params are judged on it)
    attrs: dict[str, Any]  # what the trial recorded so far (spec, n_params, macs, run_key, latency, ...)
    trained_costs: dict[str, int] | None = (
        None  # params / MACs at the training size, when it is not deployed's
    )


@dataclass
class Evaluation:
    """What evaluating a candidate gave: a state (COMPLETE, PRUNED or FAIL), why, and attributes to record
    (COMPLETE: `accuracy` at least; `metrics`, `train_time_s`, `output_dir`, `val_size` (the validation images
    the accuracy was measured on: the trial then tests it against chance, `chance_reason`), a failure's
    `traceback`)."""

    state: str
    reason: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)


class Evaluator(ABC):
    """Evaluates one candidate at one rung; `TrialRunner` records and tells Optuna what it returns.

    Call order, for every trial `TrialRunner` runs:

    0. `cost(plan, spec)` and, unless the candidate was rejected or reused, `latency(deployed, cfg)`:
       its sized specs, params / MACs and latency objective, before the constraints are checked (default:
       counted on the meta device, and measured or predicted per the latency config);
    1. `prepare(trial, candidate)`: once, before the first evaluation: attributes the trial records at once
       (e.g. its output folder), so they survive a crash of the evaluation;
    2. `evaluate(trial, candidate, rung)`: once per rung the scheduler asks for (see `Scheduler`), in
       increasing rung order; returns an `Evaluation`. It reports intermediate values to `trial` (pruning)
       only if it wants Optuna's pruner to decide, and returns PRUNED for a pruned or diverged run.
    3. `finished(trial, evaluation)`: once, after the trial was told, with the final evaluation.

    `evaluate` raises `StopRequested` (nas.search.guard) when the user interrupts it; the trial is then
    recorded as interrupted and queued again. Any other exception fails the trial (not the search).

    `deterministic`: whether it promises the same result for the same candidate, training seed and rung (a
    look-up does; training on a device need not). tests/search/test_seam_contracts.py runs every evaluator
    registered in nas.search.evaluators through this contract.
    """

    deterministic: ClassVar[bool] = False

    @classmethod
    def build(cls, plan: SearchPlan, *, study_dir: Path, guard: InterruptGuard | None) -> Evaluator:
        """The evaluator of a search (nas.search.evaluators.make_evaluator): by default a look-up's,
        `cls(plan, plan.benchmark)` (its checked `benchmark` options)."""
        return cls(plan, plan.benchmark)  # type: ignore[call-arg]

    @abstractmethod
    def evaluate(self, trial: optuna.Trial, candidate: Candidate, rung: Rung) -> Evaluation:
        """Evaluate `candidate` at `rung`."""

    def prepare(self, trial: optuna.Trial, candidate: Candidate) -> dict[str, Any]:
        """Attributes recorded before the first evaluation (none by default)."""
        return {}

    def describe(self) -> str:
        """A line for the search's header when the evaluation is not the usual training ("" by default)."""
        return ""

    def cost(
        self, plan: SearchPlan, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(trained spec, deployed spec, deployed params / MACs) of a rendered spec (`SearchPlan.cost`)."""
        return plan.cost(spec)

    def latency(
        self, deployed: dict[str, Any], cfg: dict[str, Any], *, costs: dict[str, Any] | None = None
    ) -> tuple[float, dict[str, Any]]:
        """(value, record) of the latency objective of a deployed spec (`nas.latency.latency_objective`);
        `costs`: the deployed spec's params / MACs, already counted by the trial (not counted again)."""
        # Through the module attribute, so a test can replace the latency measurement.
        return latencies.latency_objective(deployed, cfg, costs=costs)

    def finished(self, trial: optuna.Trial, evaluation: Evaluation) -> None:  # noqa: B027 - optional hook
        """Called after the trial was told (nothing by default)."""


class TrainingEvaluator(Evaluator):
    """Trains the candidate at the search fidelity (`nas.fit.fit`, one W&B run per trial) and validates it;
    Optuna's pruner decides per validation epoch when one is set."""

    def __init__(self, plan: SearchPlan, study_dir: Path, guard: InterruptGuard) -> None:
        self.plan = plan
        self.study_dir = study_dir
        self.guard = guard
        self.tags = [f"space:{plan.space.name}", f"data:{plan.base['data'].get('name', 'data')}"]

    @classmethod
    def build(cls, plan: SearchPlan, *, study_dir: Path, guard: InterruptGuard | None) -> Evaluator:
        return cls(plan, study_dir, guard)  # type: ignore[arg-type]

    def output_dir(self, number: int) -> Path:
        """The run folder of trial `number`."""
        return self.study_dir / "trials" / f"t{number:04d}"

    def prepare(self, trial: optuna.Trial, candidate: Candidate) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir(candidate.number))}

    def evaluate(self, trial: optuna.Trial, candidate: Candidate, rung: Rung) -> Evaluation:
        plan = self.plan
        out = self.output_dir(candidate.number)
        cfg = plan.run_config(
            candidate.spec, output_dir=str(out), name=f"{plan.study_name}-t{candidate.number:04d}"
        )
        cfg["trainer"]["max_epochs"] = rung.epochs
        if rung.index > 0:  # a promotion trains again from scratch: a lower rung's weights are not the result
            for ckpt in (out / "checkpoints").glob("*.ckpt"):
                ckpt.unlink()
        cfg["checkpoint"] = True  # weights for the front's W&B artifact; the loop deletes those off the front
        # Each epoch's checkpoint, keyed by the run's identity (nas.fit.resume_path): an interrupted trial's
        # retry (another number, the same network and rung) resumes from it; its run folder gets it at the end.
        cfg["resume_dir"] = str(self.study_dir / "resume")
        callbacks = []
        if plan.pruner.prunes:
            callbacks.append(LightningPruning(trial, monitor=plan.metric))
        try:
            with self.guard.training():
                # Through the module attribute, so a test can count or replace the training call.
                result = fitting.fit(
                    cfg,
                    callbacks=callbacks,
                    group=plan.study_name,
                    job_type="trial",
                    tags=self.tags,
                    verbose=False,
                    summary=trial_summary(candidate.number, trial.params, candidate.attrs),
                    costs=_trained_costs(candidate),
                )
            for cb in callbacks:  # multi-process trials: rank 0 decided, through the storage
                cb.check_pruned()
        except optuna.TrialPruned as e:
            return Evaluation("PRUNED", str(e) or "pruned")
        except Exception as e:
            if isinstance(e, StopRequested):
                raise
            tb = traceback.format_exc()
            if diverged(e):  # a rank of a multi-process trial diverged: as fit() records it in one process
                return Evaluation("PRUNED", _diverged_reason(e))
            return Evaluation("FAIL", failure_reason(e), {"traceback": tb[-4000:]})
        attrs: dict[str, Any] = {
            "metrics": result.metrics,
            "train_time_s": round(result.wall_time_s, 3),
            "images_per_s": None
            if math.isnan(result.train_images_per_s)
            else round(result.train_images_per_s, 1),
        }
        if result.resumed_epoch is not None:  # a retry: the epochs its interrupted trial had trained
            attrs["resumed_epoch"] = result.resumed_epoch
        if result.state == "PRUNED":  # fit() stopped a diverged run (NaN / inf loss): a result, not a crash
            return Evaluation("PRUNED", f"diverged: {result.reason}" if result.reason else "diverged", attrs)
        accuracy = result.metrics.get(plan.metric)
        if accuracy is None or not math.isfinite(accuracy):
            reason = (
                f"metric {plan.metric!r} is {accuracy}; logged metrics: {', '.join(result.metrics)}"
                if accuracy is None
                else f"non-finite {plan.metric} ({accuracy})"
            )
            return Evaluation("FAIL", reason, attrs)
        return Evaluation("COMPLETE", "", {**attrs, "accuracy": float(accuracy), "val_size": result.val_size})


def chance_reason(accuracy: float, n: int | None, num_classes: int, alpha: float | None) -> str | None:
    """Why an accuracy on `n` validation images is not clearly above chance (1 / num_classes), or None.

    A one-sided exact binomial test: correct answers k = round(accuracy * n) against guessing; the network
    counts as trained when P(K >= k | guessing) < `alpha`. None (trained) without `n` or `alpha`.
    """
    if alpha is None or not n or num_classes < 2:
        return None
    from scipy.stats import binomtest  # local: scipy's import costs ~0.3 s, paid by completed trials only

    k = min(n, max(0, round(accuracy * n)))
    p = binomtest(k, n, 1.0 / num_classes, alternative="greater").pvalue
    if p < alpha:
        return None
    return (
        f"not trained: accuracy {accuracy:.4f} on {n} validation images is not above chance "
        f"(1/{num_classes}) at p < {alpha:g} (one-sided binomial test, p = {p:.3g})"
    )


def _trained_costs(candidate: Candidate) -> dict[str, int] | None:
    """The trial's counted params / MACs of the network it trains (the deployed one's, or the training size's
    when the fidelity trains it at another size), so `fit` neither builds nor counts it again; None (fit
    counts) when the trial has no count."""
    if candidate.trained != candidate.deployed:
        return candidate.trained_costs
    a = candidate.attrs
    if a.get("n_params") is None or a.get("macs") is None:
        return None
    return {"params": int(a["n_params"]), "macs": int(a["macs"])}


def is_out_of_memory(e: BaseException) -> bool:
    """Whether `e` is a device (or host) out-of-memory error."""
    return isinstance(e, torch.cuda.OutOfMemoryError | MemoryError) or "out of memory" in str(e).lower()


def failure_reason(e: BaseException) -> str:
    """One line for a failed trial: the exception's type and first line (out of memory says what to do)."""
    text = str(e).strip()
    reason = f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
    if is_out_of_memory(e):
        gc.collect()  # release the failed trial's tensors before the next trial
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        reason = (
            f"out of memory ({reason}); lower data.batch_size, or bound the space with constraints.params / "
            "constraints.macs"
        )
    return reason


def diverged(e: BaseException) -> bool:
    """Whether `e` is a non-finite training loss, also when re-raised from a DDP rank's process."""
    return isinstance(e, NonFiniteLossError) or "NonFiniteLossError" in str(e)


def _diverged_reason(e: BaseException) -> str:
    text = str(e)
    i = text.find("NonFiniteLossError")
    line = (
        text[i + len("NonFiniteLossError") :].lstrip(": ").splitlines()[0] if i >= 0 else text.splitlines()[0]
    )
    return f"diverged: {line.strip()}"
