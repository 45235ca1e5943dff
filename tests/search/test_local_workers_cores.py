"""One search on every core: `workers` 1-thread processes share the study; the run reports once all are done."""

from __future__ import annotations

import optuna
import pytest

from nas.search import local_workers
from nas.search.loop import run_search
from nas.search.plan import SearchPlan
from nas.search.trial import WORKER_ATTR


def test_two_workers_share_the_trials_and_the_report_holds_them_all(search_cfg, tmp_path, capsys):
    study_dir = tmp_path / "study"
    # Trials of a few seconds each (60 epochs of 96 images): the child process needs seconds to import torch.
    result = run_search(search_cfg("workers=2", "n_trials=6", "fidelity.epochs=60"), study_dir=study_dir)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_dir / 'study.db'}")
    done = [t for t in study.trials if t.user_attrs.get("state") == "COMPLETE"]
    assert result.n_trials == 6 == len(done)
    pids = {t.user_attrs[WORKER_ATTR]["pid"] for t in done}
    assert len(pids) == 2, pids  # both processes trained trials
    out = capsys.readouterr().out
    assert "2 workers of 1 thread each" in out


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (
            "auto",
            {"trainer": {"accelerator": "cpu"}, "storage": "sqlite", "table": False, "n_trials": 20},
            None,
        ),
        ("auto", {"trainer": {"accelerator": "gpu"}, "storage": "sqlite", "table": False, "n_trials": 20}, 1),
        ("auto", {"trainer": {"accelerator": "cpu"}, "storage": "sqlite", "table": True, "n_trials": 20}, 1),
        ("auto", {"trainer": {"accelerator": "cpu"}, "storage": "memory", "table": False, "n_trials": 20}, 1),
        ("auto", {"trainer": {"accelerator": "cpu"}, "storage": "sqlite", "table": False, "n_trials": 1}, 1),
        (3, {"trainer": {}, "storage": "sqlite", "table": False, "n_trials": 20}, 3),
    ],
)
def test_auto_is_one_worker_per_core_on_a_cpu_only(value, kwargs, expected):
    cores = min(local_workers.usable_cores(), local_workers.MAX_AUTO)
    assert local_workers.resolve(value, **kwargs) == (cores if expected is None else expected)


@pytest.mark.parametrize("bad", ["0", "two", "2 storage=memory"])
def test_bad_worker_counts_are_refused_before_compute(search_cfg, bad):
    value, *more = bad.split()
    with pytest.raises(ValueError, match="workers"):
        SearchPlan.from_cfg(search_cfg(f"workers={value}", *more))
