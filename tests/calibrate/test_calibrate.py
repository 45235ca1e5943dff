"""`nas-calibrate` (nas.calibrate): argument checks, its statistics, and a tiny calibration that resumes from its
file and that a search of the same fidelity then reports as calibrated."""

from __future__ import annotations

import json

import pytest

import nas.fit
from nas import calibrate
from nas.calibrate.__main__ import main


def test_fidelities_parse_and_bad_ones_fail_before_compute():
    assert calibrate.parse_fidelity("3:0.5:14") == {
        "epochs": 3, "fraction": 0.5, "image_size": 14, "overrides": [],
    }  # fmt: skip
    assert calibrate.parse_fidelity("1:0.05")["image_size"] is None
    lever = calibrate.parse_fidelity("2:0.2,data.batch_size=256,optim.label_smoothing=0.1")
    assert lever["overrides"] == ["data.batch_size=256", "optim.label_smoothing=0.1"]
    assert calibrate.label(lever) == "2 ep x 20%, data.batch_size=256, optim.label_smoothing=0.1"
    for bad in ("3", "1:0", "0:0.5", "1:0.5:2", "a:b", "1:0.5,batch"):
        with pytest.raises(ValueError, match="epochs|key=value"):
            calibrate.parse_fidelity(bad)
    with pytest.raises(ValueError, match="looks like a Hydra override: put overrides before --fidelities"):
        calibrate.parse_fidelity("data.batch_size=64")
    for argv in (["--fidelities", "1:1.5"], ["--archs", "3"], ["--seeded", "2"], ["--reference", "x"]):
        with pytest.raises(SystemExit):
            calibrate.parse(argv)


def test_architectures_are_spread_and_the_second_seeds_too():
    assert calibrate.spread_by(list(range(10, 0, -1)), lambda x: x, 4) == [1, 4, 7, 10]
    assert calibrate.spread_by([3, 1], lambda x: x, 4) == [1, 3]
    assert calibrate.seeded(12, 0.5) == [0, 2, 4, 7, 9, 11]
    assert calibrate.seeded(12, 0.0) == [] and calibrate.seeded(4, 1.0) == [0, 1, 2, 3]
    assert calibrate.top_overlap([3, 2, 1, 0], [3, 2, 0, 1]) == pytest.approx(2 / 3)


def test_a_tiny_calibration_resumes_from_its_file_and_a_search_at_that_fidelity_is_calibrated(
    tmp_path, monkeypatch, capsys
):
    fits: list[str] = []
    real = nas.fit.fit
    monkeypatch.setattr(nas.fit, "fit", lambda cfg, **kw: fits.append(cfg["name"]) or real(cfg, **kw))
    cal = tmp_path / "cal" / "resnet_like-synthetic.json"
    cal.parent.mkdir()
    argv = [
        "--archs", "4", "--draws", "16", "--data", "synthetic", "--reference", "2:1.0", "--fidelities", "1:0.5",
        "1:1:8,data.batch_size=32", "--bootstrap", "100", "--calibration", str(cal), "--out", str(tmp_path / "o"),
        "data.train_size=64", "data.test_size=32", "data.image_size=16", "data.batch_size=16", "data.val_size=32",
    ]  # fmt: skip
    assert main(argv) == 0
    assert len(fits) == 4 + 2 + 2 * 4  # the reference, a second seed for half, two candidates
    doc = json.loads(cal.read_text())
    assert doc["command"].startswith("python -m nas.calibrate --archs 4") and "cores" in doc["machine"]
    macs = [a["macs"] for a in doc["archs"]]
    assert macs == sorted(macs) and len(set(macs)) == 4
    assert doc["ceiling_n"] == 2 and len(doc["reference_accuracy"]) == 4
    first, second = doc["candidates"]
    assert first["label"] == "1 ep x 50%" and second["signature"]["data"]["batch_size"] == 32
    for c in (first, second):
        assert c["ci"][0] <= c["rho"] <= c["ci"][1] and len(c["accuracy"]) == 4 and c["n_archs"] == 4
        assert c["seconds"] > 0 and isinstance(c["meets"], bool)
    refs = [r for r in doc["runs"].values() if r["role"] == "reference"]
    assert len(refs) == 6 and {r["seed"] for r in refs} == {0, 1}
    assert all(r["accuracy"] is not None and r["val_accuracy"] is not None for r in refs)

    # Resumed from the file: nothing trains again, the statistics are the same.
    assert main(argv) == 0 and len(fits) == 14
    assert json.loads(cal.read_text())["candidates"] == doc["candidates"]

    # A search at the first candidate's fidelity finds its rho; at another fidelity it is uncalibrated.
    args = calibrate.parse(argv)
    plan = calibrate.compose_plan(args, args.fids[0])
    got = plan.calibration(cal.parent)
    assert got["calibrated"] and got["rho"] == first["rho"] and "calibrated: Spearman" in got["text"]
    other = calibrate.compose_plan(args, calibrate.parse_fidelity("1:0.25"))
    got = other.calibration(cal.parent)
    assert not got["calibrated"] and got["text"].startswith("uncalibrated")

    # Another reference in the same file is refused before anything trains: one message, exit status 2.
    other_reference = [*argv[:6], "--reference", "3:1.0", *argv[8:]]
    with pytest.raises(ValueError, match="another reference"):
        calibrate.calibrate(calibrate.parse(other_reference), command="")
    with pytest.raises(SystemExit) as exit_:
        main(other_reference)
    assert exit_.value.code == 2 and "calibrate: error: " in capsys.readouterr().err
    assert len(fits) == 14


