"""Shared fixtures: Hydra composition of the project's configs, offline W&B, small synthetic data."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
# Test tensors are tiny: one intra-op thread is faster than two fighting over a shared 2-core machine. The
# commands the tests start inherit it (OMP_NUM_THREADS), as the suite runs one worker per core.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_SILENT", "true")

# Small, fast synthetic data for end-to-end tests (a few hundred 16 px images).
TINY_DATA = [
    "data=synthetic",
    "data.train_size=320",
    "data.test_size=64",
    "data.image_size=16",
    "data.batch_size=32",
    "data.eval_batch_size=64",
]


@pytest.fixture
def compose():
    """compose(config_name, overrides) -> plain dict, from the project's conf/ with Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from nas.config import CONF_DIR, to_plain

    def _compose(config_name: str, overrides: list[str] | None = None) -> dict:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return to_plain(hydra_compose(config_name=config_name, overrides=overrides or []))

    return _compose
