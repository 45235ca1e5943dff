"""The shared data module on synthetic data: splits, fraction, noise, resize, normalisation, order, Lightning."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from datafixtures import write_idx
from torch import nn

from nas.data import build_datamodule

BASE = {"name": "synthetic", "train_size": 400, "test_size": 100, "num_classes": 4, "channels": 3}
BASE |= {"image_size": 16, "batch_size": 32, "val_fraction": 0.1}


def make(**kw):
    dm = build_datamodule({**BASE, **kw})
    dm.setup()
    return dm


def batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


def test_synthetic_basics_and_determinism():
    dm = make()
    assert (dm.train_size, dm.val_size, dm.test_size) == (360, 40, 100)
    assert dm.splits["train"].images.shape == (360, 3, 16, 16)
    assert len(dm.class_names) == 4 and len(set(dm.class_names)) == 4
    assert torch.bincount(dm.splits["test"].targets).tolist() == [25] * 4
    again = make(seed=3)  # the images depend on data_seed only
    assert torch.equal(again.splits["test"].images, dm.splits["test"].images)
    other = make(data_seed=1)
    assert not torch.equal(other.splits["test"].images, dm.splits["test"].images)


def test_sizes_need_setup_and_setup_is_idempotent():
    dm = build_datamodule(BASE)
    with pytest.raises(RuntimeError, match="call setup"):
        _ = dm.train_size
    dm.setup("fit")
    images = dm.splits["train"].images
    dm.setup("test")
    assert dm.splits["train"].images is images


def test_validation_split_is_stratified_disjoint_and_seeded():
    dm = make()
    train, val = dm.splits["train"], dm.splits["val"]
    assert not set(train.indices.tolist()) & set(val.indices.tolist())
    assert torch.bincount(val.targets, minlength=4).tolist() == [10] * 4
    assert torch.equal(make(seed=0).splits["val"].indices, val.indices)
    assert not torch.equal(make(seed=1).splits["val"].indices, val.indices)
    # split_seed fixes the split while seed varies the batch order
    assert torch.equal(make(seed=1, split_seed=0).splits["val"].indices, val.indices)
    assert make(val_size=12).val_size == 12
    assert make(val_fraction=0.0).val_size == 0


def test_fraction_keeps_the_val_split_and_statistics():
    full, part = make(), make(fraction=0.25)
    assert part.train_size == 90  # round(0.25 * 360)
    # quotas of 22.5 per class: the two tied remainders go to the lower classes
    assert torch.bincount(part.splits["train"].targets, minlength=4).tolist() == [23, 23, 22, 22]
    assert set(part.splits["train"].indices.tolist()) <= set(full.splits["train"].indices.tolist())
    assert torch.equal(part.splits["val"].indices, full.splits["val"].indices)
    assert part.mean == full.mean and part.std == full.std


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_label_noise_exact_only_training_and_seeded(noise):
    dm = make(label_noise=noise)
    train = dm.splits["train"]
    assert int(train.noisy.sum()) == round(noise * dm.train_size)
    assert bool((train.targets[train.noisy] != train.clean_targets[train.noisy]).all())
    assert torch.equal(train.targets[~train.noisy], train.clean_targets[~train.noisy])
    clean = make()
    assert torch.equal(dm.splits["val"].targets, clean.splits["val"].targets)
    assert torch.equal(dm.splits["test"].targets, clean.splits["test"].targets)
    assert torch.equal(make(label_noise=noise).splits["train"].targets, train.targets)
    assert dm.describe()["noisy_labels"] == int(train.noisy.sum())
    # the batches carry the noisy labels
    _, y = next(iter(dm.train_dataloader()))
    order = dm.train_dataloader().epoch_order(0)[: len(y)]
    assert torch.equal(y, train.targets[order])


def test_image_size_and_channels(tmp_path):
    write_idx(tmp_path / "d", n_train=50, n_test=10)
    cfg = {"name": "mnist", "root": str(tmp_path / "d"), "download": False, "val_size": 5, "batch_size": 5}
    dm = build_datamodule({**cfg, "image_size": 32, "channels": 3})
    dm.setup()
    x = dm.splits["train"].images
    assert x.shape == (45, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    xb, _ = next(iter(dm.train_dataloader()))
    assert xb.shape == (5, 3, 32, 32)
    small = build_datamodule({**cfg, "image_size": 14})
    small.setup()
    assert small.splits["test"].images.shape == (10, 1, 14, 14)
    # a flat image stays flat through the antialiased resize: brightness (the label code) is preserved
    big = dm.splits["test"].images.float().mean((1, 2, 3))
    assert torch.allclose(big, small.splits["test"].images.float().mean((1, 2, 3)), atol=2.0)
    grey = make(channels=3)
    assert grey.channels == 3


def test_normalisation():
    dm = make(augment=False)
    x = torch.cat([b for b, _ in dm.train_dataloader()])
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=0.05)
    assert torch.allclose(x.std((0, 2, 3)), torch.ones(3), atol=0.05)
    raw = make(augment=False, normalize=False)
    x = torch.cat([b for b, _ in raw.val_dataloader()])
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    fixed = make(augment=False, mean=[0.5], std=[0.25])
    xb, _ = next(iter(fixed.test_dataloader()))
    expected = (fixed.splits["test"].images[: len(xb)].float() / 255 - 0.5) / 0.25
    assert torch.allclose(xb, expected, atol=1e-5)


def test_same_batches_per_seed_with_augmentation():
    cfg = {"augment": True, "flip": True, "crop_padding": 2, "seed": 5}
    a = batches(make(**cfg).train_dataloader())
    b = batches(make(**cfg).train_dataloader())
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True))
    c = batches(make(**{**cfg, "seed": 6, "split_seed": 5}).train_dataloader())
    assert not all(torch.equal(y1, y2) for (_, y1), (_, y2) in zip(a, c, strict=True))
    assert a[0][0].shape == (32, 3, 16, 16)
    loader = make(**cfg).train_dataloader()
    first, second = batches(loader), batches(loader)
    assert not torch.equal(first[0][1], second[0][1]), "reshuffled each epoch"


def test_empty_epoch_is_an_error_before_training():
    dm = make(fraction=0.05, batch_size=64)  # 18 training images
    with pytest.raises(ValueError, match="18 images, fewer than data.batch_size=64.*drop_last"):
        dm.train_dataloader()
    assert len(make(fraction=0.05, batch_size=64, drop_last=False).train_dataloader()) == 1


def test_device_option():
    if torch.cuda.is_available():
        assert make(device="cuda").splits["train"].images.is_cuda
    else:
        with pytest.raises(ValueError, match="no CUDA device"):
            make(device="cuda")
    dm = make(device="cpu")
    assert dm.describe()["device"] == "cpu"
    assert dm.hparams["device"] == "cpu" and dm.hparams["train_size"] == 400


class Recorder(pl.LightningModule):
    """A linear model that records the targets of every training batch, per epoch."""

    def __init__(self, channels: int, size: int, classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, classes))
        self.seen: dict[int, list[torch.Tensor]] = {}
        self.evaluated = {"val": 0, "test": 0}

    def training_step(self, batch, _):
        x, y = batch
        self.seen.setdefault(self.current_epoch, []).append(y.cpu())
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, _):
        self.evaluated["val"] += len(batch[1])

    def test_step(self, batch, _):
        self.evaluated["test"] += len(batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lightning_fit_uses_the_seeded_epoch_order():
    dm = build_datamodule({**BASE, "seed": 2})
    model = Recorder(3, 16, 4)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    loader = dm.train_dataloader()
    for epoch in (0, 1):
        got = torch.cat(model.seen[epoch])
        want = dm.splits["train"].targets[loader.epoch_order(epoch)[: len(got)]]
        assert torch.equal(got, want), f"epoch {epoch} order differs from the seeded one"
    assert not torch.equal(torch.cat(model.seen[0]), torch.cat(model.seen[1]))
    assert model.evaluated == {"val": 2 * dm.val_size, "test": dm.test_size}


def test_synthetic_is_learnable_by_a_small_cnn():
    torch.manual_seed(0)
    dm = make(channels=1, num_classes=6, train_size=900, augment=False, batch_size=32)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 6),
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loader = dm.train_dataloader()
    for _ in range(3):
        net.train()
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x).argmax(1) == y).sum()) for x, y in dm.test_dataloader())
    assert correct / dm.test_size > 0.9
