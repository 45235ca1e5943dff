"""nas.search.workers.job_threads: a SLURM job trains on the CPUs it asked for (the SLURM tests run it in jobs)."""

from __future__ import annotations

import pytest
import torch

from nas.search.workers import job_threads


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_slurm_job_trains_with_its_cpus_per_task(threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert job_threads() == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize(
    "env",
    [
        {"SLURM_CPUS_PER_TASK": "1", "OMP_NUM_THREADS": "2"},  # the user's explicit choice wins
        {"SLURM_CPUS_PER_TASK": "8"},  # never more threads than torch chose
        {"SLURM_CPUS_PER_TASK": "0"},
        {},  # not a SLURM job
    ],
)
def test_outside_a_smaller_allocation_the_threads_stay(threads, monkeypatch, env):
    for key in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert job_threads() is None and torch.get_num_threads() == 2
