"""Ctrl-C / SIGTERM during a search: the first stops after the current trial's bookkeeping (interrupting its
training, which is queued to run again), the second stops at once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any


def stop_signals() -> tuple[signal.Signals, ...]:
    """Ctrl-C, SIGTERM and, in a submitit job (hydra/launcher=slurm), the signal submitit has SLURM send
    `signal_delay_s` before the time limit (USR2 unless SUBMITIT_PREEMPT_SIGNAL names another): submitit's own
    handler would raise inside training and fail the trial instead of queueing it again."""
    found = [signal.SIGINT, signal.SIGTERM]
    if os.environ.get("SUBMITIT_EXECUTOR"):
        name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper().removeprefix("SIG")
        found += [s for s in signal.Signals if s.name == f"SIG{name}" and s not in found]
    return tuple(found)


class StopRequested(Exception):
    """Raised inside training by the first Ctrl-C: the trial is recorded as interrupted, then the search stops."""


class InterruptGuard:
    """First Ctrl-C (or SIGTERM, e.g. a SLURM time limit or preemption; `stop_signals`): stop after the current
    trial's bookkeeping, interrupting its training, which is queued to run again; the second: now."""

    def __init__(self, notify: Any = print) -> None:
        self.requested = False
        self._training = False
        self._old: dict[int, Any] = {}
        self._notify = notify
        self._why = "interrupted by the user (Ctrl-C)"

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in stop_signals():
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and not self._training:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self._why = "interrupted by the user (Ctrl-C)" if signum == signal.SIGINT else f"terminated ({name})"
        if self._training:
            self._training = False
            raise StopRequested(self._why)
        self._notify(
            f"{name}: finishing this trial's bookkeeping, then stopping ({name} again to stop at once)"
        )

    @property
    def stop_reason(self) -> str:
        """Why the search stops: "interrupted (Ctrl-C)" or "terminated (SIGTERM)"."""
        return "interrupted (Ctrl-C)" if self._why.endswith("(Ctrl-C)") else self._why

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """A section a Ctrl-C may interrupt (raising StopRequested inside it)."""
        if self.requested:
            raise StopRequested(self._why)
        self._training = True
        try:
            yield
        finally:
            self._training = False
