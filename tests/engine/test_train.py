"""End-to-end training through fit(): records, checkpoint round trip, W&B offline, bad input, real data."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from nas.fit import fit
from nas.module import Classifier
from tests.conftest import TINY_DATA

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def tiny_cfg(compose, tmp_path, *extra: str) -> dict:
    cfg = compose(
        "train",
        [*TINY_DATA, "logger=none", "trainer.max_epochs=2", "trainer.enable_progress_bar=false", *extra],
    )
    cfg["output_dir"] = str(tmp_path / "run")
    return cfg


def test_fit_trains_records_and_checkpoint_rebuilds_model(compose, tmp_path):
    result = fit(tiny_cfg(compose, tmp_path, "optim.lr=0.1"), verbose=False)
    out = Path(result.output_dir)
    for name in ("config.yaml", "spec.json", "metrics.json", "env.json", "git.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["val/acc"] == pytest.approx(result.metrics["val/acc"])
    assert {"val/acc", "val/acc5", "val/acc_best", "test/acc", "test/acc5", "train/loss_epoch"} <= set(
        result.metrics
    )
    # Two epochs on learnable data: better than chance (10 classes), and top-5 >= top-1.
    assert result.metrics["val/acc"] > 0.2
    assert result.metrics["test/acc5"] >= result.metrics["test/acc"]
    assert result.params > 0 and result.macs > 0 and result.train_images_per_s > 0
    assert json.loads((out / "spec.json").read_text())["input_size"] == 16
    # The checkpoint alone rebuilds the model, with identical outputs.
    model = Classifier.load_from_checkpoint(result.checkpoint, map_location="cpu").eval()
    again = Classifier.load_from_checkpoint(result.checkpoint, map_location="cpu").eval()
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(model(x), again(x))
    assert model.hparams.spec == result.spec


def test_same_seed_same_result(compose, tmp_path):
    a = fit(
        tiny_cfg(compose, tmp_path / "a", "trainer.max_epochs=1", "test=false", "checkpoint=false"),
        verbose=False,
    )
    b = fit(
        tiny_cfg(compose, tmp_path / "b", "trainer.max_epochs=1", "test=false", "checkpoint=false"),
        verbose=False,
    )
    assert a.metrics["val/loss"] == pytest.approx(b.metrics["val/loss"], rel=1e-5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.name=rmsprop", "valid optimizers"),
        ("optim.policy=exp", "valid policies"),
        ("data.fraction=1.5", "fraction"),
        ("data.label_noise=1.0", "label_noise"),
        ("logger.name=comet", "valid loggers"),
        ("+trainer.max_epoch=3", "unknown trainer keys"),
    ],
)
def test_bad_input_fails_before_training(compose, tmp_path, override, message):
    cfg = tiny_cfg(compose, tmp_path, override)
    with pytest.raises((ValueError, KeyError), match=message):
        fit(cfg, verbose=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_unknown_block_in_model_lists_valid_blocks(compose, tmp_path):
    cfg = tiny_cfg(compose, tmp_path)
    cfg["model"]["stages"][0]["block"] = "resnet_basic_typo"
    with pytest.raises(KeyError, match="valid blocks: .*basic"):
        fit(cfg, verbose=False)


def test_wandb_offline_run_is_written_and_reads_back(compose, tmp_path):
    cfg = tiny_cfg(
        compose, tmp_path, "logger=wandb", "logger.mode=offline", "trainer.max_epochs=1", "checkpoint=false"
    )
    result = fit(cfg, verbose=False)
    runs = sorted((Path(result.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    out = subprocess.run(
        ["wandb", "leet", "inspect", "--summary", "--json", str(runs[0])],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ},
    )
    summary = json.loads(out.stdout)
    text = json.dumps(summary)
    for key in ("val/acc", "train/loss_epoch", "test/acc"):
        assert key in text, key
    assert "macs" in text and "simple_cnn" in text


@pytest.mark.skipif(not FASHION.exists() and not os.environ.get("CI"), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist_reaches_stated_accuracy(compose, tmp_path):
    """One epoch of the default small CNN on 20 % of Fashion-MNIST reaches >= 65 % validation accuracy (0.69 seen)."""
    cfg = compose(
        "train",
        [
            "logger=none",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "data.fraction=0.2",
            "checkpoint=false",
            "test=false",
        ],
    )
    cfg["output_dir"] = str(tmp_path / "run")
    result = fit(cfg, verbose=False)
    assert result.metrics["val/acc"] >= 0.65


def test_diverging_loss_is_recorded_as_pruned_not_a_crash(compose, tmp_path):
    cfg = tiny_cfg(compose, tmp_path, "optim.lr=1e12", "model.norm=none", "checkpoint=false")
    result = fit(cfg, verbose=False)
    assert result.state == "PRUNED"
    assert "training loss became" in result.reason and "lower optim.lr" in result.reason
    saved = json.loads((Path(result.output_dir) / "metrics.json").read_text())
    assert saved["state"] == "PRUNED" and saved["reason"] == result.reason
