"""One search trial's life-cycle, from `ask` to `tell`: `TrialRunner.run` and its one way to end a trial.

Order of work, cheapest first, so a candidate that cannot win costs milliseconds:

1. draw the parameters and render the spec (a draw that cannot form a network is *rejected*);
2. params and MACs (the evaluator's `cost`: on the meta device) -> params / MACs constraints (rejected when violated); these and the
   latency are the network's at the data's image size, where it is deployed, even when `fidelity.image_size`
   trains it smaller;
3. an earlier trial with the same spec at the same fidelity -> its result is reused, no training;
4. latency (measured / predicted / macs / params per the latency config, or a table's device column: the
   evaluator's `latency`) -> latency constraint;
5. evaluate it through the `Evaluator` (train and validate at the search fidelity, `nas.fit.fit`, or look
   it up in a benchmark's table), at the rungs the `Scheduler` chooses (scheduler=single: one rung, the
   search fidelity; asha: rungs).

Rejected candidates are told to Optuna as PRUNED with `rejected: true` and the reason in their user
attributes: TPE then ranks them below every completed trial (it learns to avoid the region), NSGA-II
ignores them, and they do not count toward `n_trials`. No objective values are invented for them, which
a `constraints_func` would require (it only applies to completed trials, i.e. after training).

Every trial ends in `TrialRunner._end` (state, reason, attributes, values -> `tell` -> `Outcome`).
"""

from __future__ import annotations

