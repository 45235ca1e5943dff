"""bench fronts: searches at equal time, fronts re-scored at the reference fidelity through the calibration
file's runs; a re-run resumes (nothing trains again)."""

from __future__ import annotations

import argparse
import fcntl
import json
import threading

import pytest

import nas.fit
from experiments.bench import fronts
from nas import runfile


def test_bad_methods_and_budgets_fail_before_compute():
    for argv in (["--methods", "asha_tpe,grid"], ["--methods", ""], ["--minutes", "0"], ["--reference", "5"]):
        with pytest.raises(SystemExit):
            fronts.parse(argv)


def test_three_methods_searched_then_scored_at_the_reference_then_resumed(tmp_path, monkeypatch):
    fits: list[str] = []
    real = nas.fit.fit
    monkeypatch.setattr(nas.fit, "fit", lambda cfg, **kw: fits.append(cfg["name"]) or real(cfg, **kw))
    cal = tmp_path / "cal.json"
    argv = [
        "--minutes", "0.05", "--latency", "macs", "--reference", "1:1.0", "--calibration", str(cal),
        "--out", str(tmp_path / "out"), "--data", "synthetic", "data.train_size=64", "data.test_size=32",
        "data.image_size=16", "data.batch_size=16", "data.val_size=32", "chance_alpha=null", "fidelity.fraction=1.0",
        "workers=1",  # one process a search: the local workers have their own tests (tests/scale)
    ]  # fmt: skip
    assert fronts.main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["methods"]) == {"asha_tpe", "tpe", "random"}
    front_archs = [r for fr in summary["fronts"].values() for r in fr]
    assert front_archs and all(0 <= r["reference_accuracy"] <= 1 for r in front_archs)
    for m, row in summary["methods"].items():
        assert row["front"] == len(summary["fronts"][m]) and 0 <= row["hv_reference"] <= 1
    refs = [r for r in json.loads(cal.read_text())["runs"].values() if r["role"] == "reference"]
    assert 1 <= len(refs) <= len(front_archs)  # one run per distinct architecture
    n = len(fits)
    assert fronts.main(argv) == 0 and len(fits) == n  # budgets spent, reference runs cached
    # A helper (`--no-search`) refuses to start before the searches are done, without training anything.
    with pytest.raises(ValueError, match="run the command without --no-search first"):
        fronts.main(
            [*(str(tmp_path / "fresh") if a == str(tmp_path / "out") else a for a in argv), "--no-search"]
        )
    assert len(fits) == n
    # A run another process holds is waited for, not trained twice: it records it, then lets go.
    doc = json.loads(cal.read_text())
    key = next(k for k, r in doc["runs"].items() if r["role"] == "reference")
    theirs = {**doc["runs"].pop(key), "accuracy": 0.4321}
    cal.write_text(json.dumps(doc))
    lock = tmp_path / "out" / "reference" / "locks" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    held, release = threading.Event(), threading.Event()

    def other_process():
        with lock.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            held.set()
            release.wait(10)
            doc["runs"][key] = theirs
            runfile.merge_save(cal, doc)
            fcntl.flock(fh, fcntl.LOCK_UN)

    helper = threading.Thread(target=other_process)
    helper.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    assert fronts.main([*argv, "--no-search"]) == 0
    helper.join()
    assert len(fits) == n
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert 0.4321 in [r["reference_accuracy"] for fr in summary["fronts"].values() for r in fr]


def test_the_report_scores_each_front_against_all_fronts_together_and_says_what_each_search_used(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "wall_s.json").write_text(json.dumps({"seconds": 1234.5}))
    (tmp_path / "random" / "trials.csv").write_text(
        "trial,state\n0,COMPLETE\n1,PRUNED\n2,REJECTED\n3,COMPLETE\n"
    )
    point = lambda acc, ref, lat: {"accuracy": acc, "reference_accuracy": ref, "latency": lat}  # noqa: E731
    got = fronts.report(
        argparse.Namespace(space="s", minutes=20, latency="predicted", out=tmp_path),
        {  # tpe's fast network is the better one fully trained; random's slow one is the only other point
            "tpe": [point(0.7, 0.9, 1.0)],
            "random": [point(0.8, 0.8, 1.0), point(0.85, 0.95, 2.0)],
        },
    )
    tpe, rnd = got["methods"]["tpe"], got["methods"]["random"]
    # box: latency 2.2 to 0, accuracy 0 to 1; all fronts together: 0.9 x 1.2 + (0.95 - 0.9) x 0.2 = 1.09 of 2.2
    assert tpe["hv_reference"] == pytest.approx(0.9 * 1.2 / 2.2) and tpe["regret_reference"] == pytest.approx(
        1 - 1.08 / 1.09
    )
    assert rnd["regret_reference"] == pytest.approx(1 - (0.8 * 1.2 + 0.15 * 0.2) / 1.09)
    assert rnd["hv_search"] > tpe["hv_search"] and rnd["regret_reference"] > tpe["regret_reference"]
    assert (rnd["wall_s"], rnd["trained"]) == (1234.5, 3) and (tpe["wall_s"], tpe["trained"]) == (None, None)
