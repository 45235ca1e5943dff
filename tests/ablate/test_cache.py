"""The run cache: hits, misses, resume (more seeds, deleted / corrupt entries, interruption), worker locks."""

import errno
import fcntl
import json
import multiprocessing as mp
import os

import pytest

from experiments.ablation.cache import RunCache
from experiments.ablation.config import config_key
from experiments.ablation.report import arm_status
from experiments.ablation.runner import Arm, arm_result, run_arms
from nas.data.errors import CorruptDataError, DataNotFoundError

METRIC = "test/acc"


def make_arm(label, lr):
    run_cfg = {"data": {"name": "synthetic", "fraction": 1.0}, "model": {"name": "m"}, "optim": {"lr": lr},
               "trainer": {"max_epochs": 1}, "test": True, "logger": {"name": "none"}}  # fmt: skip
    return Arm(
        label,
        [] if label == "baseline" else [label],
        run_cfg=run_cfg,
        key=config_key(run_cfg),
        params=1,
        macs=1,
    )


class FakeFit:
    """Stands in for nas.fit.fit: records (label, seed) calls; accuracy depends on lr and seed."""

    def __init__(self, fail_on=None, interrupt_on=None, diverge_on=None):
        self.calls = []
        self.fail_on, self.interrupt_on, self.diverge_on = fail_on, interrupt_on, diverge_on

    def __call__(self, cfg, **kw):
        who = (cfg["name"].rsplit("-seed", 1)[0], cfg["seed"])
        self.calls.append(who)
        assert kw["job_type"] == "ablation-arm"
        if who == self.interrupt_on:
            raise KeyboardInterrupt
        if who == self.fail_on:
            raise RuntimeError("boom")
        if who == self.diverge_on:  # what nas.fit returns when the loss became NaN / inf
            return {
                "metrics": {"train/loss": float("nan")},
                "state": "PRUNED",
                "reason": "loss is nan at step 3",
            }
        return {"metrics": {METRIC: 0.5 + cfg["optim"]["lr"] + 0.01 * cfg["seed"]}, "wall_time_s": 0.0}


def run(arms, seeds, cache, fit, lines=None):
    return run_arms(
        arms,
        seeds=seeds,
        cache=cache,
        metric=METRIC,
        fit_fn=fit,
        echo=(lines if lines is not None else []).append,
    )


def test_miss_then_hit_and_more_seeds_train_only_the_new_ones(tmp_path):
    cache = RunCache(tmp_path)
    arms = [make_arm("baseline", 0.1), make_arm("lr=0.2", 0.2)]
    fit = FakeFit()
    lines = []
    records, failures = run(arms, 2, cache, fit, lines)
    assert sorted(fit.calls) == [("baseline", 0), ("baseline", 1), ("lr=0.2", 0), ("lr=0.2", 1)]
    # seed-major order: every arm's seed 0 before any seed 1
    assert [s for _, s in fit.calls] == [0, 0, 1, 1]
    assert records[arms[1].key][1]["result"]["metrics"][METRIC] == pytest.approx(0.71)
    assert not any(failures.values())
    assert any(line.startswith("[4/4]") and "ETA" in line for line in lines)
    # everything cached: nothing trains
    fit2 = FakeFit()
    records2, _ = run(arms, 2, cache, fit2)
    assert fit2.calls == [] and records2 == records
    # raising seeds trains only seed 2 of each arm
    fit3 = FakeFit()
    lines3 = []
    run(arms, 3, cache, fit3, lines3)
    assert sorted(fit3.calls) == [("baseline", 2), ("lr=0.2", 2)]
    assert "4 cached, 2 to train" in lines3[0]


def test_arms_with_the_same_config_train_once(tmp_path):
    base = make_arm("baseline", 0.1)
    same = make_arm("pooling=max", 0.1)  # resolves to the baseline's config
    fit = FakeFit()
    records, _ = run([base, same], 2, RunCache(tmp_path), fit)
    assert base.key == same.key and len(fit.calls) == 2 and list(records) == [base.key]


def test_deleted_or_corrupt_entries_retrain_just_that_run(tmp_path):
    cache = RunCache(tmp_path)
    arms = [make_arm("baseline", 0.1), make_arm("lr=0.2", 0.2)]
    run(arms, 2, cache, FakeFit())
    (tmp_path / arms[0].key / "seed1.json").unlink()  # deleted
    (tmp_path / arms[1].key / "seed0.json").write_text('{"key": "tru')  # truncated
    other = json.loads((tmp_path / arms[1].key / "seed1.json").read_text())
    other["key"] = "someone-else"  # a record that does not belong to its key
    (tmp_path / arms[1].key / "seed1.json").write_text(json.dumps(other))
    fit = FakeFit()
    records, _ = run(arms, 2, cache, fit)
    assert sorted(fit.calls) == [("baseline", 1), ("lr=0.2", 0), ("lr=0.2", 1)]
    assert records[arms[1].key][0]["key"] == arms[1].key


