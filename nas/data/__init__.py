"""In-memory LightningDataModules: Fashion-MNIST (default), MNIST, CIFAR-10/100, ImageFolder, synthetic.

`build_datamodule(cfg)` turns a `conf/data/<name>.yaml` dict into a data module; `validate_data_config`
checks one without reading data. Data lives in memory as uint8 tensors (on the accelerator when there is
one) and batches are sliced, augmented and normalised as whole tensors.
"""

from nas.data import cifar, idx, imagefolder, synthetic  # noqa: F401  (registers the datasets)
from nas.data.base import InMemoryDataModule, RawData, Split
from nas.data.batches import EvalBatches, Normalizer, TrainBatches
from nas.data.config import DataConfig
from nas.data.download import cache_root
from nas.data.errors import CorruptDataError, DataNotFoundError, DownloadError
from nas.data.registry import DATASETS, build_datamodule, register_dataset, validate_data_config

__all__ = [
    "DATASETS",
    "CorruptDataError",
    "DataConfig",
    "DataNotFoundError",
    "DownloadError",
    "EvalBatches",
    "InMemoryDataModule",
    "Normalizer",
    "RawData",
    "Split",
    "TrainBatches",
    "build_datamodule",
    "cache_root",
    "register_dataset",
    "validate_data_config",
]
