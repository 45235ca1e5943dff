"""Data configs as typed dataclasses: the keys every dataset honours, validated before any data is read.

A config is the plain dict of a `conf/data/<name>.yaml` file. `DataConfig.from_dict` refuses unknown keys
(listing the valid ones), wrong types and out-of-range values with a message naming the `data.<key>`, so a
bad config fails in milliseconds rather than after loading or training.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch

C = TypeVar("C", bound="DataConfig")


@dataclasses.dataclass
class DataConfig:
    """Options every dataset honours (see conf/data/*.yaml for what each key means)."""

    name: str = ""
    root: str | None = None  # where the files are; None = the dataset's default places
    download: bool = True  # fetch into the cache (with checksums) when not found and the network allows
    # Shape of what the model sees; None = the dataset's own. The engine reads these from the YAML.
    channels: int | None = None  # 1 or 3 (grey <-> RGB converted once at load)
    num_classes: int | None = None  # must match the dataset's (checked); None = the dataset's
    image_size: int | None = None  # square side in pixels; resized once at load when it differs
    # Randomness. `seed` orders and augments batches (per epoch); `split_seed` (None = seed) picks the
    # validation split, the `fraction` subset and the noisy labels.
    seed: int | None = 0  # None = 0 here; nas.fit fills in the run's seed
    split_seed: int | None = None
    # Splits and data-quality knobs
    val_fraction: float = 0.1  # stratified share of the training set held out for validation, [0, 1)
    val_size: int | None = None  # exact validation count; overrides val_fraction when set
    fraction: float = 1.0  # stratified share of the (post-validation) training split kept, (0, 1]
    label_noise: float = 0.0  # share of training labels replaced by a different class, [0, 1)
    # Augmentation (training batches only): random crop from a zero-padded image + horizontal flip
    augment: bool = True
    crop_padding: int = 4  # pixels of padding on each side before the random crop; 0 = no crop
    flip: bool = True  # random horizontal flips (with augment)
    # Normalisation: (x/255 - mean) / std per channel; mean/std None = computed on the training split
    normalize: bool = True
    mean: list[float] | None = None
    std: list[float] | None = None
    # Batching
    batch_size: int = 128
    eval_batch_size: int = 1024
    drop_last: bool = True  # drop the last partial training batch
    # where the uint8 tensors live: auto (the Trainer's device, else cuda if present), cpu, cuda[:N]
    device: str = "auto"

    @classmethod
    def keys(cls) -> list[str]:
        """The valid config keys."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[C], cfg: Mapping[str, Any]) -> C:
        """A validated config from a plain mapping (unknown keys, bad types or values -> ValueError)."""
        if not isinstance(cfg, Mapping):
            raise TypeError(f"a data config must be a mapping of keys to values, got {type(cfg).__name__}")
        valid = cls.keys()
        unknown = [k for k in cfg if k not in valid]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(str(k), valid, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(
                f"unknown data config key(s) {', '.join(hints)} for dataset {cfg.get('name', '?')!r}; "
                f"valid keys: {', '.join(valid)}"
            )
        hints_by_name = typing.get_type_hints(cls)
        values = {}
        for key, value in cfg.items():
            values[key] = _coerce(key, value, hints_by_name[key])
        out = cls(**values)
        out.validate()
        return out

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (what a checkpoint or run record stores)."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Range checks; raises ValueError naming the key, the value and what is allowed."""
        _check(
            0.0 < self.fraction <= 1.0,
            "fraction",
            self.fraction,
            "in (0, 1] (share of the training split kept)",
        )
        _check(
            0.0 <= self.label_noise < 1.0,
            "label_noise",
            self.label_noise,
            "in [0, 1) (share of training labels replaced by a different class)",
        )
        _check(0.0 <= self.val_fraction < 1.0, "val_fraction", self.val_fraction, "in [0, 1)")
        if self.val_size is not None:
            _check(self.val_size >= 0, "val_size", self.val_size, ">= 0 (or null to use val_fraction)")
        if self.channels is not None:
            _check(
                self.channels in (1, 3), "channels", self.channels, "1 or 3 (or null for the dataset's own)"
            )
        if self.num_classes is not None:
            _check(self.num_classes >= 2, "num_classes", self.num_classes, ">= 2")
        if self.image_size is not None:
            _check(self.image_size >= 1, "image_size", self.image_size, ">= 1 pixel")
        _check(self.crop_padding >= 0, "crop_padding", self.crop_padding, ">= 0 pixels")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        _check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, ">= 1")
        for key in ("mean", "std"):
            stat = getattr(self, key)
            if stat is None:
                continue
            n = self.channels
            _check(
                len(stat) >= 1 and (n is None or len(stat) in (1, n)),
                key,
                stat,
                f"a list of 1{' or ' + str(n) if n and n > 1 else ''} numbers (per channel), in [0, 1] units",
            )
        if self.std is not None:
            _check(all(s > 0 for s in self.std), "std", self.std, "all > 0")
        if (self.mean is None) != (self.std is None):
            raise ValueError("data.mean and data.std must be given together (or both null to compute them)")
        parse_device(self.device)


def parse_device(device: str) -> str:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps` (ValueError otherwise); returns it unchanged."""
    if device == "auto":
        return device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"data.device={device!r} is not a device; valid: auto, cpu, cuda, cuda:N, mps")
    return device


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"data.{key}={value!r} is out of range: it must be {allowed}")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """`value` checked against the annotation `hint` (ints accepted for floats; bools never for numbers)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ValueError(f"data.{key} must not be null")
    for opt in options:
        if opt is type(None):
            continue
        origin = typing.get_origin(opt)
        if origin is list:
            if (
                isinstance(value, Sequence)
                and not isinstance(value, (str, bytes))
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            ):
                return [float(v) for v in value]
            continue
        if opt is bool:
            if isinstance(value, bool):
                return value
            continue
        if opt is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            continue
        if opt is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            continue
        if opt is str:
            if isinstance(value, str):
                return value
            continue
    names = " or ".join(_type_name(o) for o in options)
    raise ValueError(f"data.{key}={value!r} has the wrong type: expected {names}")


def _type_name(t: Any) -> str:
    if t is type(None):
        return "null"
    if typing.get_origin(t) is list:
        return "a list of numbers"
    return getattr(t, "__name__", str(t))