def test_interrupted_ablation_resumes_with_only_the_unfinished_runs(tmp_path):
    cache = RunCache(tmp_path)
    arms = [make_arm("baseline", 0.1), make_arm("lr=0.2", 0.2)]
    with pytest.raises(KeyboardInterrupt):
        run(arms, 2, cache, FakeFit(interrupt_on=("baseline", 1)))
    # the interrupted run left no record
    assert not (tmp_path / arms[0].key / "seed1.json").exists()
    fit = FakeFit()
    run(arms, 2, cache, fit)
    assert sorted(fit.calls) == [("baseline", 1), ("lr=0.2", 1)]


def test_a_failed_run_is_reported_not_cached_and_retried(tmp_path):
    cache = RunCache(tmp_path)
    arms = [make_arm("baseline", 0.1), make_arm("lr=0.2", 0.2)]
    lines = []
    records, failures = run(arms, 2, cache, FakeFit(fail_on=("lr=0.2", 0)), lines)
    assert failures[arms[1].key] == {0: "RuntimeError: boom"}
    assert set(records[arms[1].key]) == {1}
    assert any("FAILED" in line for line in lines)
    fit = FakeFit()
    run(arms, 2, cache, fit)
    assert fit.calls == [("lr=0.2", 0)]


def _hold_lock(root, key, ready, release):
    with RunCache(root).claim(key, 0, wait=True):
        ready.set()
        release.wait(30)


def test_a_run_locked_by_another_worker_is_not_trained_twice(tmp_path):
    cache = RunCache(tmp_path)
    base = make_arm("baseline", 0.1)
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), base.key, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with cache.claim(base.key, 0, wait=False) as mine:
            assert mine is False  # the other process holds it
        # the other worker "finishes" seed 0 and releases its lock; we must pick up its record, not retrain
        cache.put(base.key, 0, {"metrics": {METRIC: 0.9}})
        release.set()
        fit = FakeFit()
        records, _ = run([base], 2, cache, fit)
        assert fit.calls == [("baseline", 1)]
        assert records[base.key][0]["result"]["metrics"][METRIC] == 0.9
    finally:
        release.set()
        holder.join(30)
    # a lock whose process died is free again (flock is released by the OS)
    with cache.claim(base.key, 0, wait=False) as mine:
        assert mine is True


def test_a_diverged_run_is_cached_and_reported_without_a_made_up_accuracy(tmp_path):
    cache = RunCache(tmp_path)
    arms = [make_arm("baseline", 0.1), make_arm("lr=9", 9.0)]
    lines = []
    records, failures = run(arms, 2, cache, FakeFit(diverge_on=("lr=9", 1)), lines)
    assert not any(failures.values()) and any("PRUNED (loss is nan" in line for line in lines)
    res = arm_result(arms[1], records[arms[1].key], {}, metric=METRIC, latency={})
    assert [seed for seed, _ in res["values"]] == [0]
    assert res["diverged"] == [[1, "PRUNED: loss is nan at step 3"]]
    assert arm_status(res, 2) == "diverged 1/2: PRUNED: loss is nan at step 3"
    fit = FakeFit()
    run(arms, 2, cache, fit)
    assert fit.calls == []  # the same seed would diverge again: it is not retrained


@pytest.mark.parametrize("errno_", [errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_file_system_without_locks_is_one_clear_message_not_a_crash(tmp_path, monkeypatch, errno_):
    """NFS / Lustre mounted without locking: flock raises an OSError that is not BlockingIOError."""

    def no_locks(fd, op):
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    fit = FakeFit()
    with pytest.raises(ValueError, match=r"does not support file locks .*cache_dir") as err:
        run([make_arm("baseline", 0.1)], 2, RunCache(tmp_path), fit)
    assert str(tmp_path) in str(err.value) and fit.calls == []  # nothing trained without a lock


@pytest.mark.parametrize(
    "error",
    [DataNotFoundError("Fashion-MNIST not found in /x"), CorruptDataError("/x/train-images: truncated")],
    ids=["missing", "damaged"],
)
def test_missing_or_damaged_data_stops_the_ablation_instead_of_failing_every_run(tmp_path, error):
    class NoData(FakeFit):
        def __call__(self, cfg, **kw):
            self.calls.append(cfg["seed"])
            raise error

    fit = NoData()
    with pytest.raises(type(error), match=str(error)):
        run([make_arm("baseline", 0.1), make_arm("lr=0.2", 0.2)], 3, RunCache(tmp_path), fit)
    assert fit.calls == [0]  # the first run says it; the other five are not attempted
