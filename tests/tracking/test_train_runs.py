"""Training runs in W&B: the train command's run (config, spec, metrics, latency when asked, the sync line),
and runs that fail, are pruned or diverge, logged with their state, reason and exit code."""

from __future__ import annotations

import sys

import optuna
import pytest
import pytorch_lightning as pl

from nas.fit import fit
from tests.conftest import TINY_DATA
from tests.tracking.helpers import private_wandb, runs_under

FAST_LATENCY = [
    "+latency=cpu",
    "latency.warmup=1",
    "latency.warmup_s=0.0",
    "latency.min_repeats=3",
    "latency.max_repeats=5",
    "latency.max_time_s=0.05",
]


def test_train_command_logs_one_complete_run_and_prints_the_sync_line(tmp_path, monkeypatch, capsys):
    from experiments import train

    private_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")  # as `python -m experiments.train`
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train",
            *TINY_DATA,
            *FAST_LATENCY,
            "logger=wandb",
            "logger.group=g1",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "checkpoint=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
    )
    train.main()
    out = capsys.readouterr().out
    assert f"wandb sync {tmp_path / 'run'}/wandb/offline-run-*" in out
    (run,) = runs_under(tmp_path / "run")
    s, c = run["summary"], run["config"]
    assert run["job_type"] == "train" and run["group"] == "g1" and run["tags"] == ["data:synthetic"]
    assert run["name"] == "simple_cnn-synthetic" and run["exit_code"] == 0 and s["state"] == "COMPLETE"
    for key in (
        "test/acc",
        "test/loss",
        "val/acc_best",
        "train/images_per_s",
        "params",
        "macs",
        "wall_time_s",
    ):
        assert key in s, key
    assert s["latency/unit"] == "ms" and s["latency/value"] > 0 and s["latency/device"]["device"] == "cpu"
    assert c["spec.name"] == "simple_cnn" and c["data.name"] == "synthetic" and c["optim.name"] == "sgd"
    epochs = sorted({h["epoch"] for h in run["history"] if "val/acc" in h})
    assert epochs == [0, 1]  # validation metrics per epoch
    assert len([h for h in run["history"] if "train/lr" in h]) == 2  # the learning rate, once per epoch


class Raise(pl.Callback):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def on_train_epoch_end(self, trainer, module) -> None:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "state", "code", "reason"),
    [
        (RuntimeError("boom"), "FAIL", 1, "RuntimeError: boom"),
        (optuna.TrialPruned("pruned at epoch 0"), "PRUNED", 2, "pruned at epoch 0"),
    ],
)
def test_a_run_that_raises_is_logged_with_state_reason_and_exit_code(
    compose, tmp_path, monkeypatch, exc, state, code, reason
):
    private_wandb(monkeypatch, tmp_path / "home")
    cfg = compose(
        "train",
        [
            *TINY_DATA,
            "logger=wandb",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "checkpoint=false",
            "test=false",
        ],
    )
    cfg["output_dir"] = str(tmp_path / "run")
    with pytest.raises(type(exc)):
        fit(cfg, callbacks=[Raise(exc)], job_type="trial", group="study", verbose=False)
    (run,) = runs_under(tmp_path / "run")
    assert run["state"] == "failed" and run["exit_code"] == code
    assert run["summary"]["state"] == state and run["summary"]["reason"] == reason
    assert run["job_type"] == "trial" and run["group"] == "study"


def test_a_diverged_run_is_logged_as_pruned(compose, tmp_path, monkeypatch):
    private_wandb(monkeypatch, tmp_path / "home")
    cfg = compose(
        "train",
        [
            *TINY_DATA,
            "logger=wandb",
            "optim.lr=1e12",
            "model.norm=none",
            "trainer.enable_progress_bar=false",
            "checkpoint=false",
            "test=false",
        ],
    )
    cfg["output_dir"] = str(tmp_path / "run")
    result = fit(cfg, verbose=False)
    (run,) = runs_under(tmp_path / "run")
    assert result.state == "PRUNED" and run["exit_code"] == 2
    assert run["summary"]["state"] == "PRUNED" and "training loss became" in run["summary"]["reason"]


def test_interruptions_are_their_own_state():
    from nas.search.guard import StopRequested
    from nas.tracking import EXIT_CODES, failure_state

    # the search's first Ctrl-C inside training; Lightning's own Ctrl-C handling (sys.exit(1)); a bare Ctrl-C
    stop = StopRequested("interrupted by the user (Ctrl-C)")
    assert failure_state(stop) == ("INTERRUPTED", "interrupted by the user (Ctrl-C)")
    assert failure_state(SystemExit(1)) == ("INTERRUPTED", "interrupted (exit status 1)")
    assert failure_state(KeyboardInterrupt()) == ("INTERRUPTED", "interrupted")
    assert EXIT_CODES["INTERRUPTED"] == 130


def _wandb_run(compose, tmp_path, *extra: str) -> dict:
    """A one-epoch offline W&B training run composed after the environment is set; its run record read back."""
    cfg = compose(
        "train",
        [*TINY_DATA, "logger=wandb", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
         "checkpoint=false", "test=false", *extra],
    )  # fmt: skip
    cfg["output_dir"] = str(tmp_path / "run")
    fit(cfg, verbose=False)
    return cfg


def test_wandb_project_entity_and_dir_come_from_the_environment(compose, tmp_path, monkeypatch):
    private_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("WANDB_PROJECT", "env-project")
    monkeypatch.setenv("WANDB_ENTITY", "env-team")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    cfg = _wandb_run(compose, tmp_path)
    assert cfg["logger"]["project"] == "env-project" and cfg["logger"]["entity"] == "env-team"
    assert not list((tmp_path / "run").rglob("offline-run-*"))  # written under WANDB_DIR instead
    (run,) = runs_under(tmp_path / "wandb-dir")
    assert run["project"] == "env-project" and run["entity"] == "env-team"


def test_an_explicit_logger_option_wins_over_the_environment(compose, tmp_path, monkeypatch):
    private_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("WANDB_PROJECT", "env-project")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    _wandb_run(compose, tmp_path, "logger.project=cli-project", f"logger.dir={tmp_path / 'cli-dir'}")
    assert not (tmp_path / "wandb-dir").exists()
    (run,) = runs_under(tmp_path / "cli-dir")
    assert run["project"] == "cli-project"
