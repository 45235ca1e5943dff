"""A search's exports live in its study folder (never in the installed configs), and `model=exported/<name>`
finds them there through the project's Hydra search-path plugin."""

from __future__ import annotations

import yaml
from hydra import compose, initialize_config_dir, initialize_config_module

from hydra_plugins.cnn_nas_exports import study_roots
from nas.config import CONF_DIR
from nas.search.loop import run_search


def _compose_train(*overrides: str) -> dict:
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_the_front_is_exported_into_the_study_folder_and_trains_by_name_from_there(
    search_cfg, tmp_path, monkeypatch
):
    cfg = search_cfg("n_trials=1")
    cfg["export_dir"] = None  # the default: only the study folder
    monkeypatch.chdir(tmp_path)
    result = run_search(cfg, study_dir=tmp_path / "outputs" / "search" / "tiny")
    (export,) = result.exports
    assert export["paths"] == [
        str(
            tmp_path
            / "outputs"
            / "search"
            / "tiny"
            / "conf"
            / "model"
            / "exported"
            / f"{export['name']}.yaml"
        )
    ]
    assert not (CONF_DIR / "model" / "exported" / f"{export['name']}.yaml").exists()  # not into the package
    assert study_roots() == [tmp_path / "outputs" / "search" / "tiny" / "conf"]

    model = _compose_train(f"model=exported/{export['name']}", "data=synthetic").model
    assert model.name == export["name"] and model.stages == yaml.safe_load(open(export["paths"][0]))["stages"]


def test_the_plugin_adds_study_folders_to_the_platforms_apps_only(tmp_path, monkeypatch):
    (tmp_path / "outputs" / "search" / "a" / "conf" / "model" / "exported").mkdir(parents=True)
    (tmp_path / "outputs" / "search" / "b").mkdir()  # no exports: not a config root
    monkeypatch.chdir(tmp_path)
    assert study_roots() == [tmp_path / "outputs" / "search" / "a" / "conf"]
    other = tmp_path / "other_app"
    other.mkdir()
    (other / "app.yaml").write_text("x: 1\n")
    with initialize_config_dir(config_dir=str(other), version_base="1.3"):
        hydra_cfg = compose("app", return_hydra_config=True).hydra
    assert not [e for e in hydra_cfg.runtime.config_sources if e.provider == "cnn-nas-exports"]
    with initialize_config_module(config_module="conf", version_base="1.3"):
        hydra_cfg = compose("train", return_hydra_config=True).hydra
    added = [str(e.path) for e in hydra_cfg.runtime.config_sources if e.provider == "cnn-nas-exports"]
    assert len(added) == 1 and added[0].endswith(str(tmp_path / "outputs" / "search" / "a" / "conf"))


def test_a_study_folder_with_run_folders_does_not_shadow_config_keys(tmp_path, monkeypatch):
    # After a search with baselines, outputs/search/<study>/ holds baselines/ and trials/ (run folders). When
    # the study folder itself was the config root they read as config groups, and `baselines.enabled=false`
    # failed to compose ("Config group override must be a string or a list. Got bool").
    study = tmp_path / "outputs" / "search" / "s"
    (study / "conf" / "model" / "exported").mkdir(parents=True)
    (study / "conf" / "model" / "exported" / "s-t0000.yaml").write_text(
        yaml.safe_dump({"name": "s-t0000", "stages": [{"block": "conv", "channels": 8}]})
    )
    for run_folder in ("baselines/resnet20", "trials/0000", "html"):
        (study / run_folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose("search", overrides=["space=resnet_like", "baselines.enabled=false", "html=false"])
    assert cfg.baselines.enabled is False
    assert _compose_train("model=exported/s-t0000", "data=synthetic").model.name == "s-t0000"
