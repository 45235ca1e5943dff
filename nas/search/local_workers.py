"""One search, every core: the run starts more 1-thread workers of its study on this machine.

On a CPU, two 1-thread processes train 1.38x the images of one 2-thread process on the 2-core development
machine (docs/benchmarks.md, "Threads"): small networks leave a second thread idle much of each step. So by
default (`workers: auto`) a search that trains on the CPU runs one 1-thread worker per core (at most
MAX_AUTO): this process and `workers - 1` child processes, each running trials of the same study until it has
`n_trials`; this process then waits for them and writes the report. `workers=1` is the single process of
before. Latency stays comparable: every timing holds a machine-wide lock that the other workers' training
steps wait on (nas.timing_lock), so no network is timed beside another's training.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas import timing_lock

MAX_AUTO = 4  # measured at 2 (the development machine); more processes also multiply memory


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve(value: Any, *, trainer: Mapping[str, Any], storage: str, table: bool, n_trials: int) -> int:
    """The number of workers `workers: <value>` asks for here; ValueError for a bad value."""
    if value in (None, "auto"):
        accel = str(trainer.get("accelerator", "auto"))
        on_gpu = accel in ("gpu", "cuda") or (accel == "auto" and _cuda())
        if on_gpu or table or storage == "memory":  # a GPU trains one at a time; a table trains nothing
            return 1
        return max(1, min(usable_cores(), MAX_AUTO, n_trials))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"workers is a number of processes >= 1, or auto (one 1-thread worker per core); got {value!r}"
        )
    if value > 1 and storage == "memory":
        raise ValueError("workers > 1 share the study through its storage: storage=memory holds it in one process; "
                         "use storage=sqlite (the default) or set workers=1")  # fmt: skip
    return value


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class Workers:
    """The child workers of a run: started before its trials, joined before its report."""

    def __init__(self, cfg: Mapping[str, Any], study_dir: Path, count: int, run: Callable[..., Any]) -> None:
        """`run(cfg, study_dir=..., echo=...)`: a child's trials (nas.search.loop.run_trials, passed in so that
        this module does not import the loop that uses it)."""
        self.cfg, self.study_dir, self.count, self.run = dict(cfg), Path(study_dir), count, run
        self.procs: list[multiprocessing.Process] = []
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> Workers:
        if self.count <= 1:
            return self
        lock = Path(tempfile.gettempdir()) / f"nas-timing-{os.getuid()}.lock"  # one per machine and user
        for key, value in ((timing_lock.ENV, str(lock)), ("OMP_NUM_THREADS", "1")):
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value  # the children inherit them; this process trains at 1 thread too
        import torch

        self.saved["threads"] = str(torch.get_num_threads())
        torch.set_num_threads(1)
        ctx = multiprocessing.get_context("spawn")  # torch's threads do not survive a fork
        for index in range(1, self.count):
            p = ctx.Process(
                target=_child, args=(self.run, self.cfg, str(self.study_dir), index), daemon=False
            )
            p.start()
            self.procs.append(p)
        return self

    def join(self) -> None:
        """Wait for the children to finish their trials."""
        for p in self.procs:
            p.join()

    def __exit__(self, *exc: Any) -> None:
        for p in self.procs:  # an error or interruption here: the children stop their trials too
            if p.is_alive():
                p.terminate()
            p.join()
        if self.count <= 1:
            return
        import torch

        torch.set_num_threads(int(self.saved.pop("threads")))
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _child(run: Callable[..., Any], cfg: dict[str, Any], study_dir: str, index: int) -> None:
    """A child worker: the same study's trials, at one thread, each line tagged with the worker."""
    import torch

    torch.set_num_threads(1)
    run(cfg, study_dir=Path(study_dir), echo=lambda line: print(f"[worker {index}] {line}", flush=True))
