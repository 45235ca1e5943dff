"""Samplers and pruners by name, and a study's identity on resume (no training)."""

from __future__ import annotations

import copy

import optuna
import pytest

from nas.config import CONF_DIR
from nas.search.norepeat import NoRepeat
from nas.search.storage import make_storage
from nas.search.study import SAMPLERS, make_pruner, make_sampler, open_study
from nas.space import Space


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml")))
def test_every_sampler_config_builds(name, search_cfg):
    cfg = search_cfg(f"sampler={name}")
    sampler = make_sampler(cfg["sampler"], seed=0)
    if cfg["sampler"]["no_repeat"]:
        assert isinstance(sampler, NoRepeat)
        sampler = sampler.inner
    assert isinstance(sampler, SAMPLERS[name])


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "pruner").glob("*.yaml")))
def test_every_pruner_config_builds_for_one_objective(name, search_cfg):
    cfg = search_cfg(f"pruner={name}")
    assert isinstance(make_pruner(cfg["pruner"], n_objectives=1, epochs=3), optuna.pruners.BasePruner)


def test_pruning_with_two_objectives_says_why_not():
    with pytest.raises(ValueError, match="single objective.*latency_budget_ms"):
        make_pruner({"name": "hyperband"}, n_objectives=2, epochs=3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: make_sampler({"name": "annealing"}, seed=0),
            "unknown sampler 'annealing'.*tpe",
        ),
        (lambda: make_sampler({"name": "tpe", "bogus": 1}, seed=0), "unknown options.*bogus"),
        (lambda: make_pruner({"name": "nope"}, n_objectives=1, epochs=1), "unknown pruner 'nope'.*median"),
        (lambda: make_storage({"name": "redis"}, CONF_DIR), "unknown storage 'redis'.*sqlite"),
    ],
)
def test_unknown_names_list_the_valid_ones(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_existing_study_refuses_another_space_or_objective(tmp_path, tiny_space, identity):
    storage = make_storage({"name": "sqlite"}, tmp_path)
    sampler, pruner = optuna.samplers.RandomSampler(), optuna.pruners.NopPruner()
    space = Space.from_dict(tiny_space)
    study, resumed = open_study(
        study_name="s", storage=storage, sampler=sampler, pruner=pruner, identity=identity(space)
    )
    assert not resumed
    _, resumed = open_study(
        study_name="s", storage=storage, sampler=sampler, pruner=pruner, identity=identity(space)
    )
    assert resumed
    other = copy.deepcopy(tiny_space)
    other["params"]["width"]["high"] = 16
    with pytest.raises(ValueError, match="(?s)different search.*search space.*study_name"):
        open_study(
            study_name="s",
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            identity=identity(Space.from_dict(other)),
        )
    with pytest.raises(ValueError, match="objectives"):
        open_study(
            study_name="s",
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            identity=identity(space, ("accuracy", "params")),
        )


def test_a_worker_that_loads_a_study_another_has_just_created_waits_for_its_identity(
    tmp_path, tiny_space, identity
):
    # Two array jobs starting a new study: one creates it (create_study and set_user_attr are two writes),
    # the other finds it in between, without the identity attribute. It waits for it instead of refusing the
    # study as "not created by nas.search".
    import threading

    storage = make_storage({"name": "journal"}, tmp_path)
    ident = identity(Space.from_dict(tiny_space))
    first = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    writer = threading.Timer(0.6, lambda: first.set_user_attr("nas:identity", dict(ident)))
    writer.start()
    try:
        study, resumed = open_study(
            study_name="s",
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),
            pruner=optuna.pruners.NopPruner(),
            identity=ident,
        )
    finally:
        writer.join()
    assert resumed and study.user_attrs["nas:identity"]


def test_a_study_without_identity_and_with_trials_is_refused(tmp_path, tiny_space, identity):
    storage = make_storage({"name": "journal"}, tmp_path)
    other = optuna.create_study(study_name="s", storage=storage)
    other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(ValueError, match="not created by nas.search"):
        open_study(
            study_name="s",
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),
            pruner=optuna.pruners.NopPruner(),
            identity=identity(Space.from_dict(tiny_space)),
        )
