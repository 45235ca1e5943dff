"""The fidelity seam: at which rung (training budget) a trial's candidate is evaluated, and whether it goes on.

Today's only scheduler, `SingleFidelity`, evaluates every candidate once at the search's fidelity. A
multi-fidelity scheduler (asynchronous successive halving that promotes by non-dominated sorting) is
another `Scheduler`: the trial code does not change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial


@dataclass(frozen=True)
class Rung:
    """One fidelity level a candidate is evaluated at: its index (0 = cheapest) and its training epochs."""

    index: int
    epochs: int


class Scheduler(ABC):
    """Decides at which rung each candidate is evaluated and whether it is promoted to the next one.

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

    def __init__(self, fidelity: Mapping[str, Any]) -> None:
        self.rung = Rung(index=0, epochs=int(fidelity["epochs"]))

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
