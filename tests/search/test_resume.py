"""A trial cut by SIGTERM (a SLURM time limit or preemption) resumes from its last finished epoch when the same
search runs again, and ends with the uninterrupted trial's result; `experiments.train` does the same."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import optuna
import pytest
import pytorch_lightning as pl
import torch
from optuna.trial import TrialState

import nas.fit
from nas.search.loop import run_search
from nas.search.storage import make_storage
from tests.conftest import TINY_DATA

EPOCHS = 4
CUT_EPOCH = 2  # SIGTERM arrives in the middle of this epoch (0-based): epochs 0 and 1 are saved


class Sigterm(pl.Callback):
    """Sends SIGTERM to this process at the second batch of epoch `epoch`, as `scancel` or a time limit would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # type: ignore[override]
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGTERM)


class Epochs(pl.Callback):
    """Records the epochs a fit trains."""

    def __init__(self) -> None:
        self.trained: list[int] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.trained.append(trainer.current_epoch)


def with_callback(monkeypatch, callback: pl.Callback) -> None:
    """Every fit (a trial's, or the train command's) gets `callback` beside its own."""
    real = nas.fit.fit

    def fit(cfg, *, callbacks=None, **kwargs):
        return real(cfg, callbacks=[*(callbacks or []), callback], **kwargs)

    monkeypatch.setattr(nas.fit, "fit", fit)


class StopAfterTraining(pl.Callback):
    """Ctrl-C once every epoch is trained and saved, before fit returns."""

    def on_train_end(self, trainer, module) -> None:
        raise KeyboardInterrupt


def trials(study_dir: Path) -> list[optuna.trial.FrozenTrial]:
    """The trials of the test study in `study_dir` (its default SQLite file)."""
    storage = make_storage({"name": "sqlite"}, study_dir)
    return optuna.load_study(study_name="tiny", storage=storage).trials


