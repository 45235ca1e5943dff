"""W&B test helpers: planted secrets, offline runs in a private W&B home, runs read back with
`wandb leet inspect`, and the tiny search's configuration."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.tiny import FAST_SEARCH, tiny_space

# Planted secrets: no file the platform writes may contain them.
API_KEY = "PLANTEDKEY" + "k" * 30  # 40 characters, like a real W&B key
PASSWORD = "PLANTED-PW-7fq2"
STORAGE_ARG = f"storage.url=postgresql://nas:{PASSWORD}@db.example:5432/optuna"

TINY_SPACE = tiny_space(description="a two-stage conv net for tracking tests")
SEARCH = [
    "data=synthetic",
    "data.train_size=256",
    "data.test_size=32",
    "data.image_size=16",
    "data.batch_size=32",
    "data.eval_batch_size=64",
    "data.val_size=null",  # the search's default (2,000) is larger than this whole dataset
    "logger=wandb",
    "logger.mode=offline",
    *FAST_SEARCH,
    "n_trials=3",
    "retrain_top_k=1",
    "retrain.epochs=1",
]
WANDB_ENV = ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


def private_wandb(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Offline W&B whose staging, cache and settings live under `root` (not the user's home)."""
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    mp.delenv("WANDB_BASE_URL", raising=False)
    for var in WANDB_ENV:
        mp.setenv(var, str(root / var.lower()))


def inspect(run_dir: Path) -> dict[str, Any]:
    """An offline run read back: `wandb leet inspect --summary --json` (state, exit_code, config, summary,
    tags, name) plus, from its records, group, job_type, history rows, charts and artifacts."""

    def leet(*args: str) -> str:
        return subprocess.run(
            ["wandb", "leet", "inspect", *args, str(run_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    run = json.loads(leet("--summary", "--json"))
    records = [json.loads(line) for line in leet("--json").splitlines() if line.strip()]
    head = next(r["run"] for r in records if r["type"] == "run")
    run["group"], run["job_type"] = head.get("run_group"), head.get("job_type")
    run["history"] = [r["history"]["item"] for r in records if r["type"] == "history"]
    # custom charts (wandb.plot.*): `_wandb.visualize.<key>` config records -> {key: chart type}
    run["charts"] = {
        k.removeprefix("_wandb.visualize."): v["panel_config"]["panelDefId"]
        for r in records
        if r["type"] == "config"
        for k, v in r["config"].get("update", {}).items()
        if k.startswith("_wandb.visualize.")
    }
    run["artifacts"] = [
        {
            "name": a["name"],
            "type": a["type"],
            "files": sorted(c["path"] for c in a["manifest"]["contents"]),
            "local": {c["path"]: c.get("local_path") for c in a["manifest"]["contents"]},
            "metadata": json.loads(a.get("metadata") or "{}"),
        }
        for a in (r["artifact"] for r in records if r["type"] == "artifact")
    ]
    return run


def runs_under(root: Path) -> list[dict[str, Any]]:
    """Every offline run below `root`, read back."""
    return [inspect(p) for p in sorted(root.rglob("offline-run-*")) if p.is_dir()]


def assert_no_secret(root: Path, *secrets: str) -> None:
    """No file below `root` (run folders, .wandb logs, debug logs, records) contains any of `secrets`."""
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} written to {path}"
