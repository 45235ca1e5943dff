"""The fidelity check: argument checks, its rank statistics, and a tiny run that resumes from its cache."""

from __future__ import annotations

import json
import math

import pytest

import nas.fit
from experiments.bench import fidelity


def test_fidelities_parse_and_bad_ones_fail_before_compute():
    assert fidelity.parse_fidelity("3:0.5:14") == {"epochs": 3, "fraction": 0.5, "image_size": 14}
    assert fidelity.parse_fidelity("1:0.05")["image_size"] is None
    for bad in ("3", "1:0", "0:0.5", "1:0.5:2", "a:b"):
        with pytest.raises(ValueError, match="epochs"):
            fidelity.parse_fidelity(bad)
    with pytest.raises(SystemExit):
        fidelity.parse(["--fidelities", "1:1.5"])


def test_spearman_uses_mid_ranks_for_ties():
    assert fidelity.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert fidelity.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert fidelity.ranks([5, 1, 5, 2]) == [3.5, 1.0, 3.5, 2.0]
    # mid-ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Pearson's r of the ranks
    assert fidelity.spearman([0, 1, 1, 2], [0, 1, 2, 3]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(fidelity.spearman([1, 1, 1], [1, 2, 3]))


def test_architectures_are_spread_over_the_key_extremes_included():
    assert fidelity.spread_by(list(range(10, 0, -1)), lambda x: x, 4) == [1, 4, 7, 10]
    assert fidelity.spread_by([3, 1], lambda x: x, 4) == [1, 3]


def test_a_tiny_check_reports_every_fidelity_then_resumes_without_training(tmp_path, monkeypatch):
    fits: list[str] = []
    real = nas.fit.fit
    monkeypatch.setattr(nas.fit, "fit", lambda cfg, **kw: fits.append(cfg["name"]) or real(cfg, **kw))
    argv = [
        "--archs", "3", "--draws", "30", "--data", "synthetic", "--fidelities", "1:0.5", "1:1:8",
        "--val-size", "16", "--latency", "macs", "--out", str(tmp_path), "data.train_size=64",
        "data.test_size=16", "data.image_size=16", "data.batch_size=16",
    ]  # fmt: skip
    assert fidelity.main(argv) == 0
    assert len(fits) == 6  # 3 networks x 2 fidelities
    first = json.loads((tmp_path / "results.json").read_text())
    assert [f["fidelity"]["image_size"] for f in first["fidelities"]] == [None, 8]
    assert all(len(f["accuracy"]) == 3 for f in first["fidelities"])
    macs = [a["macs"] for a in first["archs"]]
    assert macs == sorted(macs) and len(set(macs)) == 3
    # latency (mode macs) is the network's at the data's 16 px, also for the 8 px fidelity
    assert [a["latency"] for a in first["archs"]] == macs
    assert fidelity.main(argv) == 0 and len(fits) == 6
    assert json.loads((tmp_path / "results.json").read_text())["fidelities"] == first["fidelities"]
