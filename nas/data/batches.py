"""Batch iterables over in-memory uint8 tensors: slice, augment and normalise whole batches on the device.

No DataLoader and no per-sample Python: a batch is one `index_select` (or one strided gather for random
crops), one `where` for flips, and one fused multiply-add for normalisation, all on the tensors' device.
Lightning accepts any sized iterable. The training order and augmentation of epoch `e` come from CPU
generators seeded by (seed, e), so a seed gives the same batches on every run and every device; Lightning
calls `sampler.set_epoch(e)` before each epoch (the DataLoader protocol), which keeps that true on resume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from nas.data.splits import AUGMENT, ORDER, generator

Batch = tuple[torch.Tensor, torch.Tensor]


class Normalizer:
    """uint8 images -> float32 `(x / 255 - mean) / std` per channel (or plain `x / 255`)."""

    def __init__(
        self, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int, device: torch.device
    ) -> None:
        mean = list(mean) if mean is not None else [0.0]
        std = list(std) if std is not None else [1.0]
        if len(mean) == 1:
            mean = mean * channels
        if len(std) == 1:
            std = std * channels
        self.mean, self.std = mean, std
        scale = [1.0 / (255.0 * s) for s in std]
        shift = [-m / s for m, s in zip(mean, std, strict=True)]
        # python scalars when every channel shares them: a scalar multiply-add is the cheapest kernel
        self._uniform = len(set(scale)) == 1 and len(set(shift)) == 1
        self._scale_s, self._shift_s = scale[0], shift[0]
        self._scale = torch.tensor(scale, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self._shift = torch.tensor(shift, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = x.to(torch.float32)
        if self._uniform:
            return y.mul_(self._scale_s).add_(self._shift_s)
        return y.mul_(self._scale).add_(self._shift)


class EpochCounter:
    """The `sampler` Lightning finds on a loader: it calls `set_epoch(e)` at the start of every epoch."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class TrainBatches:
    """Shuffled, augmented, normalised training batches; the order per (seed, epoch) is fixed.

    Args:
        images: (N, C, H + 2p, W + 2p) uint8, zero-padded by `padding` = p on each side when cropping.
        targets: (N,) int64 on the same device.
        padding: crop offsets are drawn from [0, 2p] in each direction; 0 = no random crop.
        rank, world_size: under data-parallel training each rank takes every world_size-th image of the
            shared epoch permutation (equal counts per rank).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        *,
        batch_size: int,
        normalizer: Normalizer,
        seed: int = 0,
        drop_last: bool = True,
        padding: int = 0,
        flip: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images = images.contiguous()
        self.targets = targets
        self.batch_size = int(batch_size)
        self.normalizer = normalizer
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.padding = int(padding)
        self.flip = bool(flip)
        self.rank, self.world_size = int(rank), int(world_size)
        self.sampler = EpochCounter()
        n, c, hp, wp = self.images.shape
        self.size = (hp - 2 * self.padding, wp - 2 * self.padding)
        self._crops = None
        if self.padding:
            # every crop of every image as a zero-copy view: (N, C, dy, dx, H, W); a batch is one gather
            sn, sc, sh, sw = self.images.stride()
            k = 2 * self.padding + 1
            self._crops = self.images.as_strided((n, c, k, k, *self.size), (sn, sc, sh, sw, sh, sw))

    @property
    def per_rank(self) -> int:
        """Images each rank sees per epoch."""
        return self.targets.numel() // self.world_size

    def __len__(self) -> int:
        n = self.per_rank
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration yields."""
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Batch]:
        # The epoch is read when the first batch is drawn, not here: Lightning calls iter() before it calls
        # set_epoch, and also once just to check the loader is iterable.
        return self._epoch()

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The image indices this rank visits in `epoch`, in order (CPU int64)."""
        n = self.targets.numel()
        perm = torch.randperm(n, generator=generator(self.seed, epoch, ORDER))
        if self.world_size > 1:
            perm = perm[self.rank : self.per_rank * self.world_size : self.world_size]
        return perm

    def _epoch(self) -> Iterator[Batch]:
        epoch = self.sampler.epoch
        self.sampler.epoch = epoch + 1  # standalone use walks through epochs 0, 1, 2, ...
        device = self.images.device
        perm = self.epoch_order(epoch)
        count = perm.numel()
        gen = generator(self.seed, epoch, AUGMENT)
        # always drawn, in this order, so switching one augmentation on or off leaves the other unchanged
        k = 2 * self.padding + 1
        dy = torch.randint(0, k, (count,), generator=gen)
        dx = torch.randint(0, k, (count,), generator=gen)
        flips = torch.randint(0, 2, (count,), generator=gen, dtype=torch.bool)
        perm, dy, dx, flips = (t.to(device, non_blocking=True) for t in (perm, dy, dx, flips))
        for b in range(len(self)):
            s, e = b * self.batch_size, min(count, (b + 1) * self.batch_size)
            idx = perm[s:e]
            if self._crops is not None:
                x = self._crops[idx, :, dy[s:e], dx[s:e]]
            else:
                x = self.images.index_select(0, idx)
            if self.flip:
                x = torch.where(flips[s:e].view(-1, 1, 1, 1), x.flip(3), x)
            yield self.normalizer(x), self.targets.index_select(0, idx)


class EvalBatches:
    """Evaluation batches in dataset order, normalised, no augmentation; ranks take contiguous shards."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        *,
        batch_size: int,
        normalizer: Normalizer,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        n = targets.numel()
        lo, hi = rank * n // world_size, (rank + 1) * n // world_size
        self.images, self.targets = images[lo:hi], targets[lo:hi]
        self.batch_size = int(batch_size)
        self.normalizer = normalizer

    def __len__(self) -> int:
        return -(-self.targets.numel() // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for s in range(0, self.targets.numel(), self.batch_size):
            e = s + self.batch_size
            yield self.normalizer(self.images[s:e]), self.targets[s:e]
