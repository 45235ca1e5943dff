"""The fidelity seam: at which rung (training budget) a trial's candidate is evaluated, and whether it goes on.

`SingleFidelity` (scheduler=single) evaluates every candidate once at the search's fidelity. `ASHA`
(scheduler=asha) is asynchronous multi-objective successive halving: every candidate starts at the cheapest
rung and is promoted by the rule of `nas.search.halving`; its rung results are user attributes of its trial
(`rung_<index>`), so workers sharing a study rank against each other's results and a resumed study keeps
them. Schedulers are registered by name in `SCHEDULERS`; each parses its own config group into its typed
options (`Scheduler.options`, called by `scheduler_config`) and is built from them (`build_scheduler`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search import halving
from nas.search.objectives import OBJECTIVES

if TYPE_CHECKING:  # a type only: the plan parses the scheduler config group here
    from nas.search.plan import Fidelity

RUNG_ATTR = "rung_"  # user attribute rung_<index> = {"epochs": int, "values": [objective values]}


@dataclass(frozen=True)
class Rung:
    """One fidelity level a candidate is evaluated at: its index (0 = cheapest) and its training epochs."""

    index: int
    epochs: int


@dataclass(frozen=True)
class SchedulerOptions:
    """A checked `scheduler` config: the scheduler's name and the epochs of its rungs, cheapest first (one
    rung: the search fidelity's). Its full results are the top rung's (`top`)."""

    name: str
    epochs: tuple[int, ...]

    @property
    def top(self) -> int:
        """The epochs of the top rung: a full result's (the search fidelity's under one rung)."""
        return self.epochs[-1]

    @property
    def multi_rung(self) -> bool:
        """Whether candidates may stop below the top rung (the scheduler, not an Optuna pruner, decides)."""
        return len(self.epochs) > 1

    def as_config(self) -> dict[str, Any]:
        """The config as run keys and reports store it."""
        return {"name": self.name}

    def header(self) -> str:
        """What the search's header says of its rungs."""
        return f"rungs {'/'.join(map(str, self.epochs))} epochs"


@dataclass(frozen=True)
class HalvingOptions(SchedulerOptions):
    """scheduler=asha's options: its rungs and `eta` (keep the top 1/eta of a rung)."""

    eta: int = 3

    def as_config(self) -> dict[str, Any]:
        return {"name": self.name, "eta": self.eta, "epochs": list(self.epochs)}

    def header(self) -> str:
        return f"{super().header()}, eta {self.eta}"


class Scheduler(ABC):
    """Decides at which rung each candidate is evaluated and whether it is promoted to the next one.

    Registration (`SCHEDULERS`): `keys`, the config keys it accepts; `options(raw, epochs)`, its checked
    options from its config group (keys already checked; `epochs`: fidelity.epochs); `from_options`, the
    scheduler of those options. tests/search/test_seam_contracts.py runs every registered scheduler (with its
    conf/scheduler/<name>.yaml) through this contract.

    Call order, for every trial `TrialRunner` runs (after `ask`, once the candidate passed its constraint
    checks and was not reused):

    1. `first_rung(study, trial)`: the rung the candidate is evaluated at first;
    2. the evaluator evaluates it there (`Evaluator.evaluate(trial, candidate, rung)`);
    3. `after(study, trial, rung, values, trials)`, only when that evaluation completed: the next rung to
       evaluate the same candidate at (a promotion: back to 2), or None to end the trial with this result.
       `values` are the objective values at `rung`; `trials` the study's trials as last read (the rung
       peers a successive-halving scheduler ranks the candidate against, by non-dominated sorting).
       Raising `optuna.TrialPruned` ends the trial PRUNED at this rung (not promoted, and not worth a
       completed trial's place on the front).

    A scheduler keeps no state of its own between calls: what it needs (a trial's rung results) lives on
    the trials, so many workers on one study share it.
    """

    keys: ClassVar[tuple[str, ...]] = ("name",)

    @classmethod
    def options(cls, raw: Mapping[str, Any], epochs: int) -> SchedulerOptions:
        """The checked options of its config group `raw`; ValueError saying what to change."""
        raise NotImplementedError(f"{cls.__name__} is not registered in SCHEDULERS")

    @classmethod
    def from_options(
        cls, options: SchedulerOptions, *, fidelity: Fidelity, objectives: Sequence[str]
    ) -> Scheduler:
        """The scheduler of checked `options`."""
        raise NotImplementedError(f"{cls.__name__} is not registered in SCHEDULERS")

    @abstractmethod
    def first_rung(self, study: optuna.Study, trial: optuna.Trial) -> Rung:
        """The rung a fresh candidate is evaluated at."""

    @abstractmethod
    def after(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        rung: Rung,
        values: Sequence[float],
        trials: Sequence[FrozenTrial],
    ) -> Rung | None:
        """The next rung of a candidate that completed `rung` with `values`, or None to end the trial."""


