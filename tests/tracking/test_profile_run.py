"""The latency profile's W&B run: its tables, the MACs-vs-latency scatter plot and the figures."""

from __future__ import annotations

from experiments.profile import run_profile
from tests.tracking.helpers import private_wandb, runs_under


def net(width: int, name: str) -> dict:
    return {
        "name": name,
        "in_channels": 3,
        "num_classes": 10,
        "input_size": 16,
        "act": "relu",
        "norm": "batchnorm",
        "stem": [{"block": "conv", "channels": width}],
        "stages": [{"block": "conv", "channels": width}],
        "head": {"type": "linear", "pool": "avg"},
    }


def test_profile_run_holds_tables_and_plots(tmp_path, monkeypatch, capsys):
    private_wandb(monkeypatch, tmp_path / "home")
    report = run_profile(
        {"small": net(8, "small"), "large": net(32, "large")},
        out=tmp_path / "profile",
        batches=(1, 2),
        budget_s=5.0,
        latency={"min_repeats": 3, "max_repeats": 5, "max_time_s": 0.05},
    )
    (run,) = runs_under(tmp_path / "profile")
    s = run["summary"]
    assert run["job_type"] == "profile" and run["group"] == "profile" and run["state"] == "finished"
    assert {"device:cpu", "model:small", "model:large"} <= set(run["tags"])
    assert s["profile/rows"]["nrows"] == len(report.rows) == 4 and s["profile/models"]["nrows"] == 2
    assert run["charts"] == {"profile/macs_vs_latency": "wandb/scatter/v0"}
    for name in report.figures:
        assert s[f"figures/{name}"]["_type"] == "image-file", name
    assert s["device"]["threads"] == report.device["threads"] and s["n_models"] == 2
    assert "wandb sync" in capsys.readouterr().out
