"""Any class-per-subfolder image directory, decoded once with PIL into uint8 tensors at `image_size`.

Layouts (`data.root`):

    root/<class>/<image>                   one pool; a stratified `test_fraction` becomes the test set
    root/train/<class>/<image>             given training set, with root/test/... (or root/val/...)

Classes are the sorted subfolder names of the training folder (images may sit deeper inside a class
folder). Each image is converted to RGB (or grey when `channels` is 1), its shorter side resized to
`image_size` and the centre cropped square. The decoded tensors are cached (`cache_root()/imagefolder/`),
keyed by every file's path, size and modification time plus the size and channels, so later runs skip
decoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data.base import InMemoryDataModule, RawData
from nas.data.config import DataConfig
from nas.data.download import cache_root
from nas.data.errors import CorruptDataError, DataNotFoundError
from nas.data.registry import register_dataset
from nas.data.splits import generator, stratified_pick

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
CACHE_VERSION = 1  # bump when decoding changes, so old cache entries are not reused


@dataclasses.dataclass
class ImageFolderConfig(DataConfig):
    """ImageFolder options: the test share when there is no test folder, and the decoded-tensor cache."""

    test_fraction: float = 0.2
    cache: bool = True

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(
                f"data.test_fraction={self.test_fraction!r} is out of range: it must be in [0, 1)"
            )


@dataclasses.dataclass
class _Layout:
    train_dir: Path
    test_dir: Path | None
    classes: list[str]


@register_dataset("imagefolder")
class ImageFolder(InMemoryDataModule):
    """A class-per-subfolder image directory (see the module docstring for layouts)."""

    title = "ImageFolder"
    Config = ImageFolderConfig
    native_channels = 3

    @classmethod
    def check_config(cls, cfg: DataConfig) -> None:
        if not cfg.root:
            raise ValueError(
                "data.root must name the image folder (root/<class>/<image> or root/train/<class>/...)"
            )
        if cfg.image_size is None:
            raise ValueError(
                "data.image_size must be set for imagefolder: images are resized to it once at load"
            )
        try:  # listing folders is cheap: check the class count now, not after loading
            classes = find_layout(Path(cfg.root).expanduser()).classes
        except (OSError, ValueError):  # a missing or empty folder is reported by prepare_data
            classes = None
        if cfg.num_classes is None:
            hint = f": {cfg.root} has {len(classes)} class folders" if classes else ""
            raise ValueError(
                f"data.num_classes must be set for imagefolder (the model is sized from it){hint}; "
                f"set data.num_classes={len(classes) if classes else '<number of class folders>'}"
            )
        if classes and cfg.num_classes != len(classes):
            raise ValueError(class_count_message(cfg.num_classes, Path(cfg.root), classes))

    @cached_property
    def layout(self) -> _Layout:
        """Training / test folders and the class names (listing folders only; no image is opened)."""
        lay = find_layout(Path(self.cfg.root).expanduser())
        if self.cfg.num_classes != len(lay.classes):
            raise ValueError(class_count_message(self.cfg.num_classes, lay.train_dir, lay.classes))
        return lay

    @property
    def num_classes(self) -> int:
        return len(self.layout.classes)

    @property
    def class_names(self) -> list[str]:
        return list(self.layout.classes)

    def _files(self, folder: Path) -> tuple[list[Path], list[int]]:
        paths, labels = [], []
        for label, name in enumerate(self.layout.classes):
            d = folder / name
            if not d.is_dir():
                continue
            found = sorted(p for p in d.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
            paths += found
            labels += [label] * len(found)
        return paths, labels

    def _locate(self) -> dict[str, Any]:
        lay = self.layout
        train, train_labels = self._files(lay.train_dir)
        if not train:
            raise DataNotFoundError(
                f"no images in {lay.train_dir}: its {len(lay.classes)} class folders hold no files with "
                f"extensions {', '.join(EXTENSIONS)}"
            )
        counts = np.bincount(train_labels, minlength=len(lay.classes))
        empty = [lay.classes[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            raise DataNotFoundError(f"class folders with no images in {lay.train_dir}: {', '.join(empty)}")
        test, test_labels = self._files(lay.test_dir) if lay.test_dir is not None else ([], [])
        return {"train": (train, train_labels), "test": (test, test_labels)}

    def _load(self) -> RawData:
        files = self._locate()
        size, mode = self.image_size, "L" if self.channels == 1 else "RGB"
        all_paths = files["train"][0] + files["test"][0]
        cache_file = self._cache_file(all_paths, size, mode) if self.cfg.cache else None
        images = None
        if cache_file is not None and cache_file.is_file():
            try:
                images = torch.load(cache_file, weights_only=True)
            except Exception:  # a stale or partial cache entry: decode again
                images = None
            if images is not None and images.shape[0] != len(all_paths):
                images = None
        if images is None:
            images = decode_images(all_paths, size, mode)
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_name(cache_file.name + f".tmp{os.getpid()}")
                torch.save(images, tmp)
                os.replace(tmp, cache_file)
        n_train = len(files["train"][0])
        train_x, test_x = images[:n_train], images[n_train:]
        train_y = torch.tensor(files["train"][1], dtype=torch.int64)
        test_y = torch.tensor(files["test"][1], dtype=torch.int64)
        if self.layout.test_dir is None:
            # a fixed split (seed 0), so every run and seed is scored on the same test images
            n_test = int(round(self.cfg.test_fraction * n_train))
            if n_test >= n_train:
                raise ValueError(f"data.test_fraction={self.cfg.test_fraction} leaves no training images")
            is_test = stratified_pick(train_y, n_test, self.num_classes, generator(0))
            train_x, test_x = train_x[~is_test], train_x[is_test]
            train_y, test_y = train_y[~is_test], train_y[is_test]
        return RawData(train_x, train_y, test_x, test_y, source=str(Path(self.cfg.root).expanduser()))

    @staticmethod
    def _cache_file(paths: list[Path], size: int, mode: str) -> Path:
        h = hashlib.sha256(f"{CACHE_VERSION}|{size}|{mode}".encode())
        for p in paths:
            st = p.stat()
            h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        return cache_root() / "imagefolder" / f"{h.hexdigest()[:32]}.pt"


def class_count_message(num_classes: int | None, folder: Path, classes: list[str]) -> str:
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    return (
        f"data.num_classes={num_classes} but {folder} has {len(classes)} class folders ({shown}); "
        f"set data.num_classes={len(classes)}"
    )


def find_layout(root: Path) -> _Layout:
    """Training / test folders under `root` and the sorted class folder names (DataNotFoundError if none)."""
    if not root.is_dir():
        raise DataNotFoundError(
            f"data.root={root} is not a folder; imagefolder expects root/<class>/<image> "
            "or root/train/<class>/<image> (with root/test/ or root/val/)"
        )
    train_dir, test_dir = root, None
    if (root / "train").is_dir():
        train_dir = root / "train"
        test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataNotFoundError(
            f"no images in {train_dir}: it has no class subfolders; expected {train_dir}/<class>/<image> "
            f"with extensions {', '.join(EXTENSIONS)}"
        )
    if test_dir is not None:
        extra = sorted(
            d.name
            for d in test_dir.iterdir()
            if d.is_dir() and not d.name.startswith(".") and d.name not in classes
        )
        if extra:
            raise ValueError(f"{test_dir} has class folders missing from {train_dir}: {', '.join(extra)}")
    return _Layout(train_dir, test_dir, classes)


def decode_images(paths: list[Path], size: int, mode: str) -> torch.Tensor:
    """Decode, convert to `mode` ("RGB" or "L"), fit the shorter side and centre-crop: uint8 (N, C, S, S)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    channels = 1 if mode == "L" else 3
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as im:
                im = ImageOps.fit(im.convert(mode), (size, size), method=Image.Resampling.BILINEAR)
                out[i] = np.asarray(im).reshape(size, size, channels)
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise CorruptDataError(f"{path}: cannot decode the image ({err}); remove or replace it") from None
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
