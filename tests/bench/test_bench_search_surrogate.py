"""bench search --benchmark surrogate: the real search loop over a space's surrogate, scored against its
approximated true front; runs resume and are reused, a stale or missing front says what to run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import nas.fit
from experiments.bench import _search_surrogate
from experiments.bench.search import main, parse
from nas.search.plan import SearchPlan
from nas.surrogate import front
from nas.surrogate.model import Surrogate
from nas.surrogate.options import front_file, model_file
from tests.surrogate import synthetic

# The synthetic space of tests/surrogate on tiny synthetic data (the surrogate's signature is this fidelity's).
DATA = ["data.train_size=64", "data.test_size=16", "data.val_size=32", "data.image_size=8", "latency.mode=macs",
        "chance_alpha=null"]  # fmt: skip


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """(argv of the benchmark on the `cond` space's surrogate in tmp_path, the front file's content)."""
    monkeypatch.setattr(nas.fit, "fit", lambda *a, **k: pytest.fail("a surrogate look-up must not train"))
    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "cond.yaml").write_text(yaml.safe_dump(synthetic.SPACE, sort_keys=False))
    extra = [
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        f"benchmark.file={tmp_path / 'data.json'}",
        *DATA,
    ]
    cfg = _search_surrogate.compose(
        "random", 0, space="cond", data="synthetic", n=2, out=tmp_path, extra=extra
    )
    plan = SearchPlan.from_cfg({**cfg, "benchmark": None})
    doc = synthetic.doc(30, seeded=12)
    doc.update(signature=plan.calibration_signature(), data="synthetic")
    (tmp_path / "data.json").write_text(json.dumps(doc))
    surrogate = Surrogate.fit(plan.space, doc, "gp", data_file="data.json")
    surrogate.save(model_file(tmp_path / "data.json"))
    argv = ["--benchmark", "surrogate", "--space", "cond", "--data", "synthetic", "--trials", "12", "--seeds", "2",
            "--samplers", "random,tpe", "--out", str(tmp_path / "out"), *extra]  # fmt: skip
    with pytest.raises(
        ValueError, match="no approximated true front .* python -m nas.surrogate front --space cond"
    ):
        main(argv)
    out = front.run(plan, surrogate, doc["archs"], mode="macs", seeds=[0], draws=300, max_exact=60,
                    generations=2, children=10, echo=lambda s: None)  # fmt: skip
    front_file(tmp_path / "data.json").write_text(json.dumps(out))
    return argv, out


def test_defaults_follow_the_benchmark():
    args = parse(["--benchmark", "surrogate"])
    assert (args.trials, args.seeds, args.samplers) == (100, 30, "random,tpe,gp,nsga2,ehvi")
    assert args.out == "outputs/bench/search_surrogate"


def test_runs_are_scored_against_the_front_resumed_and_reused(bench, tmp_path, capsys):
    argv, doc = bench
    assert main(argv) == 0
    runs = [json.loads(line) for line in (tmp_path / "out" / "runs_cond_n12.jsonl").read_text().splitlines()]
    assert sorted((r["sampler"], r["seed"]) for r in runs) == [
        ("random", 0),
        ("random", 1),
        ("tpe", 0),
        ("tpe", 1),
    ]
    for r in runs:  # each evaluation's mean accuracy (no noise) and its MACs, as the study recorded them
        assert len(r["points"]) == 12
        study = tmp_path / "out" / "studies" / f"surrogate-cond-{r['sampler']}-s{r['seed']}"
        assert (study / "study.db").is_file() and not list(study.rglob("*.onnx"))
    curve = front.regret_curve(doc, [tuple(p) for p in runs[0]["points"]])
    assert (
        np.all(np.diff(curve) <= 1e-12) and curve[-1] >= -1e-9
    )  # never worse with more; the front bounds it
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = {(s["sampler"], s["budget"]): s for s in summary}
    assert set(rows) == {("random", 12), ("tpe", 12)} and rows[("random", 12)]["ratio_to_random"] == 1.0
    for (sampler, _), row in rows.items():  # the mean of the runs' final regrets
        finals = [
            front.regret_curve(doc, [tuple(p) for p in r["points"]])[-1]
            for r in runs
            if r["sampler"] == sampler
        ]
        assert row["runs"] == 2 and row["regret"] == pytest.approx(np.mean(finals))
    assert "random" in capsys.readouterr().out

    # A second invocation reuses every finished run; a changed sampler config runs that sampler again.
    assert main(argv) == 0
    assert len((tmp_path / "out" / "runs_cond_n12.jsonl").read_text().splitlines()) == 4
    tpe = ["tpe" if a == "random,tpe" else a for a in argv]
    assert main([*tpe, "sampler.n_startup_trials=3"]) == 0
    assert len((tmp_path / "out" / "runs_cond_n12.jsonl").read_text().splitlines()) == 6


def test_the_regret_of_the_front_itself_is_zero_and_a_dominated_point_leaves_regret():
    doc = {
        "reference": [0.5, 100.0],
        "front": [{"accuracy": 0.9, "latency": 10.0}, {"accuracy": 0.8, "latency": 5.0}],
    }
    assert front.regret_curve(doc, [(0.8, 5.0), (0.9, 10.0)]).tolist() == pytest.approx(
        [1 - 0.3 * 95 / (0.3 * 95 + 0.1 * 90), 0.0]
    )
    assert front.regret_curve(doc, [(0.6, 50.0)])[0] == pytest.approx(1 - 0.1 * 50 / (0.3 * 95 + 0.1 * 90))
    assert front.regret_curve(doc, [(0.4, 50.0)])[0] == 1.0  # below the reference accuracy: nothing
