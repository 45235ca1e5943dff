"""Many workers on one study: who runs which trial, failing and retrying the trials of dead workers, and
sharing the trial budget so that N workers finish a study with exactly `n_trials` counted trials.

A worker is any process running `python -m nas.search` on the study (one machine or many). Each trial it
runs carries a `worker` user attribute (host, a machine key, pid, process start time). A trial whose worker
died is found two ways:

- on any machine, by Optuna's heartbeat (RDB storages with `heartbeat_interval`): no heartbeat for longer
  than the grace period;
- on the worker's own machine, at once, because its process is gone (every storage, journal included,
  which has no heartbeats). A restarted worker therefore retries its predecessor's trial immediately.

A lost trial is set FAIL with the reason in its user attributes (`worker_lost`, `retried`) and queued again
with the same parameters by Optuna's `RetryHeartbeatStaleTrialCallback` (up to `max_retry` times). It does
not count toward `n_trials`; its retry does. Two workers that find the same lost trial fail it once (the
storage refuses the second update), so a trial is never retried twice.

The budget: a trial takes one of the `n_trials` slots while it is RUNNING or WAITING and, once finished, if
it counts (`nas.search.study.counted`). A worker that finds every slot taken waits for the others (failing lost
trials as they appear) instead of starting more. Two workers that ask at the same moment for the last slot
both get a trial; the one with the higher number sees the other ahead of it and gives its trial back
(FAIL, `surplus: true`, never counted or reported), so the study never overshoots `n_trials`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from nas.search import optuna_internals as internals
from nas.search.storage import retry_callback, will_retry
from nas.search.study import counted

log = logging.getLogger(__name__)

WORKER_ATTR = "worker"
# A RUNNING trial without a worker record this long after it started lost its worker between `ask` and
# the record (milliseconds apart): it would otherwise hold a slot forever (s; generous for clock skew).
ORPHAN_AFTER_S = 600.0

# ------------------------------------------------------------------------------------------ identity


@lru_cache(maxsize=1)
def machine_key() -> str:
    """Host name, boot id and pid namespace: two processes with the same key can see each other's pids."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id",):
        try:
            parts.append(Path(path).read_text().strip())
        except OSError:
            pass
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return "|".join(parts)


