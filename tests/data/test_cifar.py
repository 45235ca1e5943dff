"""CIFAR-10/100 on tiny fixtures in both standard versions, folders and archives; the safe unpickler; errors."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from datafixtures import CIFAR, py2_pickle, write_cifar

from nas.data import CorruptDataError, DataNotFoundError, DownloadError, build_datamodule
from nas.data.cifar import CIFAR10, load_pickle
from nas.data.download import Remote


def dm_for(name: str, root: Path | None, **kw):
    cfg = {
        "name": name,
        "root": str(root) if root else None,
        "val_size": 10,
        "batch_size": 8,
        "download": False,
    }
    cfg.update(kw)
    return build_datamodule(cfg)


CASES = [(n, f, a) for n in ("cifar10", "cifar100") for f in ("python", "binary") for a in (False, True)]


@pytest.mark.parametrize(("name", "fmt", "archive"), CASES, ids=lambda v: str(v))
def test_loads_both_versions_from_folder_and_archive(tmp_path: Path, name: str, fmt: str, archive: bool):
    arrays = write_cifar(tmp_path, name, fmt, archive=archive)
    dm = dm_for(name, tmp_path)
    dm.setup()
    assert (dm.train_size, dm.val_size, dm.test_size) == (90, 10, 20)
    assert dm.channels == 3 and dm.image_size == 32
    assert dm.num_classes == (10 if name == "cifar10" else 100)
    assert f"[{fmt}]" in dm.source
    test = dm.splits["test"]
    assert torch.equal(test.images, torch.from_numpy(arrays["test"][0]))  # pixel layout: RGB planes, rows
    assert torch.equal(test.targets, torch.from_numpy(arrays["test"][1]).long())  # fine labels for CIFAR-100
    val = dm.splits["val"]
    assert torch.equal(val.images, torch.from_numpy(arrays["train"][0][val.indices.numpy()]))
    assert torch.equal(val.targets, torch.from_numpy(arrays["train"][1][val.indices.numpy()]).long())
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and y.dtype == torch.int64


def test_root_may_be_the_batches_folder_or_the_archive_itself(tmp_path: Path):
    write_cifar(tmp_path, "cifar10", "binary")
    dm = dm_for("cifar10", tmp_path / "cifar-10-batches-bin")
    dm.setup()
    assert dm.test_size == 20
    write_cifar(tmp_path / "a", "cifar10", "python", archive=True)
    dm = dm_for("cifar10", tmp_path / "a" / "cifar-10-python.tar.gz")
    dm.setup()
    assert "cifar-10-python.tar.gz" in dm.source


def test_format_option_picks_the_version(tmp_path: Path):
    write_cifar(tmp_path, "cifar10", "binary")
    with pytest.raises(DataNotFoundError):
        dm_for("cifar10", tmp_path, format="python").setup()
    dm = dm_for("cifar10", tmp_path, format="binary")
    dm.setup()
    assert "[binary]" in dm.source
    with pytest.raises(ValueError, match="data.format='pickle'.*auto, binary, python"):
        dm_for("cifar10", tmp_path, format="pickle")


def test_cache_is_searched(isolated_cache: Path):
    write_cifar(isolated_cache / "cifar-100", "cifar100", "python")
    dm = dm_for("cifar100", None)
    dm.setup()
    assert str(isolated_cache) in dm.source


def test_safe_unpickler_reads_python2_and_python3_pickles():
    a = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for blob in (
        py2_pickle({b"data": a, b"labels": [1, 2]}),
        pickle.dumps({b"data": a, b"labels": [1, 2]}, protocol=2),
        pickle.dumps({"data": a, "labels": [1, 2]}, protocol=4),
    ):
        d = load_pickle(blob, "x")
        assert np.array_equal(d["data"], a) and d["labels"] == [1, 2]


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_safe_unpickler_refuses_code(tmp_path: Path):
    with pytest.raises(
        CorruptDataError, match="refusing to load global posix.system|refusing to load global nt"
    ):
        load_pickle(pickle.dumps({b"data": Exploit()}, protocol=2), "evil")
    # a planted file is refused before anything runs
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(tmp_path, "cifar10", "python")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(CorruptDataError, match="data_batch_3: refusing to load global"):
        dm_for("cifar10", tmp_path).setup()


def test_safe_unpickler_refuses_other_dtypes():
    blob = pickle.dumps({b"data": np.zeros((1, 3072), dtype=np.float32), b"labels": [0]}, protocol=2)
    with pytest.raises(CorruptDataError, match="expected a C-ordered uint8 array"):
        load_pickle(blob, "x")


@pytest.mark.parametrize(
    ("fmt", "damage", "match"),
    [
        ("binary", "truncate", "not a whole number of 3073-byte records"),
        ("python", "truncate", "truncated or corrupt"),
        ("python", "no_labels", "no 'labels' entry"),
        ("python", "missing_member", "missing data_batch_5"),
        ("binary", "label_range", "labels span"),
    ],
)
def test_corrupt_files_are_named(tmp_path: Path, fmt: str, damage: str, match: str):
    write_cifar(tmp_path, "cifar10", fmt)
    folder = tmp_path / ("cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin")
    member = folder / ("data_batch_5" if fmt == "python" else "data_batch_5.bin")
    blob = member.read_bytes()
    if damage == "truncate":
        member.write_bytes(blob[:-100])
    elif damage == "no_labels":
        d = load_pickle(blob, "x")
        member.write_bytes(py2_pickle({b"data": d["data"]}))
    elif damage == "missing_member":
        member.unlink()
        # the first member still marks the folder as CIFAR: the incompleteness is reported
    else:
        arr = bytearray(blob)
        arr[0] = 200
        member.write_bytes(bytes(arr))
    with pytest.raises(CorruptDataError, match=match):
        dm_for("cifar10", tmp_path).setup()


def test_truncated_archive(tmp_path: Path):
    write_cifar(tmp_path, "cifar100", "binary", archive=True)
    archive = tmp_path / CIFAR["cifar100"][6]
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(CorruptDataError, match="unreadable archive|archive lacks"):
        dm_for("cifar100", tmp_path).setup()


def test_missing_and_unreachable(tmp_path: Path, monkeypatch, isolated_cache: Path):
    with pytest.raises(DataNotFoundError) as err:
        dm_for("cifar10", tmp_path / "nowhere").prepare_data()
    msg = str(err.value)
    assert "CIFAR-10 not found" in msg and "does not exist" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert str(isolated_cache / "cifar-10") in msg
    monkeypatch.setattr(
        CIFAR10, "remote", Remote("cifar-10-python.tar.gz", CIFAR10.remote.md5, ("http://127.0.0.1:9",))
    )
    with pytest.raises(DownloadError, match="Downloading into .* failed"):
        dm_for("cifar10", None, download=True).prepare_data()


def test_download_extracts_only_the_expected_members(tmp_path: Path, monkeypatch, isolated_cache: Path):
    server = tmp_path / "server"
    write_cifar(server, "cifar10", "python", archive=True)
    blob = (server / "cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setattr(
        CIFAR10, "remote", Remote("cifar-10-python.tar.gz", hashlib.md5(blob).hexdigest(), (server.as_uri(),))
    )
    dm = dm_for("cifar10", None, download=True)
    dm.setup()
    assert dm.test_size == 20
    files = sorted(p.name for p in (isolated_cache / "cifar-10").rglob("*") if p.is_file())
    assert files == sorted([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])


def test_grey_conversion_uses_luma(tmp_path: Path):
    arrays = write_cifar(tmp_path, "cifar10", "binary")
    dm = dm_for("cifar10", tmp_path, channels=1)
    dm.setup()
    x = dm.splits["test"].images
    assert x.shape == (20, 1, 32, 32)
    rgb = torch.from_numpy(arrays["test"][0]).double()
    luma = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).round()
    assert torch.allclose(x[:, 0].double(), luma, atol=1.0)
