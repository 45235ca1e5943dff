"""Runs split between processes on one machine (one process per core trains more than one with two threads:
docs/benchmarks.md, "Threads"): each run is claimed with an OS file lock while it trains.

The lock is released when its process ends, even by kill -9, so a stale lock never blocks a restart. Used by
the run files the engine fills (nas.runfile: the fidelity calibration, the surrogate benchmark's data), the
ablation cache (experiments.ablation.cache), the real-front benchmark (experiments.bench.fronts) and the
NAS-Bench-201 search sweep (experiments.bench._search_nb201).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class LockError(ValueError):
    """The folder's file system cannot lock files (a setup problem the user fixes by choosing another folder)."""


@contextlib.contextmanager
def claim(path: Path, *, wait: bool = False, where: str = "") -> Iterator[bool]:
    """Hold the lock file `path` for the block: True if this process holds it; without `wait`, False at once
    when another process does. `where`: the option that chose the folder (e.g. "cache_dir"), named in the
    error where the file system cannot lock (NFS or Lustre mounted without locking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError as e:  # ENOLCK, EOPNOTSUPP, EINVAL ...: the file system does not lock
            raise LockError(
                f"cannot lock {path} ({e.strerror or e}): its file system does not support file locks (NFS or "
                "Lustre mounted without locking?), and without them two workers could train the same run. Use "
                f"a {where or 'folder'} on a local disk, or mount with locking enabled."
            ) from None
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