class SingleFidelity(Scheduler):
    """One rung: every candidate is trained once at the search's fidelity (`fidelity.epochs`)."""

    def __init__(self, fidelity: Fidelity) -> None:
        self.rung = Rung(index=0, epochs=int(fidelity.epochs))

    @classmethod
    def options(cls, raw: Mapping[str, Any], epochs: int) -> SchedulerOptions:
        return SchedulerOptions("single", (int(epochs),))

    @classmethod
    def from_options(
        cls, options: SchedulerOptions, *, fidelity: Fidelity, objectives: Sequence[str]
    ) -> Scheduler:
        return cls(fidelity)

    def first_rung(self, study: optuna.Study, trial: optuna.Trial) -> Rung:
        return self.rung

    def after(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        rung: Rung,
        values: Sequence[float],
        trials: Sequence[FrozenTrial],
    ) -> Rung | None:
        return None


class ASHA(Scheduler):
    """Asynchronous multi-objective successive halving over `rungs` (epochs increasing).

    When a candidate finishes a rung below the top, its result is recorded on its trial (`rung_<index>`)
    and `halving.decide` is taken against the peers the storage holds then: the other trials with a result
    at that rung (any state: a peer stopped, failed or still running at a later rung keeps its place),
    except interrupted ones (they run again) and reused ones (a copy is not a second candidate); the full
    results are the COMPLETE trials with a top-rung result. Not promoted: `optuna.TrialPruned`, so the trial
    ends PRUNED with its rung results and the reason, and never reaches the front (only COMPLETE trials do,
    and a COMPLETE trial finished the top rung). A promoted candidate is trained again from scratch at the
    next rung's epochs (its learning-rate schedule spans the rung's epochs).
    """

    keys = ("name", "eta", "rungs", "epochs")

    def __init__(self, rungs: Sequence[int], eta: int, objectives: Sequence[str]) -> None:
        self.rungs = [Rung(index=i, epochs=int(e)) for i, e in enumerate(rungs)]
        self.eta = int(eta)
        self.senses = [1 if OBJECTIVES[o] == "maximize" else -1 for o in objectives]
        self.accuracy = list(objectives).index("accuracy")

    @classmethod
    def options(cls, raw: Mapping[str, Any], epochs: int) -> HalvingOptions:
        eta = raw.get("eta", 3)
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ValueError(
                f"scheduler.eta must be an integer >= 2 (keep the top 1/eta of a rung), got {eta!r}"
            )
        if raw.get("epochs") is not None:
            rungs, what = raw["epochs"], "scheduler.epochs"
        else:
            multiples = raw.get("rungs") or [1, 3, 9]
            if not isinstance(multiples, Sequence) or isinstance(multiples, str):
                raise ValueError(
                    f"scheduler.rungs must be a list of fidelity.epochs multiples, e.g. [1,3,9]; got {multiples!r}"
                )
            rungs, what = [m * epochs for m in multiples], "scheduler.rungs"
        if isinstance(rungs, str) or not isinstance(rungs, Sequence):
            raise ValueError(f"{what} must be a list, e.g. [1,3,9]; got {rungs!r}")
        ok = all(
            isinstance(e, int | float) and not isinstance(e, bool) and e >= 1 and float(e).is_integer()
            for e in rungs
        )
        if not ok or len(rungs) < 2 or any(b <= a for a, b in zip(rungs, rungs[1:], strict=False)):
            raise ValueError(
                f"{what} must give >= 2 strictly increasing whole numbers of epochs (e.g. scheduler.rungs=[1,3,9] "
                f"times fidelity.epochs, or scheduler.epochs=[12,200]); got {list(rungs)}"
            )
        return HalvingOptions("asha", tuple(int(e) for e in rungs), eta=eta)

    @classmethod
    def from_options(
        cls, options: SchedulerOptions, *, fidelity: Fidelity, objectives: Sequence[str]
    ) -> Scheduler:
        assert isinstance(options, HalvingOptions)
        return cls(options.epochs, options.eta, objectives)

    def first_rung(self, study: optuna.Study, trial: optuna.Trial) -> Rung:
        return self.rungs[0]

    def after(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        rung: Rung,
        values: Sequence[float],
        trials: Sequence[FrozenTrial],
    ) -> Rung | None:
        trial.set_user_attr(RUNG_ATTR + str(rung.index), {"epochs": rung.epochs, "values": list(values)})
        if rung.index == len(self.rungs) - 1:
            return None
        # Read now, not `trials` (read when this trial began): the peers that finished the rung meanwhile count.
        peers, full, pairs = self.peers(study.get_trials(deepcopy=False), rung.index, exclude=trial.number)
        decision = halving.decide(
            values, peers, full, halving.best_gain(pairs), self.senses, self.eta, accuracy=self.accuracy
        )
        if not decision.promote:
            raise optuna.TrialPruned(f"rung {rung.index} ({rung.epochs} epochs): {decision.reason}")
        return self.rungs[rung.index + 1]

    def peers(
        self, trials: Sequence[FrozenTrial], index: int, *, exclude: int
    ) -> tuple[list[list[float]], list[list[float]], list[tuple[float, float]]]:
        """From `trials`: the vectors at rung `index`, the full (top-rung COMPLETE) vectors, and the
        (accuracy at `index`, accuracy at the top) pairs of trials with both."""
        top = RUNG_ATTR + str(len(self.rungs) - 1)
        peers, full, pairs = [], [], []
        for t in trials:
            a = t.user_attrs
            if t.number == exclude or a.get("interrupted") or a.get("reused_from") is not None:
                continue
            here = a.get(RUNG_ATTR + str(index))
            if here is not None:
                peers.append(list(here["values"]))
            if top in a and t.state == TrialState.COMPLETE:
                full.append(list(a[top]["values"]))
                if here is not None:
                    pairs.append((here["values"][self.accuracy], a[top]["values"][self.accuracy]))
        return peers, full, pairs


