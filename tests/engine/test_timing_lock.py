"""Latency timed while no other worker trains: the timing lock between one process's timing and another's steps."""

from __future__ import annotations

import subprocess
import sys
import time

from nas import timing_lock

HOLD = """
import fcntl, os, sys, time
from pathlib import Path
from nas import timing_lock
os.environ[timing_lock.ENV] = sys.argv[1]
how = sys.argv[2]
if how == "step":
    lock = timing_lock.StepLock(Path(sys.argv[1]))
    lock.on_train_batch_start()
else:
    ctx = timing_lock.quiet_machine(); ctx.__enter__()
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def hold(path, how: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), how, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_timing_waits_for_a_training_step_in_flight(tmp_path, monkeypatch):
    path = tmp_path / "timing.lock"
    monkeypatch.setenv(timing_lock.ENV, str(path))
    other = hold(path, "step", 1.5)  # another worker is inside a training step
    start = time.monotonic()
    with timing_lock.quiet_machine():
        waited = time.monotonic() - start
    other.wait()
    assert waited > 1.0


def test_a_training_step_waits_while_another_worker_times(tmp_path):
    path = tmp_path / "timing.lock"
    other = hold(path, "time", 1.5)  # another worker is timing a network
    step = timing_lock.StepLock(path)
    start = time.monotonic()
    step.on_train_batch_start()
    waited = time.monotonic() - start
    step.on_train_batch_end()
    other.wait()
    assert waited > 1.0


def test_without_the_variable_nothing_is_locked(tmp_path, monkeypatch):
    monkeypatch.delenv(timing_lock.ENV, raising=False)
    start = time.monotonic()
    with timing_lock.quiet_machine():
        pass
    assert timing_lock.lock_path() is None and time.monotonic() - start < 0.5
