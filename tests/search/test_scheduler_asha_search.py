"""A tiny real search with scheduler=asha on synthetic 8 px data: rungs trained, recorded, front from the top."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

import nas.fit
from nas.search.loop import run_search
from nas.search.scheduler import RUNG_ATTR


def test_a_tiny_asha_search_trains_rungs_and_fronts_only_top_rung_results(
    search_cfg, tmp_path, monkeypatch, capsys
):
    epochs: list[tuple[str, int]] = []  # (run name, epochs) of every training
    real = nas.fit.fit

    def recording(cfg, **kwargs):
        epochs.append((cfg["name"], cfg["trainer"]["max_epochs"]))
        return real(cfg, **kwargs)

    monkeypatch.setattr(nas.fit, "fit", recording)
    study_dir = tmp_path / "study"
    cfg = search_cfg("n_trials=4", "scheduler=asha", "scheduler.rungs=[1,2]", "scheduler.eta=2")
    result = run_search(cfg, study_dir=study_dir)
    assert "scheduler asha (rungs 1/2 epochs, eta 2)" in capsys.readouterr().out

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_dir / 'study.db'}")
    ran = [t for t in study.trials if not t.user_attrs.get("rejected") and "reused_from" not in t.user_attrs]
    assert result.n_trials == 4 and ran
    assert ran[0].state == TrialState.COMPLETE  # the first candidate of a study is always promoted
    for t in ran:
        a = t.user_attrs
        trained = [e for name, e in epochs if name.endswith(f"t{t.number:04d}")]
        assert a[RUNG_ATTR + "0"]["epochs"] == 1 and trained[0] == 1
        if t.state == TrialState.COMPLETE:
            assert trained == [1, 2] and a[RUNG_ATTR + "1"]["values"] == pytest.approx(t.values)
        else:  # stopped at the first rung: PRUNED with its rung result and why, never on the front
            assert t.state == TrialState.PRUNED and trained == [1] and RUNG_ATTR + "1" not in a
            assert a["state"] == "PRUNED" and a["reason"].startswith("rung 0 (1 epochs): ")
    front = {r["trial"] for r in json.loads(open(result.files["front_json"]).read())["front"]}
    complete = {t.number for t in study.trials if t.state == TrialState.COMPLETE}
    assert front and front <= complete
