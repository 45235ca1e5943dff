"""Reusing an earlier result: never another study's files, only what trained the same way, one training per
network when workers draw it at once (nas.search.trial)."""

from __future__ import annotations

import copy
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.evaluator import Evaluation, Evaluator
from nas.search.loop import run_search
from nas.search.plan import SearchPlan
from nas.search.scheduler import SingleFidelity
from nas.search.trial import TrialRunner
from nas.search.workers import WORKER_ATTR, identity
from tests.search.conftest import fixed


def by_act(spec) -> float:
    """silu networks 0.9, relu ones 0.5 (same MACs: silu dominates)."""
    return 0.9 if spec["act"] == "silu" else 0.5


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def test_a_reused_trial_never_deletes_the_source_studys_weights(search_cfg, tmp_path, tiny_space, fake_fit):
    calls = fake_fit(by_act)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    common = ("latency.mode=macs", "reuse=storage", f"storage.url={url}")
    run_search(
        search_cfg("n_trials=1", *common, space=fixed(copy.deepcopy(tiny_space))), study_dir=tmp_path / "a"
    )
    source = tmp_path / "a" / "trials" / "t0000" / "checkpoints" / "last.ckpt"
    assert source.is_file()  # on study a's front
    # Study b draws the relu network (reused from a) and the silu one (trained), which dominates it.
    both = fixed(copy.deepcopy(tiny_space), act=["relu", "silu"])
    run_search({**search_cfg("n_trials=4", *common, space=both), "study_name": "b"}, study_dir=tmp_path / "b")
    trials = load(url, "b").trials
    reused = [t for t in trials if t.user_attrs.get("reused_from") == "tiny#0"]
    assert reused and any(
        t.user_attrs["spec"]["act"] == "silu" for t in trials
    )  # the case this test is about
    assert len(calls) == 2
    assert source.is_file()  # b's front moved on, a's weights stay
    assert all("output_dir" not in t.user_attrs for t in reused)  # it owns no folder...
    assert reused[0].user_attrs["source_output_dir"] == str(
        tmp_path / "a" / "trials" / "t0000"
    )  # ...points at one
    # b's own trial off its front still loses its weights (b's folder, b's trial).
    off = [t for t in trials if t.user_attrs.get("output_dir") and t.user_attrs["spec"]["act"] == "relu"]
    for t in off:
        assert not list((tmp_path / "b" / "trials").glob(f"t{t.number:04d}/checkpoints/*.ckpt"))


def test_other_training_options_are_not_reused_or_resumed(search_cfg, tmp_path, tiny_space, fake_fit):
    calls = fake_fit(by_act)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    space = fixed(copy.deepcopy(tiny_space))
    first = search_cfg("n_trials=1", "latency.mode=macs", "reuse=storage", f"storage.url={url}", space=space)
    run_search(first, study_dir=tmp_path / "a")
    # Another study of the storage with another batch size trains the network again (fp32 / batch 16 result
    # not reused).
    other = search_cfg("n_trials=1", "latency.mode=macs", "reuse=storage", f"storage.url={url}", "data.batch_size=32",
                       space=space)  # fmt: skip
    run_search({**other, "study_name": "other"}, study_dir=tmp_path / "b")
    assert len(calls) == 2 and "reused_from" not in load(url, "other").trials[0].user_attrs
    # bf16 in another study of the storage: trained again, not the fp32 result.
    mixed = search_cfg("n_trials=1", "latency.mode=macs", "reuse=storage", f"storage.url={url}",
                       "trainer.precision=bf16-mixed", space=space)  # fmt: skip
    run_search({**mixed, "study_name": "mixed"}, study_dir=tmp_path / "c")
    assert len(calls) == 3 and "reused_from" not in load(url, "mixed").trials[0].user_attrs
    # Resuming study tiny with bf16 is refused, naming the option that differs.
    bf16 = search_cfg("n_trials=2", "latency.mode=macs", "reuse=storage", f"storage.url={url}",
                      "trainer.precision=bf16-mixed", space=space)  # fmt: skip
    with pytest.raises(ValueError, match=r"trainer\.precision"):
        run_search(bf16, study_dir=tmp_path / "a")
    assert len(calls) == 3


def test_a_result_pruned_by_another_pruner_is_trained_again(search_cfg, tmp_path, tiny_space, fake_fit):
    def pruned(spec):
        raise optuna.TrialPruned("pruned at epoch 0")

    calls = fake_fit(pruned)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    space = fixed(copy.deepcopy(tiny_space))
    common = (
        "n_trials=1",
        "objectives=[accuracy]",
        "latency.mode=macs",
        "reuse=storage",
        f"storage.url={url}",
    )
    run_search(
        search_cfg(*common, "pruner=threshold", "pruner.lower=0.5", space=space), study_dir=tmp_path / "a"
    )
    assert load(url, "tiny").trials[0].state == TrialState.PRUNED and len(calls) == 1
    # The same pruner: the pruned result is reused (pruned again without training).
    same = search_cfg(*common, "pruner=threshold", "pruner.lower=0.5", space=space)
    run_search({**same, "study_name": "same"}, study_dir=tmp_path / "b")
    (t,) = load(url, "same").trials
    assert len(calls) == 1 and t.state == TrialState.PRUNED and t.user_attrs["reused_from"] == "tiny#0"
    # No pruner: it might complete, so it trains.
    run_search({**search_cfg(*common, space=space), "study_name": "nopruner"}, study_dir=tmp_path / "c")
    (t,) = load(url, "nopruner").trials
    assert len(calls) == 2 and "reused_from" not in t.user_attrs


class Counting(Evaluator):
    """Counts evaluations; the accuracy is fixed."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, trial, candidate, rung):
        self.calls += 1
        return Evaluation("COMPLETE", attrs={"accuracy": 0.5})


def test_a_worker_waits_for_a_twin_trial_another_worker_is_training(search_cfg, tiny_space):
    plan = SearchPlan.from_cfg(search_cfg("latency.mode=macs", "n_trials=3", space=fixed(tiny_space)))
    study = optuna.create_study(directions=["maximize", "minimize"])
    key = plan.run_key(plan.cost(plan.space.sample_random(0).spec)[0])
    # Another worker's trial (this process stands in for it) is training the only network of the space.
    twin = study.ask()
    twin.set_user_attr(WORKER_ATTR, identity(twin.number))
    twin.set_user_attr("run_key", key)

    def finish():
        time.sleep(1.5)
        for k, v in {"accuracy": 0.7, "latency": 1.0, "n_params": 1, "macs": 1, "state": "COMPLETE"}.items():
            twin.set_user_attr(k, v)
        study.tell(twin, [0.7, 1.0])

    done = threading.Thread(target=finish)
    done.start()
    evaluator = Counting()
    outcome = TrialRunner(plan, study, evaluator, SingleFidelity(plan.fidelity)).run()
    done.join()
    assert evaluator.calls == 0  # trained once, by the twin
    assert outcome.state == "REUSED" and study.trials[1].user_attrs["reused_from"] == 0
    assert study.trials[1].values == [0.7, 1.0]
