"""The in-memory LightningDataModule every dataset shares: split, subset, noise, resize, normalise, batch.

A dataset subclass only finds its files (`prepare_data`) and decodes them into uint8 tensors (`_load`).
Everything else happens here, once, in `setup()`:

1. channels converted (grey <-> RGB) to `channels`;
2. a seeded, stratified validation split of the training set (`val_size` or `val_fraction`);
3. normalisation statistics from that training split (unless `mean`/`std` are given), so they do not
   change with `fraction` or `label_noise`;
4. a stratified `fraction` of the training split kept, then exactly round(`label_noise` * n) of its
   labels replaced by a different class (validation and test labels stay clean);
5. images resized once to `image_size`, moved to the device, and the training set zero-padded for crops.

Batches are then slices of those tensors (see nas.data.batches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from nas.data.batches import EvalBatches, Normalizer, TrainBatches
from nas.data.config import DataConfig
from nas.data.errors import CorruptDataError
from nas.data.images import channel_stats, resize, to_channels
from nas.data.splits import add_label_noise, split_counts, subset, train_val_split


@dataclasses.dataclass
class RawData:
    """A decoded dataset at its native size: uint8 (N, C, H, W) images and int64 (N,) labels, on the CPU."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str  # where it was read from (for run records)
    class_names: list[str] | None = None  # when the files name their classes


@dataclasses.dataclass
class Split:
    """One split in memory: uint8 images (N, C, S, S) and int64 targets on the data device."""

    images: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor | None = None  # positions in the dataset's original training set (train / val)
    clean_targets: torch.Tensor | None = None  # train only: labels before label noise
    noisy: torch.Tensor | None = None  # train only: bool mask of the labels label noise changed

    def __len__(self) -> int:
        return self.targets.numel()


