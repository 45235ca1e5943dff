"""Storages by name open a study; a broken URL is a clear error."""

from __future__ import annotations

import optuna
import pytest

from nas.search.storage import make_storage
from nas.search.study import open_study
from nas.space import Space


@pytest.mark.parametrize("name", ["sqlite", "journal", "memory", "url"])
def test_every_storage_config_opens_a_study(name, search_cfg, tmp_path, tiny_space, identity):
    extra = [f"storage.url=sqlite:///{tmp_path / 'other.db'}"] if name == "url" else []
    cfg = search_cfg(f"storage={name}", *extra)
    storage = make_storage(cfg["storage"], tmp_path / "study")
    study, _ = open_study(
        study_name="s",
        storage=storage,
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.NopPruner(),
        identity=identity(Space.from_dict(tiny_space)),
    )
    study.tell(study.ask(), [0.5, 1.0])
    assert len(study.trials) == 1


def test_unreachable_storage_url_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot open storage") as err:
        make_storage({"name": "url", "url": "postgresql://user:secret@127.0.0.1:1/db"}, tmp_path)
    assert "secret" not in str(err.value)  # the password in a URL is never printed


def test_storage_url_left_unset_says_which_override_to_add(tmp_path):
    # `storage=url` alone leaves conf/storage/url.yaml's mandatory `url: ???`: name the override, not "???"
    with pytest.raises(ValueError, match=r"storage=url needs storage.url=<SQLAlchemy URL>"):
        make_storage({"name": "url", "url": "???"}, tmp_path)
