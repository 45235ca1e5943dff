"""The dataset registry: config name -> data module class, and the one function that builds a data module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from blocks.registry import Registry
from nas.data.base import InMemoryDataModule
from nas.data.config import DataConfig

DATASETS = Registry("dataset")


def register_dataset(name: str) -> Callable[[type[InMemoryDataModule]], type[InMemoryDataModule]]:
    """Register a data module class under `name` (also its `name` attribute); duplicates are refused."""

    def deco(cls: type[InMemoryDataModule]) -> type[InMemoryDataModule]:
        DATASETS.register(name)(cls)
        cls.name = name
        return cls

    return deco


def _dataset_class(cfg: Mapping[str, Any]) -> type[InMemoryDataModule]:
    if not isinstance(cfg, Mapping):
        raise TypeError(
            f"a data config must be a mapping (conf/data/<name>.yaml as a dict), got {type(cfg).__name__}"
        )
    name = cfg.get("name")
    if not name:
        raise KeyError(f"the data config has no 'name'; valid datasets: {', '.join(DATASETS.names())}")
    return DATASETS.get(str(name))


def validate_data_config(cfg: Mapping[str, Any]) -> DataConfig:
    """Check a data config without loading any data; returns it typed (KeyError/ValueError on problems)."""
    return _dataset_class(cfg).validated_config(cfg)


def build_datamodule(cfg: Mapping[str, Any]) -> InMemoryDataModule:
    """The data module a config names (`cfg['name']`), validated; data is read at `prepare_data`/`setup`."""
    return _dataset_class(cfg)(cfg)
