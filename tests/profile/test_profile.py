"""The profile command on tiny networks: rows, CSV, plots, the separable-vs-dense summary, capping."""

from __future__ import annotations

import csv

import pytest

from experiments.profile import fit_dense_line, load_models, run_profile, summarize
from tests.latency.conftest import conv_spec


def separable_spec() -> dict:
    spec = conv_spec(16, input_size=16, stages=0, name="tiny_mobile")
    spec["family"] = "mobilenet"
    spec["stages"] = [
        {"block": "conv", "channels": 16, "groups": 16},  # depthwise 3x3
        {"block": "conv", "channels": 32, "kernel": 1},  # pointwise
    ]
    return spec


def tiny_models() -> dict:
    return {
        "dense_small": conv_spec(8, input_size=16),
        "dense_large": conv_spec(32, input_size=16),
        "tiny_mobile": separable_spec(),
    }


FAST = {"min_repeats": 3, "max_repeats": 10, "max_time_s": 0.05}


def test_profile_writes_rows_csv_plots_and_summary(tmp_path):
    report = run_profile(
        tiny_models(), out=tmp_path, batches=(1, 2, 4), budget_s=30.0, latency=FAST, log=False
    )
    assert [r["batch_size"] for r in report.rows if r["model"] == "dense_small"] == [1, 2, 4]
    for r in report.rows:
        assert r["per_image_ms"] == pytest.approx(r["latency_ms"] / r["batch_size"])
        assert r["images_per_s"] == pytest.approx(1e3 / r["per_image_ms"])
    by_name = {m["model"]: m for m in report.models}
    assert by_name["tiny_mobile"]["separable"] and not by_name["dense_large"]["separable"]
    assert by_name["dense_large"]["macs"] > by_name["dense_small"]["macs"] > 0
    assert report.fit is not None and report.fit["n"] == 2
    assert "tiny_mobile (depthwise-separable" in report.summary and "per operation" in report.summary
    assert "no network was capped" in report.summary
    with open(report.csv) as fh:
        assert len(list(csv.DictReader(fh))) == len(report.rows) == 9
    for path in report.figures.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "summary.txt").read_text().strip() == report.summary


def test_budget_caps_large_batches_and_says_so(tmp_path):
    models = {"dense_small": conv_spec(8, input_size=16)}
    report = run_profile(models, out=tmp_path, batches=(1, 2, 4), budget_s=1e-6, latency=FAST, log=False)
    assert [r["batch_size"] for r in report.rows] == [1]  # batch 1 is always measured
    assert report.models[0]["capped_at"] == 2
    assert "dense_small at 2" in report.summary


def test_depthwise_conv_marks_a_network_separable_whatever_its_family(tmp_path):
    spec = separable_spec()
    spec["family"] = "plain"
    report = run_profile({"x": spec}, out=tmp_path, batches=(1,), budget_s=5.0, latency=FAST, log=False)
    assert report.models[0]["separable"]
    assert report.fit is None and "no fit" in report.summary


def test_summary_ratios_against_the_dense_line():
    models = [
        {"model": "a", "separable": False, "macs": 1e9, "latency_bs1_ms": 10.0, "capped_at": None},
        {"model": "b", "separable": False, "macs": 2e9, "latency_bs1_ms": 20.0, "capped_at": 8},
        {"model": "m", "separable": True, "macs": 0.5e9, "latency_bs1_ms": 15.0, "capped_at": None},
    ]
    fit = fit_dense_line(models)
    assert fit["slope_ms_per_gmac"] == pytest.approx(10.0) and fit["intercept_ms"] == pytest.approx(
        0.0, abs=1e-9
    )
    text = summarize(models, fit, {"broken": "no such block"})
    assert models[2]["vs_dense_line"] == pytest.approx(3.0)  # 15 ms where the line says 5 ms
    assert models[2]["vs_dense_per_op"] == pytest.approx(3.0)  # 30 ms/GMAC vs 10
    assert "3.00x slower" in text and "b at 8" in text and "not profiled: broken" in text


def test_unknown_model_names_list_the_valid_ones():
    with pytest.raises(KeyError, match="valid models: .*simple_cnn"):
        load_models(["no_such_net"])


def test_bad_batches_and_budget_are_refused(tmp_path):
    with pytest.raises(ValueError, match="batch sizes"):
        run_profile(tiny_models(), out=tmp_path, batches=(0, 2), log=False)
    with pytest.raises(ValueError, match="budget"):
        run_profile(tiny_models(), out=tmp_path, budget_s=0, log=False)


def test_profile_runs_per_runtime_with_one_headline_each(tmp_path, capsys):
    from experiments.profile.__main__ import main

    argv = ["--models", "simple_cnn,nin,mobilenet_v1", "--input-size", "16", "--batches", "1"]
    reports = main(
        [*argv, "--budget", "5", "--runtimes", "eager,onnxruntime", "--out", str(tmp_path), "--no-log"]
    )
    assert [r.device["runtime"] for r in reports] == ["eager", "onnxruntime"]
    assert (tmp_path / "eager" / "profile.csv").is_file() and (
        tmp_path / "onnxruntime" / "profile.csv"
    ).is_file()
    assert reports[0].rows[0]["fingerprint"] != reports[1].rows[0]["fingerprint"]  # never mixed
    out = capsys.readouterr().out
    assert "dense R^2" in out and "dw excess/op" in out
    assert out.count("\nonnxruntime ") == 1 and out.count("\neager ") == 1
    for report in reports:
        assert report.fit is not None and report.fit["n"] == 2
        assert any("vs_dense_per_op" in m for m in report.models)  # mobilenet_v1's excess per operation


def test_unknown_runtime_is_refused_before_timing(capsys):
    from experiments.profile.__main__ import main

    with pytest.raises(SystemExit):
        main(["--models", "simple_cnn", "--runtimes", "tflite", "--no-log"])
    assert "valid runtimes" in capsys.readouterr().err