import functools
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search import optuna_internals as internals
from nas.search.evaluator import Candidate, Evaluation, Evaluator, chance_reason, failure_reason
from nas.search.guard import InterruptGuard, StopRequested
from nas.search.objectives import ATTR, values_of
from nas.search.plan import SearchPlan
from nas.search.scheduler import Scheduler
from nas.search.space_rules import active_params, conditional, space_distributions
from nas.search.starts import REFERENCE_ATTR
from nas.search.storage import lost_trial_retries
from nas.search.study import bind_latency, make_sampler
from nas.search.workers import (
    WORKER_ATTR,
    can_wait,
    fail_lost,
    heartbeat,
    identity,
    is_surplus,
    poll_seconds,
    trial_seed,
)
from nas.space import Constraints, SpecRejected

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
    "val_size",
)
# How each outcome is recorded: (Optuna state, the `state` user attribute, extra marks).
ENDINGS: dict[str, tuple[TrialState, str, dict[str, Any]]] = {
    "COMPLETE": (TrialState.COMPLETE, "COMPLETE", {}),
    "REUSED": (TrialState.COMPLETE, "COMPLETE", {}),
    "PRUNED": (TrialState.PRUNED, "PRUNED", {}),
    # Rejected by a constraint: PRUNED for Optuna (TPE ranks it below every completed trial), not counted.
    "REJECTED": (TrialState.PRUNED, "REJECTED", {"rejected": True}),
    "FAIL": (TrialState.FAIL, "FAIL", {}),
    # Interrupted (not the architecture's fault): not counted, and queued to run again.
    "INTERRUPTED": (TrialState.FAIL, "FAIL", {"interrupted": True}),
    # Lost the race for the last slot to another worker (nas.search.workers): never run, never reported.
    "SURPLUS": (TrialState.FAIL, "SURPLUS", {"surplus": True}),
}


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

    def line(self) -> str:
        """One log line: trial, state, objectives, cost, time, reason."""
        a = self.attrs
        parts = [f"trial {self.number:>4}", f"{self.state:<9}"]
        if a.get(REFERENCE_ATTR):
            parts.append(f"[{a[REFERENCE_ATTR]}]")
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
    """Runs trials of one study (ask -> checks -> evaluate -> tell), recording everything on the trial."""

    def __init__(
        self,
        plan: SearchPlan,
        study: optuna.Study,
        evaluator: Evaluator,
        scheduler: Scheduler,
        *,
        guard: InterruptGuard | None = None,
        sampler: optuna.samplers.BaseSampler | None = None,
    ) -> None:
        self.plan = plan
        self.study = study
        self.evaluator = evaluator
        self.scheduler = scheduler
        self.guard = guard  # a Ctrl-C while waiting for another worker's twin trial ends the wait
        self._written: dict[str, Any] = {}  # user attributes already written on the current trial
        self._others: dict[str, list[tuple[str, FrozenTrial]]] | None = None  # reuse=storage: by run key
        # The worker's one sampler (`worker_sampler`: the study's, as the run loop opened it, else built here),
        # reseeded for each trial. sampler=ehvi is told a candidate's latency before it trains, priced as this
        # trial code would price it.
        self.known = self.costs = None
        if plan.sampler.knows_latency:
            render = candidate_render(plan, evaluator)
            self.known = latency_oracle(plan, evaluator, render=render)
            self.costs = cost_oracle(plan, evaluator, render=render)
        self.sampler = worker_sampler(plan) if sampler is None else sampler
        bind_latency(self.sampler, self.known, self.costs)
        study.sampler = self.sampler

    def run(self, trials: Sequence[FrozenTrial] | None = None) -> Outcome:
        """Ask for a trial, evaluate it, tell the result; an unexpected error fails the trial, not the search.

        `trials`: the study's trials as the run loop read them just before (duplicates are looked up there;
        read here when not given). With other workers on the study: a fresh trial that lost the race for
        the last slot is given back (SURPLUS, nas.search.workers), and a trial another worker failed as lost
        meanwhile (this worker's heartbeats did not arrive in time) is dropped (LOST): its queued retry
        computes it again.
        """
        trial = self.study.ask()
        self._written = {}
        start = time.perf_counter()
        if self.plan.sampler.reseeds_per_trial:  # not a scrambled sequence the workers share (QMC)
            # Every trial draws from its own seed, so N workers do not all propose the first run's draws, a
            # resumed run does not replay them, and trial k gets the same draws whichever worker runs it
            # (relative sampling happens at the first suggest, after ask).
            base = self.plan.seed if self.plan.sampler.seed is None else self.plan.sampler.seed
            internals.reseed(self.sampler, trial_seed(base, trial.number))
        try:
            self._record(trial, {WORKER_ATTR: identity(trial.number)})
            if is_surplus(self.study, trial, self.plan.n_trials):
                reason = (
                    f"not run: other workers had already taken the study's {self.plan.n_trials} trial slots"
                )
                outcome = self._end(trial, "SURPLUS", reason, lenient=True)
            else:
                with heartbeat(self.study, trial):
                    if trials is None:
                        trials = self.study.get_trials(deepcopy=False)
                    outcome = self._run(trial, trials)
        except optuna.exceptions.UpdateFinishedTrialError:
            reason = (
                "another worker failed this trial as lost (its heartbeat was late); its retry recomputes it"
            )
            outcome = Outcome(trial.number, "LOST", reason=reason)
        except KeyboardInterrupt:  # a second Ctrl-C: leave nothing RUNNING behind
            self._end(trial, "INTERRUPTED", "", requeue=False, lenient=True, marks_only=True)
            raise
        except Exception as e:
            outcome = self._end(
                trial, "FAIL", failure_reason(e), {"traceback": traceback.format_exc()[-4000:]}, lenient=True
            )
        outcome.seconds = time.perf_counter() - start
        return outcome

    # ------------------------------------------------------------------------------------ the one ending

    def _end(
        self,
        trial: optuna.Trial,
        how: str,
        reason: str,
        attrs: dict[str, Any] | None = None,
        *,
        values: list[float] | None = None,
        requeue: bool = True,
        lenient: bool = False,
        marks_only: bool = False,
    ) -> Outcome:
        """End `trial` as `how` (a key of ENDINGS): record state, reason and attributes, tell Optuna (with
        `values` when it completed), queue an interrupted trial again, and return the outcome.

        `lenient`: the trial may have been finished already (by another worker failing it as lost, or by
        this worker before a second Ctrl-C): then nothing more is recorded.
        """
        state, label, marks = ENDINGS[how]
        attrs = dict(attrs or {})
        # A second Ctrl-C (`marks_only`): only the mark, as fast as possible, before the process stops.
        record = dict(marks) if marks_only else {**attrs, **marks, "state": label, "reason": reason}
        try:
            self._record(trial, record)
            self.study.tell(trial, values if state == TrialState.COMPLETE else None, state=state,
                            skip_if_finished=lenient)  # fmt: skip
        except optuna.exceptions.UpdateFinishedTrialError:
            if not lenient:
                raise
        if how == "INTERRUPTED" and requeue:
            again = {"retry_of": trial.number}
            if trial.user_attrs.get(REFERENCE_ATTR):  # a retried reference is still one
                again[REFERENCE_ATTR] = trial.user_attrs[REFERENCE_ATTR]
            self.study.enqueue_trial(trial.params, user_attrs=again)
        return Outcome(trial.number, how, values=values, reason=reason, attrs=attrs)

    def _record(self, trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        """Write the user attributes that differ from what this trial already has."""
        for k, v in attrs.items():
            if k not in self._written or self._written[k] != v:
                trial.set_user_attr(k, v)
                self._written[k] = v

    # -------------------------------------------------------------------------------------------- trial

    def _run(self, trial: optuna.Trial, trials: Sequence[FrozenTrial]) -> Outcome:
        plan = self.plan
        try:
            sample = plan.space.sample(trial)
        except SpecRejected as e:
            return self._end(trial, "REJECTED", f"invalid draw: {e}")
        attrs: dict[str, Any] = {"spec": sample.spec}
        if trial.user_attrs.get(REFERENCE_ATTR):  # an enqueued textbook / known network (nas.search.starts)
            attrs[REFERENCE_ATTR] = trial.user_attrs[REFERENCE_ATTR]
        try:  # `trained` trains at the fidelity's size; `deployed` (the data's size) is what latency / MACs judge
            trained, deployed, cost = self.evaluator.cost(plan, sample.spec)
        except ValueError as e:  # e.g. the feature map shrinks below 1x1 at this input size
            return self._end(trial, "REJECTED", f"invalid spec: {str(e).splitlines()[0]}", attrs)
        attrs.update(n_params=int(cost["params"]), macs=int(cost["macs"]))
        broken = plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]})
        if broken:
            return self._end(trial, "REJECTED", "constraint: " + "; ".join(broken), attrs)
        attrs["run_key"] = plan.run_key(trained)
        attrs["pruner"] = plan.pruner.as_config()  # a PRUNED result is reused only under the same pruner

        attrs["num_classes"] = int(trained["num_classes"])
        found = self._find_duplicate(attrs["run_key"], trial.number, trials)
        if found is None and plan.reuse != "none":
            # The claim: another worker drawing the same network now waits for this trial instead of
            # training it too; this one waits for an earlier claim in turn.
            self._record(trial, {"run_key": attrs["run_key"], "pruner": attrs["pruner"]})
            twin = self._wait_for_twin(trial, attrs["run_key"])
            if twin is not None and self.guard is not None and self.guard.requested:
                return self._end(trial, "INTERRUPTED", f"interrupted while waiting for trial {twin}", attrs)
            if twin is not None:
                found = self._find_duplicate(
                    attrs["run_key"], trial.number, self.study.get_trials(deepcopy=False)
                )
        if found is not None:
            return self._reuse(trial, *found, attrs)

        latency, record = self.evaluator.latency(deployed, plan.latency, costs=cost)
        attrs.update(
            latency=float(latency),
            latency_unit=record.get("unit", ""),
            latency_record={k: v for k, v in record.items() if k != "device"},
            device=record.get("device"),
            device_key=record.get("fingerprint"),
        )
        violation = self._latency_violation(latency, attrs["latency_unit"])
        if violation:
            return self._end(trial, "REJECTED", "constraint: " + violation, attrs)
        candidate = Candidate(
            trial.number, dict(trial.params), sample.spec, trained, deployed, attrs, cost.get("trained")
        )
        attrs.update(self.evaluator.prepare(trial, candidate))
        self._record(trial, attrs)
        evaluation = self._evaluate(trial, candidate, trials)
        attrs.update(evaluation.attrs)
        if evaluation.state == "COMPLETE":
            why = self._chance(attrs, int(trained["num_classes"]))
            values = values_of(attrs, plan.objectives)
            outcome = self._end(trial, "COMPLETE", why or "", attrs, values=values)
        else:
            outcome = self._end(trial, evaluation.state, evaluation.reason, attrs)
        self.evaluator.finished(trial, evaluation)
        return outcome

    def _evaluate(
        self, trial: optuna.Trial, candidate: Candidate, trials: Sequence[FrozenTrial]
    ) -> Evaluation:
        """The evaluator at each rung the scheduler asks for; an interruption becomes INTERRUPTED."""
        rung = self.scheduler.first_rung(self.study, trial)
        try:
            while True:
                evaluation = self.evaluator.evaluate(trial, candidate, rung)
                if evaluation.state != "COMPLETE":
                    return evaluation
                values = values_of({**candidate.attrs, **evaluation.attrs}, self.plan.objectives)
                try:
                    nxt = self.scheduler.after(self.study, trial, rung, values, trials)
                except optuna.TrialPruned as e:
                    return Evaluation(
                        "PRUNED", str(e) or f"not promoted past rung {rung.index}", evaluation.attrs
                    )
                if nxt is None:
                    return evaluation
                rung = nxt
        except StopRequested as e:
            return Evaluation("INTERRUPTED", str(e))

    def _reuse(
        self, trial: optuna.Trial, study_name: str, earlier: FrozenTrial, attrs: dict[str, Any]
    ) -> Outcome:
        copied = {k: earlier.user_attrs[k] for k in RESULT_ATTRS if k in earlier.user_attrs}
        # Same study: the trial number; another study of the storage: "<study>#<number>".
        source = earlier.number if study_name == self.study.study_name else f"{study_name}#{earlier.number}"
        attrs = {**attrs, **copied, "reused_from": source}
        # The source's files, pointed at, not owned: `output_dir` is a trial's own folder (the study deletes
        # the checkpoints of its own trials off the front), and a reused trial has none.
        where = earlier.user_attrs.get("source_output_dir") or earlier.user_attrs.get("output_dir")
        if where:
            attrs["source_output_dir"] = where
        violation = self._latency_violation(
            float(attrs.get("latency", math.nan)), attrs.get("latency_unit", "")
        )
        if violation:
            return self._end(trial, "REJECTED", "constraint: " + violation, attrs)
        if earlier.state == TrialState.PRUNED:
            return self._end(trial, "PRUNED", f"same spec as trial {source}, which was pruned", attrs)
        values = values_of(attrs, self.plan.objectives)
        reason = f"same spec as trial {source}: result reused"
        why = self._chance(attrs, int(attrs["num_classes"]))
        return self._end(trial, "REUSED", f"{reason} ({why})" if why else reason, attrs, values=values)

    # ----------------------------------------------------------------------------------------- helpers

    def _chance(self, attrs: dict[str, Any], num_classes: int) -> str | None:
        """Mark `attrs` not trained when its accuracy is not above chance under this study's `chance_alpha`
        (also for a reused result: the source's study may have tested at another level, or not at all).
        A network at chance is still a result the sampler learns from, but never a front member."""
        attrs.pop("not_trained", None)
        attrs.pop("not_trained_reason", None)
        why = chance_reason(attrs["accuracy"], attrs.get("val_size"), num_classes, self.plan.chance_alpha)
        if why:
            attrs.update(not_trained=True, not_trained_reason=why)
        return why

    def _find_duplicate(
        self, run_key: str, number: int, trials: Sequence[FrozenTrial]
    ) -> tuple[str, FrozenTrial] | None:
        """An earlier finished trial with this run key: in this study (from `trials`), or (reuse=storage) in
        any study of the storage whose latency device is the same. Returns (study name, trial)."""
        if self.plan.reuse == "none":
            return None
        for t in trials:
            if t.number != number and self._reusable(t, run_key):
                return self.study.study_name, t
        if self.plan.reuse == "storage":
            return next(
                (
                    (name, t)
                    for name, t in self._other_studies().get(run_key, ())
                    if self._reusable(t, run_key)
                ),
                None,
            )
        return None

    def _reusable(self, t: FrozenTrial, run_key: str) -> bool:
        """Whether finished trial `t` gave this run key's result: COMPLETE, or PRUNED by the same pruner (a
        trial pruned by another study's pruner might have completed under this one's)."""
        a = t.user_attrs
        if a.get("run_key") != run_key or a.get("rejected"):
            return False
        if t.state == TrialState.PRUNED:
            return _norm(a.get("pruner")) == _norm(self.plan.pruner.as_config())
        return t.state == TrialState.COMPLETE

    def _wait_for_twin(self, trial: optuna.Trial, run_key: str) -> int | None:
        """Wait while a RUNNING trial of this study with the same run key and a lower number (it claimed the
        network first, in another worker) trains it; returns its number, None when there was none.

        Waits only where a dead worker's trial is detected (nas.search.workers.can_wait); lost trials are
        failed meanwhile, as the run loop does, and a Ctrl-C ends the wait.
        """
        waited = None
        while True:
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            twins = [
                t.number
                for t in running
                if t.number < trial.number and t.user_attrs.get("run_key") == run_key
            ]
            if not twins or not can_wait(self.study) or (self.guard is not None and self.guard.requested):
                return waited
            waited = twins[0]
            fail_lost(self.study, max_retry=lost_trial_retries(self.plan.storage), trials=running)
            time.sleep(poll_seconds(self.study))

    def _other_studies(self) -> dict[str, list[tuple[str, FrozenTrial]]]:
        """run key -> [(study, trial)] of the finished trials of the storage's other studies with the same
        latency device, read once per run: they are other searches (e.g. a benchmark's earlier runs)."""
        if self._others is None:
            self._others = {}
            storage = internals.storage_of(self.study)
            mine = self.study.user_attrs.get(ATTR + "identity", {}).get("latency")
            for name in optuna.get_all_study_names(storage):
                if name == self.study.study_name:
                    continue
                other = optuna.load_study(study_name=name, storage=storage)
                if other.user_attrs.get(ATTR + "identity", {}).get("latency") != mine:
                    continue
                for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
                    key = t.user_attrs.get("run_key")
                    if key and not t.user_attrs.get("rejected"):
                        self._others.setdefault(key, []).append((name, t))
        return self._others

    def _latency_violation(self, latency: float, unit: str) -> str | None:
        limits = dict(self.plan.space.constraints.bounds)
        if self.plan.latency_budget_ms is not None:
            lo, hi = limits.get("latency_ms", (None, None))
            hi = self.plan.latency_budget_ms if hi is None else min(hi, self.plan.latency_budget_ms)
            limits["latency_ms"] = (lo, hi)
        if "latency_ms" not in limits or unit != "ms":
            return None
        found = Constraints({"latency_ms": limits["latency_ms"]}).violations({"latency_ms": latency})
        return "; ".join(found) or None


