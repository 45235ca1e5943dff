"""The README's SLURM recipe on a real one-node cluster: `python -m nas.search -m hydra/launcher=slurm ...
'worker=range(2)'` submits a two-job array (hydra-submitit-launcher -> sbatch) whose jobs are workers of one
study on a journal file; the follow-up run reports it; a job cancelled mid-trial has its trial run again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from tests.scale.conftest import fork_cli
from tests.tiny import tiny_space

SPACE = tiny_space("slurm_tiny", max_width=32, description="two conv stages, for the SLURM tests")
# A few hundred 16 px images, latency by MAC count: seconds per trial, most of a job is its imports.
TINY = [
    "data=synthetic", "data.train_size=192", "data.val_size=64", "data.test_size=16", "data.image_size=16",
    "data.batch_size=32", "data.eval_batch_size=64", "logger=none", "sampler=random", "workers=1", "fidelity.fraction=1.0",
    "fidelity.epochs=1", "latency.mode=macs", "baselines.enabled=false", "html=false", "progress=false",
]  # fmt: skip
# The job shape of conf/hydra/launcher/slurm.yaml, cut to what the test node has (no GPU, 4 CPUs, 8 GB).
JOB = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.gpus_per_node=0", "hydra.launcher.mem_gb=1",
       "hydra.launcher.timeout_min=10"]  # fmt: skip


def _setup(tmp_path: Path, name: str, n_trials: int, *extra: str) -> tuple[list[str], Path]:
    """The recipe's options for study `name` on a journal file in tmp_path (storage set explicitly)."""
    confdir = tmp_path / "conf"
    (confdir / "space").mkdir(parents=True, exist_ok=True)
    (confdir / "space" / "slurm_tiny.yaml").write_text(yaml.safe_dump(SPACE))
    journal = tmp_path / f"{name}.journal"
    common = [
        "+space=slurm_tiny", f"study_name={name}", f"n_trials={n_trials}", "storage=journal",
        f"storage.path={journal}", f"hydra.searchpath=[file://{confdir}]", f"export_dir={tmp_path / 'exported'}",
        *TINY, *extra,
    ]  # fmt: skip
    return common, journal


_LAUNCHED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_launcher_left_behind():
    """A failed test must not leave its launcher polling the cluster."""
    yield
    while _LAUNCHED:
        proc = _LAUNCHED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _array(common: list[str], tmp_path: Path, env: dict) -> subprocess.Popen:
    """`python -m nas.search -m hydra/launcher=slurm ... 'worker=range(2)'`, as the README writes it."""
    argv = [sys.executable, "-m", "nas.search", "-m", "hydra/launcher=slurm", *common, "worker=range(2)",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", *JOB]  # fmt: skip
    log = open(tmp_path / "launcher.log", "w")  # noqa: SIM115 - closed with the process by the test
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, text=True)
    _LAUNCHED.append(proc)
    return proc


def _cli(argv: list[str], log: Path) -> str:
    """`python -m nas.search <argv>` (forked: the imports are paid once) to its end; its printed lines."""
    proc = fork_cli(argv, log)
    proc.join(180)
    text = log.read_text()
    assert proc.exitcode == 0, text[-3000:]
    return text


def _create(common: list[str], tmp_path: Path) -> None:
    """One plain trial before the array, so the study and the journal file the test watches exist before the
    jobs start (the recipe itself does not need it: see the test of two jobs starting a new study)."""
    _cli([*common, "n_trials=1", f"hydra.run.dir={tmp_path / 'create'}"], tmp_path / "create.log")


def _study(journal: Path, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))


def _counted(study) -> list:
    from nas.search.study import counted

    return [t for t in study.get_trials(deepcopy=False) if counted(t)]


