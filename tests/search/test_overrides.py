"""The search's command-line habits (nas.search.overrides): `+space=` and a storage URL typed as the storage
compose to the config the documented overrides give."""

from __future__ import annotations

import pytest

from nas.search.overrides import normalise
from tests.search.conftest import compose_search


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        (["+space=resnet_like"], ["space=resnet_like"]),
        (["++space=regnet", "n_trials=3"], ["space=regnet", "n_trials=3"]),
        (["storage=sqlite:///x.db"], ["storage=sqlite", "storage.url=sqlite:///x.db"]),
        (["storage=sqlite:////abs/x.db"], ["storage=sqlite", "storage.url=sqlite:////abs/x.db"]),
        (["storage=postgresql://u@h:5432/db"], ["storage=url", "storage.url=postgresql://u@h:5432/db"]),
        (["storage=postgresql+psycopg://u@h/db"], ["storage=url", "storage.url=postgresql+psycopg://u@h/db"]),
        (["storage=postgres://u@h/db"], ["storage=url", "storage.url=postgresql://u@h/db"]),  # SQLAlchemy 2
        (["storage=mysql+pymysql://u@h/db"], ["storage=url", "storage.url=mysql+pymysql://u@h/db"]),
        # the documented forms, Hydra's flags and other keys pass unchanged
        (["space=x", "storage=journal", "storage.url=sqlite:///y.db", "-m", "--cfg", "job", "a.space=1"],
         ["space=x", "storage=journal", "storage.url=sqlite:///y.db", "-m", "--cfg", "job", "a.space=1"]),
    ],
)  # fmt: skip
def test_habits_become_the_documented_overrides(typed, meant):
    assert normalise(typed) == meant


@pytest.mark.parametrize(
    ("typed", "storage"),
    [
        ("storage=sqlite:///x.db", {"name": "sqlite", "url": "sqlite:///x.db"}),
        ("storage=postgresql://u@h/db", {"name": "url", "url": "postgresql://u@h/db"}),
    ],
)
def test_a_storage_url_typed_as_the_storage_composes(typed, storage):
    # Hydra alone reads `storage=sqlite:///x.db` as a config file of the storage group and fails to compose.
    cfg = compose_search(*normalise(["space=resnet_like", typed]))
    assert {k: cfg["storage"][k] for k in storage} == storage


def test_space_and_plus_space_compose_the_same_config():
    assert compose_search("space=resnet_like") == compose_search(*normalise(["+space=resnet_like"]))
    assert compose_search("space=resnet_like")["space"]["name"] == "resnet_like"


def test_a_url_given_to_storage_postgres_is_refused_with_the_ways_to_give_it(capsys):
    from nas.search.__main__ import main

    argv = ["space=resnet_like", "storage=postgres", "storage.url=postgresql+psycopg://nas@db/nas"]
    with pytest.raises(ValueError, match=r"export NAS_STORAGE_URL=<URL> .* storage=<URL>"):
        normalise(argv)
    assert normalise(argv[:2]) == argv[:2]  # postgres alone: its URL from the environment
    with pytest.raises(SystemExit) as e:  # the command: one message, Hydra's `+storage.url` hint never shown
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("search: error: storage=postgres reads its URL")
    assert "+storage.url" not in err and "Traceback" not in err
