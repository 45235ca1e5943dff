"""Every use of Optuna's private API in the search, in one place, so an Optuna upgrade is checked here.

Each function says why the public API does not do. Written against Optuna 5; each use is covered by the
search's tests (tests/search, tests/scale), which fail when a private name moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna

# `compute_hypervolume` has no public name (Optuna uses it for its hypervolume history and its samplers): the
# exact hypervolume in any number of objectives (WFG), for fronts of more than two.
from optuna._hypervolume import compute_hypervolume

# `LazyRandomState` has no public name: the random state every Optuna sampler (and its strategies) draws from;
# `reseed` seeds it in place.
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.storages import BaseStorage

# `is_heartbeat_enabled` / `get_heartbeat_thread` have no public name: `Study.optimize` starts the heartbeat
# thread itself, while an ask / tell loop (ours) must start it for each trial.
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import FrozenTrial


def n_objective_hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The exact hypervolume of minimised `points`, each no worse than `reference` in every objective
    (nas.pareto.hypervolume handles directions and drops the points outside the reference box)."""
    return float(compute_hypervolume(np.asarray(points, dtype=float), np.asarray(reference, dtype=float)))


def storage_of(study: optuna.Study) -> BaseStorage:
    """The study's storage object: `Study` keeps it private, but other studies of the same storage (reuse=
    storage), lost-trial bookkeeping and heartbeats need the object itself, not a new connection."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of the study (`_study_id`): the key of the storage calls below."""
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (`_trial_id`; Trial and FrozenTrial expose only the per-study number)."""
    return trial._trial_id


def heartbeat_enabled(study: optuna.Study) -> bool:
    """Whether the study's storage records heartbeats (an RDB storage with heartbeat_interval)."""
    return is_heartbeat_enabled(storage_of(study))


def heartbeat_thread(study: optuna.Study, trial: optuna.Trial) -> Any:
    """Optuna's heartbeat thread of a running trial (a context manager that beats while it is open)."""
    return get_heartbeat_thread(trial_id(trial), storage_of(study))


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of RUNNING trials whose heartbeat is older than the grace period. `optuna.storages.fail_stale_trials`
    is public but fails them itself, with Optuna's reason; the search fails them with its own record
    (worker lost, retried) and as one update per trial, so two workers never fail one trial twice."""
    return list(storage_of(study)._get_stale_trial_ids(study_id(study)))


def grace_period(study: optuna.Study) -> float | None:
    """The storage's heartbeat grace period (s), for the lost trial's reason; None when not set. RDBStorage
    keeps it private (`grace_period` of the storage, or of its `_backend` when cached)."""
    storage = storage_of(study)
    return getattr(getattr(storage, "_backend", storage), "grace_period", None)


def heartbeat_interval(study: optuna.Study) -> float | None:
    """The storage's heartbeat interval (s), or None without heartbeats."""
    return storage_of(study).get_heartbeat_interval() if heartbeat_enabled(study) else None


def frozen_trial(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """A trial read back from the storage (after another process updated it)."""
    return storage_of(study).get_trial(trial_id(trial))


def trial_system_attrs(study: optuna.Study, trial: optuna.Trial) -> dict[str, Any]:
    """A running trial's system attributes (`Trial.system_attrs` is deprecated), e.g. `fixed_params` of an
    enqueued trial."""
    return storage_of(study).get_trial_system_attrs(trial_id(trial))


def fail_trial(study: optuna.Study, trial: FrozenTrial, attrs: dict[str, Any]) -> bool:
    """Set user attributes and FAIL on a trial this process did not ask (another worker's): `Study.tell` only
    accepts trials of this process's `ask`. False when the storage refuses (finished meanwhile)."""
    storage = storage_of(study)
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial_id(trial), key, value)
    return bool(storage.set_trial_state_values(trial_id(trial), state=optuna.trial.TrialState.FAIL))


def generation_key(sampler: optuna.samplers.BaseSampler) -> str | None:
    """The system attribute in which a genetic sampler (NSGA-II / III) records a trial's generation; used to
    give it a synthetic history (experiments.bench scale). None for other samplers."""
    get = getattr(sampler, "_get_generation_key", None)
    return get() if get is not None else None


def population_size(sampler: optuna.samplers.BaseSampler) -> int | None:
    """A genetic sampler's population size (kept private by NSGA-II / III), or None."""
    return getattr(sampler, "_population_size", None)


def set_generation(study: optuna.Study, trial: optuna.Trial | FrozenTrial, sampler, generation: int) -> None:
    """Record `trial` as generation `generation` of genetic `sampler` (NSGA-II / III): trials another sampler
    proposed become the population its first children are bred from (experiments.bench's TPE -> NSGA-II
    hand-over). Private API: the storage's system attributes and the GA's generation key."""
    key = generation_key(sampler)
    if key is None:
        raise ValueError(f"{type(sampler).__name__} is not a genetic sampler (it has no generations)")
    storage_of(study).set_trial_system_attr(trial_id(trial), key, generation)


# State a sampler carries from one proposal to the next besides its random state: GPSampler warm-starts each
# kernel fit from the last one's (`_gprs_cache_list`). `reseed` drops it, so a reseeded sampler proposes what a
# fresh one of that seed would, whichever trials this worker proposed before.
CARRIED_STATE = ("_gprs_cache_list", "_constraints_gprs_cache_list")


def reseed(sampler: optuna.samplers.BaseSampler, seed: int) -> None:
    """Put every random state of `sampler` where its constructor puts it for `seed`, in place: a sampler that
    reseeds itself (the project's: `reseed(seed)`) does so; in an Optuna sampler every `LazyRandomState` it (or
    its random / independent sampler, or a strategy sharing its generator) holds is seeded with `seed`, as
    `Sampler(seed=seed)` seeds them, and CARRIED_STATE is dropped. The public `BaseSampler.reseed_rng` draws a
    fresh random seed instead; a worker needs trial k's own seed (nas.search.workers.trial_seed).
    tests/search/test_seam_contracts.py checks, for every registered sampler, that the proposals are a fresh
    sampler's."""
    own = getattr(sampler, "reseed", None)
    if own is not None:
        own(seed)
        return
    seen: set[int] = set()

    def walk(obj: Any, depth: int) -> None:
        if id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        if isinstance(obj, LazyRandomState):
            obj.rng.seed(seed)
            return
        state = getattr(obj, "__dict__", {})
        for name in CARRIED_STATE:
            if name in state:
                setattr(obj, name, None)
        for value in list(state.values()):
            if isinstance(value, LazyRandomState) or type(value).__module__.startswith("optuna.samplers"):
                walk(value, depth + 1)

    walk(sampler, 0)
