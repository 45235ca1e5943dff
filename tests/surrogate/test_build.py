"""The surrogate benchmark's data: the space's references, then random draws; resumable and split by claims."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

import nas.fit
from nas.search.plan import SearchPlan
from nas.surrogate.__main__ import main
from nas.surrogate.build import architectures, build, schedule
from tests.search.conftest import compose_search
from tests.tiny import tiny_space

SPACE = {**tiny_space(max_width=16), "references": {"narrow": {"act": "relu", "width_0": 4, "width_1": 4,
                                                              "pool": "avg"}}}  # fmt: skip


def plans(space=SPACE) -> list[SearchPlan]:
    out = []
    for seed in (0, 1):
        cfg = compose_search(f"seed={seed}")
        cfg["space"] = copy.deepcopy(space)
        out.append(SearchPlan.from_cfg(cfg))
    return out


@pytest.fixture
def fits(monkeypatch):
    """nas.fit.fit replaced: the accuracy is a function of the widths and the seed; returns the calls."""
    calls = []

    def fit(cfg, **kwargs):
        spec = nas.fit.resolve_spec(cfg)
        calls.append((spec["stages"][0]["channels"], spec["stages"][1]["channels"], cfg["seed"]))
        acc = 0.5 + spec["stages"][1]["channels"] / 100 + cfg["seed"] / 1000
        return nas.fit.RunResult(name=cfg["name"], output_dir=cfg["output_dir"], spec=spec, params=1, macs=1,
                                 metrics={"val/acc": acc}, wall_time_s=0.01, train_images_per_s=1.0,
                                 val_size=10)  # fmt: skip

    monkeypatch.setattr(nas.fit, "fit", fit)
    return calls


def test_the_references_come_first_then_distinct_draws_that_meet_the_constraints():
    space = {**SPACE, "constraints": {"params": {"max": 2000}}}
    archs = architectures(plans(space)[0], 6)
    assert archs[0]["reference"] == "narrow" and archs[0]["params"] == SPACE["references"]["narrow"]
    assert all(a["reference"] is None for a in archs[1:])
    assert len({json.dumps(a["params"], sort_keys=True) for a in archs}) == 6
    assert all(a["n_params"] <= 2000 for a in archs)


def test_second_seeds_follow_the_first_runs_of_random_architectures_only():
    archs = [{"reference": "r"}] + [{"reference": None}] * 99
    todo = schedule(archs, 3)
    assert todo[:60] == [(i, 0) for i in range(60)] and todo[60:63] == [(1, 1), (2, 1), (3, 1)]
    assert sorted(todo) == sorted([(i, 0) for i in range(100)] + [(1, 1), (2, 1), (3, 1)])


def test_a_build_cut_short_resumes_and_trains_only_what_is_missing(tmp_path, fits):
    path, p = tmp_path / "tiny.json", plans()
    doc = build(p, path, n=4, seeded=1, out=tmp_path / "out", command="cmd")
    assert len(fits) == 5 and doc["status"] == "complete" and len(doc["runs"]) == 5
    first = json.loads(path.read_text())
    assert (
        first["command"] == "cmd" and first["machine"] and first["signature"] == p[0].calibration_signature()
    )
    seeds = sorted((r["arch"], r["seed"]) for r in first["runs"].values())
    assert seeds == [(0, 0), (1, 0), (1, 1), (2, 0), (3, 0)]

    fits.clear()
    doc = build(p, path, n=6, seeded=1, out=tmp_path / "out", command="cmd")  # grown: only the 2 new ones
    assert len(fits) == 2 and len(doc["runs"]) == 7 and doc["archs"][:4] == first["archs"]


def test_another_fidelity_is_refused_on_the_same_file(tmp_path, fits):
    path = tmp_path / "tiny.json"
    build(plans(), path, n=2, seeded=0, out=tmp_path / "out", command="cmd")
    other = plans()
    other[0].fidelity = dataclasses.replace(other[0].fidelity, epochs=2)  # its run configs follow
    with pytest.raises(ValueError, match="another fidelity"):
        build(other, path, n=2, seeded=0, out=tmp_path / "out", command="cmd")


def test_the_command_refuses_bad_input_in_one_line(capsys):
    assert main(["build", "--space", "nowhere", "--dry-run", "--file", str(Path("/nonexistent/x.json"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nowhere" in err and "Traceback" not in err
