"""`python -m experiments.reproduce` on a tiny cache: a real 2-row suite (synthetic data, 1 epoch, 2 seeds) and a
real 3-network profile; the page's table matches the suite's own report, missing rows are counted, figures
exist, nothing trains or is timed, and the human section survives a rebuild."""

from __future__ import annotations

import csv
import os
import re

import pytest

from experiments.ablate import run_ablation
from experiments.ablation.config import composer, plain
from experiments.ablation.report import fmt_p, pm
from experiments.profile import load_models, run_profile
from experiments.reproduce import HUMAN_BEGIN, HUMAN_END, PLACEHOLDER
from experiments.reproduce.__main__ import main

BUDGET = [
    "data=synthetic", "data.train_size=160", "data.test_size=64", "data.image_size=16", "data.batch_size=32",
    "data.channels=1", "logger=none", "latency.mode=macs", "epochs=1", "seeds=2",
]  # fmt: skip
TRAINED = {("pooling", "max"), ("pooling", "avg")}
# On the page: the two trained rows, one runnable row never trained, one not reproduced, one not applicable.
ROWS = "pooling/max,pooling/avg,dropout/0.3,colorspace/ycrcb,colorspace/learned_16_3"


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    os.environ.setdefault("WANDB_MODE", "disabled")
    overrides = [*BUDGET, "suite=mishkin", f"cache_dir={root / 'cache'}"]
    with composer() as compose:
        cfg = plain(compose(overrides))
    cfg["suite"]["rows"] = [r for r in cfg["suite"]["rows"] if (r["axis"], str(r["variant"])) in TRAINED]
    run_ablation(cfg, overrides, out_dir=root / "suite", echo=lambda s: None)  # really trains 2 x 2 runs
    models = load_models(["simple_cnn", "lenet5", "mobilenet_v1"])
    report = run_profile(
        models, out=root / "profile" / "px32" / "eager", batches=(1, 2), input_size=32, budget_s=5.0, log=False,
        latency={"runtime": "eager", "min_repeats": 3, "max_repeats": 3, "max_time_s": 0.05, "warmup": 1},
    )  # fmt: skip
    return root, report


def build(root, page, *extra):
    return main([
        "--budget", " ".join(BUDGET), "--cache-dir", str(root / "cache"), "--profile-dir", str(root / "profile"),
        "--page", str(page), "--rows", ROWS, *extra,
    ])  # fmt: skip


