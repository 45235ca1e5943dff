"""bench throughput --space: the per-network rows of both paths, with trainer options for the optimised one."""

from __future__ import annotations

import csv

import pytest
import torch

from experiments.bench import throughput


def test_trainer_options_of_the_optimised_path_parse_as_yaml_and_bad_ones_are_refused():
    assert throughput.parse_overrides(["precision=bf16-mixed", "compile=true", "gradient_clip_val=1"]) == {
        "precision": "bf16-mixed", "compile": True, "gradient_clip_val": 1,
    }  # fmt: skip
    with pytest.raises(ValueError, match="KEY=VALUE"):
        throughput.parse_overrides(["precision"])


@pytest.mark.parametrize("option", ["--count", "--batches", "--rounds", "--threads", "--batch-size"])
def test_a_count_below_one_is_refused_before_anything_runs(option, capsys):
    # --count 0 once said "fewer than 0 of 0 random draws pass its constraints"
    with pytest.raises(SystemExit) as exit_:
        throughput.main(["--space", "resnet_like", option, "0"])
    assert exit_.value.code == 2 and f"{option} must be at least 1, got 0" in capsys.readouterr().err


def test_one_network_both_paths_with_a_bf16_optimised_path(tmp_path, capsys):
    out = tmp_path / "rows.csv"
    argv = ["--space", "resnet_like", "--count", "1", "--data", "synthetic", "--batch-size", "16",
            "--batches", "2", "--rounds", "2", "--opt", "precision=bf16-mixed", "--ceiling", "--csv", str(out)]  # fmt: skip
    assert throughput.main(argv) in (0, None)
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["today_img_s"]) > 0 and float(row["opt_img_s"]) > 0 and float(row["peak_gflops"]) > 0
    assert float(row["dense_pct"]) > 0  # --ceiling: the dense layers' own efficiency
    printed = capsys.readouterr().out
    assert "precision=bf16-mixed" in printed and "from the dense layers alone" in printed


def test_the_module_options_of_the_optimised_path_reach_its_network(tmp_path, capsys, monkeypatch):
    # `compile` and `channels_last` are Classifier arguments, not Trainer ones: `--opt compile=true` once
    # trained both paths uncompiled and reported the result as the compiled one.
    import nas.module

    compiled = []
    monkeypatch.setattr(nas.module, "compile_model", lambda model: compiled.append(model) or model)
    out = tmp_path / "rows.csv"
    argv = ["--space", "resnet_like", "--count", "1", "--data", "synthetic", "--batch-size", "16",
            "--batches", "2", "--rounds", "2", "--opt", "compile=true", "--opt", "channels_last=false",
            "--csv", str(out)]  # fmt: skip
    assert throughput.main(argv) in (0, None)
    (row,) = list(csv.DictReader(out.open()))
    assert len(compiled) == 1  # the optimised network only, once (not per round)
    assert row["compiled"] == "True" and row["channels_last"] == "False"
    assert "channels_last False, compile=true" in capsys.readouterr().out


def test_the_ceiling_times_the_dense_layers_alone_and_leaves_the_network_untouched(capsys):
    from blocks import build_model

    shape = {"input_size": 16, "in_channels": 1, "num_classes": 10}
    spec = throughput.space_specs("resnet_like", 1, 0, shape)[0]
    model = build_model(spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for layout in (False, True):
        assert throughput.dense_seconds(model, (8, 1, 16, 16), layout, reps=1) > 0
    after = model.state_dict()
    assert all(
        torch.equal(before[k], after[k]) for k in before
    )  # batch-norm statistics and weights as they were
    assert all(p.grad is None for p in model.parameters())
    assert next(model.parameters()).is_contiguous()  # the layout of the caller's network is unchanged
