"""MNIST / Fashion-MNIST on tiny IDX fixtures: lookup order, decoding, downloads and every data error."""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import pytest
import torch
from datafixtures import idx_bytes, write_idx

import nas.data.idx as idx_module
from nas.data import CorruptDataError, DataNotFoundError, DownloadError, build_datamodule
from nas.data.download import Remote, fetch
from nas.data.idx import FashionMNIST, read_idx

UNREACHABLE = ("http://127.0.0.1:9/",)  # the discard port: connection refused at once


def dm_for(root: Path | None, name: str = "fashion_mnist", **kw):
    cfg = {
        "name": name,
        "root": str(root) if root else None,
        "val_size": 10,
        "batch_size": 8,
        "download": False,
    }
    cfg.update(kw)
    return build_datamodule(cfg)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_loads_tiny_idx(tmp_path: Path, gz: bool, name: str):
    arrays = write_idx(tmp_path / "d", gz=gz)
    dm = dm_for(tmp_path / "d", name)
    dm.prepare_data()
    dm.setup()
    assert (dm.train_size, dm.val_size, dm.test_size) == (90, 10, 30)
    assert dm.num_classes == 10 and dm.channels == 1 and dm.image_size == 28
    test = dm.splits["test"]
    assert torch.equal(test.images.squeeze(1), torch.from_numpy(arrays["t10k"][0]))
    assert torch.equal(test.targets, torch.from_numpy(arrays["t10k"][1]).long())
    # training images keep their labels through the split (brightness encodes the label in the fixture)
    train = dm.splits["train"]
    assert torch.equal((train.images.float().mean((1, 2, 3)) - 10).div(20).round().long(), train.targets)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert dm.source == str(tmp_path / "d")


def test_class_names():
    assert dm_for(None).class_names[:2] == ["T-shirt/top", "Trouser"]
    assert dm_for(None, "mnist").class_names == [str(i) for i in range(10)]


def test_root_may_be_the_parent_folder(tmp_path: Path):
    write_idx(tmp_path / "fashion-mnist")
    dm = dm_for(tmp_path)
    dm.setup()
    assert dm.source == str(tmp_path / "fashion-mnist")


def test_lookup_order_root_then_system_then_cache(tmp_path: Path, isolated_cache: Path, monkeypatch):
    system = tmp_path / "system"
    monkeypatch.setattr(idx_module, "DEBIAN_DIR", system)
    write_idx(isolated_cache / "fashion-mnist", n_train=40)
    dm = dm_for(None)
    dm.setup()
    assert dm.source == str(isolated_cache / "fashion-mnist")
    write_idx(system / "fashion-mnist", n_train=50)
    dm = dm_for(None)
    dm.setup()
    assert dm.source == str(system / "fashion-mnist")
    write_idx(tmp_path / "mine", n_train=60)
    dm = dm_for(tmp_path / "mine")
    dm.setup()
    assert dm.source == str(tmp_path / "mine") and dm.train_size == 50
    # a root without the files falls through to the next place
    (tmp_path / "empty").mkdir()
    dm = dm_for(tmp_path / "empty")
    dm.setup()
    assert dm.source == str(system / "fashion-mnist")


def test_missing_data_says_how_to_get_it(tmp_path: Path, isolated_cache: Path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    dm = dm_for(tmp_path / "partial")
    with pytest.raises(DataNotFoundError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert "Fashion-MNIST not found" in msg
    assert "missing train-labels-idx1-ubyte[.gz]" in msg
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in msg
    assert str(isolated_cache / "fashion-mnist") in msg
    assert "data.root" in msg and "data.download=false" in msg
    with pytest.raises(DataNotFoundError, match="MNIST not found"):
        dm_for(None, "mnist").setup()  # setup alone finds (or fails to find) the files too


def test_unreachable_download_fails_fast_with_instructions(monkeypatch, isolated_cache: Path):
    remotes = tuple(Remote(r.filename, r.md5, UNREACHABLE) for r in FashionMNIST.remotes)
    monkeypatch.setattr(FashionMNIST, "remotes", remotes)
    dm = dm_for(None, download=True)
    start = time.perf_counter()
    with pytest.raises(DownloadError) as err:
        dm.prepare_data()
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "Downloading into" in msg and "failed" in msg
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in msg
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert not list(isolated_cache.rglob("*.part*")), "no partial files left behind"


def test_checksummed_download(tmp_path: Path, isolated_cache: Path, monkeypatch):
    # file:// URLs stand in for the official site
    server = tmp_path / "server"
    write_idx(server)
    remotes = tuple(
        Remote(p.name, hashlib.md5(p.read_bytes()).hexdigest(), (server.as_uri() + "/",))
        for p in sorted(server.iterdir())
    )
    monkeypatch.setattr(FashionMNIST, "remotes", remotes)
    dm = dm_for(None, download=True)
    dm.setup()
    assert dm.source == str(isolated_cache / "fashion-mnist")
    assert dm.test_size == 30


def test_download_with_wrong_checksum_is_refused(tmp_path: Path):
    (tmp_path / "f.gz").write_bytes(b"not what was published")
    remote = Remote("f.gz", "0" * 32, (tmp_path.as_uri() + "/",))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(remote, tmp_path / "dest")
    assert not (tmp_path / "dest" / "f.gz").exists()


def corrupt(folder: Path, name: str, data: bytes, gz: bool = True) -> None:
    (folder / f"{name}.gz").write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncated_gzip", "not a complete gzip file"),
        ("bad_magic", "bad IDX magic number"),
        ("short_data", "truncated"),
        ("long_data", "too long"),
        ("label_count", "holds 100 images but .* holds 99 labels"),
        ("label_range", "labels span"),
    ],
)
def test_corrupt_files_are_named(tmp_path: Path, damage: str, match: str):
    d = tmp_path / "d"
    arrays = write_idx(d)
    images, labels = arrays["train"]
    if damage == "truncated_gzip":
        blob = (d / "train-images-idx3-ubyte.gz").read_bytes()
        (d / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    elif damage == "bad_magic":
        corrupt(d, "train-images-idx3-ubyte", b"\x00\x00\x08\x01" + idx_bytes(images)[4:])
    elif damage == "short_data":
        corrupt(d, "train-images-idx3-ubyte", idx_bytes(images)[:-5])
    elif damage == "long_data":
        corrupt(d, "train-images-idx3-ubyte", idx_bytes(images) + b"\x00")
    elif damage == "label_count":
        corrupt(d, "train-labels-idx1-ubyte", idx_bytes(labels[:99]))
    else:
        bad = labels.copy()
        bad[0] = 12
        corrupt(d, "train-labels-idx1-ubyte", idx_bytes(bad))
    with pytest.raises(CorruptDataError, match=match):
        dm_for(d).setup()


def test_read_idx_header(tmp_path: Path):
    p = tmp_path / "x"
    p.write_bytes(idx_bytes(torch.arange(24, dtype=torch.uint8).view(2, 3, 4).numpy()))
    assert read_idx(p, 3).shape == (2, 3, 4)
    with pytest.raises(CorruptDataError, match="bad IDX magic"):
        read_idx(p, 1)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(CorruptDataError, match="too short"):
        read_idx(p, 1)
