"""One search trial, from sampling to `study.tell`, and the Ctrl-C guard around it.

Order of work, cheapest first, so a candidate that cannot win costs milliseconds:

1. draw the parameters and render the spec (a draw that cannot form a network is *rejected*);
2. params and MACs on the meta device -> params / MACs constraints (rejected when violated); these and the
   latency are the network's at the data's image size, where it is deployed, even when `fidelity.image_size`
   trains it smaller;
3. an earlier trial with the same spec at the same fidelity -> its result is reused, no training;
4. latency (measured / predicted / macs / params, per the latency config) -> latency constraint;
5. train and validate at the search fidelity (`nas.fit.fit`, pruning callback when a pruner is set).

Rejected candidates are told to Optuna as PRUNED with `rejected: true` and the reason in their user
attributes: TPE then ranks them below every completed trial (it learns to avoid the region), NSGA-II
ignores them, and they do not count toward `n_trials`. No objective values are invented for them, which
a `constraints_func` would require (it only applies to completed trials, i.e. after training).
"""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.plan import SearchPlan
from nas.study import heartbeat

# Trial user attributes copied when a duplicate spec reuses an earlier result.
RESULT_ATTRS = (
    "n_params",
    "macs",
    "latency",
    "latency_unit",
    "latency_record",
    "device",
    "device_key",
    "accuracy",
    "metrics",
    "train_time_s",
    "images_per_s",
    "output_dir",
)


class StopRequested(Exception):
    """Raised inside training by the first Ctrl-C: the trial is recorded as interrupted, then the search stops."""


class InterruptGuard:
    """First Ctrl-C (or SIGTERM, e.g. a SLURM time limit or preemption): stop after the current trial's
    bookkeeping, interrupting its training, which is queued to run again; the second: now."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, notify: Any = print) -> None:
        self.requested = False
        self._training = False
        self._old: dict[int, Any] = {}
        self._notify = notify
        self._why = "interrupted by the user (Ctrl-C)"

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and not self._training:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self._why = "interrupted by the user (Ctrl-C)" if signum == signal.SIGINT else f"terminated ({name})"
        if self._training:
            self._training = False
            raise StopRequested(self._why)
        self._notify(
            f"{name}: finishing this trial's bookkeeping, then stopping ({name} again to stop at once)"
        )

    @property
    def stop_reason(self) -> str:
        """Why the search stops: "interrupted (Ctrl-C)" or "terminated (SIGTERM)"."""
        return "interrupted (Ctrl-C)" if self._why.endswith("(Ctrl-C)") else self._why

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """A section a Ctrl-C may interrupt (raising StopRequested inside it)."""
        if self.requested:
            raise StopRequested(self._why)
        self._training = True
        try:
            yield
        finally:
            self._training = False


@dataclass
class Outcome:
    """What happened to one trial (for the progress bar and the stop rules)."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, REJECTED, REUSED, INTERRUPTED, SURPLUS, LOST (see run())
    values: list[float] | None = None
    reason: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def counted(self) -> bool:
        return self.state not in ("REJECTED", "INTERRUPTED", "SURPLUS", "LOST")

    def line(self, plan: SearchPlan) -> str:
        """One log line: trial, state, objectives, cost, time, reason."""
        a = self.attrs
        parts = [f"trial {self.number:>4}", f"{self.state:<9}"]
        if a.get("accuracy") is not None:
            parts.append(f"acc {a['accuracy']:.4f}")
        if a.get("latency") is not None:
            unit = a.get("latency_unit", "")
            parts.append(f"latency {a['latency']:.3g} {unit}".rstrip())
        if a.get("n_params") is not None:
            parts.append(f"params {a['n_params'] / 1e6:.3f}M  MACs {a.get('macs', 0) / 1e6:.1f}M")
        parts.append(f"{self.seconds:.0f} s")
        if self.reason:
            parts.append(f"({self.reason})")
        return "  ".join(parts)


