"""Whole-tensor operations on uint8 NCHW image stacks: channel conversion, resizing, channel statistics."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Elements per chunk when a stack is converted to float: bounds temporary memory (~32 MiB of float64).
CHUNK_ELEMENTS = 1 << 22
# ITU-R BT.601 luma weights: the usual RGB -> grey conversion (PIL's "L" mode uses the same).
LUMA = (0.299, 0.587, 0.114)


def _chunks(n: int, per_item: int):
    step = max(1, CHUNK_ELEMENTS // max(1, per_item))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """`x` (N, C, H, W uint8) with `channels` channels: grey repeated to RGB, or RGB to grey by luma."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        out = torch.empty((x.shape[0], 1, *x.shape[2:]), dtype=torch.uint8, device=x.device)
        weights = torch.tensor(LUMA, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        for a, b in _chunks(x.shape[0], x[0].numel()):
            grey = (x[a:b].float() * weights).sum(1, keepdim=True)
            out[a:b] = grey.round_().clamp_(0, 255).to(torch.uint8)
        return out
    raise ValueError(
        f"cannot convert {have}-channel images to {channels} channels; valid data.channels: 1, 3"
    )


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """`x` (N, C, H, W uint8) resized to size x size: bilinear, antialiased when shrinking, rounded."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-1] or size < x.shape[-2]
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8, device=x.device)
    for a, b in _chunks(x.shape[0], x.shape[1] * max(x.shape[2] * x.shape[3], size * size)):
        y = F.interpolate(
            x[a:b].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
        out[a:b] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def channel_stats(x: torch.Tensor, exclude: torch.Tensor | None = None) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 `x` less the images `exclude`, in [0, 1] units.

    Exact, from 256-bin histograms (one `bincount` pass per channel, no float copy of the data).
    """

    def histograms(t: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [torch.bincount(t[:, c].reshape(-1), minlength=256) for c in range(t.shape[1])]
        ).cpu()

    hist = histograms(x)
    if exclude is not None and exclude.numel():
        hist -= histograms(x[exclude.to(x.device)])
    hist = hist.to(torch.float64)
    count = hist.sum(1)
    if not bool((count > 0).all()):
        raise ValueError("cannot compute normalisation statistics of an empty training split")
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    mean = (hist * levels).sum(1) / count
    var = ((hist * levels.square()).sum(1) / count - mean.square()).clamp_min(0.0)
    return mean.tolist(), var.sqrt().tolist()
