"""Run records (config, spec, metrics, environment, git revision) and the experiment loggers (W&B, CSV)."""

from __future__ import annotations

import json
import netrc
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LOGGERS = ("wandb", "csv", "none")
WANDB_MODES = ("auto", "online", "offline", "disabled")
_SECRET_KEY = re.compile(r"(api_?key|password|passwd|secret|token)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+):[^@/\s]+@")


def redact(obj: Any) -> Any:
    """A copy of `obj` with secrets masked: passwords inside URLs and values of key/password/token fields."""
    if isinstance(obj, dict):
        return {
            k: ("***" if isinstance(k, str) and _SECRET_KEY.search(k) and v else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return _URL_PASSWORD.sub(r"\g<head>:***@", obj)
    return obj


def git_revision() -> dict[str, Any]:
    """The project's git commit and whether the work tree had uncommitted changes ("unknown" outside git)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return {"commit": rev, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def environment() -> dict[str, Any]:
    """Versions and hardware the run used."""
    import pytorch_lightning
    import torch

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a crash never leaves a half-written record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(redact(obj), indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def save_run_record(out: Path, cfg: dict[str, Any], spec: dict[str, Any]) -> None:
    """Save the resolved config, the spec, the environment and the git revision before training starts."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(redact(cfg), sort_keys=False))
    write_json(out / "spec.json", spec)
    write_json(out / "env.json", environment())
    write_json(out / "git.json", git_revision())


def wandb_api_key_present() -> bool:
    """Whether an API key is configured (environment or ~/.netrc), i.e. online logging can work."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """auto -> online with an API key, offline without; explicit modes pass through (env WANDB_MODE wins)."""
    if mode not in WANDB_MODES:
        raise ValueError(f"unknown logger.mode {mode!r}; valid modes: {', '.join(WANDB_MODES)}")
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled", "dryrun"):
        return "offline" if env == "dryrun" else env
    if mode == "auto":
        return "online" if wandb_api_key_present() else "offline"
    return mode


def validate_logger(cfg: dict[str, Any]) -> None:
    name = cfg.get("name", "none")
    if name not in LOGGERS:
        raise ValueError(f"unknown logger {name!r}; valid loggers: {', '.join(LOGGERS)}")
    if name == "wandb":
        resolve_wandb_mode(cfg.get("mode", "auto"))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: W&B's config table filters better on flat keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def make_logger(
    cfg: dict[str, Any],
    out: Path,
    run_config: dict[str, Any],
    *,
    name: str,
    group: str | None = None,
    job_type: str = "train",
    tags: list[str] | None = None,
):
    """The Lightning logger the config asks for (None for `none`). W&B never blocks on a missing network."""
    validate_logger(cfg)
    kind = cfg.get("name", "none")
    if kind == "none":
        return None
    if kind == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(out), name="csv", version="")
    from pytorch_lightning.loggers import WandbLogger

    mode = resolve_wandb_mode(cfg.get("mode", "auto"))
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(
        project=cfg.get("project", "cnn-nas"),
        entity=cfg.get("entity"),
        name=name,
        group=group or cfg.get("group"),
        job_type=job_type,
        tags=sorted(set((cfg.get("tags") or []) + (tags or []))),
        save_dir=str(out),
        mode=mode,
        config=flatten(redact(run_config)),
        settings={"init_timeout": float(cfg.get("init_timeout", 60)), "console": "off"},
    )
