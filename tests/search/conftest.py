"""Shared search-test config: a tiny space, synthetic 8 px data, one epoch, fast latency, no W&B."""

from __future__ import annotations

import copy

import pytest

from tests.tiny import FAST_SEARCH, tiny_space

TINY_SPACE = tiny_space()

OVERRIDES = [
    "data=synthetic",
    "data.train_size=96",
    "data.test_size=16",
    "data.image_size=8",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "data.val_size=null",
    "logger=none",
    *FAST_SEARCH,
    "n_trials=2",
]


def compose_search(*overrides: str) -> dict:
    """conf/search.yaml composed with the test overrides (plain dict, no space yet)."""
    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR, to_plain

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_plain(compose("search", overrides=[*OVERRIDES, *overrides]))


@pytest.fixture
def tiny_space() -> dict:
    """A fresh copy of the tiny test space."""
    return copy.deepcopy(TINY_SPACE)


@pytest.fixture
def search_cfg(tmp_path):
    """A factory: the tiny search config with extra overrides, exports into tmp_path."""

    def make(*overrides: str, space: dict | None = None) -> dict:
        cfg = compose_search(*overrides)
        cfg["space"] = copy.deepcopy(space or TINY_SPACE)
        cfg["study_name"] = "tiny"
        cfg["latency"]["cache"] = str(tmp_path / "latency.sqlite")
        cfg["export_dir"] = str(tmp_path / "model" / "exported")
        return cfg

    return make


@pytest.fixture
def identity():
    """identity(space, objectives) -> a study identity for that space (macs latency, one epoch)."""
    from nas.search.study import study_identity

    def make(space, objectives=("accuracy", "latency")) -> dict:
        return study_identity(
            space=space,
            objectives=list(objectives),
            fidelity={"epochs": 1},
            data="d",
            latency={"mode": "macs"},
        )

    return make
