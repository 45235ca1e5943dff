"""What a training step costs beside the network: the epoch's metrics are updated on the device every step, and
Lightning's `self.log` (about a millisecond of Python a call, most of the platform's overhead over a plain loop)
runs only on the epoch's first step and the steps the logger writes; what is logged per epoch is unchanged."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers.logger import Logger
from torch.utils._python_dispatch import TorchDispatchMode

from nas.module import Classifier

SPEC = {
    "name": "tiny", "family": "plain", "in_channels": 1, "num_classes": 4, "input_size": 8, "act": "relu",
    "norm": "batchnorm", "stem": [{"block": "conv", "channels": 4}],
    "stages": [{"block": "conv", "channels": 8, "stride": 2}], "head": {"type": "linear", "pool": "avg"},
}  # fmt: skip
OPTIM = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "policy": "constant"}
# 12 batches an epoch, of two sizes (the epoch's loss is weighted by images), log_every_n_steps 5.
SIZES = [8, 5] * 6
EVERY = 5


class Batches:
    """The epoch's batches, the same every epoch (a sized iterable, as the platform's data modules give)."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.items = [(torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 4, (n,), generator=gen)) for n in SIZES]

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Recorder(Logger):
    """Every `log_metrics` call Lightning makes, as (step, metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((step, dict(metrics)))


class Steps(pl.Callback):
    """Each training step's loss, logits and targets, and the trainer's metrics at each epoch's end."""

    def __init__(self, module: Classifier) -> None:
        self.losses, self.logits, self.targets, self.epochs = [], [], [], []
        module.model.register_forward_hook(lambda m, i, out: self.logits.append(out.detach().clone()))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach().clone())
        self.targets.append(batch[1])

    def on_train_epoch_end(self, trainer, module) -> None:  # before the module's own epoch-end hook
        self.epochs.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def train(epochs: int = 2) -> tuple[Classifier, Steps, Recorder, list[str]]:
    pl.seed_everything(0, verbose=False)
    module = Classifier(SPEC, OPTIM, batch_size=8)
    logged: list[str] = []
    log = module.log
    module.log = lambda name, *a, **k: logged.append(name) or log(name, *a, **k)  # counts every self.log call
    steps, recorder = Steps(module), Recorder()
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=recorder, callbacks=[steps],
        log_every_n_steps=EVERY, limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=Batches())
    return module, steps, recorder, logged


def test_self_log_runs_on_the_epochs_first_step_and_the_steps_the_logger_writes_not_every_step():
    _, steps, _, logged = train()
    assert len(steps.losses) == 24
    # global steps 0 (the epoch's first), 4, 9; 12 (the next epoch's first), 14, 19: once each, not twice a step
    assert logged.count("train/loss") == 6 and logged.count("train/acc") == 6, logged


def test_the_epoch_metrics_are_every_steps_mean_and_the_logger_gets_each_written_steps_own_loss():
    _, steps, recorder, _ = train()
    for epoch in range(2):
        part = slice(12 * epoch, 12 * (epoch + 1))
        losses, sizes = torch.stack(steps.losses[part]), torch.tensor(SIZES, dtype=torch.float32)
        pairs = zip(steps.logits[part], steps.targets[part], strict=True)
        correct = sum(int((logits.argmax(1) == y).sum()) for logits, y in pairs)
        mean = float((losses * sizes).sum() / sizes.sum())
        seen = steps.epochs[epoch]  # what an epoch-end callback (the epoch line, the bar) reads
        assert abs(seen["train/loss_epoch"] - mean) < 1e-6 and abs(seen["train/loss"] - mean) < 1e-6
        assert abs(seen["train/acc"] - correct / sum(SIZES)) < 1e-6
    # Per step the logger writes every log_every_n_steps-th step, with that step's loss (not a stale one) ...
    step_values = {step: m["train/loss_step"] for step, m in recorder.calls if "train/loss_step" in m}
    assert sorted(step_values) == [4, 9, 14, 19]
    for step, value in step_values.items():
        assert abs(value - float(steps.losses[step])) < 1e-6
    # ... and per epoch the epoch's mean and accuracy, under the same names as ever.
    epoch_values = [m for _, m in recorder.calls if "train/loss_epoch" in m]
    assert [set(m) for m in epoch_values] == [{"train/loss_epoch", "train/acc", "epoch"}] * 2
    assert [m["train/loss_epoch"] for m in epoch_values] == [e["train/loss_epoch"] for e in steps.epochs]


def test_an_epoch_shorter_than_log_every_n_steps_still_logs_its_metrics():
    pl.seed_everything(0, verbose=False)
    module = Classifier(SPEC, OPTIM, batch_size=8)
    steps = Steps(module)
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, callbacks=[steps], log_every_n_steps=50,
        limit_train_batches=3, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=Batches())
    assert [sorted(k for k in e if k.startswith("train/")) for e in steps.epochs] == [
        ["train/acc", "train/loss", "train/loss_epoch", "train/loss_step"]
    ] * 3
    losses = torch.stack(steps.losses).view(3, 3)
    sizes = torch.tensor(SIZES[:3], dtype=torch.float32)
    for epoch, e in enumerate(steps.epochs):  # each epoch's own mean: nothing carried over from the last
        assert abs(e["train/loss_epoch"] - float((losses[epoch] * sizes).sum() / sizes.sum())) < 1e-6


class HostReads(TorchDispatchMode):
    """Counts the tensor operations that make the host wait for the device: a read of a value (`.item()`,
    `bool(t)`) or an output whose size depends on the data (`torch.unique`, `nonzero`)."""

    WAITS = ("aten::_local_scalar_dense", "aten::_unique", "aten::unique", "aten::nonzero", "aten::masked_select")

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.name().startswith(self.WAITS):
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_a_training_step_waits_for_the_device_only_for_the_divergence_check():
    module = Classifier(SPEC, OPTIM, batch_size=8)
    module.train()
    module._logs_step = lambda: False  # a step between two logged ones (no trainer attached to ask)
    x, y = Batches().items[0]
    with HostReads() as reads:
        loss = module.training_step((x, y), 1)
    assert reads.count == 1  # `torch.isfinite(loss)`, so that a diverged run stops before its next update
    # The step's loss and predictions went into the epoch's metrics all the same.
    assert int(module.train_loss.weight) == len(y) and torch.allclose(module.train_loss.compute(), loss.detach())
    assert int(module.train_acc.tp.sum() + module.train_acc.fn.sum()) == len(y)