class TrialRunner:
    """Runs trials of one study (ask -> evaluate -> tell), recording everything on the trial."""

    def __init__(self, plan: SearchPlan, study: optuna.Study, study_dir: Path, guard: InterruptGuard) -> None:
        self.plan = plan
        self.study = study
        self.study_dir = study_dir
        self.guard = guard
        self.tags = [f"space:{plan.space.name}", f"data:{plan.base['data'].get('name', 'data')}"]

    def run(self) -> Outcome:
        """Ask for a trial, evaluate it, tell the result; an unexpected error fails the trial, not the search.

        With other workers on the study: a fresh trial that lost the race for the last slot is given back
        (SURPLUS, nas.workers), and a trial another worker failed as lost meanwhile (this worker's
        heartbeats did not arrive in time) is dropped (LOST): its queued retry computes it again.
        """
        from nas.workers import WORKER_ATTR, identity, is_surplus, trial_seed

        trial = self.study.ask()
        start = time.perf_counter()
        if self.plan.sampler.get("name") != "qmc":  # QMC's scrambling must stay the same in every worker
            # Every trial draws from its own seed, so N workers do not all propose the first run's draws, and
            # trial k gets the same draws whichever worker runs it (relative sampling happens at the first
            # suggest, after ask).
            from nas.study import make_sampler

            base = self.plan.sampler.get("seed")
            self.study.sampler = make_sampler(
                {**self.plan.sampler, "seed": None},
                seed=trial_seed(self.plan.seed if base is None else base, trial.number),
            )
        try:
            trial.set_user_attr(WORKER_ATTR, identity(trial.number))
            if is_surplus(self.study, trial, self.plan.n_trials):
                reason = (
                    f"not run: other workers had already taken the study's {self.plan.n_trials} trial slots"
                )
                self._set(trial, {"surplus": True, "state": "SURPLUS", "reason": reason})
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                return Outcome(trial.number, "SURPLUS", reason=reason)
            with heartbeat(self.study, trial):
                outcome = self._run(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            reason = (
                "another worker failed this trial as lost (its heartbeat was late); its retry recomputes it"
            )
            return Outcome(trial.number, "LOST", reason=reason, seconds=time.perf_counter() - start)
        except KeyboardInterrupt:  # a second Ctrl-C: leave nothing RUNNING behind
            trial.set_user_attr("interrupted", True)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        except Exception as e:
            reason = failure_reason(e)
            try:
                self._set(
                    trial, {"state": "FAIL", "reason": reason, "traceback": traceback.format_exc()[-4000:]}
                )
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # failed as lost by another worker meanwhile: recorded there
            outcome = Outcome(trial.number, "FAIL", reason=reason)
        outcome.seconds = time.perf_counter() - start
        return outcome

    # ----------------------------------------------------------------------------------------- helpers

    def _set(self, trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)

    def _reject(self, trial: optuna.Trial, reason: str, attrs: dict[str, Any]) -> Outcome:
        attrs = {**attrs, "rejected": True, "reason": reason, "state": "REJECTED"}
        self._set(trial, attrs)
        self.study.tell(trial, state=TrialState.PRUNED)
        return Outcome(trial.number, "REJECTED", reason=reason, attrs=attrs)

    def _values(self, attrs: dict[str, Any]) -> list[float]:
        key = {"accuracy": "accuracy", "latency": "latency", "params": "n_params", "macs": "macs"}
        return [float(attrs[key[o]]) for o in self.plan.objectives]

    def _find_duplicate(self, run_key: str, number: int) -> tuple[str, optuna.trial.FrozenTrial] | None:
        """An earlier finished trial with this run key: in this study, or (reuse=storage) in any study of the
        storage whose latency device is the same. Returns (study name, trial)."""
        if self.plan.reuse == "none":
            return None
        studies = [self.study]
        if self.plan.reuse == "storage":
            from nas.study import ATTR

            mine = self.study.user_attrs.get(ATTR + "identity", {}).get("latency")
            for name in optuna.get_all_study_names(self.study._storage):
                if name == self.study.study_name:
                    continue
                other = optuna.load_study(study_name=name, storage=self.study._storage)
                if other.user_attrs.get(ATTR + "identity", {}).get("latency") == mine:
                    studies.append(other)
        for study in studies:
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
                same = study is self.study and t.number == number
                if not same and t.user_attrs.get("run_key") == run_key and not t.user_attrs.get("rejected"):
                    return study.study_name, t
        return None

    def _latency_violation(self, latency: float, unit: str) -> str | None:
        limits = dict(self.plan.space.constraints.bounds)
        if self.plan.latency_budget_ms is not None:
            lo, hi = limits.get("latency_ms", (None, None))
            hi = self.plan.latency_budget_ms if hi is None else min(hi, self.plan.latency_budget_ms)
            limits["latency_ms"] = (lo, hi)
        if "latency_ms" not in limits or unit != "ms":
            return None
        from nas.space import Constraints

        found = Constraints({"latency_ms": limits["latency_ms"]}).violations({"latency_ms": latency})
        return "; ".join(found) or None

    # -------------------------------------------------------------------------------------------- trial

    def _run(self, trial: optuna.Trial) -> Outcome:
        from nas.space import SpecRejected

        plan = self.plan
        try:
            sample = plan.space.sample(trial)
        except SpecRejected as e:
            return self._reject(trial, f"invalid draw: {e}", {})
        attrs: dict[str, Any] = {"spec": sample.spec}
        try:  # `spec` trains at the fidelity's size; `deployed` (the data's size) is what latency / MACs judge
            spec, deployed, cost = plan.cost(sample.spec)
        except ValueError as e:  # e.g. the feature map shrinks below 1x1 at this input size
            return self._reject(trial, f"invalid spec: {str(e).splitlines()[0]}", attrs)
        attrs.update(n_params=int(cost["params"]), macs=int(cost["macs"]))
        broken = plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]})
        if broken:
            return self._reject(trial, "constraint: " + "; ".join(broken), attrs)
        attrs["run_key"] = plan.run_key(spec)

        found = self._find_duplicate(attrs["run_key"], trial.number)
        if found is not None:
            return self._reuse(trial, *found, attrs)

        from nas.latency import latency_objective

        latency, record = latency_objective(deployed, plan.latency)
        attrs.update(
            latency=float(latency),
            latency_unit=record.get("unit", ""),
            latency_record={k: v for k, v in record.items() if k != "device"},
            device=record.get("device"),
            device_key=record.get("fingerprint"),
        )
        violation = self._latency_violation(latency, attrs["latency_unit"])
        if violation:
            return self._reject(trial, "constraint: " + violation, attrs)
        self._set(trial, attrs)
        return self._train(trial, sample.spec, attrs)

    def _reuse(
        self, trial: optuna.Trial, study_name: str, earlier: optuna.trial.FrozenTrial, attrs: dict[str, Any]
    ) -> Outcome:
        copied = {k: earlier.user_attrs[k] for k in RESULT_ATTRS if k in earlier.user_attrs}
        # Same study: the trial number; another study of the storage: "<study>#<number>".
        source = earlier.number if study_name == self.study.study_name else f"{study_name}#{earlier.number}"
        attrs = {**attrs, **copied, "reused_from": source}
        violation = self._latency_violation(
            float(attrs.get("latency", math.nan)), attrs.get("latency_unit", "")
        )
        if violation:
            return self._reject(trial, "constraint: " + violation, attrs)
        if earlier.state == TrialState.PRUNED:
            reason = f"same spec as trial {source}, which was pruned"
            self._set(trial, {**attrs, "state": "PRUNED", "reason": reason})
            self.study.tell(trial, state=TrialState.PRUNED)
            return Outcome(trial.number, "PRUNED", reason=reason, attrs=attrs)
        reason = f"same spec as trial {source}: result reused"
        attrs.update(state="COMPLETE", reason=reason)
        self._set(trial, attrs)
        values = self._values(attrs)
        self.study.tell(trial, values)
        return Outcome(trial.number, "REUSED", values=values, reason=reason, attrs=attrs)

    def _train(self, trial: optuna.Trial, spec: dict[str, Any], attrs: dict[str, Any]) -> Outcome:
        from nas.fit import fit
        from nas.tracking import keep_front_weights, trial_summary

        plan = self.plan
        out = self.study_dir / "trials" / f"t{trial.number:04d}"
        attrs["output_dir"] = str(out)
        trial.set_user_attr("output_dir", str(out))
        cfg = plan.run_config(spec, output_dir=str(out), name=f"{plan.study_name}-t{trial.number:04d}")
        cfg["checkpoint"] = True  # weights for the front's W&B artifact; keep_front_weights deletes the rest
        callbacks = []
        if plan.pruner.get("name", "none") != "none":
            from nas.pruning import LightningPruning

            callbacks.append(LightningPruning(trial, monitor=plan.metric))
        try:
            with self.guard.training():
                result = fit(
                    cfg,
                    callbacks=callbacks,
                    group=plan.study_name,
                    job_type="trial",
                    tags=self.tags,
                    verbose=False,
                    summary=trial_summary(trial.number, trial.params, attrs),
                )
        except optuna.TrialPruned as e:
            reason = str(e) or "pruned"
            self._set(trial, {"state": "PRUNED", "reason": reason})
            self.study.tell(trial, state=TrialState.PRUNED)
            return Outcome(trial.number, "PRUNED", reason=reason, attrs=attrs)
        except StopRequested as e:
            # Not the architecture's fault: recorded as interrupted (not counted) and queued to run again.
            self._set(trial, {"state": "FAIL", "reason": str(e), "interrupted": True})
            self.study.tell(trial, state=TrialState.FAIL)
            self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            return Outcome(trial.number, "INTERRUPTED", reason=str(e), attrs=attrs)
        except Exception as e:
            tb = traceback.format_exc()
            if diverged(e):  # a rank of a multi-process trial diverged: as fit() records it in one process
                reason = _diverged_reason(e)
                self._set(trial, {**attrs, "state": "PRUNED", "reason": reason})
                self.study.tell(trial, state=TrialState.PRUNED)
                return Outcome(trial.number, "PRUNED", reason=reason, attrs=attrs)
            reason = failure_reason(e)
            self._set(trial, {"state": "FAIL", "reason": reason, "traceback": tb[-4000:]})
            self.study.tell(trial, state=TrialState.FAIL)
            return Outcome(trial.number, "FAIL", reason=reason, attrs=attrs)
        try:
            for cb in callbacks:  # multi-process trials: rank 0 decided, through the storage
                cb.check_pruned()
        except optuna.TrialPruned as e:
            reason = str(e) or "pruned"
            self._set(trial, {"state": "PRUNED", "reason": reason})
            self.study.tell(trial, state=TrialState.PRUNED)
            return Outcome(trial.number, "PRUNED", reason=reason, attrs=attrs)
        accuracy = result.metrics.get(plan.metric)
        attrs.update(
            metrics=result.metrics,
            train_time_s=round(result.wall_time_s, 3),
            images_per_s=None
            if math.isnan(result.train_images_per_s)
            else round(result.train_images_per_s, 1),
        )
        if result.state == "PRUNED":  # fit() stopped a diverged run (NaN / inf loss): a result, not a crash
            reason = f"diverged: {result.reason}" if result.reason else "diverged"
            self._set(trial, {**attrs, "state": "PRUNED", "reason": reason})
            self.study.tell(trial, state=TrialState.PRUNED)
            return Outcome(trial.number, "PRUNED", reason=reason, attrs=attrs)
        if accuracy is None or not math.isfinite(accuracy):
            reason = (
                f"metric {plan.metric!r} is {accuracy}; logged metrics: {', '.join(result.metrics)}"
                if accuracy is None
                else f"non-finite {plan.metric} ({accuracy})"
            )
            self._set(trial, {**attrs, "state": "FAIL", "reason": reason})
            self.study.tell(trial, state=TrialState.FAIL)
            return Outcome(trial.number, "FAIL", reason=reason, attrs=attrs)
        attrs.update(accuracy=float(accuracy), state="COMPLETE", reason="")
        self._set(trial, attrs)
        values = self._values(attrs)
        self.study.tell(trial, values)
        keep_front_weights(self.study, plan.front_dims)  # disk holds about the front's checkpoints, not all
        return Outcome(trial.number, "COMPLETE", values=values, attrs=attrs)


def is_out_of_memory(e: BaseException) -> bool:
    """Whether `e` is a device (or host) out-of-memory error."""
    import torch

    return isinstance(e, torch.cuda.OutOfMemoryError | MemoryError) or "out of memory" in str(e).lower()


def failure_reason(e: BaseException) -> str:
    """One line for a failed trial: the exception's type and first line (out of memory says what to do)."""
    text = str(e).strip()
    reason = f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
    if is_out_of_memory(e):
        gc.collect()  # release the failed trial's tensors before the next trial
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        reason = (
            f"out of memory ({reason}); lower data.batch_size, or bound the space with constraints.params / "
            "constraints.macs"
        )
    return reason


def diverged(e: BaseException) -> bool:
    """Whether `e` is a non-finite training loss, also when re-raised from a DDP rank's process."""
    from nas.module import NonFiniteLossError

    return isinstance(e, NonFiniteLossError) or "NonFiniteLossError" in str(e)


def _diverged_reason(e: BaseException) -> str:
    text = str(e)
    i = text.find("NonFiniteLossError")
    line = (
        text[i + len("NonFiniteLossError") :].lstrip(": ").splitlines()[0] if i >= 0 else text.splitlines()[0]
    )
    return f"diverged: {line.strip()}"
