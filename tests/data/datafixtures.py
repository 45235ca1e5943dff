"""Writers of tiny IDX / CIFAR / ImageFolder datasets for the data tests (imported by the test modules)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def class_images(labels: np.ndarray, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """uint8 images whose mean brightness encodes the label (so tests can check label/image pairing)."""
    rng = np.random.default_rng(seed)
    base = (labels.astype(np.int64) * 20 + 10).reshape(-1, *([1] * len(shape)))
    return np.clip(base + rng.integers(-5, 6, size=(len(labels), *shape)), 0, 255).astype(np.uint8)


def balanced_labels(n: int, classes: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % classes).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX ubyte file's contents for `array`."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(folder: Path, *, n_train: int = 100, n_test: int = 30, gz: bool = True, size: int = 28) -> dict:
    """The four (Fashion-)MNIST files for a tiny balanced 10-class dataset; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        labels = balanced_labels(n, 10, seed)
        images = class_images(labels, (size, size), seed)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{part}-{kind}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        out[part] = (images, labels)
    return out


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler, so single opcodes can be changed
    """Writes pickles the way Python 2's cPickle wrote the CIFAR files: str as BINSTRING, numpy.core globals."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None) -> None:
        if obj is np.ndarray:
            module, qual = "numpy", "ndarray"
        elif obj is np.dtype:
            module, qual = "numpy", "dtype"
        elif getattr(obj, "__name__", "") == "_reconstruct":
            module, qual = "numpy.core.multiarray", "_reconstruct"
        else:
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + f"{module}\n{qual}\n".encode())
        self.memoize(obj)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


CIFAR = {
    # name: (python folder, python archive, train members, test member, label key, binary folder, archive,
    #        train members, test member, label bytes)
    "cifar10": (
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        [f"data_batch_{i}" for i in range(1, 6)],
        "test_batch",
        b"labels",
        "cifar-10-batches-bin",
        "cifar-10-binary.tar.gz",
        [f"data_batch_{i}.bin" for i in range(1, 6)],
        "test_batch.bin",
        1,
    ),
    "cifar100": (
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        ["train"],
        "test",
        b"fine_labels",
        "cifar-100-binary",
        "cifar-100-binary.tar.gz",
        ["train.bin"],
        "test.bin",
        2,
    ),
}


def cifar_arrays(name: str, n_train: int, n_test: int) -> dict:
    classes = 10 if name == "cifar10" else 100
    out = {}
    for part, n, seed in (("train", n_train, 3), ("test", n_test, 4)):
        labels = balanced_labels(n, classes, seed)
        out[part] = (class_images(labels % 12, (3, 32, 32), seed), labels)
    return out


def write_cifar(
    root: Path, name: str, fmt: str, *, archive: bool = False, n_train: int = 100, n_test: int = 20
) -> dict:
    """A tiny CIFAR dataset in the standard layout (python: py2-style pickles; binary: records)."""
    py_dir, py_tar, py_train, py_test, key, bin_dir, bin_tar, bin_train, bin_test, lbytes = CIFAR[name]
    arrays = cifar_arrays(name, n_train, n_test)
    members: dict[str, bytes] = {}
    train_x, train_y = arrays["train"]
    names = py_train if fmt == "python" else bin_train
    chunks = np.array_split(np.arange(n_train), len(names))
    parts = [(n, train_x[c], train_y[c]) for n, c in zip(names, chunks, strict=True)]
    parts.append((py_test if fmt == "python" else bin_test, *arrays["test"]))
    for member, x, y in parts:
        if fmt == "python":
            d = {b"batch_label": b"batch", key: [int(v) for v in y], b"data": x.reshape(len(x), -1)}
            if name == "cifar100":
                d[b"coarse_labels"] = [int(v) // 5 for v in y]
            members[member] = py2_pickle(d)
        else:
            labels = y.reshape(-1, 1).astype(np.uint8)
            if lbytes == 2:
                labels = np.concatenate([(labels // 5).astype(np.uint8), labels], axis=1)
            members[member] = np.concatenate([labels, x.reshape(len(x), -1)], axis=1).tobytes()
    folder = py_dir if fmt == "python" else bin_dir
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / (py_tar if fmt == "python" else bin_tar), "w:gz") as tar:
            for member, data in members.items():
                info = tarfile.TarInfo(f"{folder}/{member}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for member, data in members.items():
            (root / folder / member).write_bytes(data)
    return arrays


def write_imagefolder(
    root: Path, counts: dict[str, int], *, size: tuple[int, int] = (20, 14), ext: str = "png"
):
    """root/<class>/<i>.<ext> RGB images, class k filled with a distinct colour."""
    from PIL import Image

    for k, (cls, n) in enumerate(counts.items()):
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            colour = (30 * k + 10, 200 - 30 * k, (50 * i) % 256)
            Image.new("RGB", size, colour).save(d / f"{i}.{ext}")
