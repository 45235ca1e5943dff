"""The latency benchmark's spec sources and the bench dispatcher (no timing here: that is the command)."""

from __future__ import annotations

import random

import pytest

from blocks import build_model
from experiments.bench import available
from experiments.bench.__main__ import main as bench_main
from experiments.bench.latency import random_conv_spec, spec_sampler


def test_random_specs_build_vary_and_repeat_per_seed():
    specs = [random_conv_spec(random.Random(s)) for s in range(8)]
    assert specs == [random_conv_spec(random.Random(s)) for s in range(8)]
    assert len({str(s["stages"]) for s in specs}) == 8
    assert {s["name"].split("_")[0] for s in specs} == {"plain", "residual"}
    for spec in specs:
        assert build_model(spec)  # valid, with the feature map never below 1x1


def test_search_space_source_sets_the_data_shape():
    draw = spec_sampler("resnet_like", input_size=16, in_channels=1, num_classes=7)
    spec = draw(random.Random(0))
    assert (spec["input_size"], spec["in_channels"], spec["num_classes"]) == (16, 1, 7)
    assert build_model(spec)


def test_unknown_source_lists_the_valid_ones():
    with pytest.raises(KeyError, match="valid: plain, residual, mixed.*resnet_like"):
        spec_sampler("no_such_space")


def test_dispatcher_lists_benchmarks_on_a_miss(capsys):
    assert "latency" in available()
    assert bench_main(["no_such_bench"]) == 2
    assert "valid benchmarks:" in capsys.readouterr().err


def test_macs_fit_recovers_fixed_cost_and_slope():
    from experiments.bench.latency import macs_fit

    macs = [1e6, 5e6, 20e6, 50e6]
    fit = macs_fit(macs, [0.4 + 0.065 * m / 1e6 for m in macs])  # the fixed cost and slope per MMAC
    assert fit["fixed_ms"] == pytest.approx(0.4) and fit["ms_per_mmac"] == pytest.approx(0.065)
    assert fit["r2"] == pytest.approx(1.0)
    noisy = macs_fit(macs, [1.0, 0.2, 3.0, 2.0])
    assert noisy["r2"] < 0.9


def test_bench_reports_figures_per_runtime_and_refuses_unknown_runtimes(tmp_path, capsys):
    from experiments.bench.latency import main

    with pytest.raises(SystemExit):
        main(["--runtimes", "eager,tensorrt"])
    assert "valid runtimes: eager, torchscript, onnxruntime" in capsys.readouterr().err
    argv = ["--count", "3", "--space", "plain", "--input-size", "12", "--runtimes", "eager,onnxruntime"]
    assert main([*argv, "--repeats", "2", "--max-time", "0.02", "--csv", str(tmp_path / "rows.csv")]) == 0
    out = capsys.readouterr().out
    assert "== eager" in out and "== onnxruntime" in out and "ms/MMAC" in out
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3 and {r.split(",")[0] for r in rows[1:]} == {"eager", "onnxruntime"}
