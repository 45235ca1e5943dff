"""Weight initialisation for ablation runs: PyTorch's default, He (Kaiming) normal, or LSUV.

CaffeNet128 in Mishkin et al. is initialised with LSUV (Mishkin & Matas 2016, "All you need is a good
init"): orthonormal weights, then each conv / linear layer in turn is rescaled until its output on a batch
of training images (here: the run's first training batch) has unit variance. Without BatchNorm this
matters: with PyTorch's default init the activations of the 7-layer baseline shrink layer by layer and SGD at
lr 0.01 barely moves for hundreds of steps. LSUV is data-driven, so it also suits tanh, sigmoid, maxout and "no non-linearity", which a fixed
gain (He init) does not.

The scheme is applied by a Lightning callback in `setup`, after the data module is ready and before the
optimiser exists, on the model fit() built from the spec; it draws from the run's seeded RNG, so it is
deterministic per seed and identical for both arms of a comparison.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

SCHEMES = ("default", "kaiming", "lsuv")
LAYERS = (nn.Conv2d, nn.Linear)


class _Stop(Exception):
    """Raised by a forward hook to skip the rest of the network once the layer of interest has run."""


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    return scheme


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, LAYERS)]


@torch.no_grad()
def kaiming_init(model: nn.Module) -> None:
    """He normal (fan-in, ReLU gain) weights and zero biases for every conv and linear layer."""
    for m in _layers(model):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@torch.no_grad()
def lsuv_init(model: nn.Module, x: torch.Tensor, *, tol: float = 0.1, max_iter: int = 10) -> dict[str, float]:
    """LSUV: orthonormal weights, then per layer (in forward order) divide by the output's std until within tol.

    Runs the model in eval mode (no dropout; BatchNorm at its initial identity statistics) and returns the
    final output std of each layer (by module name), for the run record.
    """
    names = {m: n for n, m in model.named_modules()}
    layers = _layers(model)
    for m in layers:
        nn.init.orthogonal_(m.weight.view(m.weight.shape[0], -1))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    was = model.training
    model.eval()
    stds: dict[str, float] = {}
    try:
        for m in layers:
            seen: dict[str, torch.Tensor] = {}

            def hook(
                mod: nn.Module, inp: Any, out: torch.Tensor, seen: dict[str, torch.Tensor] = seen
            ) -> None:
                seen["out"] = out
                raise _Stop

            handle = m.register_forward_hook(hook)
            try:
                std = math.nan
                for _ in range(max_iter):
                    seen.clear()
                    try:
                        model(x)
                    except _Stop:
                        pass
                    if "out" not in seen:  # the layer did not run on this input (an unused branch)
                        break
                    std = float(seen["out"].float().std())
                    if not math.isfinite(std) or std < 1e-8 or abs(std - 1.0) < tol:
                        break
                    m.weight.div_(std)
            finally:
                handle.remove()
            stds[names.get(m, "?")] = std
    finally:
        model.train(was)
    return stds


def sample_batch(datamodule: Any, size: int) -> torch.Tensor | None:
    """Up to `size` normalised training images: the first batches of training epoch 0, as training sees them.

    LSUV scales each layer to unit variance on the data it will train on (Mishkin & Matas: a training
    mini-batch). A fresh training loader draws its order and augmentation from (seed, epoch) generators, so
    this neither changes the run's data order nor touches the validation split.
    """
    loader = getattr(datamodule, "train_dataloader", None)
    if loader is None:
        return None
    xs, n = [], 0
    for x, _ in loader():
        xs.append(x)
        n += len(x)
        if n >= size:
            break
    return torch.cat(xs)[:size] if xs else None


class WeightInit(pl.Callback):
    """Applies an init scheme to `pl_module.model` when fitting starts (before the optimiser is created)."""

    def __init__(self, scheme: str, *, batch_size: int = 256) -> None:
        self.scheme = check_scheme(scheme)
        self.batch_size = batch_size
        self.stds: dict[str, float] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.scheme == "default":
            return
        model = pl_module.model
        if self.scheme == "kaiming":
            kaiming_init(model)
            return
        x = sample_batch(trainer.datamodule, self.batch_size)
        if x is None:
            raise ValueError("LSUV init needs a batch of images, but the data module gave none")
        param = next(model.parameters())
        x = x.to(device=param.device, dtype=param.dtype)
        if getattr(pl_module, "channels_last", False):
            x = x.contiguous(memory_format=torch.channels_last)
        self.stds = lsuv_init(model, x)
