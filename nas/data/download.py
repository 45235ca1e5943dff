"""Data cache and checksummed downloads that fail fast with a message saying how to get the files."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from nas.data.errors import DownloadError

log = logging.getLogger(__name__)

# Seconds to wait for a server to answer; a closed network fails at once (DNS), a filtered one after this.
TIMEOUT_S = 15.0
CHUNK = 1 << 20


def cache_root() -> Path:
    """Where downloaded datasets live: $CNN_NAS_CACHE, else $XDG_CACHE_HOME/cnn-nas, else ~/.cache/cnn-nas."""
    env = os.environ.get("CNN_NAS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cnn-nas"


@dataclasses.dataclass(frozen=True)
class Remote:
    """One file of a dataset: its name, official MD5, and the base URLs it can be fetched from, in order."""

    filename: str
    md5: str
    mirrors: tuple[str, ...]

    def urls(self) -> list[str]:
        return [m.rstrip("/") + "/" + self.filename for m in self.mirrors]


def md5_of(path: Path) -> str:
    """Hex MD5 of a file (read in 1 MiB chunks)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch(remote: Remote, dest_dir: Path, *, timeout: float = TIMEOUT_S) -> Path:
    """Download `remote` into `dest_dir` (atomic, MD5-checked), trying each mirror; DownloadError if all fail.

    The error names every URL tried and why it failed; callers add how to get the file by hand.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / remote.filename
    if dest.exists() and md5_of(dest) == remote.md5:
        return dest
    failures = []
    for url in remote.urls():
        part = dest.with_name(dest.name + f".part{os.getpid()}")
        try:
            log.info("downloading %s", url)
            h = hashlib.md5(usedforsecurity=False)
            with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    h.update(block)
                    out.write(block)
            if h.hexdigest() != remote.md5:
                failures.append(f"{url}: checksum mismatch (MD5 {h.hexdigest()}, expected {remote.md5})")
                continue
            os.replace(part, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            failures.append(f"{url}: {reason}")
        finally:
            part.unlink(missing_ok=True)
    raise DownloadError("download failed:\n" + "\n".join(f"    {f}" for f in failures))


def fetch_all(remotes: Sequence[Remote], dest_dir: Path, *, timeout: float = TIMEOUT_S) -> list[Path]:
    """Fetch every file; stops at the first that cannot be had (so a closed network fails once, quickly)."""
    return [fetch(r, dest_dir, timeout=timeout) for r in remotes]
