"""What decides a training run's result: the identity a run cache or a resumed study compares, and its hash.

A resolved training config (what `nas.fit.fit` takes) holds both what changes the result (model, data
options such as batch_size and fraction, optimiser, trainer settings such as precision, gradient clipping,
limit_train_batches, accumulate_grad_batches, deterministic, the seed) and what only changes how a run is
shown or where its files are (progress bar, logging cadence, data paths, download, logger, output folder).
The identity is the first without the second, plus the device the run trains on: the same config on a CPU and
on a GPU gives different numbers, so a cache shared by both must keep them apart.

Unknown keys are part of the identity: a key this module does not know costs at worst a cache miss, never a
reused result that was trained differently.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Top-level keys of a run config that never change what is trained or measured.
NON_RESULT_SECTIONS = ("logger", "output_dir", "name", "checkpoint", "resume_dir", "hydra", "wandb")
# Keys inside a section that never change the result. `trainer.accelerator` is replaced by the resolved
# device; `data.device` only says where the uint8 tensors live (same numbers on the trainer's device).
NON_RESULT_KEYS = {
    "data": ("root", "download", "device", "cache"),
    "trainer": (
        "accelerator",
        "enable_progress_bar",
        "enable_model_summary",
        "enable_checkpointing",
        "log_every_n_steps",
        "num_sanity_val_steps",
        "default_root_dir",
    ),
}


def resolved_device(trainer_cfg: Mapping[str, Any] | None) -> str:
    """The device type a run trains on: "cpu", "cuda" or "mps", from `trainer.accelerator` and this machine."""
    import torch

    acc = str((trainer_cfg or {}).get("accelerator", "auto")).lower()
    if acc == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return "cuda" if acc == "gpu" else acc


def training_identity(cfg: Mapping[str, Any], *, device: str | None = None) -> dict[str, Any]:
    """The part of a resolved training config that decides its result, plus `device` (default: resolved here)."""
    out: dict[str, Any] = {}
    for section, value in cfg.items():
        if section in NON_RESULT_SECTIONS:
            continue
        drop = NON_RESULT_KEYS.get(section)
        if drop and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k not in drop}
        out[section] = copy.deepcopy(value)
    out["device"] = device or resolved_device(cfg.get("trainer"))
    return out


def identity_key(cfg: Mapping[str, Any], *, device: str | None = None, length: int = 20) -> str:
    """A stable hash (hex, `length` characters) of `training_identity(cfg, device=device)`."""
    blob = json.dumps(
        training_identity(cfg, device=device), sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