class InMemoryDataModule(pl.LightningDataModule):
    """A dataset held in memory as uint8 tensors, batched as whole tensors (subclasses: one per dataset).

    Construct with a config mapping (a `conf/data/<name>.yaml` as a dict) and/or keyword overrides.
    `num_classes`, `channels`, `image_size` and `class_names` are known without loading; the split sizes,
    `mean` and `std` after `setup()`.
    """

    name: ClassVar[str] = ""  # registry name, set by @register_dataset
    title: ClassVar[str] = ""  # human-readable name for messages
    Config: ClassVar[type[DataConfig]] = DataConfig
    native_channels: ClassVar[int] = 1
    native_image_size: ClassVar[int | None] = None
    native_num_classes: ClassVar[int | None] = None
    default_class_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Mapping[str, Any] | DataConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.cfg = self.validated_config(cfg, **overrides)
        self.save_hyperparameters(self.cfg.to_dict())
        self.splits: dict[str, Split] = {}
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.source: str | None = None
        self._loaded_class_names: list[str] | None = None
        self._train_store: torch.Tensor | None = None  # training images, zero-padded when cropping
        self._normalizer: Normalizer | None = None

    # ----- configuration -------------------------------------------------------------------------------

    @classmethod
    def validated_config(
        cls, cfg: Mapping[str, Any] | DataConfig | None = None, **overrides: Any
    ) -> DataConfig:
        """The typed, validated config for this dataset (ValueError naming the key on any problem)."""
        d = cfg.to_dict() if isinstance(cfg, DataConfig) else dict(cfg or {})
        d.update(overrides)
        if d.get("name") not in (None, "", cls.name):
            raise ValueError(f"config for dataset {d['name']!r} given to the {cls.name!r} data module")
        d["name"] = cls.name
        out = cls.Config.from_dict(d)
        cls.check_config(out)
        known = cls.known_train_images(out)
        if known is not None:  # the validation split must leave training images: refused now, not per run
            split_counts(known, val_fraction=out.val_fraction, val_size=out.val_size)
        return out

    @classmethod
    def known_train_images(cls, cfg: DataConfig) -> int | None:
        """Training images before the validation split when the config alone says (None: known after loading)."""
        return None

    @classmethod
    def check_config(cls, cfg: DataConfig) -> None:
        """Dataset-specific checks (the fixed class count by default)."""
        if cfg.num_classes is not None and cls.native_num_classes is not None:
            if cfg.num_classes != cls.native_num_classes:
                raise ValueError(
                    f"data.num_classes={cfg.num_classes} but {cls.title or cls.name} has "
                    f"{cls.native_num_classes} classes; set it to {cls.native_num_classes} (or null)"
                )

    # ----- what the engine reads without loading -------------------------------------------------------

    @property
    def num_classes(self) -> int:
        """Number of classes (model output size)."""
        if self.cfg.num_classes is not None:
            return self.cfg.num_classes
        if self.native_num_classes is None:
            raise RuntimeError(f"{self.name}: the class count is not known before setup()")
        return self.native_num_classes

    @property
    def channels(self) -> int:
        """Image channels the model sees."""
        return self.cfg.channels if self.cfg.channels is not None else self.native_channels

    @property
    def image_size(self) -> int:
        """Square image side the model sees, in pixels."""
        size = self.cfg.image_size if self.cfg.image_size is not None else self.native_image_size
        if size is None:
            raise ValueError(
                f"data.image_size must be set for dataset {self.name!r} (its images vary in size)"
            )
        return size

    @property
    def class_names(self) -> list[str]:
        """One name per class, in label order."""
        if self._loaded_class_names is not None:
            return list(self._loaded_class_names)
        if self.default_class_names:
            return list(self.default_class_names)
        return [str(i) for i in range(self.num_classes)]

    # ----- sizes after setup -----------------------------------------------------------------------------

    def _split(self, name: str) -> Split:
        if not self.splits:
            raise RuntimeError(f"{self.name}: call setup() before asking for the {name} split")
        return self.splits[name]

    @property
    def train_size(self) -> int:
        """Training images (after the validation split, `fraction`)."""
        return len(self._split("train"))

    @property
    def val_size(self) -> int:
        """Validation images."""
        return len(self._split("val"))

    @property
    def test_size(self) -> int:
        """Test images."""
        return len(self._split("test"))

    # ----- Lightning hooks -------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Find the files (downloading them if allowed); a DataNotFoundError says how to get them."""
        self._locate()

    def _locate(self) -> Any:
        """Find (or download) the dataset's files and return what `_load` needs (subclasses)."""
        return None

    def _load(self) -> RawData:
        """Decode the dataset into uint8 CPU tensors at native size (subclasses)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Load and prepare every split once (later calls only move the tensors if the device changed)."""
        device = self._device()
        if self.splits:
            if self.splits["test"].images.device != device:
                self._to(device)
            return
        raw = self._load()
        self._check_raw(raw)
        self._build(raw, device)

    def train_dataloader(self) -> TrainBatches:
        """Shuffled, augmented training batches (x float32 NCHW, y int64), reshuffled per epoch."""
        cfg, split = self.cfg, self._split("train")
        rank, world = self._rank_world()
        if split.targets.numel() // world < cfg.batch_size and cfg.drop_last:
            raise ValueError(
                f"{self.name}: the training split has {split.targets.numel()} images, fewer than "
                f"data.batch_size={cfg.batch_size} with data.drop_last=true, so an epoch has no batch; "
                "lower data.batch_size, raise data.fraction, or set data.drop_last=false"
            )
        return TrainBatches(
            self._train_store,
            split.targets,
            batch_size=cfg.batch_size,
            normalizer=self._normalizer,
            seed=self._seed,
            drop_last=cfg.drop_last,
            padding=self._padding,
            flip=cfg.augment and cfg.flip,
            rank=rank,
            world_size=world,
        )

    def val_dataloader(self) -> EvalBatches:
        """Validation batches in order, no augmentation."""
        return self._eval("val")

    def test_dataloader(self) -> EvalBatches:
        """Test batches in order, no augmentation."""
        return self._eval("test")

    def predict_dataloader(self) -> EvalBatches:
        """The test batches."""
        return self._eval("test")

    def describe(self) -> dict[str, Any]:
        """What a run record stores about the data: source, sizes, shape, statistics, noise."""
        out: dict[str, Any] = {
            "name": self.name,
            "num_classes": self.num_classes,
            "channels": self.channels,
            "image_size": self.image_size,
        }
        if self.splits:
            train = self.splits["train"]
            out.update(
                source=self.source,
                train_size=self.train_size,
                val_size=self.val_size,
                test_size=self.test_size,
                noisy_labels=int(train.noisy.sum()) if train.noisy is not None else 0,
                mean=self.mean,
                std=self.std,
                device=str(train.images.device),
            )
        return out

    # ----- internals ---------------------------------------------------------------------------------------

    @property
    def _seed(self) -> int:
        return int(self.cfg.seed) if self.cfg.seed is not None else 0

    @property
    def _split_seed(self) -> int:
        return int(self.cfg.split_seed) if self.cfg.split_seed is not None else self._seed

    @property
    def _padding(self) -> int:
        return self.cfg.crop_padding if self.cfg.augment else 0

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), max(1, int(trainer.world_size))

    def _device(self) -> torch.device:
        want = self.cfg.device
        if want == "auto":
            trainer = self.trainer
            if trainer is not None:
                return torch.device(trainer.strategy.root_device)
            if torch.cuda.is_available():
                return torch.device("cuda", torch.cuda.current_device())
            return torch.device("cpu")
        dev = torch.device(want)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"data.device={want!r} but no CUDA device is available; use auto or cpu")
        if dev.type == "cuda" and dev.index is None:  # compare like tensor.device does: cuda:N, not cuda
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"data.device={want!r} but MPS is not available; use auto or cpu")
        return dev

    def _eval(self, name: str) -> EvalBatches:
        split = self._split(name)
        rank, world = self._rank_world()
        return EvalBatches(
            split.images,
            split.targets,
            batch_size=self.cfg.eval_batch_size,
            normalizer=self._normalizer,
            rank=rank,
            world_size=world,
        )

    def _check_raw(self, raw: RawData) -> None:
        k = self.num_classes
        for part in ("train", "test"):
            x, y = getattr(raw, f"{part}_images"), getattr(raw, f"{part}_labels")
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise CorruptDataError(
                    f"{raw.source}: {part} images must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
                )
            if y.dim() != 1 or y.numel() != x.shape[0]:
                raise CorruptDataError(f"{raw.source}: {x.shape[0]} {part} images but {y.numel()} labels")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
                raise CorruptDataError(
                    f"{raw.source}: {part} labels span {int(y.min())}..{int(y.max())}, outside 0..{k - 1} "
                    f"for {k} classes"
                )
        if raw.train_images.shape[1:] != raw.test_images.shape[1:]:
            raise CorruptDataError(
                f"{raw.source}: train images are {tuple(raw.train_images.shape[1:])} but test images "
                f"{tuple(raw.test_images.shape[1:])}"
            )
        if raw.train_labels.numel() == 0:
            raise CorruptDataError(f"{raw.source}: the training set is empty")

    def _build(self, raw: RawData, device: torch.device) -> None:
        cfg, k, seed = self.cfg, self.num_classes, self._split_seed
        if raw.class_names is not None:
            self._loaded_class_names = list(raw.class_names)
        x_all = to_channels(raw.train_images, self.channels)
        y_all = raw.train_labels.to(torch.int64)
        n_val = split_counts(y_all.numel(), val_fraction=cfg.val_fraction, val_size=cfg.val_size)
        train_idx, val_idx = train_val_split(y_all, n_val, k, seed)
        if cfg.normalize:
            if cfg.mean is not None:
                self.mean, self.std = list(cfg.mean), list(cfg.std)
            else:
                self.mean, self.std = channel_stats(x_all, exclude=val_idx)
        else:
            self.mean, self.std = None, None
        train_idx = train_idx[subset(y_all[train_idx], cfg.fraction, k, seed)]
        clean = y_all[train_idx]
        noisy_targets, noisy = add_label_noise(clean, cfg.label_noise, k, seed)

        size = self.image_size
        train_x = resize(x_all[train_idx], size)
        val_x = resize(x_all[val_idx], size)
        test_x = resize(to_channels(raw.test_images, self.channels), size)
        self.source = raw.source
        self.splits = {
            "train": Split(train_x, noisy_targets, train_idx, clean, noisy),
            "val": Split(val_x, y_all[val_idx], val_idx),
            "test": Split(test_x, raw.test_labels.to(torch.int64)),
        }
        self._to(device)

    def _to(self, device: torch.device) -> None:
        """Move every split to `device` and rebuild what depends on it (padded store, normaliser)."""
        for split in self.splits.values():
            split.images = split.images.to(device)
            split.targets = split.targets.to(device)
        p = self._padding
        train = self.splits["train"]
        if p:
            self._train_store = F.pad(train.images, (p, p, p, p))
            train.images = self._train_store[:, :, p:-p, p:-p]  # a view: no second copy
        else:
            self._train_store = train.images
        self._normalizer = Normalizer(self.mean, self.std, self.channels, device)