def test_a_trial_cut_by_sigterm_resumes_from_its_checkpoint_with_the_uninterrupted_result(
    search_cfg, tmp_path, monkeypatch
):
    cfg = search_cfg("n_trials=1", f"fidelity.epochs={EPOCHS}", "latency.mode=macs", "data.val_size=32")
    whole = run_search(cfg, study_dir=tmp_path / "whole")
    (reference,) = trials(tmp_path / "whole")
    assert reference.state == TrialState.COMPLETE and "resumed_epoch" not in reference.user_attrs

    study = tmp_path / "cut"
    with monkeypatch.context() as m:
        with_callback(m, Sigterm(CUT_EPOCH))
        cut = run_search(cfg, study_dir=study)
    assert cut.interrupted and cut.stopped == "terminated (SIGTERM)"
    interrupted, queued = trials(study)
    assert interrupted.user_attrs["interrupted"] and queued.state == TrialState.WAITING
    (saved,) = (study / "resume").glob("*/last.ckpt")  # in the study folder, keyed by the run's identity
    assert torch.load(saved, weights_only=False)["epoch"] == CUT_EPOCH - 1  # the last finished epoch

    epochs = Epochs()
    with monkeypatch.context() as m:
        with_callback(m, epochs)
        again = run_search(cfg, study_dir=study)  # the requeued job: the same command on the same study
    assert not again.interrupted
    retry = trials(study)[queued.number]
    assert retry.state == TrialState.COMPLETE and retry.params == reference.params
    assert epochs.trained == list(range(CUT_EPOCH, EPOCHS))  # only the epochs the cut trial had not finished
    assert retry.user_attrs["resumed_epoch"] == CUT_EPOCH
    assert retry.user_attrs["accuracy"] == pytest.approx(reference.user_attrs["accuracy"], abs=1e-6)
    for key, value in reference.user_attrs["metrics"].items():
        assert retry.user_attrs["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    # Once the trial completed, its checkpoint moved to its own folder: nothing waits in resume/.
    assert not list((study / "resume").rglob("*.ckpt"))
    assert (Path(retry.user_attrs["output_dir"]) / "checkpoints" / "last.ckpt").is_file()
    assert whole.front and again.front


def test_train_cut_by_sigterm_resumes_when_the_same_command_runs_again(tmp_path, monkeypatch):
    """`python -m experiments.train`, SIGTERM in epoch 2 of 4, the same command again: epochs 2 and 3 are
    trained, from the checkpoint in `resume/` beside the run folders, and the metrics are the uninterrupted
    run's."""
    from experiments import train

    def run(folder: str, callback: pl.Callback | None = None) -> dict:
        argv = ["train", *TINY_DATA, "logger=none", f"trainer.max_epochs={EPOCHS}", "test=false",
                "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / folder}"]  # fmt: skip
        with monkeypatch.context() as m:
            m.setenv("HYDRA_MAIN_MODULE", "__main__")  # as `python -m experiments.train`
            m.setattr(sys, "argv", argv)
            if callback is not None:
                with_callback(m, callback)
            train.main()
        return json.loads((tmp_path / folder / "metrics.json").read_text())

    whole = run("whole")
    assert whole["resumed_epoch"] is None
    with pytest.raises(SystemExit):  # Lightning stops at the end of the batch and exits
        run("cut", Sigterm(CUT_EPOCH))
    assert len(list((tmp_path / "resume").glob("*/last.ckpt"))) == 1
    epochs = Epochs()
    again = run("again", epochs)
    assert epochs.trained == list(range(CUT_EPOCH, EPOCHS))
    assert again["resumed_epoch"] == CUT_EPOCH
    assert again["metrics"] == pytest.approx(whole["metrics"], rel=1e-5, abs=1e-6)
    assert not list((tmp_path / "resume").rglob("*.ckpt"))
    assert again["checkpoint"] == str(tmp_path / "again" / "checkpoints" / "last.ckpt")


def test_a_run_cut_after_its_last_saved_epoch_resumes_to_its_metrics(compose, tmp_path):
    """Nothing is left to train: the resumed run validates the saved network and reports what the uninterrupted
    run reported (else the retry of a trial cut in that moment would have no accuracy and fail)."""

    def cfg(name: str) -> dict:
        plain = compose("train", [*TINY_DATA, "logger=none", "trainer.max_epochs=2", "test=false"])
        return {**plain, "output_dir": str(tmp_path / name), "resume_dir": str(tmp_path)}

    whole = nas.fit.fit(cfg("whole"), verbose=False)
    with pytest.raises(SystemExit):  # Lightning turns the Ctrl-C into sys.exit(1)
        nas.fit.fit(cfg("cut"), callbacks=[StopAfterTraining()], verbose=False)
    again = nas.fit.fit(cfg("again"), verbose=False)
    assert again.resumed_epoch == 2
    assert again.metrics["val/acc"] == pytest.approx(whole.metrics["val/acc"], abs=1e-6)
    assert again.metrics["val/acc_best"] == pytest.approx(whole.metrics["val/acc_best"], abs=1e-6)


def test_the_time_limit_warning_of_a_submitit_job_interrupts_the_trial(search_cfg, tmp_path, monkeypatch):
    """hydra/launcher=slurm: submitit has SLURM send USR2 `signal_delay_s` before the time limit, and its own
    handler would raise inside training (the trial FAILed, counted, never run again). The search stops as on
    SIGTERM instead: the trial is interrupted and queued again, and its epochs so far wait in resume/."""

    def warned(cfg, **kwargs):
        os.kill(os.getpid(), signal.SIGUSR2)
        raise AssertionError("the handler should have stopped training")

    def submitit(signum, frame):  # what submitit's handler does at a time limit with max_num_timeout=0
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setattr(nas.fit, "fit", warned)
    previous = signal.signal(signal.SIGUSR2, submitit)
    try:
        result = run_search(search_cfg("n_trials=1", "latency.mode=macs"), study_dir=tmp_path / "study")
        assert signal.getsignal(signal.SIGUSR2) is submitit  # restored
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert result.interrupted and result.stopped == "terminated (SIGUSR2)"
    interrupted, queued = trials(tmp_path / "study")
    assert interrupted.user_attrs["interrupted"] and interrupted.state == TrialState.FAIL
    assert queued.state == TrialState.WAITING and queued.system_attrs["fixed_params"] == interrupted.params
