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


@pytest.fixture
def fake_fit(monkeypatch):
    """fake_fit(accuracy_of, val_size=1000) replaces nas.fit.fit: nothing trains, the validation accuracy is
    `accuracy_of(sized spec)` (an exception it raises is raised by fit), and the run folder gets a checkpoint
    file; returns the list of run names fit was called for."""
    from pathlib import Path

    import nas.fit

    calls: list[str] = []

    def make(accuracy_of, val_size: int = 1000) -> list[str]:
        def fit(cfg, **kwargs):
            calls.append(cfg["name"])
            spec = nas.fit.resolve_spec(cfg)
            accuracy = accuracy_of(spec)
            out = Path(cfg["output_dir"])
            (out / "checkpoints").mkdir(parents=True, exist_ok=True)
            (out / "checkpoints" / "last.ckpt").write_bytes(b"weights")
            return nas.fit.RunResult(
                name=cfg["name"], output_dir=str(out), spec=spec, params=1, macs=1,
                metrics={"val/acc": accuracy}, wall_time_s=0.01, train_images_per_s=1.0, val_size=val_size,
            )  # fmt: skip

        monkeypatch.setattr(nas.fit, "fit", fit)
        return calls

    return make


def fixed(space: dict, **choices) -> dict:
    """`space` with every parameter fixed to one value (its first choice / low), or to `choices[name]` (a list)."""
    for name, p in space["params"].items():
        if "choices" in p:
            p["choices"] = list(choices.get(name, [p["choices"][0]]))
        elif name in choices:
            p.update(low=min(choices[name]), high=max(choices[name]))
        else:
            p["high"] = p["low"]
    return space
