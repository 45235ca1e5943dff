"""A committed JSON file of finished training runs that several processes fill together.

The fidelity calibration (conf/calibration/) and the surrogate benchmark's data (conf/surrogate/) are such
files: a list of runs to do, each keyed by what decides its result, trained one by one under a file-lock claim
(nas.claims) so that one process per core splits the list, each finished run merged into the file at once
(a crash loses at most the run in progress), and re-running the command trains only what is missing.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir

from nas import fit as fitting
from nas.claims import claim
from nas.config import CONF_DIR, to_plain
from nas.identity import identity_key
from nas.search.loop import quiet
from nas.search.plan import SearchPlan

__all__ = ["compose_plan", "machine", "merge_save", "read_runs", "run_key", "stamp", "train"]


def compose_plan(overrides: list[str]) -> SearchPlan:
    """The search plan conf/search.yaml gives with `overrides`, without logging, HTML, baselines or starts."""
    quiet_run = ["logger=none", "html=false", "progress=false", "baselines.enabled=false", "storage=memory",
                 "start.references=false"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(compose("search", overrides=[*quiet_run, *overrides]))
    return SearchPlan.from_cfg(cfg)


def run_key(plan: SearchPlan, spec: Mapping[str, Any], role: str) -> str:
    """The key of training `spec` under `plan` for `role` (what decides the result, nothing else)."""
    return identity_key({"role": role, "run": plan.run_key(plan.resolved_spec(spec))})


def machine() -> str:
    """The CPU model, cores, torch version and threads: what a file's seconds were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def train(plan: SearchPlan, spec: Mapping[str, Any], out: Path, key: str, *, test: bool) -> dict[str, Any]:
    """Train `spec` at the plan's fidelity (the search's own fit path): its accuracy (test or validation),
    validation accuracy, seconds, and how busy the machine was (threads, load average at the start: another
    worker on the other core counts 1)."""
    cfg = plan.run_config(dict(spec), output_dir=str(out / "runs" / key), name=f"run-{key}")
    cfg.update(logger={"name": "none"}, checkpoint=False, test=test)
    busy = {"threads": torch.get_num_threads(), "load": round(os.getloadavg()[0], 1)}
    with quiet():
        r = fitting.fit(cfg, verbose=False)  # via the module: a test counts the calls
    return {
        "accuracy": r.metrics.get("test/acc" if test else plan.metric),
        "val_accuracy": r.metrics.get(plan.metric),
        "seconds": round(r.wall_time_s, 2),
        **busy,
    }


def read_runs(path: Path) -> dict[str, Any]:
    """The runs the file holds now (other workers may have added some)."""
    try:
        return json.loads(path.read_text()).get("runs", {})
    except (OSError, json.JSONDecodeError):
        return {}


def stamp(doc: dict[str, Any], command: str) -> None:
    """Record in `doc` the command that fills it, the machine and the date."""
    doc["command"] = command
    doc["machine"] = machine()
    doc["updated"] = datetime.date.today().isoformat()


def merge_save(path: Path, doc: dict[str, Any], *, where: str = "the file's folder") -> None:
    """Write `doc` with the runs already in the file merged in, under a lock, atomically (a reader never sees
    half a file; two workers never lose each other's runs)."""
    with claim(path.parent / f".{path.name}.lock", wait=True, where=where):
        for key, run in read_runs(path).items():  # in place: the caller keeps adding to this dict
            doc["runs"].setdefault(key, run)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        tmp.replace(path)
