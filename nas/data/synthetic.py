"""A procedural, seeded dataset for tests and demos: oriented gratings in a soft blob, one class per pattern.

Class `c` is a grating of orientation `c mod O` (O = min(num_classes, 6) orientations, 180/O degrees
apart) and spatial frequency `c div O` (geometric from 1.5 cycles per image to image_size / 4), drawn
inside a Gaussian blob at a random position, with random phase, contrast, colour tint (RGB) and pixel
noise; orientation and frequency jitter stay well inside half the spacing between classes. A small CNN
learns it in a few epochs. Generation is whole-tensor and takes milliseconds for thousands of images.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from nas.data.base import InMemoryDataModule, RawData
from nas.data.config import DataConfig
from nas.data.registry import register_dataset
from nas.data.splits import generator

MAX_ORIENTATIONS = 6
MIN_CYCLES = 1.5  # cycles per image of the lowest frequency
TRAIN, TEST = 11, 12  # generator stream tags


@dataclasses.dataclass
class SyntheticConfig(DataConfig):
    """Synthetic options: how many images, how noisy, and the seed of the content itself."""

    train_size: int = 2000  # generated training images (before the validation split)
    test_size: int = 500
    noise: float = 0.1  # standard deviation of Gaussian pixel noise, in [0, 1] units
    data_seed: int = 0  # the images themselves; independent of `seed` so every run sees the same data

    def validate(self) -> None:
        super().validate()
        if self.train_size < 1 or self.test_size < 0:
            raise ValueError(
                f"data.train_size={self.train_size}, data.test_size={self.test_size}: need >= 1 and >= 0"
            )
        if self.noise < 0:
            raise ValueError(f"data.noise={self.noise!r} is out of range: it must be >= 0")


def pattern_grid(num_classes: int, image_size: int) -> tuple[int, list[float]]:
    """(orientations, frequencies in cycles per image) for `num_classes` classes."""
    n_orient = min(num_classes, MAX_ORIENTATIONS)
    n_freq = math.ceil(num_classes / n_orient)
    top = max(MIN_CYCLES, image_size / 4)
    if n_freq == 1:
        return n_orient, [min(3.0, top)]
    ratio = (top / MIN_CYCLES) ** (1 / (n_freq - 1))
    return n_orient, [MIN_CYCLES * ratio**i for i in range(n_freq)]


def generate(
    labels: torch.Tensor,
    *,
    num_classes: int,
    channels: int,
    image_size: int,
    noise: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """uint8 (N, channels, S, S) images for `labels`, drawn from `gen`."""
    n, s = labels.numel(), image_size
    n_orient, freqs = pattern_grid(num_classes, s)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    spacing = math.pi / n_orient
    theta = (labels % n_orient).float() * spacing + uniform(-0.2, 0.2) * spacing
    ratio = freqs[1] / freqs[0] if len(freqs) > 1 else 2.0
    jitter = ratio ** uniform(-0.2, 0.2)
    cycles = torch.tensor(freqs, dtype=torch.float32)[labels // n_orient] * jitter
    phase = uniform(0, 2 * math.pi)
    cx, cy = uniform(0.3, 0.7), uniform(0.3, 0.7)
    sigma = uniform(0.22, 0.35)
    contrast = uniform(0.6, 1.0)

    coords = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    yy, xx = coords.view(1, s, 1), coords.view(1, 1, s)

    def per(t: torch.Tensor) -> torch.Tensor:
        return t.view(n, 1, 1)

    along = xx * per(theta.cos()) + yy * per(theta.sin())
    wave = torch.sin(2 * math.pi * per(cycles) * along + per(phase))
    blob = torch.exp(-((xx - per(cx)) ** 2 + (yy - per(cy)) ** 2) / (2 * per(sigma) ** 2))
    img = (per(contrast) * blob * wave).unsqueeze(1)  # (N, 1, S, S) in [-1, 1]
    if channels == 3:
        img = img * uniform(0.5, 1.0, 3, 1, 1)  # a random tint: colour carries no class information
    img = 0.5 + 0.5 * img + noise * torch.randn(img.shape, generator=gen, dtype=torch.float32)
    return (img * 255).round_().clamp_(0, 255).to(torch.uint8)


@register_dataset("synthetic")
class Synthetic(InMemoryDataModule):
    """Procedural oriented-grating images (see the module docstring); shape and size set by the config."""

    title = "synthetic"
    Config = SyntheticConfig

    # defaults when the config leaves them null (as conf/data/synthetic.yaml sets them)
    native_channels = 3
    native_image_size = 32

    @classmethod
    def known_train_images(cls, cfg: DataConfig) -> int | None:
        return cfg.train_size  # type: ignore[attr-defined]

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes or 10

    @property
    def class_names(self) -> list[str]:
        n_orient, freqs = pattern_grid(self.num_classes, self.image_size)
        return [
            f"{round(180 * (c % n_orient) / n_orient)}deg-{freqs[c // n_orient]:.1f}cyc"
            for c in range(self.num_classes)
        ]

    def _load(self) -> RawData:
        cfg: SyntheticConfig = self.cfg  # type: ignore[assignment]
        parts = []
        for count, tag in ((cfg.train_size, TRAIN), (cfg.test_size, TEST)):
            gen = generator(cfg.data_seed, tag)
            # balanced classes in a seeded order
            labels = (torch.arange(count) % self.num_classes)[torch.randperm(count, generator=gen)]
            images = generate(
                labels,
                num_classes=self.num_classes,
                channels=self.channels,
                image_size=self.image_size,
                noise=cfg.noise,
                gen=gen,
            )
            parts += [images, labels]
        return RawData(*parts, source=f"synthetic(data_seed={cfg.data_seed})")
