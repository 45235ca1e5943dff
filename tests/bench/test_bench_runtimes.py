"""The runtime comparison (`python -m experiments.bench runtimes`): fronts read from two search folders,
their architectures' depth / width / MACs, and the cross timing in each other's runtime."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from experiments.bench.runtimes import main, shape
from tests.tiny import tiny_space

SIZES = {"in_channels": 1, "num_classes": 10, "input_size": 8}


def spec(widths: list[int], repeat: int = 1) -> dict:
    s = tiny_space()["spec"]
    return {
        **{k: v for k, v in s.items() if k != "stages"},
        "act": "relu",
        "head": {"type": "linear", "pool": "avg"},
        "stages": [{"block": "conv", "channels": w, "stride": 2, "repeat": repeat} for w in widths],
    }


def fake_search(folder, runtime: str, trials: list[tuple[float, float, dict]]) -> None:
    """A search folder as nas.search leaves it: study.db (named after the folder) and models/*.yaml."""
    folder.mkdir(parents=True)
    study = optuna.create_study(
        study_name=folder.name,
        storage=f"sqlite:///{folder / 'study.db'}",
        directions=["maximize", "minimize"],
    )
    for acc, lat, s in trials:
        attrs = {"state": "COMPLETE", "accuracy": acc, "latency": lat, "latency_unit": "ms", "spec": s,
                 "n_params": 100, "macs": 1000, "device": {"runtime": runtime}}  # fmt: skip
        study.add_trial(optuna.trial.create_trial(values=[acc, lat], user_attrs=attrs))
    (folder / "models").mkdir()
    (folder / "models" / f"{folder.name}-t0000.yaml").write_text(yaml.safe_dump({**trials[0][2], **SIZES}))


def test_fronts_are_compared_at_the_same_budget_with_their_shapes(tmp_path, capsys):
    deep, wide = spec([4, 4], repeat=3), spec([16, 16])
    fake_search(
        tmp_path / "a", "eager", [(0.5, 1.0, wide), (0.6, 2.0, deep), (0.4, 3.0, deep), (0.9, 0.5, deep)]
    )
    fake_search(tmp_path / "b", "onnxruntime", [(0.5, 0.2, deep), (0.6, 0.3, wide)])
    out = tmp_path / "cmp.json"
    assert (
        main(
            [
                str(tmp_path / "a"),
                str(tmp_path / "b"),
                "--trials",
                "3",
                "--max-time-s",
                "0.05",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    a, b = json.loads(out.read_text())
    # the first 3 trials only: trial 3 (the best of a) is past the budget
    assert a["runtime"] == "eager" and a["trials"] == 3 and [r["trial"] for r in a["rows"]] == [0, 1]
    assert b["runtime"] == "onnxruntime" and [r["trial"] for r in b["rows"]] == [0, 1]
    assert [r["blocks"] for r in a["rows"]] == [2, 6] and a["rows"][0]["widths"] == [16, 16]
    assert a["median"]["blocks"] == 4
    # every front architecture timed now in both runtimes
    for row in a["rows"] + b["rows"]:
        assert row["latency_ms_eager"] > 0 and row["latency_ms_onnxruntime"] > 0
    text = capsys.readouterr().out
    assert "a (runtime eager): 2 on the front" in text and "medians over the front" in text


def test_shape_counts_blocks_conv_layers_and_widths():
    s = {"small_stem": [{"block": "conv"}], "stages": [{"block": "bottleneck", "repeat": 2, "channels": 8},
                                                       {"block": "basic", "channels": 16}]}  # fmt: skip
    assert shape(s) == {"stages": 2, "blocks": 3, "conv_layers": 2 * 3 + 2 + 1, "block": "bottleneck",
                        "widths": [8, 16], "mean_width": 12.0}  # fmt: skip


def test_a_folder_without_a_study_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no study.db"):
        main([str(tmp_path), str(tmp_path)])