def test_the_readme_recipe_runs_two_array_jobs_on_one_study_and_the_report_sees_every_trial(slurm, tmp_path):
    # The recipe as written: the array's two jobs start the new study themselves, at the same moment.
    common, journal = _setup(tmp_path, "sl2", 6)
    launcher = _array(common, tmp_path, slurm.env)
    assert launcher.wait(timeout=240) == 0, (tmp_path / "launcher.log").read_text()[-3000:]

    study = _study(journal, "sl2")
    done = _counted(study)
    assert len(done) == 6 and all(t.state == TrialState.COMPLETE for t in done)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert sorted(t.number for t in done) == list(range(6))  # every trial once, nothing run twice
    # Both array jobs were workers of this study (which one trains more depends on which started first).
    logs = {p.parent.name: p.read_text() for p in (tmp_path / "sweep" / ".submitit").glob("*_*/*_0_log.out")}
    assert len(logs) == 2, sorted(logs)
    for name, text in logs.items():
        # it stops at the budget, or (journal: no heartbeats) leaves the last trial to the job running it
        assert "study sl2 (" in text and "\nstopped: " in text, (name, text[-2000:])
    # Neither job refused the study the other had just created (both found it new, or one loaded it).
    assert sum("study sl2 (new)" in text for text in logs.values()) >= 1
    tasks = [t.user_attrs["worker"].get("slurm_array_task") for t in sorted(done, key=lambda t: t.number)]
    assert set(tasks) <= {"0", "1"}, tasks  # the array's jobs ran every trial
    # Each job trained on the one CPU it asked for (cpus_per_task=1), not one thread per core of the node.
    assert {t.user_attrs["worker"]["threads"] for t in done} == {1}
    # The launcher returns once each job wrote its result; the jobs' processes then exit within seconds.
    deadline = time.monotonic() + 60
    while slurm.squeue() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not slurm.squeue()

    # The follow-up run (no -m, no launcher): resumes the same study, finds the budget reached, reports it.
    report = _cli([*common, f"hydra.run.dir={tmp_path / 'report'}"], tmp_path / "report.log")
    assert "resumed, 6 trials done" in report and "stopped: budget reached (6 trials)" in report
    assert "front of sl2:" in report and "of 6 trials" in report
    assert len(_counted(_study(journal, "sl2"))) == 6  # it trained nothing more


def test_a_job_cancelled_mid_trial_has_its_trial_run_again_and_the_study_completes(slurm, tmp_path):
    # Twelve epochs on more images: a trial trains for a few seconds (one thread a job). A pruner that never
    # prunes (more start-up trials than the study has; Optuna prunes single-objective studies only) makes
    # each epoch's accuracy reach the storage, so the job is cancelled while its trial is seen training, not
    # during the bookkeeping after its last epoch (SIGTERM there lets the trial complete, by design: CI once
    # cancelled a trial that late).
    common, journal = _setup(
        tmp_path, "slc", 4, "fidelity.epochs=12", "data.train_size=1024", "objectives=[accuracy]",
        "pruner=median", "pruner.n_startup_trials=100",
    )  # fmt: skip
    _create(common, tmp_path)
    launcher = _array(common, tmp_path, slurm.env)
    victim = None
    deadline = time.monotonic() + 180
    while victim is None and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
        if not journal.exists():
            continue
        running = _study(journal, "slc").get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        victim = next(
            (
                t
                for t in running
                if t.user_attrs.get("worker", {}).get("slurm_array_task") == "0"
                and 1 <= len(t.intermediate_values) <= 6
            ),
            None,
        )
    assert victim is not None, (tmp_path / "launcher.log").read_text()[-3000:]
    # scancel needs the array element's name (<array job>_<task>): given the element's own job id (what the
    # worker records, SLURM_JOB_ID) SLURM 22.05 answers "Invalid job id specified" and still exits 0.
    element = slurm.element(victim.user_attrs["worker"]["slurm_job"])
    cancel = subprocess.run(["scancel", element], capture_output=True, text=True, env=slurm.env, timeout=30)
    assert cancel.returncode == 0 and not cancel.stderr, cancel.stderr
    code = launcher.wait(timeout=240)
    # The launcher exits as soon as it sees the cancelled job; the other job goes on with the study (two
    # more trials of a few seconds each on a quiet machine; minutes when the machine is shared).
    deadline = time.monotonic() + 600
    while slurm.squeue() and time.monotonic() < deadline:
        time.sleep(0.5)

    study = _study(journal, "slc")
    done = _counted(study)
    assert len(done) == 4 and all(t.state == TrialState.COMPLETE for t in done), [
        (t.number, t.state.name, t.user_attrs.get("reason")) for t in study.trials
    ]
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    cancelled = study.trials[victim.number]
    assert cancelled.state == TrialState.FAIL and cancelled.user_attrs.get("interrupted"), (
        cancelled.user_attrs,
    )
    assert "SIGTERM" in cancelled.user_attrs["reason"]
    (retry,) = [t for t in done if t.user_attrs.get("retry_of") == victim.number]
    assert retry.params == victim.params and retry.user_attrs["worker"]["slurm_array_task"] == "1"
    # The cancelled job recorded its trial and stopped (exit status 130, interrupted); the sweep's command
    # reported that job as cancelled and exited non-zero, though the study it served completed.
    log = (tmp_path / "launcher.log").read_text()
    assert code != 0 and f"Job {element}" in log and "state: CANCELLED" in log, log[-3000:]
