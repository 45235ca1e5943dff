"""The one place Hydra configs become plain containers and external objects (the Trainer) are built."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# Keys of the `trainer` group that are ours rather than pytorch_lightning.Trainer's.
OWN_TRAINER_KEYS = ("channels_last", "compile")


def to_plain(cfg: Any) -> dict[str, Any]:
    """A resolved, plain-dict copy of a Hydra/OmegaConf config (or of a dict)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return copy.deepcopy(dict(cfg))


def resolve_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    """The model spec sized for the dataset: in_channels, num_classes and input_size come from `data`."""
    spec = copy.deepcopy(cfg["model"])
    data = cfg["data"]
    spec["in_channels"] = int(data["channels"])
    spec["num_classes"] = int(data["num_classes"])
    spec["input_size"] = int(data["image_size"])
    return spec


def make_trainer(
    trainer_cfg: dict[str, Any], *, logger: Any, callbacks: list[Any], out: Path, **overrides: Any
):
    """A pytorch_lightning.Trainer from the `trainer` config group (unknown keys -> a clear error)."""
    import inspect

    import pytorch_lightning as pl

    kwargs = {k: v for k, v in trainer_cfg.items() if k not in OWN_TRAINER_KEYS}
    kwargs.update(overrides)
    valid = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    unknown = set(kwargs) - valid
    if unknown:
        raise ValueError(
            f"unknown trainer keys {sorted(unknown)}; valid keys are pytorch_lightning.Trainer's arguments "
            f"plus {', '.join(OWN_TRAINER_KEYS)}"
        )
    return pl.Trainer(
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=str(out),
        **kwargs,
    )
