"""Latency timed while no other worker on this machine trains: a file lock between timing and training steps.

Two 1-thread workers of one search share a 2-core machine (nas.search.local_workers). A latency timed on one
core while the other core trains reads memory bandwidth and caches the trainer is using, so it would depend on
what the other worker happens to do. With `NAS_TIMING_LOCK` set to a lock file (the search sets it for its
workers), timing holds the lock exclusively and every training or validation step holds it shared: a timer
waits for the steps in flight (one batch, tens of ms) and the other workers wait at their next step until the
timing is done (about a second a trial). A turnstile file in front of the lock keeps a trainer that takes a
new step at once from starving the timer. Without the variable nothing is locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

ENV = "NAS_TIMING_LOCK"


def lock_path() -> Path | None:
    """The lock file this process shares with the other workers, if any."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


class _Files:
    """The lock file and its turnstile, opened once per process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.main = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.turnstile = os.open(path.with_name(path.name + ".turnstile"), os.O_RDWR | os.O_CREAT, 0o644)


_open: dict[Path, _Files] = {}


def _files(path: Path) -> _Files:
    if path not in _open:
        _open[path] = _Files(path)
    return _open[path]


@contextlib.contextmanager
def quiet_machine() -> Iterator[None]:
    """Hold the timing lock exclusively: no other worker of this search trains a step meanwhile."""
    path = lock_path()
    if path is None:
        yield
        return
    f = _files(path)
    fcntl.flock(f.turnstile, fcntl.LOCK_EX)  # new training steps wait here ...
    try:
        fcntl.flock(f.main, fcntl.LOCK_EX)  # ... and the steps in flight finish
        try:
            yield
        finally:
            fcntl.flock(f.main, fcntl.LOCK_UN)
    finally:
        fcntl.flock(f.turnstile, fcntl.LOCK_UN)


class StepLock(pl.Callback):
    """Holds the timing lock shared during every training and validation step (nas.fit adds it when
    `NAS_TIMING_LOCK` is set)."""

    def __init__(self, path: Path) -> None:
        self.files = _files(path)
        self.held = False

    def _take(self) -> None:
        fcntl.flock(self.files.turnstile, fcntl.LOCK_EX)  # wait behind a timer that is waiting
        fcntl.flock(self.files.turnstile, fcntl.LOCK_UN)
        fcntl.flock(self.files.main, fcntl.LOCK_SH)
        self.held = True

    def _give(self) -> None:
        if self.held:
            fcntl.flock(self.files.main, fcntl.LOCK_UN)
            self.held = False

    def on_train_batch_start(self, *args: Any, **kwargs: Any) -> None:
        self._take()

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._give()

    def on_validation_batch_start(self, *args: Any, **kwargs: Any) -> None:
        self._take()

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._give()

    def on_exception(self, *args: Any, **kwargs: Any) -> None:
        self._give()

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        self._give()