def scheduler_config(raw: Mapping[str, Any] | None, epochs: int) -> SchedulerOptions:
    """The checked `scheduler` config group of the scheduler it names (SCHEDULERS), its rungs' epochs resolved
    (for asha: explicit `epochs`, or `rungs` x `epochs`, fidelity.epochs). ValueError with the valid choices on bad input.
    """
    raw = dict(raw or {"name": "single"})
    name = raw.get("name", "single")
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; valid schedulers: {', '.join(SCHEDULERS)}")
    cls = SCHEDULERS[name]
    unknown = sorted(set(raw) - set(cls.keys))
    if unknown:
        raise ValueError(
            f"unknown scheduler.{unknown[0]} for scheduler={name}; valid keys: {', '.join(cls.keys)}"
        )
    return cls.options(raw, int(epochs))


def build_scheduler(options: SchedulerOptions, fidelity: Fidelity, objectives: Sequence[str]) -> Scheduler:
    """The scheduler checked `options` (`scheduler_config`) name, from the registry."""
    return SCHEDULERS[options.name].from_options(options, fidelity=fidelity, objectives=objectives)


# scheduler=<name> -> its class (conf/scheduler/<name>.yaml): a new scheduler is a `Scheduler` subclass with its
# `keys`, `options` and `from_options`, added here, and its config file.
SCHEDULERS: dict[str, type[Scheduler]] = {"single": SingleFidelity, "asha": ASHA}
