"""A tiny search read back from its offline W&B runs: one run per trial with the conventions, one summary run
with the trials table, the Pareto plot, importances and the front's artifact; no secret anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import optuna

from tests.tracking.helpers import API_KEY, PASSWORD, assert_no_secret, inspect, runs_under

TRIAL_SUMMARY = (
    "state",
    "reason",
    "params",
    "macs",
    "val/acc",
    "val/acc_best",
    "val/loss",
    "train/loss_epoch",
    "train/acc",
    "train/images_per_s",
    "latency/value",
    "latency/unit",
    "latency/device_key",
    "latency/device",
    "trial",
    "trial_params",
)


def test_every_trial_is_a_run_with_config_spec_costs_latency_and_metrics(tiny_search):
    study_dir, result, _, _ = tiny_search
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = {t.number: t for t in study.trials}
    runs = runs_under(study_dir / "trials")
    assert len(runs) == 3 == len(trials)
    for run in runs:
        t = trials[run["summary"]["trial"]]
        assert run["name"] == f"tiny-t{t.number:04d}" and run["project"] == "cnn-nas"
        assert run["group"] == "tiny" and run["job_type"] == "trial"
        assert {"space:tiny", "data:synthetic"} <= set(run["tags"])
        s, c = run["summary"], run["config"]
        assert not set(TRIAL_SUMMARY) - set(s), set(TRIAL_SUMMARY) - set(s)
        assert run["state"] == "finished" and run["exit_code"] == 0 and s["state"] == "COMPLETE"
        # what Optuna recorded is what W&B shows
        a = t.user_attrs
        assert s["params"] == a["n_params"] and s["macs"] == a["macs"] and s["trial_params"] == t.params
        assert s["latency/value"] == a["latency"] and s["latency/unit"] == "ms"
        assert s["latency/device_key"] == a["device_key"] and s["latency/device"]["threads"] == 1
        assert s["val/acc"] == a["accuracy"] and s["train/images_per_s"] > 0
        # the resolved config, flattened, with the spec
        assert c["data.image_size"] == 16 and c["trainer.max_epochs"] == 1 and c["params"] == a["n_params"]
        assert c["spec.input_size"] == 16 and c["spec.stem"] and c["model.act"] == t.params["act"]
        assert "git.commit" in c
        # per-epoch metrics in the history
        keys = set().union(*(h.keys() for h in run["history"]))
        assert {"val/acc", "train/loss_epoch", "train/images_per_s", "epoch"} <= keys


def test_summary_run_holds_table_plot_importances_and_front_artifact(tiny_search):
    study_dir, result, lines, _ = tiny_search
    (run,) = [inspect(p) for p in (study_dir / "wandb").glob("offline-run-*")]
    assert run["name"] == "tiny-summary" and run["group"] == "tiny" and run["job_type"] == "summary"
    assert {"space:tiny", "data:synthetic"} <= set(run["tags"])
    s = run["summary"]
    assert s["trials"]["_type"] == "table-file" and s["trials"]["nrows"] == 3
    assert s["front"]["nrows"] == len(result.front) == s["front_size"]
    assert s["pareto/plot"]["_type"] == "image-file" and s["pareto/trials_table"]["nrows"] >= 1
    assert s["importance/table"]["_type"] == "table-file" and set(s["importance"]) == {
        "act",
        "pool",
        "width_0",
        "width_1",
    }
    assert s["n_trials"] == 3 and s["front_trials"] == sorted(r["trial"] for r in result.front)
    assert s["best_accuracy"] == max(r["accuracy"] for r in result.front)
    # whether the fidelity is calibrated for the space (the tiny test space never is)
    assert s["fidelity_calibration"].startswith("uncalibrated") and s.get("fidelity_rho") is None
    # the table's columns: objectives, state, spec parameters
    table = next((study_dir / "wandb").rglob("media/table/trials_*.table.json"))
    cols = json.loads(table.read_text())["columns"]
    assert {"trial", "state", "on_front", "reference", "accuracy", "n_params", "param.act"} <= set(cols)
    assert {"latency_ms_16px", "macs_16px", "hypervolume"} <= set(cols)  # costs named with their image size
    # the Pareto front as a W&B scatter plot panel
    assert run["charts"] == {
        "pareto/trials": "wandb/scatter/v0",
        "importance/bar": "wandb/bar/v0",
        "hypervolume/history": "wandb/line/v0",
    }
    assert s["hypervolume/plot"]["_type"] == "image-file"
    # the front as a model artifact: config, ONNX file (trained weights) + weights of every front trial
    (art,) = [a for a in run["artifacts"] if a["type"] == "model"]
    assert art["name"] == "tiny-front"
    names = [e["name"] for e in art["metadata"]["front"]]
    assert len(names) == len(result.front)
    for name, entry in zip(names, art["metadata"]["front"], strict=True):
        assert {f"{name}.yaml", f"{name}.onnx", f"{name}.ckpt"} <= set(art["files"])
        assert Path(art["local"][f"{name}.ckpt"]).is_file()
        assert entry["onnx"] == f"{name}.onnx" and entry["onnx_weights"] == "trained"
    # the most accurate front architecture retrained at full fidelity: its own run, its weights in the artifact
    (again,) = result.retrained
    (retrain,) = runs_under(study_dir / "retrain")
    assert (
        retrain["job_type"] == "retrain" and retrain["group"] == "tiny" and "test/acc" in retrain["summary"]
    )
    assert retrain["summary"]["trial"] == again["trial"] and retrain["summary"]["latency/unit"] == "ms"
    assert f"{again['name']}.retrained.ckpt" in art["files"]
    # weights are kept for the front only
    kept = sorted(p.parent.parent.name for p in (study_dir / "trials").glob("*/checkpoints/last.ckpt"))
    assert kept == sorted(f"t{r['trial']:04d}" for r in result.front)
    # the checkpoint in the artifact rebuilds its network
    from nas.module import Classifier

    ckpt = art["local"][f"{names[0]}.ckpt"]
    assert Classifier.load_from_checkpoint(ckpt, map_location="cpu").hparams.spec["input_size"] == 16
    assert any("wandb sync" in line and "trials/*/wandb/offline-run-*" in line for line in lines)


def test_no_secret_in_runs_logs_or_outputs(tiny_search):
    study_dir, _, lines, home = tiny_search
    assert_no_secret(study_dir.parent, API_KEY, PASSWORD)
    assert not any(API_KEY in line or PASSWORD in line for line in lines)
    # the masked command line is what W&B recorded
    run = next((study_dir / "trials").rglob("*.wandb"))
    assert b"storage.url=postgresql://nas:***@db.example" in run.read_bytes()
