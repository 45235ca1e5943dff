"""Run records on disk (config, spec, environment, git revision) and the one place secrets are masked."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MASK = "***"
_SECRET_WORDS = r"api_?key|password|passwd|secret|token|credential"
_SECRET_KEY = re.compile(rf"({_SECRET_WORDS})", re.IGNORECASE)
# scheme://user:password@host -> scheme://user:***@host (storage URLs, git remotes, proxies)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+):[^@/\s]+@")
# key=value inside a string (a command-line override, a Hydra override list): mask the value
_KV_SECRET = re.compile(rf"(?P<head>[\w.+~/-]*(?:{_SECRET_WORDS})[\w.-]*=)[^\s,'\"\]]+", re.IGNORECASE)
# `key: value` lines of a YAML file whose key names a secret
_YAML_SECRET = re.compile(
    rf"^(?P<head>\s*-?\s*[\w.-]*(?:{_SECRET_WORDS})[\w.-]*:[ \t]+)(?!null\s*$|''\s*$|\"\"\s*$)\S.*$",
    re.IGNORECASE | re.MULTILINE,
)


def redact(obj: Any) -> Any:
    """A copy of `obj` with secrets masked: passwords inside URLs, `key=value` strings whose key names a secret,
    and the values of api_key / password / secret / token fields."""
    if isinstance(obj, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return _KV_SECRET.sub(rf"\g<head>{MASK}", _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", obj))
    return obj


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Command-line arguments with secrets masked (`--password X` as well as `storage.url=...://u:pw@h`)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        secret_flag = prev.startswith("-") and "=" not in prev and _SECRET_KEY.search(prev)
        out.append(MASK if secret_flag else redact(arg))
    return out


def redact_text(text: str) -> str:
    """A YAML / log text with secrets masked (URL passwords, `key=value`, `key: value` of secret keys)."""
    return _YAML_SECRET.sub(rf"\g<head>'{MASK}'", redact(text))


def redact_files(paths: Sequence[Path]) -> list[Path]:
    """Rewrite text files in place with secrets masked (e.g. Hydra's .hydra/*.yaml); returns those changed."""
    changed = []
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        clean = redact_text(text)
        if clean != text:
            tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # per process: workers share folders
            tmp.write_text(clean)
            os.replace(tmp, path)
            changed.append(path)
    return changed


def redact_hydra_outputs(output_dir: str | Path, sweep_dir: str | Path | None = None) -> list[Path]:
    """Mask secrets (a password inside `storage.url=...`) in what Hydra saved of the command line:
    <output_dir>/.hydra/*.yaml and <sweep_dir>/multirun.yaml. Call it first thing in a Hydra main."""
    paths = sorted(Path(output_dir).glob(".hydra/*.yaml"))
    if sweep_dir is not None:
        paths.append(Path(sweep_dir) / "multirun.yaml")
    return redact_files([p for p in paths if p.is_file()])


@functools.lru_cache(maxsize=1)
def git_revision() -> dict[str, Any]:
    """The project's git commit, whether the work tree had uncommitted changes, and the origin remote with any
    credentials in it masked ("unknown" outside git). Cached: one process runs one revision."""
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
        remote = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return {"commit": rev, "dirty": bool(dirty), "remote": redact(remote) or None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None, "remote": None}


def environment() -> dict[str, Any]:
    """Versions and hardware the run used."""
    import pytorch_lightning
    import torch

    from nas.latency.fingerprint import cpu_model  # lazy, as torch: records are also written by light tools

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
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
    """Write JSON atomically (a crash never leaves a half-written record), secrets masked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # per process: search workers share a folder
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
