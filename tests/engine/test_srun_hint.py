"""Lightning's `srun` hint: silent outside a SLURM allocation (every run on a machine with SLURM installed printed
it twice, a search twice a trial), kept inside one, where a missing `srun` may be the user's mistake."""

from __future__ import annotations

import os
import stat
import warnings

import pytest
from lightning_fabric.plugins.environments import SLURMEnvironment

from nas.config import make_trainer


@pytest.fixture
def srun_on_path(tmp_path, monkeypatch):
    srun = tmp_path / "bin" / "srun"
    srun.parent.mkdir()
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(srun.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{srun.parent}{os.pathsep}{os.environ['PATH']}")
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)


def _hints(tmp_path) -> list[str]:
    """The srun hints a Trainer and a fit's checkpoint lookup (SLURMEnvironment.detect) emit, with every warning
    shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer({"max_epochs": 1}, logger=None, callbacks=[], out=tmp_path, enable_progress_bar=False)
        SLURMEnvironment.detect()  # what Trainer.fit calls again
    return [str(w.message) for w in caught if "srun" in str(w.message)]


def test_outside_an_allocation_no_trainer_prints_the_srun_hint(srun_on_path, tmp_path):
    assert _hints(tmp_path) == []


def test_inside_an_allocation_the_hint_stays(srun_on_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # an salloc shell: Lightning does not take it as a task
    assert _hints(tmp_path)
