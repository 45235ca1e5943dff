"""Data configs: every conf/data YAML validates; bad names, keys, types and values fail early and clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nas.data import DATASETS, build_datamodule, validate_data_config
from nas.data.config import DataConfig

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
YAMLS = sorted(CONF.glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


def test_every_dataset_has_a_yaml_and_every_yaml_a_dataset():
    assert sorted(p.stem for p in YAMLS) == DATASETS.names()
    assert set(DATASETS.names()) == {
        "cifar10",
        "cifar100",
        "fashion_mnist",
        "imagefolder",
        "mnist",
        "synthetic",
    }


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_yaml_is_plain_complete_and_valid(path: Path, tmp_path: Path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["name"] == path.stem
    assert not any(str(k).startswith("_") for k in cfg), "plain values only (no _target_)"
    # the engine reads these three without loading data
    assert {"channels", "num_classes", "image_size"} <= set(cfg)
    cls = DATASETS.get(cfg["name"])
    assert set(cfg) == set(cls.Config.keys()), "every key documented in the YAML, and no other"
    if cfg["name"] == "imagefolder":  # needs a real folder and its class count
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        cfg.update(root=str(tmp_path), num_classes=2)
    typed = validate_data_config(cfg)
    assert isinstance(typed, DataConfig)
    dm = build_datamodule(cfg)
    assert (dm.channels, dm.num_classes, dm.image_size) == (
        cfg["channels"],
        cfg["num_classes"],
        cfg["image_size"],
    )
    assert len(dm.class_names) == dm.num_classes


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(KeyError, match="unknown dataset 'imagenet'.*cifar10.*fashion_mnist.*synthetic"):
        build_datamodule({"name": "imagenet"})
    with pytest.raises(KeyError, match="no 'name'.*fashion_mnist"):
        validate_data_config({"batch_size": 3})


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(
        ValueError, match=r"'fracton' \(did you mean 'fraction'\?\).*valid keys: .*label_noise"
    ):
        validate_data_config({**load("fashion_mnist"), "fracton": 0.5})
    # a key valid for another dataset is not valid here
    with pytest.raises(ValueError, match="'train_size'"):
        validate_data_config({"name": "mnist", "train_size": 10})


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.5])
def test_fraction_outside_0_1(value):
    with pytest.raises(ValueError, match=r"data.fraction=.* must be in \(0, 1\]"):
        validate_data_config({"name": "synthetic", "fraction": value})


@pytest.mark.parametrize("value", [-0.01, 1.0, 2])
def test_label_noise_negative_or_at_least_one(value):
    with pytest.raises(ValueError, match=r"data.label_noise=.* must be in \[0, 1\)"):
        validate_data_config({"name": "synthetic", "label_noise": value})


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("batch_size", 0, "batch_size"),
        ("batch_size", "64", "wrong type: expected int"),
        ("augment", 1, "wrong type: expected bool"),
        ("fraction", True, "wrong type"),
        ("val_fraction", 1.0, "val_fraction"),
        ("channels", 2, "1 or 3"),
        ("device", "tpu", "not a device"),
        ("mean", [0.5], "given together"),
        ("std", [0.0], "std"),
        ("seed", None, None),  # null is allowed: the run's seed
    ],
)
def test_bad_values_name_the_key(key, value, match):
    cfg = {"name": "synthetic", key: value}
    if match is None:
        validate_data_config(cfg)
        return
    with pytest.raises(ValueError, match=match):
        validate_data_config(cfg)


def test_ints_accepted_for_floats_and_lists_coerced():
    cfg = validate_data_config({"name": "synthetic", "fraction": 1, "mean": [0, 1, 0], "std": (1, 1, 1)})
    assert cfg.fraction == 1.0 and isinstance(cfg.fraction, float)
    assert cfg.mean == [0.0, 1.0, 0.0]


def test_num_classes_must_match_a_fixed_dataset():
    with pytest.raises(ValueError, match="data.num_classes=12 but Fashion-MNIST has 10 classes"):
        validate_data_config({**load("fashion_mnist"), "num_classes": 12})
    with pytest.raises(ValueError, match="has 100 classes"):
        validate_data_config({**load("cifar100"), "num_classes": 10})


def test_data_module_refuses_another_datasets_config():
    from nas.data.idx import MNIST

    with pytest.raises(ValueError, match="'cifar10' given to the 'mnist'"):
        MNIST({"name": "cifar10"})


def test_validation_reads_no_data(tmp_path: Path):
    # a root that does not exist is fine for validation: files are only looked for at prepare_data/setup
    validate_data_config({**load("fashion_mnist"), "root": str(tmp_path / "nowhere"), "download": False})


def test_hydra_configs_are_accepted_as_they_are():
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "synthetic.yaml")
    cfg.mean, cfg.std = [0.5], [0.25]  # ListConfig values
    typed = validate_data_config(cfg)
    assert typed.mean == [0.5] and typed.std == [0.25]
    assert build_datamodule(cfg).cfg == typed
