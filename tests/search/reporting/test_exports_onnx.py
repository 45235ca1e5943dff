"""The front ships: every exported architecture is also an ONNX file that runs in ONNX Runtime and gives
PyTorch's outputs, with the trial's trained weights when its checkpoint is kept (issue 18 item 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import torch
import yaml

from blocks import build_model
from nas.latency.export import load_checkpoint
from nas.latency.runtimes import ort_session
from nas.search.loop import run_search


def onnx_outputs(path: str, x: torch.Tensor) -> np.ndarray:
    session = ort_session(path, threads=1)
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def test_front_onnx_files_hold_the_trained_weights_and_match_pytorch(search_cfg, tmp_path):
    study_dir = tmp_path / "study"
    cfg = search_cfg("n_trials=2", "onnx=true")
    result = run_search(cfg, study_dir=study_dir)
    assert result.exports and len(result.exports) == len(result.front)
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))  # batch 5: the batch is dynamic
    for export in result.exports:
        onnx = export["onnx"]
        assert onnx["weights"] == "trained" and onnx["note"] == "", onnx
        # beside the exported config, in the export folder and the study's models/ folder
        assert [p.rsplit("/", 1)[0] for p in onnx["paths"]] == [p.rsplit("/", 1)[0] for p in export["paths"]]
        assert all(p.endswith(f"{export['name']}.onnx") for p in onnx["paths"])
        spec = yaml.safe_load(open(export["paths"][0]))
        assert (
            f"# ONNX: {export['name']}.onnx (the trial's trained weights" in open(export["paths"][0]).read()
        )
        # PyTorch with the trial's checkpoint vs the ONNX file in ONNX Runtime
        trial = next(t for t in result.front if t["trial"] == export["trial"])
        out_dir = next(t.user_attrs["output_dir"] for t in _trials(study_dir) if t.number == trial["trial"])
        _, weights = load_checkpoint(f"{out_dir}/checkpoints/last.ckpt")
        model = build_model(spec).eval()
        model.load_state_dict(weights)
        with torch.no_grad():
            ref = model(x).numpy()
        got = onnx_outputs(onnx["paths"][0], x)
        assert got.shape == (5, 10)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
        # the trained weights, not the initial ones: a freshly initialised network answers otherwise
        torch.manual_seed(0)
        fresh = build_model(spec).eval()
        with torch.no_grad():
            assert not np.allclose(fresh(x).numpy(), got, atol=1e-3)

    # Without the checkpoint (trained elsewhere, or deleted): the architecture ships with random-init
    # weights, named so, and the trained file of the earlier report is gone.
    first = result.exports[0]
    out_dir = next(t.user_attrs["output_dir"] for t in _trials(study_dir) if t.number == first["trial"])
    (Path(out_dir) / "checkpoints" / "last.ckpt").unlink()
    again = run_search(cfg, study_dir=study_dir)  # at the budget: trains nothing, reports again
    (redo,) = [e for e in again.exports if e["trial"] == first["trial"]]
    assert redo["onnx"]["weights"] == "random-init" and "no checkpoint" in redo["onnx"]["note"]
    assert all(p.endswith(f"{first['name']}.init.onnx") for p in redo["onnx"]["paths"])
    assert not any(Path(p).exists() for p in first["onnx"]["paths"])
    assert onnx_outputs(redo["onnx"]["paths"][0], x).shape == (5, 10)
    assert "random-init weights" in open(redo["paths"][0]).read()

    # onnx=false (benchmarks of many look-up runs): the front's YAMLs alone, and the last ONNX files removed.
    yaml_only = run_search({**cfg, "onnx": False}, study_dir=study_dir)
    assert [e["paths"] for e in yaml_only.exports] == [e["paths"] for e in again.exports]
    for export in yaml_only.exports:
        assert export["onnx"] == {"error": "onnx=false"}
        assert "# ONNX: not exported (onnx=false)" in open(export["paths"][0]).read()
    assert not any(Path(p).exists() for e in again.exports for p in e["onnx"]["paths"])


def _trials(study_dir: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_dir / 'study.db'}").trials


def test_a_reused_front_trial_ships_the_source_trials_weights(tmp_path):
    from types import SimpleNamespace

    from nas.search.reporting.exports import CHECKPOINT, trial_checkpoints

    own = SimpleNamespace(number=0, user_attrs={"output_dir": str(tmp_path / "t0000")})
    reused = SimpleNamespace(number=1, user_attrs={"source_output_dir": str(tmp_path / "other" / "t0003")})
    neither = SimpleNamespace(number=2, user_attrs={})
    assert trial_checkpoints([own, reused, neither]) == {
        0: tmp_path / "t0000" / CHECKPOINT,
        1: tmp_path / "other" / "t0003" / CHECKPOINT,
    }