def process_started(pid: int) -> int | None:
    """Start time of process `pid` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def job_threads() -> int | None:
    """Inside a SLURM job, train with the CPUs the job asked for (SLURM_CPUS_PER_TASK), not torch's default of one
    thread per physical core of the node: a job given fewer cores than that oversubscribes them (two 1-CPU jobs
    of an array on one 2-core node trained each trial ~10x slower). An explicit OMP_NUM_THREADS wins. Returns
    the thread count set, or None where nothing was changed."""
    cpus, explicit = os.environ.get("SLURM_CPUS_PER_TASK", ""), os.environ.get("OMP_NUM_THREADS")
    if not cpus.isdigit() or int(cpus) < 1 or explicit:
        return None
    import torch

    if torch.get_num_threads() <= int(cpus):
        return None
    torch.set_num_threads(int(cpus))
    return int(cpus)


def identity(trial_number: int) -> dict[str, Any]:
    """The `worker` user attribute of a trial this process runs (with the threads it trains with)."""
    import torch

    pid = os.getpid()
    record: dict[str, Any] = {
        "host": socket.gethostname(),
        "machine": machine_key(),
        "pid": pid,
        "started": process_started(pid),
        "trial": trial_number,
        "threads": torch.get_num_threads(),
    }
    # Under SLURM, the job (and array task) that ran the trial: its log is slurm-<job>_<task>.out.
    for key, env in (("slurm_job", "SLURM_JOB_ID"), ("slurm_array_task", "SLURM_ARRAY_TASK_ID")):
        if os.environ.get(env):
            record[key] = os.environ[env]
    return record


def is_alive(worker: Mapping[str, Any]) -> bool | None:
    """Whether the process a `worker` record names still runs; None when it ran on another machine."""
    if worker.get("machine") != machine_key():
        return None
    pid = int(worker.get("pid", -1))
    if pid <= 0:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    started = worker.get("started")
    now = process_started(pid)
    return not (started is not None and now is not None and now != started)


# -------------------------------------------------------------------------------------- lost trials


def fail_lost(
    study: optuna.Study, *, max_retry: int | None = 3, trials: Sequence[FrozenTrial] | None = None
) -> list[str]:
    """Fail the RUNNING trials whose worker is gone and queue their retries; one message per trial failed.

    `trials`: the study's trials as the caller just read them (the run loop reads the study once per trial).
    """
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    running = {internals.trial_id(t): t for t in trials if t.state == TrialState.RUNNING}
    if not running:
        return []
    lost: dict[int, tuple[FrozenTrial, str]] = {}
    if internals.heartbeat_enabled(study):
        grace = internals.grace_period(study)
        interval = internals.heartbeat_interval(study) or 0
        for trial_id in internals.stale_trial_ids(study):
            if trial_id in running:
                lost[trial_id] = (
                    running[trial_id],
                    f"no heartbeat for more than {grace or 2 * interval} s",
                )
    now = dt.datetime.now()
    for trial_id, t in running.items():
        if trial_id in lost:
            continue
        worker = t.user_attrs.get(WORKER_ATTR)
        if isinstance(worker, dict) and worker.get("trial") == t.number:
            if is_alive(worker) is False:
                lost[trial_id] = (t, f"worker process {worker.get('pid')} on {worker.get('host')} is gone")
        elif t.datetime_start is not None and (now - t.datetime_start).total_seconds() > ORPHAN_AFTER_S:
            lost[trial_id] = (t, f"no worker record {ORPHAN_AFTER_S:.0f} s after it started")
    messages = []
    for t, reason in lost.values():
        retry = will_retry(t, max_retry)
        if _fail(study, t, reason, retry):
            if retry:
                retry_callback(max_retry)(study, internals.frozen_trial(study, t))
            messages.append(
                f"trial {t.number} FAIL: worker lost ({reason}); "
                + ("queued again" if retry else f"not retried (max_retry={max_retry} reached)")
            )
    return messages


def _fail(study: optuna.Study, trial: FrozenTrial, reason: str, retry: bool) -> bool:
    """Mark and fail one lost trial; False when another worker (or the trial's own) finished it first."""
    attrs = {"state": "FAIL", "reason": f"worker lost: {reason}", "worker_lost": True, "retried": retry}
    try:
        return internals.fail_trial(study, trial, attrs)
    except UpdateFinishedTrialError:
        return False


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Keep a trial's heartbeat while it runs (storages with heartbeat_interval; a no-op otherwise).

    ask/tell does not start Optuna's heartbeat thread the way `optimize` does, so it is started here;
    a worker killed mid-trial then has its trial failed by `fail_lost` in the other workers.
    """
    if not internals.heartbeat_enabled(study):
        yield
        return
    with internals.heartbeat_thread(study, trial):
        yield


# ------------------------------------------------------------------------------------------- budget


@dataclass
class Budget:
    """Where a study stands against its trial budget."""

    counted: int  # finished trials that count toward n_trials
    running: int  # RUNNING trials (every worker's)
    waiting: int  # queued trials (retries of lost or interrupted trials, enqueued ones)

    @property
    def taken(self) -> int:
        return self.counted + self.running + self.waiting


def takes_slot(trial: FrozenTrial) -> bool:
    """Whether a trial holds one of the study's n_trials slots (running, queued, or finished and counted)."""
    if trial.state in (TrialState.RUNNING, TrialState.WAITING):
        return not trial.user_attrs.get("surplus")
    return counted(trial)


def budget(study: optuna.Study | None = None, *, trials: Sequence[FrozenTrial] | None = None) -> Budget:
    """Counted, running and waiting trials of `study` (read once), or of the `trials` the caller just read."""
    if trials is None:
        if study is None:
            raise TypeError("budget() needs a study or its trials")
        trials = study.get_trials(deepcopy=False)
    return Budget(
        counted=sum(counted(t) for t in trials),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        waiting=sum(t.state == TrialState.WAITING for t in trials),
    )


def is_surplus(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Whether a freshly asked `trial` lost the race for the last slots (queued trials never do)."""
    if trial.number < n_trials:
        return False  # fewer trials than slots come before it, whatever their states: no need to read them
    system = internals.trial_system_attrs(study, trial)
    if "fixed_params" in system or "failed_trial" in system:
        return False
    ahead = sum(takes_slot(t) for t in study.get_trials(deepcopy=False) if t.number < trial.number)
    return ahead >= n_trials


def can_wait(study: optuna.Study) -> bool:
    """Whether waiting for the other workers' trials is safe: a dead worker's trial will be detected."""
    if internals.heartbeat_enabled(study):
        return True
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get(WORKER_ATTR)
        if not isinstance(worker, dict) or is_alive(worker) is None:
            return False
    return True


def poll_seconds(study: optuna.Study) -> float:
    """How often a waiting worker looks at the study again (s)."""
    interval = internals.heartbeat_interval(study)
    return min(5.0, max(0.5, interval / 2)) if interval else 1.0


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number`: independent streams per trial, the same in every worker."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])
