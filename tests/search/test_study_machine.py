"""A worker on another CPU model than the study's (a SLURM partition with mixed nodes) is refused with what
differs and what to do: its latencies would not compare with the study's."""

from __future__ import annotations

import optuna
import pytest

import nas.latency.fingerprint
from nas.search.loop import run_search
from nas.search.objectives import ATTR
from nas.search.storage import make_storage


def test_a_worker_on_another_cpu_model_is_refused_with_what_to_do(search_cfg, tmp_path, monkeypatch):
    # Latency measured: the timed mode, whose figures a CPU model changes.
    cfg = search_cfg("n_trials=1", "fidelity.epochs=1")
    study_dir = tmp_path / "study"
    run_search(cfg, study_dir=study_dir)
    here = nas.latency.fingerprint.cpu_model()
    monkeypatch.setattr(nas.latency.fingerprint, "cpu_model", lambda: "Other CPU Model @ 2.0GHz")
    with pytest.raises(ValueError) as refused:
        run_search(cfg, study_dir=study_dir)
    message = str(refused.value)
    assert f"cpu: study {here!r}, this worker 'Other CPU Model @ 2.0GHz'" in message
    assert "hydra.launcher.constraint=<feature>" in message and "latency.mode=macs" in message
    assert "threads" not in message  # only what differs

    # A study made before the machine was kept beside its identity: its timed trial's record names the CPU.
    study = optuna.load_study(study_name="tiny", storage=make_storage({"name": "sqlite"}, study_dir))
    stored = dict(study.user_attrs[ATTR + "identity"])
    del stored["latency_machine"]
    study.set_user_attr(ATTR + "identity", stored)
    with pytest.raises(ValueError, match=f"cpu: study {here!r}, this worker 'Other CPU Model @ 2.0GHz'"):
        run_search(cfg, study_dir=study_dir)