def _norm(v: Any) -> str:
    """A config as a comparable string (stored attributes come back from JSON)."""
    return json.dumps(v, sort_keys=True, default=str)


# Parameter sets the ehvi sampler's oracles remember (a trained space is not finite; ~2,000 new ones a trial).
MEMO_SIZE = 100_000


def latency_oracle(
    plan: SearchPlan, evaluator: Evaluator, *, render: Render | None = None
) -> Callable[[Mapping[str, Any]], float | None]:
    """params -> the latency objective of the network they render, or None when the trial would reject it
    (invalid draw or spec, a params / MACs constraint): the candidate rendered, costed and priced through
    `evaluator` as `TrialRunner` does before training, memoised per parameter set. A measured latency is
    predicted from the per-layer table instead (the sampler prices thousands of candidates), unless the
    sampler's `measure` option asks for every candidate to be timed. `render`: a `candidate_render` to share
    (with `cost_oracle`: each candidate rendered and counted once)."""
    cfg = dict(plan.latency)
    if cfg.get("mode", "measured") == "measured" and not plan.sampler.measure:
        cfg["mode"] = "predicted"
    rendered = render or candidate_render(plan, evaluator)

    @functools.lru_cache(maxsize=MEMO_SIZE)
    def price(key: str) -> float | None:
        found = rendered(key)
        if found is None:
            return None
        value, _ = evaluator.latency(found[0], cfg, costs=found[1])
        return float(value)

    return lambda params: price(json.dumps(dict(params), sort_keys=True))


