"""MNIST and Fashion-MNIST: IDX files (gzipped or not) from `root`, the Debian package's folder, or the cache.

Lookup order: `data.root` (the folder holding the four files, or a parent holding `<folder>/`), then
`/usr/share/datasets/<folder>/` (Debian's `dataset-fashion-mnist` package), then the cache
(`nas.data.download.cache_root()/<folder>`), which a checksummed download fills when `data.download` is
true. Each file is checked (magic number, dimensions, exact length) before use. Decoding the 26 MB of
gzip takes ~0.3 s, so decoded tensors are not cached.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path
from typing import ClassVar

import torch

from nas.data.base import InMemoryDataModule, RawData
from nas.data.download import Remote, cache_root, fetch_all
from nas.data.errors import CorruptDataError, DataNotFoundError, DownloadError
from nas.data.registry import register_dataset

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/datasets")
UBYTE = 0x08  # IDX type code for unsigned bytes: the only one (Fashion-)MNIST uses
SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """An IDX file (optionally gzipped) as a uint8 tensor of the shape its header gives.

    Raises CorruptDataError on a bad gzip stream, magic number, dimension count or file length.
    """
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = zlib.decompress(raw, wbits=31)  # 31: gzip framing; checks the CRC and the length
        except zlib.error as err:
            raise CorruptDataError(
                f"{path}: not a complete gzip file ({err}); delete it and fetch it again"
            ) from None
    if len(raw) < 4:
        raise CorruptDataError(f"{path}: {len(raw)} bytes is too short for an IDX file")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != UBYTE or dims != ndim:
        raise CorruptDataError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000080{ndim}: unsigned bytes, "
            f"{ndim} dimension(s)); the file is not what its name says, or is corrupt"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(torch.tensor(shape).prod())
    if len(raw) != expected:
        raise CorruptDataError(
            f"{path}: {len(raw)} bytes but its header {shape} needs {expected}; the file is "
            f"{'truncated' if len(raw) < expected else 'too long'}; delete it and fetch it again"
        )
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).view(*shape)


class IdxDataModule(InMemoryDataModule):
    """A dataset of four IDX files: 28x28 grey images, 10 classes (MNIST and its drop-in replacements)."""

    folder: ClassVar[str]  # /usr/share/datasets/<folder>, <cache>/<folder>
    remotes: ClassVar[tuple[Remote, ...]]
    debian_package: ClassVar[str | None] = None
    native_channels = 1
    native_image_size = 28
    native_num_classes = 10

    def _candidates(self) -> list[tuple[Path, str]]:
        """(folder, why it is looked in), in lookup order."""
        out: list[tuple[Path, str]] = []
        if self.cfg.root:
            root = Path(self.cfg.root).expanduser()
            out += [(root, "data.root"), (root / self.folder, "data.root")]
        out.append(
            (
                DEBIAN_DIR / self.folder,
                f"Debian package {self.debian_package}" if self.debian_package else "system",
            )
        )
        out.append((cache_root() / self.folder, "cache"))
        return out

    @staticmethod
    def _files_in(folder: Path) -> dict[str, Path] | list[str]:
        """The four files in `folder` (plain or .gz), or the names missing there."""
        found, missing = {}, []
        for key, stem in SPLIT_FILES.items():
            for name in (stem + ".gz", stem):
                if (folder / name).is_file():
                    found[key] = folder / name
                    break
            else:
                missing.append(stem + "[.gz]")
        return found if not missing else missing

    def _locate(self) -> dict[str, Path]:
        looked = []
        for folder, why in self._candidates():
            files = self._files_in(folder)
            if isinstance(files, dict):
                if looked and self.cfg.root:
                    log.warning("%s: not in data.root=%s; using %s", self.title, self.cfg.root, folder)
                return files
            state = "does not exist" if not folder.is_dir() else f"missing {', '.join(files)}"
            looked.append(f"  - {folder} ({why}): {state}")
        cache = cache_root() / self.folder
        if self.cfg.download:
            try:
                fetch_all(self.remotes, cache)
            except DownloadError as err:
                raise DownloadError(self._how_to(looked, f"Downloading into {cache} failed: {err}")) from None
            files = self._files_in(cache)
            if isinstance(files, dict):
                return files
        raise DataNotFoundError(self._how_to(looked, "Download skipped (data.download=false)."))

    def _how_to(self, looked: list[str], download: str) -> str:
        cache = cache_root() / self.folder
        names = ", ".join(r.filename for r in self.remotes)
        ways = []
        if self.debian_package:
            ways.append(f"  - on Debian/Ubuntu, as root: apt-get install -y {self.debian_package}")
        ways.append(
            f"  - or download {names} from {self.remotes[0].mirrors[0]} into {cache}/ "
            "(or into any folder, then set data.root=<that folder>)"
        )
        return (
            f"{self.title} not found. Looked in:\n"
            + "\n".join(looked)
            + f"\n{download}\nTo get it:\n"
            + "\n".join(ways)
        )

    def _load(self) -> RawData:
        files = self._locate()
        arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in files.items()}
        parts = {}
        for part in ("train", "test"):
            x, y = arrays[f"{part}_images"], arrays[f"{part}_labels"]
            if x.shape[0] != y.shape[0]:
                raise CorruptDataError(
                    f"{files[part + '_images']} holds {x.shape[0]} images but {files[part + '_labels']} "
                    f"holds {y.shape[0]} labels"
                )
            parts[part] = (x.unsqueeze(1), y.to(torch.int64))
        return RawData(*parts["train"], *parts["test"], source=str(files["train_images"].parent))


FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


@register_dataset("fashion_mnist")
class FashionMNIST(IdxDataModule):
    """Fashion-MNIST (Zalando): 60,000 training and 10,000 test 28x28 grey images of 10 clothing classes."""

    title = "Fashion-MNIST"
    folder = "fashion-mnist"
    debian_package = "dataset-fashion-mnist"
    # official MD5s of the gzipped files as published (the Debian package re-compresses them; its
    # decompressed contents are identical)
    remotes = (
        Remote("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", FASHION_MIRRORS),
        Remote("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", FASHION_MIRRORS),
        Remote("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", FASHION_MIRRORS),
        Remote("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", FASHION_MIRRORS),
    )
    default_class_names = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )


@register_dataset("mnist")
class MNIST(IdxDataModule):
    """MNIST handwritten digits: 60,000 training and 10,000 test 28x28 grey images, 10 classes."""

    title = "MNIST"
    folder = "mnist"
    remotes = (
        Remote("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", MNIST_MIRRORS),
        Remote("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", MNIST_MIRRORS),
        Remote("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", MNIST_MIRRORS),
        Remote("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", MNIST_MIRRORS),
    )
    default_class_names = tuple(str(i) for i in range(10))
