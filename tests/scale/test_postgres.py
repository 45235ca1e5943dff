"""Many workers on one PostgreSQL study (a real server on 127.0.0.1): sharing the budget exactly, a worker
killed mid-trial (found by its missing heartbeat, its trial retried), every worker killed and restarted."""

from __future__ import annotations

import re
from collections import Counter

import yaml
from optuna.trial import TrialState

from tests.scale.conftest import (
    OVERRIDES,
    PASSWORD,
    SPACE,
    blocking_fit,
    both,
    counted,
    fork_cli,
    fork_worker,
    kill9,
    load,
    pretend_remote,
    wait_for,
)

# Beats every second. Where live workers run side by side, a grace of 20 s: on a loaded 2-core machine a
# beat can come seconds late, and a live trial failed as lost would be run twice (correct, not what these
# tests check). Where the only other worker is dead, 2 s: its trial is found quickly.
HEARTBEAT = ["storage=postgres", "storage.heartbeat_interval=1", "storage.grace_period=20"]
QUICK_HEARTBEAT = ["storage=postgres", "storage.heartbeat_interval=1", "storage.grace_period=2"]


def states(study) -> Counter:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def test_three_command_line_workers_finish_a_15_trial_study_exactly_once(pg_url, tmp_path):
    """`python -m nas.search +space=... study_name=X storage=postgres` three times at once (forked, so the test
    does not pay three interpreters' imports): one study, exactly 15 trials, each run by one worker."""
    confdir = tmp_path / "conf"
    (confdir / "space").mkdir(parents=True)
    (confdir / "space" / "scale_tiny.yaml").write_text(yaml.safe_dump(SPACE))
    study_dir = tmp_path / "study"
    argv = [
        "+space=scale_tiny", "study_name=cli3", "n_trials=15", *HEARTBEAT, *OVERRIDES,
        f"hydra.searchpath=[file://{confdir}]", f"hydra.run.dir={study_dir}", f"export_dir={tmp_path / 'exported'}",
    ]  # fmt: skip
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [fork_cli(argv, log) for log in logs]
    for w in workers:
        w.join(240)
    outs = [log.read_text() for log in logs]
    for w, out in zip(workers, outs, strict=True):
        assert w.exitcode == 0, out[-3000:]
        assert "stopped: budget reached (15 trials)" in out, out[-3000:]

    study = load(pg_url, "cli3")
    done = counted(study)
    assert len(done) == 15 and all(t.state == TrialState.COMPLETE for t in done), states(study)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    # Nothing else in the study but surplus trials that were given back unrun (a race for the last slots).
    others = [t for t in study.trials if t not in done]
    assert all(t.user_attrs.get("surplus") and not t.params for t in others), [
        (t.number, t.state, t.user_attrs.get("reason")) for t in others
    ]
    # Every trial was run by exactly one worker, and the three workers shared them.
    reported = Counter(int(n) for out in outs for n in re.findall(r"trial +(\d+) +(?:COMPLETE|REUSED)", out))
    assert sorted(reported) == sorted(t.number for t in done) and set(reported.values()) == {1}
    pids = Counter(t.user_attrs["worker"]["pid"] for t in done)
    assert set(pids) == {w.pid for w in workers}, pids
    trained = [t for t in done if t.user_attrs.get("reused_from") is None]
    assert len({t.user_attrs["output_dir"] for t in trained}) == len(trained)
    assert all((study_dir / "trials" / f"t{t.number:04d}" / "metrics.json").exists() for t in trained)
    # Each trial number draws from its own seed: the workers did not all propose the same architectures.
    assert len({tuple(sorted(t.params.items())) for t in done}) >= 10
    # The database password appears nowhere: not in any output, not in any file the workers wrote.
    assert all(PASSWORD not in out for out in outs) and ":***@127.0.0.1" in outs[0]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_worker_killed_mid_trial_is_failed_by_heartbeat_and_its_trial_retried(pg_url, search_cfg, tmp_path):
    cfg = search_cfg(*QUICK_HEARTBEAT, "n_trials=4")
    marker = tmp_path / "hung"
    # The victim looks like a worker on another machine, so only its missing heartbeat can reveal its death.
    victim = fork_worker(
        cfg, tmp_path / "study", tmp_path / "victim.log", both(pretend_remote(), blocking_fit(marker))
    )
    wait_for(marker.exists, 300, "the victim to start training")
    survivor = fork_worker(cfg, tmp_path / "study", tmp_path / "survivor.log")
    kill9(victim)
    survivor.join(180)
    log = (tmp_path / "survivor.log").read_text()
    assert survivor.exitcode == 0, log[-3000:]

    study = load(pg_url)
    (lost,) = [t for t in study.trials if t.user_attrs.get("worker_lost")]
    assert lost.state == TrialState.FAIL and lost.user_attrs["retried"]
    assert lost.user_attrs["reason"] == "worker lost: no heartbeat for more than 2 s"
    assert lost.user_attrs["worker"]["pid"] == victim.pid
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == lost.number]
    assert retry.state == TrialState.COMPLETE and retry.params == lost.params
    assert retry.user_attrs["retry_of"] == lost.number and retry.user_attrs["worker"]["pid"] == survivor.pid
    assert len(counted(study)) == 4 and lost not in counted(study)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert f"trial {lost.number} FAIL: worker lost (no heartbeat" in log


