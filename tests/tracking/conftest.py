"""Fixtures: a tiny search (synthetic 16 px data, 1 epoch, 3 trials) logged to W&B offline, whose runs and
study several tracking tests read."""

from __future__ import annotations

import copy

import pytest

from tests.tracking.helpers import API_KEY, PASSWORD, SEARCH, STORAGE_ARG, TINY_SPACE, private_wandb


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory):
    """A 3-trial search (its best front architecture retrained) logged to W&B offline, with secrets planted
    in the environment, the command line and the config; returns (study folder, SearchResult, printed lines,
    W&B home)."""
    import sys

    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR, to_plain
    from nas.search.loop import run_search

    root = tmp_path_factory.mktemp("search")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(compose("search", overrides=SEARCH))
    cfg["space"] = copy.deepcopy(TINY_SPACE)
    cfg["study_name"] = "tiny"
    cfg["latency"]["cache"] = str(root / "latency.sqlite")
    cfg["export_dir"] = str(root / "exported")
    cfg["onnx"] = True  # the summary run's front artifact holds the ONNX files
    # a careless user: a secret field and a URL with a password inside the logged config
    cfg["logger"]["api_key"] = API_KEY
    cfg["logger"]["notes"] = f"mirror at https://nas:{PASSWORD}@mirror.example/runs"
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        private_wandb(mp, root / "wandb-home")
        mp.setenv("WANDB_API_KEY", API_KEY)
        mp.setattr(sys, "argv", ["nas.search", "+space=tiny", STORAGE_ARG, f"logger.api_key={API_KEY}"])
        result = run_search(cfg, study_dir=root / "study", echo=lines.append)
    return root / "study", result, lines, root / "wandb-home"
