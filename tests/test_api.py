"""The Python API (nas.api.train / search, experiments.api.ablate): command-line overrides in, result records
out, the same files in the same folders as the commands."""

from __future__ import annotations

import json

import pytest
import yaml

from experiments import api as experiments_api
from nas import api
from tests.search.conftest import OVERRIDES as SEARCH
from tests.tiny import tiny_space

# ~100 synthetic 8 px images, one epoch: about a second of training per run.
DATA = [
    "data=synthetic",
    "data.train_size=96",
    "data.test_size=16",
    "data.image_size=8",
    "data.batch_size=16",
]


def test_train_takes_the_command_line_overrides_and_returns_the_fit_result(tmp_path):
    run = api.train([*DATA, "logger=none", "trainer.max_epochs=1", "checkpoint=false"],
                    output_dir=tmp_path / "run")  # fmt: skip
    assert (
        run.spec["name"] == "simple_cnn"
        and 0.0 <= run.metrics["val/acc"] <= 1.0
        and "test/acc" in run.metrics
    )
    assert (
        json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["val/acc"]
        == run.metrics["val/acc"]
    )


def test_train_refuses_what_the_api_cannot_do_with_the_valid_choices():
    with pytest.raises(ValueError, match="once per job"):
        api.train(["-m", "seed=0,1"])
    with pytest.raises(Exception, match="model"):  # Hydra's own message for an unknown config option
        api.train(["model=no_such_model"])


def test_search_runs_a_study_in_its_study_dir_and_resumes_it(tmp_path, monkeypatch):
    confdir = tmp_path / "conf" / "space"
    confdir.mkdir(parents=True)
    (confdir / "tiny.yaml").write_text(yaml.safe_dump(tiny_space()))
    monkeypatch.chdir(tmp_path)  # the default study_dir, outputs/search/<study>, is relative to it
    overrides = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "+space=tiny", "study_name=api", *SEARCH]
    result = api.search(overrides)
    assert result.study_dir == str(tmp_path / "outputs" / "search" / "api") and result.n_trials == 2
    assert result.front and all(e["paths"][0].startswith(result.study_dir) for e in result.exports)
    # same study_name: resumes, adds one trial (`space=` and the older `+space=` name the same space)
    again = api.search([*(o.replace("+space=", "space=") for o in overrides), "n_trials=3"])
    assert again.n_trials == 3
    with pytest.raises(ValueError, match=r"add space=<name>.*resnet_like"):
        api.search(["n_trials=1"])


def test_ablate_returns_the_ablation_record_and_writes_its_report(tmp_path):
    overrides = [*DATA, "logger=none", "latency.mode=macs", "epochs=1", "seeds=2", "pooling=avg",
                 f"cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    result = experiments_api.ablate(overrides, output_dir=tmp_path / "out")
    assert result["seeds"] == 2 and [v["label"] for v in result["variants"]] == ["pooling=avg"]
    assert len(result["baseline"]["values"]) == 2 and len(result["variants"][0]["values"]) == 2
    assert (
        json.loads((tmp_path / "out" / "ablation.json").read_text())["variants"][0]["label"] == "pooling=avg"
    )
