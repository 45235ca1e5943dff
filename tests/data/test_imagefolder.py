"""ImageFolder: both layouts, decoding at image_size, the decoded-tensor cache, and every folder error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datafixtures import write_imagefolder

import nas.data.imagefolder as imagefolder
from nas.data import CorruptDataError, DataNotFoundError, build_datamodule, validate_data_config


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The image folder (beside, not around, the test's cache folder)."""
    return tmp_path / "imgs"


def dm_for(root: Path, num_classes: int = 3, **kw):
    cfg = {"name": "imagefolder", "root": str(root), "num_classes": num_classes, "image_size": 12}
    cfg.update({"val_size": 3, "batch_size": 4, **kw})
    return build_datamodule(cfg)


def test_single_pool_splits_off_a_fixed_stratified_test_set(root: Path):
    write_imagefolder(root, {"cat": 10, "dog": 10, "emu": 5})
    dm = dm_for(root, test_fraction=0.2)
    assert dm.class_names == ["cat", "dog", "emu"] and dm.num_classes == 3
    dm.setup()
    assert dm.test_size == 5 and dm.val_size == 3 and dm.train_size == 17
    assert torch.bincount(dm.splits["test"].targets, minlength=3).tolist() == [2, 2, 1]
    assert dm.splits["train"].images.shape[1:] == (3, 12, 12)
    # the test split does not depend on the run's seeds
    other = dm_for(root, test_fraction=0.2, seed=5, split_seed=9)
    other.setup()
    assert torch.equal(other.splits["test"].images, dm.splits["test"].images)


def test_train_and_test_folders(root: Path):
    write_imagefolder(root / "train", {"a": 6, "b": 6})
    write_imagefolder(root / "test", {"a": 2, "b": 3})
    dm = dm_for(root, num_classes=2, val_size=2)
    dm.setup()
    assert (dm.train_size, dm.val_size, dm.test_size) == (10, 2, 5)
    assert dm.splits["test"].targets.tolist() == [0, 0, 1, 1, 1]


def test_decoding_colour_grey_and_centre_crop(root: Path):
    write_imagefolder(root, {"a": 3, "b": 3, "c": 3}, size=(30, 10))
    dm = dm_for(root, val_size=0, test_fraction=0.0, augment=False)
    dm.setup()
    x, y = dm.splits["train"].images, dm.splits["train"].targets
    assert x.shape == (9, 3, 12, 12) and x.dtype == torch.uint8
    # class k was drawn in a flat colour: its red channel is 30 k + 10 everywhere
    assert torch.equal(x[:, 0, 6, 6].long(), 30 * y + 10)
    grey = dm_for(root, channels=1, val_size=0, test_fraction=0.0)
    grey.setup()
    assert grey.splits["train"].images.shape == (9, 1, 12, 12)


def test_decoded_tensors_are_cached(root: Path, monkeypatch, isolated_cache: Path):
    write_imagefolder(root, {"a": 4, "b": 4, "c": 4})
    first = dm_for(root)
    first.setup()
    assert list((isolated_cache / "imagefolder").glob("*.pt"))

    def no_decoding(*_a, **_k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(imagefolder, "decode_images", no_decoding)
    again = dm_for(root)
    again.setup()
    assert torch.equal(again.splits["test"].images, first.splits["test"].images)
    with pytest.raises(AssertionError, match="decoded again"):  # another size is another cache entry
        dm_for(root, image_size=10).setup()


def test_num_classes_required_and_checked(root: Path):
    write_imagefolder(root, {"a": 2, "b": 2, "c": 2})
    with pytest.raises(
        ValueError, match="data.num_classes must be set.*has 3 class folders; set data.num_classes=3"
    ):
        validate_data_config({"name": "imagefolder", "root": str(root), "image_size": 8})
    with pytest.raises(ValueError, match="data.num_classes=5 but .* has 3 class folders.*num_classes=3"):
        dm_for(root, num_classes=5)  # checked at construction: listing folders is cheap
    with pytest.raises(ValueError, match="data.root must name the image folder"):
        validate_data_config({"name": "imagefolder", "image_size": 8, "num_classes": 2})
    with pytest.raises(ValueError, match="data.image_size must be set"):
        validate_data_config({"name": "imagefolder", "root": str(root), "num_classes": 3, "image_size": None})


def test_folder_without_images(root: Path):
    root.mkdir()
    with pytest.raises(DataNotFoundError, match="no class subfolders"):
        dm_for(root).setup()
    for c in ("a", "b", "c"):
        (root / c).mkdir()
    (root / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(DataNotFoundError, match="no images in .*png"):
        dm_for(root).prepare_data()
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        dm_for(root / "missing").prepare_data()


def test_class_without_images(root: Path):
    write_imagefolder(root, {"a": 2, "b": 2})
    (root / "c").mkdir()
    with pytest.raises(DataNotFoundError, match="class folders with no images.*: c"):
        dm_for(root).setup()


def test_corrupt_image_is_named(root: Path):
    write_imagefolder(root, {"a": 2, "b": 2, "c": 2})
    (root / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(CorruptDataError, match=r"b/1.png: cannot decode"):
        dm_for(root).setup()


def test_test_folder_with_unknown_class(root: Path):
    write_imagefolder(root / "train", {"a": 2, "b": 2})
    write_imagefolder(root / "test", {"a": 1, "z": 1})
    with pytest.raises(ValueError, match="class folders missing from .*: z"):
        dm_for(root, num_classes=2).setup()
