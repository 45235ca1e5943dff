"""The baselines' time-estimate check (`python -m experiments.bench estimate`): each trained trial's time is
estimated from the others by the search's own rule, and compared with the time it took."""

from __future__ import annotations

import optuna
import pytest

from experiments.bench.estimate import main

SMALL = ["data=synthetic", "data.image_size=8", "data.batch_size=16", "data.val_size=null", "fidelity.image_size=null"]


def spec(width: int, repeat: int) -> dict:
    return {"name": "t", "act": "relu", "norm": "batchnorm", "stem": [{"block": "conv", "channels": 4}],
            "stages": [{"block": "conv", "channels": width, "stride": 2, "repeat": repeat}],
            "head": {"type": "linear", "pool": "avg"}}  # fmt: skip


def test_each_trained_trial_is_estimated_from_the_others(tmp_path, capsys):
    folder = tmp_path / "study-a"
    folder.mkdir()
    study = optuna.create_study(study_name="study-a", storage=f"sqlite:///{folder / 'study.db'}",
                                directions=["maximize", "minimize"])  # fmt: skip
    for width, repeat, took in [(4, 1, 10.0), (8, 2, 20.0), (16, 3, 40.0), (32, 4, 80.0)]:
        attrs = {"state": "COMPLETE", "train_time_s": took, "spec": spec(width, repeat)}
        study.add_trial(optuna.trial.create_trial(values=[0.5, 1.0], user_attrs=attrs))
    reused = {"state": "COMPLETE", "train_time_s": 1.0, "spec": spec(4, 1), "reused_from": 0}
    study.add_trial(optuna.trial.create_trial(values=[0.5, 1.0], user_attrs=reused))  # not its own time

    assert main([str(folder), "space=resnet_like", *SMALL]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"trial {n:4d}" for n in range(4)]
    ratios = [float(line.rsplit("ratio ", 1)[1]) for line in lines[:-1]]
    assert all(r > 0 for r in ratios)
    assert lines[-1].startswith("estimate / time taken: median") and lines[-1].endswith("of 4 trials")


def test_a_folder_without_a_study_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no study.db"):
        main([str(tmp_path), "space=resnet_like"])
