"""Several workers on one machine without a server (storage=journal), and an ablation killed mid-arm."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from tests.scale.conftest import (
    OVERRIDES,
    REPO,
    SPACE,
    blocking_fit,
    counted,
    fork_cli,
    fork_worker,
    kill9,
    load,
    wait_for,
)


def test_journal_workers_share_a_study_and_a_killed_one_is_retried_at_once(search_cfg, tmp_path):
    journal = tmp_path / "journal.log"
    cfg = search_cfg("storage=journal", f"storage.path={journal}", "n_trials=5")
    marker = tmp_path / "hung"
    victim = fork_worker(cfg, tmp_path / "study", tmp_path / "victim.log", blocking_fit(marker, after=1))
    survivor = fork_worker(cfg, tmp_path / "study", tmp_path / "survivor.log")
    wait_for(marker.exists, 300, "the victim to hang in its second trial")
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
        wait_for(marker.exists, 300, "the ablation to hang in its third run")
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


def _forked(argv: list[str], cwd: Path) -> str:
    """`python -m nas.search <argv>` in `cwd`, forked from this process (its imports paid once); its output."""
    log = cwd / f"forked-{len(list(cwd.glob('forked-*.log')))}.log"
    proc = fork_cli(argv, log, cwd=cwd)
    proc.join(540)
    assert proc.exitcode == 0, f"{argv}\n{log.read_text()[-3000:]}"
    return log.read_text()


def _search(argv: list[str], cwd: Path) -> str:
    """`python -m nas.search <argv>` as a user types it, in `cwd`; its output (the command must succeed)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run([sys.executable, "-m", "nas.search", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=540)  # fmt: skip
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow  # three commands (the first as typed, the others forked), two of them starting two workers
def test_the_local_launcher_recipe_keeps_one_study_that_resumes_and_the_report_run_sees_all(tmp_path):
    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "scale_tiny.yaml").write_text(yaml.safe_dump(SPACE))
    # The README's recipe: storage=journal without a path, so the journal is wherever the study folder is.
    common = ["+space=scale_tiny", "study_name=rn", "storage=journal", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
              *OVERRIDES]  # fmt: skip
    sweep = ["-m", "hydra/launcher=local", "worker=range(2)"]
    study_dir = tmp_path / "outputs" / "search" / "rn"
    _search([*sweep, *common, "n_trials=2"], tmp_path)
    journal = study_dir / "journal.log"
    assert journal.is_file() and not list((tmp_path / "multirun").rglob("journal.log"))
    assert len(counted(load(JournalStorage(JournalFileBackend(str(journal))), "rn"))) == 2

    _forked([*sweep, *common, "n_trials=4"], tmp_path)  # submitted again: the same study, two more trials
    study = load(JournalStorage(JournalFileBackend(str(journal))), "rn")
    assert len(counted(study)) == 4 and not list((tmp_path / "multirun").rglob("journal.log"))
    assert len({t.user_attrs["worker"]["pid"] for t in counted(study)}) >= 2  # workers of both sweeps

    out = _forked([*common, "n_trials=4"], tmp_path)  # the follow-up report run, without -m
    summary = json.loads((study_dir / "summary.json").read_text())
    assert summary["n_trials"] == 4 and "journal.log" in out
    assert (
        len(counted(load(JournalStorage(JournalFileBackend(str(journal))), "rn"))) == 4
    )  # nothing new trained
