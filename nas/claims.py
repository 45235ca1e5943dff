"""Runs split between processes on one machine (one process per core trains more than one with two threads:
docs/benchmarks.md, "Threads"): each run is claimed with an OS file lock while it trains.

The lock is released when its process ends, even by kill -9, so a stale lock never blocks a restart. Used by
the run files the engine fills (nas.runfile: the fidelity calibration, the surrogate benchmark's data), the
ablation cache (experiments.ablation.cache), and through `claimed` (every free run first, then those another
process holds) the real-front benchmark (experiments.bench.fronts) and the search sweeps over NAS-Bench-201 and
a surrogate (experiments.bench._search_nb201, _search_surrogate).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


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


def claimed(
    runs: Iterable[T], *, done: Callable[[], Container[T]], lock: Callable[[T], Path], where: str = ""
) -> Iterator[T]:
    """The runs of `runs` this process should do, each yielded while it holds the run's lock (`lock(run)`): first
    every run no other process holds, then, waiting on each lock in turn, those another process was doing (done
    here after all if that process died before finishing it). `done()` is asked again before each run (another
    process may have finished it); what it holds is never yielded."""
    runs = list(runs)
    for wait in (False, True):
        for run in runs:
            if run in done():
                continue
            with claim(lock(run), wait=wait, where=where) as mine:
                if mine and run not in done():
                    yield run