def test_killing_every_worker_then_restarting_keeps_every_finished_trial(pg_url, search_cfg, tmp_path):
    cfg = search_cfg(*HEARTBEAT, "n_trials=6")
    markers = [tmp_path / "hung0", tmp_path / "hung1"]
    # Each worker finishes two trials, then is killed in the middle of its third.
    workers = [
        fork_worker(cfg, tmp_path / "study", tmp_path / f"w{i}.log", blocking_fit(m, after=2))
        for i, m in enumerate(markers)
    ]
    wait_for(lambda: all(m.exists() for m in markers), 300, "both workers to be in their third trial")
    for w in workers:
        kill9(w)
    before = load(pg_url)
    complete = {t.number: t.values for t in before.get_trials(states=(TrialState.COMPLETE,))}
    hung = {t.number for t in before.get_trials(states=(TrialState.RUNNING,))}
    assert len(complete) == 4 and len(hung) == 2

    restarted = fork_worker(cfg, tmp_path / "study", tmp_path / "restart.log")
    restarted.join(180)
    log = (tmp_path / "restart.log").read_text()
    assert restarted.exitcode == 0, log[-3000:]

    study = load(pg_url)
    for number, values in complete.items():  # every finished trial kept, untouched
        t = study.trials[number]
        assert t.state == TrialState.COMPLETE and t.values == values
    for number in hung:  # the killed workers' trials: failed at once (their processes are gone) and retried
        t = study.trials[number]
        assert t.state == TrialState.FAIL and "worker lost: worker process" in t.user_attrs["reason"]
        (retry,) = [r for r in study.trials if r.system_attrs.get("failed_trial") == number]
        assert retry.state == TrialState.COMPLETE and retry.params == t.params
    assert len(counted(study)) == 6 and not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_missing_url_variable_is_a_clear_error(search_cfg, tmp_path, monkeypatch):
    from nas.search.loop import run_search

    monkeypatch.delenv("NAS_STORAGE_URL", raising=False)
    try:
        run_search(search_cfg("storage=postgres"), study_dir=tmp_path / "study")
    except ValueError as e:
        assert "NAS_STORAGE_URL, which is not set" in str(
            e
        ) and "export NAS_STORAGE_URL=postgresql+psycopg://" in str(e)
    else:
        raise AssertionError("expected a ValueError")
    assert not (tmp_path / "study" / "trials").exists()


def test_storage_line_masks_the_password(pg_url, search_cfg, tmp_path):
    from nas.search.storage import storage_url

    shown = storage_url(search_cfg("storage=postgres")["storage"], tmp_path)
    assert PASSWORD not in shown and ":***@127.0.0.1" in shown and "(from $NAS_STORAGE_URL)" in shown