def table(text):
    """{axis/variant: cells} of the suite table."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 12 and cells[0] not in ("paper axis", "---"):
            out[f"{cells[0]}/{cells[1]}"] = cells
    return out


@pytest.fixture(scope="module")
def page(caches, tmp_path_factory):
    root, _ = caches
    import nas.fit
    import nas.latency

    calls = []

    def forbidden(*a, **k):  # recorded too: arm_latency turns any exception into a NaN latency
        calls.append(a)
        raise AssertionError("the page builder must not train or time anything")

    mp = pytest.MonkeyPatch()
    mp.setattr(nas.fit, "fit", forbidden)
    mp.setattr(nas.latency, "latency_objective", forbidden)
    mp.setattr("experiments.profile.run.measure_latency", forbidden)
    before = sorted(p.name for p in (root / "cache").rglob("*.json"))
    path = tmp_path_factory.mktemp("docs") / "reproduction.md"
    try:
        found = build(root, path)
    finally:
        mp.undo()
    assert not calls
    assert sorted(p.name for p in (root / "cache").rglob("*.json")) == before  # nothing new in the cache
    return path, found


def test_the_table_holds_the_suites_own_numbers_and_marks_missing_and_inapplicable_rows(caches, page):
    root, _ = caches
    path, found = page
    rows = table(path.read_text())
    assert set(rows) == set(ROWS.split(","))
    with (root / "suite" / "suite.csv").open() as f:
        suite = {f"{r['paper_axis']}/{r['paper_variant']}": r for r in csv.DictReader(f)}
    avg = suite["pooling/avg"]
    ours = pm(
        float(avg["delta"]),
        float(avg["delta_ci_low"] or "nan"),
        float(avg["delta_ci_high"] or "nan"),
        signed=True,
    )
    assert rows["pooling/avg"][2] == "-3.60" and rows["pooling/avg"][4] == ours
    assert rows["pooling/avg"][6] == fmt_p(float(avg["q_value"] or "nan"))  # beside p, over the suite's tests
    assert rows["pooling/avg"][8].removesuffix(" *") == avg["signs_agree"] and rows["pooling/avg"][11] == "ok"
    assert rows["pooling/max"][11] == "baseline"
    assert rows["dropout/0.3"][11] == "missing 2/2 seeds" and rows["dropout/0.3"][4] == "–"
    assert rows["colorspace/ycrcb"][11].startswith("not reproduced")
    assert rows["colorspace/learned_16_3"][11].startswith("not applicable")
    # 3 configurations (baseline, avg pooling, dropout 0.3) x 2 seeds; the dropout row's 2 runs are missing
    assert (found["runs_total"], found["runs_missing"], found["rows_missing"]) == (6, 2, 1)
    text = path.read_text()
    assert "**Incomplete: 2 of 6 runs" in text
    assert f"python -m experiments.ablate suite=mishkin {' '.join(BUDGET)} cache_dir={root / 'cache'}" in text
    assert re.search(r"- machine \(4 runs\): .*, \d+ cores", text)  # from the runs' env.json
    assert "Runs read from the cache: 4" in text


def test_figures_exist_and_the_profile_analysis_is_the_profiles_own(caches, page):
    _, report = caches
    path, found = page
    fig_dir = path.with_suffix("")
    names = sorted(p.name for p in fig_dir.glob("*.png"))
    assert names == [
        "profile_px32_eager_latency_vs_batch.png", "profile_px32_eager_macs_vs_latency.png",
        "suite_mishkin_delta_vs_paper.png",
    ]  # fmt: skip
    assert all((fig_dir / n).stat().st_size > 1000 for n in names)
    text = path.read_text()
    assert all(f"](reproduction/{n})" in text for n in names)
    assert found["profiles"] == ["px32/eager"]
    assert f"| {report.fit['r2']:.3f} (2) |" in text  # two dense networks; R^2 of the profile's own fit
    (mobilenet,) = [m for m in report.models if m["model"] == "mobilenet_v1"]
    assert f"mobilenet_v1 {mobilenet['vs_dense_per_op']:.2f}x" in text


def test_a_rebuild_keeps_the_human_section_and_a_page_without_markers_is_refused(
    caches, page, tmp_path, capsys
):
    root, _ = caches
    path, _ = page
    first = path.read_text()
    assert first.count(HUMAN_BEGIN) == 1 and PLACEHOLDER in first
    mine = "Pooling carries over; colour does not apply to grey images.\n\n- a list, too"
    path.write_text(first.replace(PLACEHOLDER, mine))
    build(root, path)
    second = path.read_text()
    assert f"{HUMAN_BEGIN}\n{mine}\n{HUMAN_END}" in second and PLACEHOLDER not in second
    assert table(second) == table(first)

    broken = tmp_path / "reproduction.md"
    broken.write_text("# my notes, no markers\n")
    with pytest.raises(SystemExit) as exc:
        build(root, broken)
    assert exc.value.code == 2 and "human-section markers" in capsys.readouterr().err
    assert broken.read_text() == "# my notes, no markers\n"


def test_strict_fails_while_runs_are_missing(caches, tmp_path):
    root, _ = caches
    with pytest.raises(SystemExit) as exc:
        build(root, tmp_path / "r.md", "--strict")
    assert exc.value.code == 1 and (tmp_path / "r.md").exists()


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("pooling=avg", "not ['pooling=avg']"),
        ("epochs=1 cache_dir=x", "--cache-dir"),
        ("epoch=1", "unknown axis"),
    ],
)
def test_a_bad_budget_is_one_message_before_any_planning(tmp_path, capsys, budget, message):
    with pytest.raises(SystemExit) as exc:
        main(["--budget", budget, "--page", str(tmp_path / "r.md")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r.md").exists()