def cost_oracle(
    plan: SearchPlan, evaluator: Evaluator, *, render: Render | None = None
) -> Callable[[Mapping[str, Any]], dict[str, float] | None]:
    """params -> what the network they render costs as the trial counts it before training (the deployed
    network's `params` and `macs`, `Evaluator.cost`), or None when the trial would reject it; memoised. What
    sampler=ehvi knows of a candidate besides its latency (its `cost_features`)."""
    rendered = render or candidate_render(plan, evaluator)

    def costs(params: Mapping[str, Any]) -> dict[str, float] | None:
        found = rendered(json.dumps(dict(params), sort_keys=True))
        return None if found is None else {k: float(found[1][k]) for k in ("params", "macs")}

    return costs


# (params as sorted JSON) -> (deployed spec, its counted costs), or None where the trial rejects the candidate.
Render = Callable[[str], "tuple[dict[str, Any], dict[str, Any]] | None"]


def candidate_render(plan: SearchPlan, evaluator: Evaluator) -> Render:
    """A candidate rendered and costed through `evaluator` as `TrialRunner` does before training (None: an
    invalid draw or spec, a params / MACs constraint it violates), memoised per parameter set."""

    @functools.lru_cache(maxsize=MEMO_SIZE)
    def render(key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        try:
            spec = plan.space.sample(optuna.trial.FixedTrial(json.loads(key))).spec
            _, deployed, cost = evaluator.cost(plan, spec)
        except (SpecRejected, ValueError, KeyError):
            return None
        if plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]}):
            return None
        return deployed, cost

    return render


def worker_sampler(plan: SearchPlan) -> optuna.samplers.BaseSampler:
    """The one sampler a worker builds for its trials (`TrialRunner.run` reseeds it per trial): the plan's,
    seeded with the search's seed unless its config sets one; for ehvi with the space's parameters, rule and
    cell (its latency oracle comes with the evaluator: `TrialRunner` binds it)."""
    ehvi = plan.sampler.knows_latency
    return make_sampler(
        plan.sampler,
        seed=plan.seed,
        active=active_params(plan.space) if ehvi and conditional(plan.space) else None,
        distributions=space_distributions(plan.space) if ehvi else None,
        dag=plan.space.dag,
    )
