"""The real Fashion-MNIST: the installed files load whole, exact to the published checksums.

Skipped only where the dataset is absent *and* the CI variable is unset: CI installs the Debian package,
so a missing dataset there is a failure.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
import torch

import nas.data.idx as idx_module
from nas.data import build_datamodule

SYSTEM = Path("/usr/share/datasets")
# MD5 of the decompressed IDX files, as published with the dataset
RAW_MD5 = {
    "train-images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels": "15d484375f8d13e6eb1aabb0c3f46965",
}

pytestmark = pytest.mark.skipif(
    not (SYSTEM / "fashion-mnist").is_dir() and not os.environ.get("CI"),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); CI requires it",
)


def idx_md5(tensor: torch.Tensor) -> str:
    """MD5 of the IDX file `tensor` came from: header then bytes."""
    header = struct.pack(">HBB", 0, 0x08, tensor.dim()) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    return hashlib.md5(header + tensor.contiguous().numpy().tobytes()).hexdigest()


@pytest.mark.slow
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(idx_module, "DEBIAN_DIR", SYSTEM)  # the conftest hides it from the other tests
    dm = build_datamodule({"name": "fashion_mnist", "val_size": 0, "augment": False, "download": False})
    dm.prepare_data()
    dm.setup()
    assert dm.source == str(SYSTEM / "fashion-mnist")
    assert (dm.train_size, dm.val_size, dm.test_size) == (60000, 0, 10000)
    assert dm.num_classes == 10 and len(dm.class_names) == 10
    train, test = dm.splits["train"], dm.splits["test"]
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.targets).tolist() == [6000] * 10
    assert torch.bincount(test.targets).tolist() == [1000] * 10
    # with no validation split the training set is the file, in order: exactly the published bytes
    assert idx_md5(train.images.squeeze(1).cpu()) == RAW_MD5["train-images"]
    assert idx_md5(train.targets.to(torch.uint8).cpu()) == RAW_MD5["train-labels"]
    assert idx_md5(test.images.squeeze(1).cpu()) == RAW_MD5["t10k-images"]
    assert idx_md5(test.targets.to(torch.uint8).cpu()) == RAW_MD5["t10k-labels"]
    assert dm.mean == pytest.approx([0.2860], abs=1e-4) and dm.std == pytest.approx([0.3530], abs=1e-4)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64


@pytest.mark.slow
def test_real_fashion_mnist_default_config(monkeypatch):
    """The default config: a stratified 54k / 6k split, augmented batches."""
    import yaml

    monkeypatch.setattr(idx_module, "DEBIAN_DIR", SYSTEM)
    conf = Path(__file__).resolve().parents[2] / "conf" / "data" / "fashion_mnist.yaml"
    dm = build_datamodule(yaml.safe_load(conf.read_text()))
    dm.setup()
    assert (dm.train_size, dm.val_size, dm.test_size) == (54000, 6000, 10000)
    assert torch.bincount(dm.splits["val"].targets).tolist() == [600] * 10
    loader = dm.train_dataloader()
    assert len(loader) == 54000 // 128
    x, _ = next(iter(loader))
    assert x.shape == (128, 1, 28, 28)