def tiny_argv(cal, out) -> list[str]:
    """A 10-run calibration on tiny synthetic data: 4 architectures, 2 second seeds, one candidate."""
    return [
        "--archs", "4", "--draws", "16", "--data", "synthetic", "--reference", "1:1.0", "--fidelities", "1:0.5",
        "--bootstrap", "50", "--calibration", str(cal), "--out", str(out), "data.train_size=64",
        "data.test_size=32", "data.image_size=16", "data.batch_size=16", "data.val_size=32",
    ]  # fmt: skip


def test_a_calibration_cut_short_says_in_its_file_what_it_holds_and_each_run_how_busy_the_machine_was(
    tmp_path, monkeypatch
):
    # The file's status was once edited by hand: a partial file said nothing, or what an earlier run said.
    real, calls = nas.fit.fit, []

    def fit(cfg, **kw):
        calls.append(cfg["name"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(cfg, **kw)

    monkeypatch.setattr(nas.fit, "fit", fit)
    cal = tmp_path / "cal.json"
    argv = tiny_argv(cal, tmp_path / "o")
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    doc = json.loads(cal.read_text())
    assert doc["status"] == "partial: 2 of 10 runs; re-run the command to continue"
    assert doc["command"].startswith("python -m nas.calibrate --archs 4") and "threads" in doc["machine"]
    assert all(r["threads"] >= 1 and r["load"] >= 0 for r in doc["runs"].values())
    calls.append("past the interrupt")
    assert main(argv) == 0
    assert "status" not in json.loads(cal.read_text())  # complete: nothing left to say


def test_two_workers_share_one_calibration_file_and_train_every_run_once(tmp_path, monkeypatch):
    import multiprocessing

    log = tmp_path / "fits.txt"
    real = nas.fit.fit

    def counting(cfg, **kw):
        with log.open("a") as fh:
            fh.write(cfg["name"] + "\n")
        return real(cfg, **kw)

    monkeypatch.setattr(nas.fit, "fit", counting)
    cal = tmp_path / "cal.json"
    argv = tiny_argv(cal, tmp_path / "o")
    ctx = multiprocessing.get_context("fork")  # the patched fit goes with the workers
    workers = [ctx.Process(target=main, args=(argv,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0, 0]
    names = log.read_text().split()
    assert len(names) == len(set(names)) == 4 + 2 + 4  # every run once, by one worker or the other
    doc = json.loads(cal.read_text())
    assert len(doc["runs"]) == 10 and "rho" in doc["candidates"][0]


def test_a_dry_run_trains_nothing_writes_nothing_and_says_so(tmp_path, monkeypatch, capsys):
    fits: list[str] = []
    monkeypatch.setattr(nas.fit, "fit", lambda cfg, **kw: fits.append(cfg["name"]))
    cal = tmp_path / "cal" / "resnet_like-synthetic.json"
    argv = [
        "--archs", "4", "--draws", "12", "--data", "synthetic", "--dry-run", "--calibration", str(cal),
        "--out", str(tmp_path / "o"), "data.image_size=16", "data.val_size=200",
    ]  # fmt: skip
    assert main(argv) == 0
    assert fits == [] and not cal.exists()
    assert "dry run, nothing written" in capsys.readouterr().err


def test_a_changed_space_extends_the_file_and_a_rerun_adds_nothing_more(tmp_path, monkeypatch):
    fits: list[str] = []
    real = nas.fit.fit
    monkeypatch.setattr(nas.fit, "fit", lambda cfg, **kw: fits.append(cfg["name"]) or real(cfg, **kw))
    cal = tmp_path / "resnet_like-synthetic.json"
    common = [
        "--draws", "16", "--data", "synthetic", "--reference", "1:1.0", "--fidelities", "1:0.5", "--seeded", "0",
        "--bootstrap", "50", "--calibration", str(cal), "--out", str(tmp_path / "o"), "data.train_size=64",
        "data.test_size=32", "data.image_size=16", "data.batch_size=16", "data.val_size=32",
    ]  # fmt: skip
    assert main(["--archs", "4", *common]) == 0
    first = json.loads(cal.read_text())
    extend = ["--archs", "4", "--add", "2", "--where", "n_stages=3", *common]
    assert main(extend) == 0
    doc = json.loads(cal.read_text())
    assert doc["archs"][:4] == first["archs"] and len(doc["archs"]) == 6
    assert all(len(a["spec"]["stages"]) == 3 and a["added"] == "n_stages=3" for a in doc["archs"][4:])
    assert doc["candidates"][0]["n_archs"] == 6 and doc["seeded"] == first["seeded"] == []
    trained = len(fits)
    assert main(extend) == 0 and len(fits) == trained  # the file holds the 2 added: none more
    assert len(json.loads(cal.read_text())["archs"]) == 6
