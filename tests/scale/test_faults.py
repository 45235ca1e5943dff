"""Faults inside trials (divergence, out of memory, any exception, SIGTERM), the max_failures stop, and the
worker bookkeeping (lost trials, retries, the shared budget) on a plain SQLite study, all in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import optuna
import pytest
import torch
from optuna.trial import TrialState

import nas.fit
from nas.search.loop import run_search
from nas.search.storage import make_storage
from nas.search.study import counted
from nas.search.workers import Budget, budget, fail_lost, identity, is_surplus, trial_seed
from tests.scale.conftest import counted as counted_trials
from tests.scale.conftest import load


def test_a_diverging_trial_is_pruned_with_its_reason_and_the_search_goes_on(search_cfg, tmp_path, sqlite_url):
    result = run_search(
        search_cfg("n_trials=2", "optim.lr=1.0e12", f"storage.url={sqlite_url}"), study_dir=tmp_path / "study"
    )
    assert result.stopped == "budget reached (2 trials)"
    trials = load(sqlite_url).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for t in trials:
        reason = t.user_attrs["reason"]
        assert reason.startswith("diverged: training loss became ") and "lower optim.lr" in reason, reason
        assert t.user_attrs["state"] == "PRUNED" and t.user_attrs["n_params"] > 0


def test_out_of_memory_fails_the_trial_with_its_traceback_and_the_search_goes_on(
    search_cfg, tmp_path, monkeypatch, sqlite_url
):
    real, calls = nas.fit.fit, []

    def fit(cfg, **kwargs):
        calls.append(cfg["name"])
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(cfg, **kwargs)

    monkeypatch.setattr(nas.fit, "fit", fit)
    result = run_search(search_cfg("n_trials=3", f"storage.url={sqlite_url}"), study_dir=tmp_path / "study")
    assert result.stopped == "budget reached (3 trials)" and not result.failed
    first, *rest = load(sqlite_url).trials
    assert first.state == TrialState.FAIL
    assert first.user_attrs["reason"].startswith("out of memory (OutOfMemoryError: CUDA out of memory.")
    assert "lower data.batch_size" in first.user_attrs["reason"]
    assert (
        "Traceback" in first.user_attrs["traceback"] and "OutOfMemoryError" in first.user_attrs["traceback"]
    )
    assert [t.state for t in rest] == [TrialState.COMPLETE] * 2


def test_max_failures_stops_a_failing_study_with_a_summary(search_cfg, tmp_path, monkeypatch, sqlite_url):
    def broken(cfg, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")

    monkeypatch.setattr(nas.fit, "fit", broken)
    result = run_search(
        search_cfg("n_trials=10", "max_failures=3", f"storage.url={sqlite_url}"), study_dir=tmp_path / "study"
    )
    assert result.failed and result.n_trials == 3
    lines = result.stopped.splitlines()
    assert lines[0].startswith("3 failed trials in this run (max_failures=3)")
    assert (
        lines[1]
        == "  3 x RuntimeError: CUDA error: an illegal memory access was encountered  (trials 0, 1, 2)"
    )
    assert "user attribute 'traceback'" in lines[2]
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["stopped"] == result.stopped and [n for n, _ in summary["failures"]] == [0, 1, 2]


def test_sigterm_interrupts_training_and_queues_the_trial_again(
    search_cfg, tmp_path, monkeypatch, sqlite_url
):
    def terminated(cfg, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. SLURM's time limit or preemption
        raise AssertionError("the SIGTERM handler should have stopped training")

    cfg = search_cfg("n_trials=2", f"storage.url={sqlite_url}")
    monkeypatch.setattr(nas.fit, "fit", terminated)
    result = run_search(cfg, study_dir=tmp_path / "study")
    assert result.interrupted and result.stopped == "terminated (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is restored
    (t,) = load(sqlite_url).get_trials(states=(TrialState.FAIL,))
    assert t.user_attrs["interrupted"] and t.user_attrs["reason"] == "terminated (SIGTERM)"
    (queued,) = load(sqlite_url).get_trials(states=(TrialState.WAITING,))
    assert queued.system_attrs["fixed_params"] == t.params  # the next run starts with it


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _study(url: str):
    s = make_storage({"name": "sqlite", "url": url}, None)
    return optuna.create_study(storage=s, study_name="w", directions=["maximize"])


def _running(study, worker: dict | None):
    trial = study.ask()
    trial.suggest_int("x", 0, 100)
    if worker is not None:
        trial.set_user_attr("worker", {**worker, "trial": trial.number})
    return trial


def test_lost_trials_are_failed_once_retried_once_and_replaced_in_the_count(sqlite_url):
    study = _study(sqlite_url)
    dead = {**identity(0), "pid": _dead_pid(), "started": None}
    remote = {**identity(0), "machine": "elsewhere"}
    lost = _running(study, dead)
    alive = _running(study, identity(0))
    far = _running(study, remote)  # another machine, no heartbeats: cannot be judged from here

    (message,) = fail_lost(study, max_retry=1)
    assert message.startswith(f"trial {lost.number} FAIL: worker lost (worker process {dead['pid']} on ")
    assert fail_lost(study, max_retry=1) == []  # a second look (or a second worker) changes nothing
    frozen = study.trials[lost.number]
    assert frozen.state == TrialState.FAIL and frozen.user_attrs["worker_lost"] and not counted(frozen)
    assert study.trials[alive.number].state == study.trials[far.number].state == TrialState.RUNNING
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.params == frozen.params and waiting.user_attrs == {"retry_of": lost.number}
    assert waiting.system_attrs["failed_trial"] == lost.number
    assert budget(study) == Budget(counted=0, running=2, waiting=1)

    # The retry's worker dies too: with max_retry=1 the trial is not queued a third time, and counts as failed.
    retry = study.ask()
    assert retry.number == waiting.number and retry.params == frozen.params
    retry.set_user_attr("worker", {**dead, "trial": retry.number})
    (message,) = fail_lost(study, max_retry=1)
    assert "not retried (max_retry=1 reached)" in message
    assert counted(study.trials[retry.number]) and not study.get_trials(states=(TrialState.WAITING,))


def test_the_last_slot_goes_to_one_trial_and_queued_retries_are_never_surplus(sqlite_url):
    study = _study(sqlite_url)
    first, second, third = (_running(study, identity(0)) for _ in range(3))
    assert not is_surplus(study, first, 2) and not is_surplus(study, second, 2)
    assert is_surplus(study, third, 2)  # asked a moment too late: two trials were already ahead of it
    study.enqueue_trial({"x": 5})
    queued = study.ask()
    assert not is_surplus(study, queued, 2)  # a queued trial (e.g. a retry) always runs


def test_every_trial_number_draws_from_its_own_seed():
    assert trial_seed(0, 3) == trial_seed(0, 3)
    assert len({trial_seed(0, n) for n in range(100)}) == 100
    assert trial_seed(0, 1) != trial_seed(1, 0)  # seeds of nearby studies do not overlap


def test_surplus_trials_are_left_out_of_counts_and_results(search_cfg, tmp_path, sqlite_url):
    result = run_search(search_cfg("n_trials=1", f"storage.url={sqlite_url}"), study_dir=tmp_path / "study")
    study = load(sqlite_url)
    extra = study.ask()  # as if a second worker had raced for the one slot and lost
    extra.set_user_attr("surplus", True)
    study.tell(extra, state=TrialState.FAIL)
    again = run_search(search_cfg("n_trials=1", f"storage.url={sqlite_url}"), study_dir=tmp_path / "study")
    assert result.n_trials == again.n_trials == 1 and len(counted_trials(study)) == 1
    rows = (tmp_path / "study" / "trials.csv").read_text().splitlines()
    assert len(rows) == 2  # header + the one real trial


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"name": "journal", "heartbeat_interval": 5}, "storage=journal has no heartbeats"),
        ({"name": "sqlite", "heartbeat_interval": 10, "grace_period": 5}, "must be longer than"),
        ({"name": "sqlite", "heartbeat_interval": 0.5}, "whole number of seconds >= 1"),
        ({"name": "sqlite", "max_retry": -1}, "max_retry must be an integer >= 0"),
        ({"name": "url", "url": "postgres://u:pw@h/db", "max_retry": 1.5}, "max_retry"),
    ],
)
def test_bad_storage_options_are_refused(tmp_path, storage, message):
    with pytest.raises(ValueError, match=message):
        make_storage(storage, tmp_path)
