"""A tiny ablation read back from W&B: one run per (arm, seed) with its arm's latency, one summary run with
the result table and bar charts with CIs, all in the ablation's group."""

from __future__ import annotations

from experiments.ablate import run_ablation
from experiments.ablation.config import composer, plain
from tests.tracking.helpers import inspect, private_wandb

# 128 training images of 16 px, 1 epoch, 2 seeds: seconds per run
TINY = [
    "data=synthetic",
    "data.train_size=128",
    "data.test_size=32",
    "data.image_size=16",
    "data.batch_size=32",
    "logger=wandb",
    "latency.mode=macs",
    "epochs=1",
    "seeds=2",
    "name=abl",
]


def test_arms_and_summary_runs(tmp_path, monkeypatch):
    private_wandb(monkeypatch, tmp_path / "home")
    overrides = [*TINY, f"cache_dir={tmp_path / 'cache'}", "pooling=avg"]
    with composer() as compose:
        cfg = plain(compose(overrides))
    lines: list[str] = []
    result = run_ablation(cfg, overrides, out_dir=tmp_path / "out", echo=lines.append)

    arms = [inspect(p) for p in sorted((tmp_path / "cache").rglob("offline-run-*"))]
    assert len(arms) == 4
    macs = {a["label"]: a["macs"] for a in [result["baseline"], *result["variants"]]}
    for run in arms:
        s = run["summary"]
        arm = run["name"].rsplit("-seed", 1)[0]
        assert run["group"] == "abl" and run["job_type"] == "ablation-arm"
        assert {"data:synthetic", "axis:pooling"} <= set(run["tags"])
        assert s["state"] == "COMPLETE" and run["exit_code"] == 0
        assert "test/acc" in s and "val/acc" in s and s["train/images_per_s"] > 0
        assert s["latency/value"] == macs[arm] == s["macs"] and s["latency/unit"] == "MACs"
        assert run["config"]["data.image_size"] == 16 and run["config"]["spec.name"] == "caffenet_ablate"
    assert sorted(r["name"] for r in arms) == [
        "baseline-seed0",
        "baseline-seed1",
        "pooling=avg-seed0",
        "pooling=avg-seed1",
    ]

    (summary,) = [inspect(p) for p in (tmp_path / "out").glob("wandb/offline-run-*")]
    s = summary["summary"]
    assert summary["group"] == "abl" and summary["job_type"] == "summary" and summary["name"] == "abl-summary"
    assert {"data:synthetic", "axis:pooling"} <= set(summary["tags"])
    assert s["ablation/table"]["nrows"] == 2 and s["ablation/plot"]["_type"] == "image-file"
    assert summary["charts"] == {"ablation/mean_bar": "wandb/bar/v0", "ablation/delta_bar": "wandb/bar/v0"}
    variant = result["variants"][0]
    mean = sum(v for _, v in variant["values"]) / 2
    assert abs(s["mean/pooling=avg"] - mean) < 1e-9
    assert "delta/pooling=avg" in s and len(s["ci/pooling=avg"]) == 2 and s["n_arms"] == 2
    assert any("wandb sync" in line and "/*/wandb/offline-run-*" in line for line in lines)
