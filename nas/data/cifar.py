"""CIFAR-10 and CIFAR-100 from the standard archives, binary or python version, without unpickling objects.

Accepted under `data.root` (or the cache, `cache_root()/<cifar-10|cifar-100>`): the extracted folder
(`cifar-10-batches-py`, `cifar-10-batches-bin`, `cifar-100-python`, `cifar-100-binary`), a folder holding
one, or the `.tar.gz` archive itself (read member by member, never extracted). With `data.download`, the
python archive is fetched into the cache (MD5-checked) and its members are extracted there.

The python version is a set of Python 2 pickles. They are read by `SafeUnpickler`, which resolves only the
few globals those files use (numpy's array reconstructor, `ndarray`, `dtype`) to inert stand-ins that
rebuild uint8 arrays from raw bytes; any other global (a pickle's way to run code) is refused.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from nas.data.base import InMemoryDataModule, RawData
from nas.data.config import DataConfig
from nas.data.download import Remote, cache_root, fetch
from nas.data.errors import CorruptDataError, DataNotFoundError, DownloadError
from nas.data.registry import register_dataset

PIXELS = 3 * 32 * 32  # bytes per image: 1024 red, then 1024 green, then 1024 blue, rows top to bottom
FORMATS = ("auto", "binary", "python")

# ----- reading the python version without executing anything ----------------------------------------------


class _Array:
    """Stand-in for `numpy.ndarray` during unpickling: keeps the shape, dtype and raw bytes it is given."""

    def __init__(self) -> None:
        self.state: tuple[Any, ...] | None = None

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.state = state

    def to_numpy(self, where: str) -> np.ndarray:
        try:
            _version, shape, dtype, fortran, raw = self.state  # type: ignore[misc]
        except (TypeError, ValueError):
            raise CorruptDataError(f"{where}: malformed numpy array in the pickle") from None
        if not isinstance(dtype, _Dtype) or dtype.code not in ("u1", "|u1") or fortran:
            raise CorruptDataError(f"{where}: expected a C-ordered uint8 array, found dtype {dtype!r}")
        if isinstance(raw, str):  # written by Python 3 at protocol 2: bytes travel as latin-1 text
            raw = raw.encode("latin-1")
        if not isinstance(raw, (bytes, bytearray)):
            raise CorruptDataError(f"{where}: array data is not raw bytes")
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != len(raw):
            raise CorruptDataError(f"{where}: array of shape {shape} holds {len(raw)} bytes (truncated?)")
        return np.frombuffer(bytes(raw), dtype=np.uint8).reshape(shape)


class _Dtype:
    """Stand-in for `numpy.dtype`: remembers the type code, ignores the pickled byte-order state."""

    def __init__(self, code: Any, *_: Any) -> None:
        self.code = code.decode() if isinstance(code, bytes) else str(code)

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return self.code


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NDARRAY:
        raise pickle.UnpicklingError("numpy _reconstruct called for something other than ndarray")
    return _Array()


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin-1 byte strings are allowed")
    return text.encode("latin-1")


_NDARRAY = object()
_ALLOWED: dict[tuple[str, str], Callable[..., Any] | object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype,
    ("_codecs", "encode"): _latin1,  # how Python 3 writes bytes at protocol 2
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and uint8 numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"refusing to load global {module}.{name}: a CIFAR file holds only arrays, lists and strings"
            ) from None


def _plain(obj: Any, where: str) -> Any:
    """Replace array stand-ins by numpy arrays and bytes keys by str, recursively."""
    if isinstance(obj, _Array):
        return obj.to_numpy(where)
    if isinstance(obj, dict):
        return {
            (k.decode("latin-1") if isinstance(k, bytes) else k): _plain(v, where) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_plain(v, where) for v in obj]
    return obj


def load_pickle(data: bytes, where: str) -> dict[str, Any]:
    """A CIFAR python-version file as a dict with str keys (SafeUnpickler; CorruptDataError if broken)."""
    try:
        obj = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobal as err:
        raise CorruptDataError(f"{where}: {err}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
    ) as err:
        raise CorruptDataError(
            f"{where}: not a readable CIFAR pickle (truncated or corrupt: {err!r})"
        ) from None
    obj = _plain(obj, where)
    if not isinstance(obj, dict):
        raise CorruptDataError(f"{where}: expected a dict, found {type(obj).__name__}")
    return obj


# ----- the two on-disk layouts --------------------------------------------------------------------------


def _python_batch(data: bytes, where: str, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    d = load_pickle(data, where)
    for key in ("data", label_key):
        if key not in d:
            raise CorruptDataError(f"{where}: no {key!r} entry (found {sorted(d)})")
    x = d["data"]
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != PIXELS:
        raise CorruptDataError(f"{where}: 'data' must be an (N, {PIXELS}) uint8 array")
    y = np.asarray(d[label_key], dtype=np.int64)
    if y.shape != (x.shape[0],):
        raise CorruptDataError(f"{where}: {x.shape[0]} images but {y.size} labels")
    return torch.from_numpy(x.copy()).view(-1, 3, 32, 32), torch.from_numpy(y)


def _binary_batch(data: bytes, where: str, label_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    record = label_bytes + PIXELS
    if not data or len(data) % record:
        raise CorruptDataError(
            f"{where}: {len(data)} bytes is not a whole number of {record}-byte records (truncated?)"
        )
    rows = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, record)
    # the last label byte is the class (CIFAR-100 stores coarse, then fine)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32).clone(), rows[:, label_bytes - 1].to(torch.int64)


class _Files:
    """Named members of a dataset, read from a folder or straight out of a .tar.gz archive."""

    def __init__(self, path: Path, prefix: str, archive: bool) -> None:
        self.path, self.prefix, self.archive = path, prefix, archive

    def __str__(self) -> str:
        return f"{self.path}" + (f" ({self.prefix}/)" if self.archive else "")

    def read(self, names: list[str]) -> dict[str, bytes]:
        if not self.archive:
            out = {}
            for n in names:
                f = self.path / n
                if not f.is_file():
                    raise CorruptDataError(f"{self.path}: missing {n} (the folder is incomplete)")
                out[n] = f.read_bytes()
            return out
        wanted = {f"{self.prefix}/{n}": n for n in names}
        out = {}
        try:
            with tarfile.open(self.path, "r:gz") as tar:
                for member in tar:  # one pass in archive order: no seeking back in the gzip stream
                    if member.name in wanted and member.isfile():
                        out[wanted[member.name]] = tar.extractfile(member).read()  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as err:
            raise CorruptDataError(
                f"{self.path}: unreadable archive ({err}); delete it and fetch it again"
            ) from None
        missing = [n for n in names if n not in out]
        if missing:
            raise CorruptDataError(
                f"{self.path}: archive lacks {', '.join(f'{self.prefix}/{n}' for n in missing)}"
            )
        return out


# ----- data modules ------------------------------------------------------------------------------------


@dataclasses.dataclass
class CifarConfig(DataConfig):
    """CIFAR options: `format` picks the archive version (auto tries python, then binary)."""

    format: str = "auto"

    def validate(self) -> None:
        super().validate()
        if self.format not in FORMATS:
            raise ValueError(
                f"data.format={self.format!r} is not a CIFAR format; valid: {', '.join(FORMATS)}"
            )


class CifarDataModule(InMemoryDataModule):
    """CIFAR-10/100: 50,000 training and 10,000 test 32x32 RGB images."""

    Config = CifarConfig
    native_channels = 3
    native_image_size = 32
    cache_folder: ClassVar[str]
    # format -> (folder / archive prefix, archive file name, train members, test member, label key or bytes)
    layouts: ClassVar[dict[str, tuple[str, str, list[str], str]]]
    python_label_key: ClassVar[str]
    binary_label_bytes: ClassVar[int]
    remote: ClassVar[Remote]

    def _formats(self) -> list[str]:
        return ["python", "binary"] if self.cfg.format == "auto" else [self.cfg.format]

    def _find_in(self, place: Path) -> tuple[str, _Files] | None:
        for fmt in self._formats():
            folder, archive, train, test = self.layouts[fmt]
            first = train[0]
            if place.is_file() and place.name == archive:
                return fmt, _Files(place, folder, archive=True)
            for d in (place, place / folder):
                if (d / first).is_file():
                    return fmt, _Files(d, folder, archive=False)
            if (place / archive).is_file():
                return fmt, _Files(place / archive, folder, archive=True)
        return None

    def _locate(self) -> tuple[str, _Files]:
        places = []
        if self.cfg.root:
            places.append((Path(self.cfg.root).expanduser(), "data.root"))
        cache = cache_root() / self.cache_folder
        places.append((cache, "cache"))
        looked = []
        for place, why in places:
            found = self._find_in(place)
            if found:
                return found
            looked.append(f"  - {place} ({why}): {'no CIFAR files' if place.exists() else 'does not exist'}")
        if self.cfg.download and "python" in self._formats():
            try:
                archive = fetch(self.remote, cache)
                self._extract(archive, cache)
            except DownloadError as err:
                raise DownloadError(self._how_to(looked, f"Downloading into {cache} failed: {err}")) from None
            found = self._find_in(cache)
            if found:
                return found
        why = (
            "Download skipped (data.download=false)."
            if not self.cfg.download
            else "Download needs format python."
        )
        raise DataNotFoundError(self._how_to(looked, why))

    def _extract(self, archive: Path, cache: Path) -> None:
        """Write the archive's expected members (and nothing else) into the cache, then drop the archive."""
        folder, _, train, test = self.layouts["python"]
        names = [*train, test]
        data = _Files(archive, folder, archive=True).read(names)
        (cache / folder).mkdir(parents=True, exist_ok=True)
        for name, blob in data.items():
            (cache / folder / name).write_bytes(blob)
        archive.unlink()

    def _how_to(self, looked: list[str], download: str) -> str:
        cache = cache_root() / self.cache_folder
        return (
            f"{self.title} not found. Looked in:\n"
            + "\n".join(looked)
            + f"\n{download}\nTo get it: download {self.remote.urls()[0]} (MD5 {self.remote.md5}) or the "
            f"binary version from https://www.cs.toronto.edu/~kriz/cifar.html into {cache}/ "
            "(or any folder, then set data.root=<that folder>); it is read without extracting."
        )

    def _load(self) -> RawData:
        fmt, files = self._locate()
        _, _, train, test = self.layouts[fmt]
        blobs = files.read([*train, test])
        parts = []
        for names in (train, [test]):
            xs, ys = [], []
            for name in names:
                where = f"{files}: {name}"
                if fmt == "python":
                    x, y = _python_batch(blobs[name], where, self.python_label_key)
                else:
                    x, y = _binary_batch(blobs[name], where, self.binary_label_bytes)
                xs.append(x)
                ys.append(y)
            parts += [torch.cat(xs), torch.cat(ys)]
        return RawData(*parts, source=f"{files} [{fmt}]")


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
    can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
    dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
    lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
    pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea
    seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
    tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman
    worm""".split()
)
KRIZ = ("https://www.cs.toronto.edu/~kriz/",)


@register_dataset("cifar10")
class CIFAR10(CifarDataModule):
    """CIFAR-10: 10 classes of 32x32 colour images (6,000 per class)."""

    title = "CIFAR-10"
    native_num_classes = 10
    default_class_names = CIFAR10_CLASSES
    cache_folder = "cifar-10"
    layouts = {
        "python": (
            "cifar-10-batches-py",
            "cifar-10-python.tar.gz",
            [f"data_batch_{i}" for i in range(1, 6)],
            "test_batch",
        ),
        "binary": (
            "cifar-10-batches-bin",
            "cifar-10-binary.tar.gz",
            [f"data_batch_{i}.bin" for i in range(1, 6)],
            "test_batch.bin",
        ),
    }
    python_label_key = "labels"
    binary_label_bytes = 1
    remote = Remote("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", KRIZ)


@register_dataset("cifar100")
class CIFAR100(CifarDataModule):
    """CIFAR-100: 100 fine classes of 32x32 colour images (600 per class)."""

    title = "CIFAR-100"
    native_num_classes = 100
    default_class_names = CIFAR100_CLASSES
    cache_folder = "cifar-100"
    layouts = {
        "python": ("cifar-100-python", "cifar-100-python.tar.gz", ["train"], "test"),
        "binary": ("cifar-100-binary", "cifar-100-binary.tar.gz", ["train.bin"], "test.bin"),
    }
    python_label_key = "fine_labels"
    binary_label_bytes = 2
    remote = Remote("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", KRIZ)
