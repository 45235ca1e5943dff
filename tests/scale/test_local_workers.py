"""Several workers on one machine without a server (storage=journal), and an ablation killed mid-arm."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from tests.scale.conftest import blocking_fit, counted, fork_worker, kill9, load, wait_for


def test_journal_workers_share_a_study_and_a_killed_one_is_retried_at_once(search_cfg, tmp_path):
    journal = tmp_path / "journal.log"
    cfg = search_cfg("storage=journal", f"storage.path={journal}", "n_trials=5")
    marker = tmp_path / "hung"
    victim = fork_worker(cfg, tmp_path / "study", tmp_path / "victim.log", blocking_fit(marker, after=1))
    survivor = fork_worker(cfg, tmp_path / "study", tmp_path / "survivor.log")
    wait_for(marker.exists, 120, "the victim to hang in its second trial")
    kill9(victim)
    survivor.join(180)
    log = (tmp_path / "survivor.log").read_text()
    assert survivor.exitcode == 0, log[-3000:]

    study = load(JournalStorage(JournalFileBackend(str(journal))))
    done = counted(study)
    assert len(done) == 5 and all(t.state == TrialState.COMPLETE for t in done)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert {t.user_attrs["worker"]["pid"] for t in done} == {victim.pid, survivor.pid}  # both worked
    # The journal has no heartbeats: the dead worker's trial is found because its process is gone.
    (lost,) = [t for t in study.trials if t.user_attrs.get("worker_lost")]
    assert (
        lost.user_attrs["reason"]
        == f"worker lost: worker process {victim.pid} on {lost.user_attrs['worker']['host']} is gone"
    )
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == lost.number]
    assert retry in done and retry.params == lost.params and retry.user_attrs["worker"]["pid"] == survivor.pid


# ~100 training images of 16 px, 1 epoch, 2 seeds: about a second per run.
ABLATION = [
    "data=synthetic", "data.train_size=96", "data.test_size=32", "data.image_size=16", "data.batch_size=32",
    "logger=none", "latency.mode=macs", "epochs=1", "seeds=2", "pooling=avg",
]  # fmt: skip


def _ablate(overrides: list[str], out: Path, setup=None) -> None:
    """A forked `python -m experiments.ablate` (in-process API), exiting without the parent's cleanup."""
    import os

    code = 0
    try:
        if setup is not None:
            setup()
        from experiments.ablate import run_ablation
        from experiments.ablation.config import composer, plain

        with composer() as compose:
            cfg = plain(compose(overrides))
        run_ablation(cfg, overrides, out_dir=out, echo=lambda s: None)
    except BaseException:  # noqa: BLE001
        code = 3
    finally:
        os._exit(code)


def test_an_ablation_killed_mid_arm_trains_only_the_missing_runs_on_rerun(tmp_path):
    from experiments.ablate import run_ablation
    from experiments.ablation.config import composer, plain
    from nas.fit import fit

    cache = tmp_path / "cache"
    overrides = [*ABLATION, f"cache_dir={cache}"]
    marker = tmp_path / "hung"
    # Runs go seed-major: baseline s0, variant s0, baseline s1 (killed half-way), variant s1 (never started).
    proc = multiprocessing.get_context("fork").Process(
        target=_ablate, args=(overrides, tmp_path / "first", blocking_fit(marker, after=2)), daemon=True
    )
    proc.start()
    try:
        wait_for(marker.exists, 120, "the ablation to hang in its third run")
    finally:
        kill9(proc)
    half = Path(marker.read_text())
    assert (half / "config.yaml").read_text() == "half written\n" and not half.with_suffix(".json").exists()
    assert len(list(cache.glob("*/seed*.json"))) == 2

    trained: list[tuple[str, int]] = []

    def counting_fit(cfg, **kwargs):
        trained.append((cfg["name"], cfg["seed"]))
        return fit(cfg, **kwargs)

    lines: list[str] = []
    with composer() as compose:
        cfg = plain(compose(overrides))
    result = run_ablation(cfg, overrides, out_dir=tmp_path / "second", fit_fn=counting_fit, echo=lines.append)
    assert sorted(trained) == [("baseline-seed1", 1), ("pooling=avg-seed1", 1)]
    assert any("2 cached, 2 to train" in line for line in lines)
    assert len(result["baseline"]["values"]) == 2 and len(result["variants"][0]["values"]) == 2
    assert (half / "config.yaml").read_text() != "half written\n"  # the killed run's folder was redone
    assert len(list(cache.glob("*/seed*.json"))) == 4
