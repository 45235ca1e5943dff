"""Multi-process trials (trainer=ddp) on two CPU processes: results and pruning decided once, for every rank.

The tests fork the ranks (`trainer.strategy=ddp_fork`: milliseconds) instead of spawning them (ddp_spawn,
trainer=ddp's default: each rank imports torch and Lightning afresh, ~10 s here). Both go through Lightning's
same multiprocessing launcher and the same pruning callback; what spawning adds (the trial travels to the
ranks by pickling) is checked separately.
"""

from __future__ import annotations

import pickle

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.loop import run_search
from nas.search.plan import SearchPlan
from nas.search.storage import check_distributed
from nas.search.study import PrunerSettings
from tests.scale.conftest import compose_search, load

DDP = ["trainer=ddp", "trainer.strategy=ddp_fork", "trainer.accelerator=cpu", "trainer.devices=2"]


def test_trainer_ddp_config():
    trainer = compose_search("trainer=ddp")["trainer"]
    assert trainer["strategy"] == "ddp_spawn" and trainer["devices"] == 2 and trainer["max_epochs"] == 3


def test_a_ddp_trial_completes_with_metrics_from_rank_zero(search_cfg, tmp_path, sqlite_url):
    cfg = search_cfg(*DDP, "n_trials=1", f"storage.url={sqlite_url}")
    result = run_search(cfg, study_dir=tmp_path / "study")
    (t,) = load(sqlite_url).trials
    assert t.state == TrialState.COMPLETE, t.user_attrs.get("reason")
    assert 0.0 <= t.user_attrs["accuracy"] <= 1.0 and result.front[0]["trial"] == 0
    assert t.user_attrs["metrics"]["val/acc"] == t.user_attrs["accuracy"]


def test_pruning_under_ddp_is_decided_by_rank_zero_and_stops_every_rank(search_cfg, tmp_path, sqlite_url):
    # Two epochs and a threshold no accuracy reaches: pruned after epoch 0, so epoch 1 never runs on any rank.
    cfg = search_cfg(
        *DDP, "n_trials=1", "objectives=[accuracy]", "pruner=threshold", "pruner.lower=1.5",
        "fidelity.epochs=2", f"storage.url={sqlite_url}",
    )  # fmt: skip
    run_search(cfg, study_dir=tmp_path / "study")
    (t,) = load(sqlite_url).trials
    assert t.state == TrialState.PRUNED and t.user_attrs["reason"] == "Trial was pruned at epoch 0."
    assert list(t.intermediate_values) == [0]  # reported once, by rank 0
    assert t.system_attrs["ddp_pl:pruned"] is True  # the decision every rank read back


def test_the_pruning_callback_survives_the_trip_to_spawned_ranks(sqlite_url):
    """ddp_spawn pickles the callback (with its trial and study) into each rank; the rank reconnects."""
    from nas.search.pruning import LightningPruning
    from nas.search.storage import with_driver

    study = optuna.create_study(storage=with_driver(sqlite_url), study_name="p", direction="maximize")
    trial = study.ask()
    copy = pickle.loads(pickle.dumps(LightningPruning(trial, monitor="val/acc")))
    copy._trial.report(0.5, step=0)
    assert study.trials[0].intermediate_values == {0: 0.5}


@pytest.mark.parametrize(
    ("trainer", "pruner", "storage", "message"),
    [
        ({"strategy": "ddp"}, {"name": "none"}, {"name": "sqlite"}, "running the whole command again"),
        ({"strategy": "ddp_spawn"}, {"name": "median"}, {"name": "journal"}, "needs an RDB storage"),
        ({"strategy": "ddp_fork"}, {"name": "median"}, {"name": "memory"}, "needs an RDB storage"),
    ],
)
def test_unworkable_multi_process_setups_are_refused(trainer, pruner, storage, message):
    with pytest.raises(ValueError, match=message):
        check_distributed(trainer, PrunerSettings.from_cfg(pruner), storage)


def test_multi_process_setup_is_checked_before_compute(search_cfg, tmp_path):
    cfg = search_cfg("+trainer.strategy=ddp", "storage=memory")
    SearchPlan.from_cfg(cfg)  # the plan itself is fine
    with pytest.raises(ValueError, match="running the whole command again"):
        run_search(cfg, study_dir=tmp_path / "study")
    assert not (tmp_path / "study" / "trials").exists()


def test_validation_loss_under_ddp_is_the_mean_over_every_rank():
    """Each rank validates half the images; the logged loss must be the mean over all of them, as on one process."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from nas.module import Classifier

    spec = {
        "name": "tiny", "in_channels": 1, "num_classes": 10, "input_size": 8, "act": "relu", "norm": "none",
        "stages": [{"block": "conv", "channels": 4, "kernel": 3}], "head": {"type": "linear"},
    }  # fmt: skip
    torch.manual_seed(0)
    model = Classifier(spec, {"name": "sgd", "lr": 0.1})
    # The second half of the images is the first half shifted, so the two ranks' losses differ a lot.
    x = torch.randn(64, 1, 8, 8)
    x[1::2] += 3.0  # DistributedSampler deals indices round-robin: rank 1 gets the odd ones
    loader = DataLoader(TensorDataset(x, torch.randint(0, 10, (64,))), batch_size=8)

    def val_loss(**trainer: object) -> float:
        t = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                       **trainer)  # fmt: skip
        return float(t.validate(model, loader, verbose=False)[0]["val/loss"])

    one = val_loss(devices=1)
    two = val_loss(devices=2, strategy="ddp_fork")
    assert two == pytest.approx(one, rel=1e-5)
