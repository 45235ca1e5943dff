"""Study plumbing without training: config checks, samplers / pruners / storages by name, identity, fronts."""

from __future__ import annotations

import copy

import optuna
import pytest

from nas.config import CONF_DIR
from nas.search.pareto import front, front_indices, hypervolume
from nas.search.plan import SearchPlan
from nas.search.storage import make_storage
from nas.search.study import SAMPLERS, make_pruner, make_sampler, open_study, study_identity
from nas.space import Space


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml")))
def test_every_sampler_config_builds(name, search_cfg):
    cfg = search_cfg(f"sampler={name}")
    sampler = make_sampler(cfg["sampler"], seed=0)
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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"objectives": ["accuracy", "speed"]}, "objectives must be"),
        ({"objectives": ["latency"]}, "must include accuracy"),
        ({"fidelity": {"epochs": 1, "fraction": 0.0}}, "fidelity.fraction"),
        ({"fidelity": {"epochs": 0}}, "fidelity.epochs"),
        ({"fidelity": {"epochs": 1, "frac": 0.5}}, "unknown fidelity keys"),
        ({"n_trials": 0}, "n_trials"),
        ({"latency_budget_ms": -1}, "latency_budget_ms"),
        ({"study_name": "a/b"}, "study_name"),
        ({"baselines": {"enabled": True, "modles": ["x"]}}, "unknown baselines keys"),
        ({"sampler": {"name": "cmaes"}}, "unknown sampler 'cmaes'"),
        ({"space": None}, "no search space.*resnet_like"),
    ],
)
def test_bad_search_config_is_refused_before_compute(search_cfg, override, message):
    cfg = {**search_cfg(), **override}
    with pytest.raises(ValueError, match=message):
        SearchPlan.from_cfg(cfg)


def test_latency_budget_needs_a_timed_latency_mode(search_cfg):
    cfg = search_cfg("latency.mode=macs", "latency_budget_ms=5")
    with pytest.raises(ValueError, match="measured or predicted"):
        SearchPlan.from_cfg(cfg)


def test_plan_applies_the_fidelity(search_cfg):
    plan = SearchPlan.from_cfg(
        search_cfg("fidelity.epochs=2", "fidelity.fraction=0.5", "fidelity.image_size=12")
    )
    run = plan.run_config({"name": "x"}, output_dir="o", name="x")
    assert run["trainer"]["max_epochs"] == 2
    assert run["data"]["fraction"] == 0.5 and run["data"]["image_size"] == 12
    assert run["test"] is False and run["checkpoint"] is False
    full = plan.run_config({"name": "x"}, output_dir="o", name="x", full=True)
    assert full["data"]["fraction"] == 1.0 and full["test"] is True


def identity(space: Space, objectives=("accuracy", "latency")) -> dict:
    return study_identity(
        space=space, objectives=list(objectives), fidelity={"epochs": 1}, data="d", latency={"mode": "macs"}
    )


def test_existing_study_refuses_another_space_or_objective(tmp_path, tiny_space):
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


def test_front_and_hypervolume():
    pts = [[0.9, 3.0], [0.8, 1.0], [0.85, 3.5], [0.7, 2.0], [0.9, 3.0]]
    assert front_indices(pts, ["maximize", "minimize"]) == [0, 1, 4]
    # Minimising (1 - acc, latency) against reference (0 acc, 4 ms): two rectangles.
    hv = hypervolume([[0.9, 3.0], [0.8, 1.0]], ["maximize", "minimize"], [0.0, 4.0])
    assert hv == pytest.approx(0.8 * 3.0 + (0.9 - 0.8) * 1.0)
    assert hypervolume([[0.5, 9.0]], ["maximize", "minimize"], [0.0, 4.0]) == 0.0


def test_front_keeps_one_row_per_architecture():
    recs = [
        {"trial": 0, "state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "reused_from": None},
        {"trial": 1, "state": "COMPLETE", "accuracy": 0.9, "latency": 1.0, "reused_from": 0},
        {"trial": 2, "state": "COMPLETE", "accuracy": 0.5, "latency": 2.0, "reused_from": None},
        {"trial": 3, "state": "PRUNED", "accuracy": None, "latency": 0.1, "reused_from": None},
    ]
    assert [r["trial"] for r in front(recs, ["accuracy", "latency"])] == [0]


@pytest.mark.parametrize("name", ["sqlite", "journal", "memory", "url"])
def test_every_storage_config_opens_a_study(name, search_cfg, tmp_path, tiny_space):
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
