"""A search says whether its fidelity is calibrated for its space: header, summary.json, W&B summary."""

from __future__ import annotations

import json

import nas.search.calibration as calibration
from nas.search.loop import run_search
from nas.search.plan import SearchPlan


def _calibrate(folder, plan: SearchPlan, rho: float) -> None:
    """A calibration file whose one candidate is `plan`'s fidelity, as nas.calibrate writes it."""
    doc = {
        "reference": {"label": "5 ep x 100%"},
        "ceiling": 0.9,
        "candidates": [
            {"label": "1 ep x 100%", "signature": plan.calibration_signature(), "rho": rho, "ci": [0.5, 0.95],
             "n_archs": 12, "seconds": 21.0},
        ],
    }  # fmt: skip
    sig = plan.calibration_signature()
    calibration.calibration_file(sig["space"], sig["data"]["name"], folder).write_text(json.dumps(doc))


def test_the_signature_sees_what_ranks_networks_and_nothing_else(search_cfg):
    base = SearchPlan.from_cfg(search_cfg()).calibration_signature()
    for override in ("fidelity.epochs=2", "data.batch_size=8", "optim.lr=0.5", "fidelity.fraction=0.5"):
        assert SearchPlan.from_cfg(search_cfg(override)).calibration_signature() != base, override
    for override in ("n_trials=7", "sampler=random", "study_name=other"):
        assert SearchPlan.from_cfg(search_cfg(override)).calibration_signature() == base, override


def test_a_calibrated_fidelity_is_printed_and_recorded(search_cfg, tmp_path, monkeypatch):
    cfg = search_cfg()
    _calibrate(tmp_path, SearchPlan.from_cfg(cfg), 0.82)
    monkeypatch.setattr(calibration, "CALIBRATION_DIR", tmp_path)
    lines: list[str] = []
    run_search(cfg, study_dir=tmp_path / "study", echo=lines.append)
    header = next(line for line in lines if line.startswith("fidelity calibrated"))
    assert "Spearman +0.82 (95 % CI +0.50 to +0.95) with 5 ep x 100% over 12 architectures" in header
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["calibration"]["calibrated"] and summary["calibration"]["rho"] == 0.82


def test_an_uncalibrated_fidelity_says_so_and_qualifies_dominance_claims(search_cfg, tmp_path, monkeypatch):
    cfg = search_cfg(
        "fidelity.epochs=2",
        "baselines.enabled=true",
        "baselines.models=[simple_cnn]",
        "baselines.max_share=null",
    )
    _calibrate(tmp_path, SearchPlan.from_cfg(search_cfg()), 0.82)  # 1 epoch is calibrated, 2 are not
    monkeypatch.setattr(calibration, "CALIBRATION_DIR", tmp_path)
    lines: list[str] = []
    run_search(cfg, study_dir=tmp_path / "study", echo=lines.append)
    assert any(line.startswith("fidelity uncalibrated: no measurement says") for line in lines)
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["calibration"] == {"calibrated": False, "text": summary["calibration"]["text"]}
    assert "python -m nas.calibrate --space" in summary["calibration"]["text"]
    assert summary["baselines"]
    for b in summary["baselines"]:
        (line,) = [line for line in lines if line.startswith(f"  {b['name']}: ")]
        if b.get("dominated_by"):  # no claim of dominance at an uncalibrated fidelity
            assert "which is uncalibrated: not evidence" in line and "dominated by" not in line
        else:
            assert line.endswith("not dominated by the front")


def test_under_successive_halving_each_rung_says_whether_it_is_calibrated(search_cfg, tmp_path):
    """The front is trained at the top rung, so `calibrated` is about it; the rungs that rank the candidates on
    the way up are named too (the header said "uncalibrated" alone although the first rung was calibrated)."""
    cfg = search_cfg("scheduler=asha", "pruner=none")
    plan = SearchPlan.from_cfg(cfg)
    assert plan.scheduler.epochs == (1, 3, 9) and plan.fidelity.epochs == 9
    single = SearchPlan.from_cfg(search_cfg())  # one epoch: the first rung's signature
    assert single.calibration_signature() == plan.calibration_signature(1)
    _calibrate(tmp_path, single, 0.91)
    got = plan.calibration(tmp_path)
    assert not got["calibrated"] and got["text"].startswith("uncalibrated")
    assert got["rungs"] == [
        {"epochs": 1, "calibrated": True, "rho": 0.91},
        {"epochs": 3, "calibrated": False, "rho": None},
        {"epochs": 9, "calibrated": False, "rho": None},
    ]
    assert got["text"].endswith(
        "; rungs 1/3/9 epochs: calibrated (Spearman +0.91) / uncalibrated / uncalibrated"
    )
    assert "rungs" not in single.calibration(tmp_path)  # one rung: the fidelity's own line only
