"""Many comparisons, one family: the ablation tables report Benjamini-Hochberg q-values beside the p-values and
call a row significant only when its q-value is below 1 - confidence (nas.stats.fdr_q_values; tests/engine/test_stats.py)."""

import csv
import json
import math

import pytest
from scipy import stats as st

from experiments.ablation.callbacks import write_sweep_reports
from experiments.ablation.report import markdown, table_rows, write_report
from experiments.ablation.suite import suite_markdown, suite_rows, write_suite_report
from nas.stats import paired

BASE = {0: 0.80, 1: 0.82, 2: 0.81}
# Paired differences: a clear one (p 0.013, its 95 % CI excludes 0) and four that are noise.
DIFFS = {
    "clear": (0.03, 0.025, 0.02),
    "noise1": (0.01, -0.01, 0.005),
    "noise2": (-0.01, 0.02, 0.0),
    "noise3": (0.0, 0.01, -0.02),
    "noise4": (0.02, -0.01, -0.005),
}


def arm(label, values, key):
    return {"label": label, "key": key, "overrides": [label], "values": [list(kv) for kv in values.items()], "params": 1,
            "macs": 1, "meta": {"paper_delta": 0.01, "paper_axis": "a", "paper_variant": label}}  # fmt: skip


def result(*labels, suite=None):
    variants = [
        arm(n, {s: BASE[s] + d for s, d in zip(BASE, DIFFS[n], strict=True)}, f"k-{n}") for n in labels
    ]
    return {"name": "ablate-x", "metric": "test/acc", "confidence": 0.95, "seeds": 3, "shared": [], "suite": suite,
            "baseline": arm("baseline", BASE, "k0"), "variants": variants}  # fmt: skip


def p_of(label):
    return paired(BASE, {s: BASE[s] + d for s, d in zip(BASE, DIFFS[label], strict=True)}).p


def test_a_row_significant_alone_is_not_significant_among_five():
    alone = {r["arm"]: r for r in table_rows(result("clear"))}["clear"]
    assert alone["p_value"] < 0.05 and alone["delta_ci_low"] > 0  # significant before adjustment
    assert alone["q_value"] == pytest.approx(alone["p_value"]) and alone["significant"] is True

    rows = {r["arm"]: r for r in table_rows(result(*DIFFS))}
    expected = st.false_discovery_control([p_of(n) for n in DIFFS], method="bh")
    assert [rows[n]["q_value"] for n in DIFFS] == pytest.approx(list(expected))
    clear = rows["clear"]
    assert clear["p_value"] < 0.05 and clear["delta_ci_low"] > 0 and clear["q_value"] >= 0.05
    assert clear["significant"] is False
    assert math.isnan(rows["baseline"]["q_value"]) and rows["baseline"]["significant"] is False


def test_the_suite_counts_a_configuration_once_and_judges_rows_by_q(tmp_path):
    res = result(*DIFFS, suite="s")
    res["variants"].append({**res["variants"][0], "label": "clear again"})  # a second paper row, same runs
    rows = {r["arm"]: r for r in suite_rows(res)}
    expected = st.false_discovery_control([p_of(n) for n in DIFFS], method="bh")  # a family of 5, not 6
    assert rows["clear again"]["q_value"] == rows["clear"]["q_value"] == pytest.approx(expected[0])
    assert rows["clear"]["significant"] is False and rows["clear"]["signs_agree"] == "yes"
    text = suite_markdown(list(rows.values()), res)
    assert (
        "| p | q (FDR) |" in text and "0 of the 0 rows significant after false-discovery-rate control" in text
    )
    assert "adjusted for the table's 5 comparisons (Benjamini-Hochberg" in text

    paths = write_suite_report(res, tmp_path)
    with paths["csv"].open() as f:
        by_arm = {r["paper_variant"]: r for r in csv.DictReader(f)}
    assert (
        float(by_arm["clear"]["q_value"]) == pytest.approx(expected[0])
        and by_arm["clear"]["significant"] == "False"
    )
    table = json.loads(paths["json"].read_text())["table"]
    assert {(r["paper_variant"], r["significant"]) for r in table if r["paper_variant"] == "clear"} == {
        ("clear", False)
    }


def test_the_ablation_table_files_carry_q_beside_p(tmp_path):
    res = result("clear", "noise1")
    paths = write_report(res, tmp_path)
    text = paths["md"].read_text()
    assert "| p (paired t) | q (FDR) |" in text and "`*`: significant, q < 0.05" in text
    with paths["csv"].open() as f:
        rows = {r["arm"]: r for r in csv.DictReader(f)}
    q = st.false_discovery_control([p_of("clear"), p_of("noise1")], method="bh")
    assert float(rows["clear"]["q_value"]) == pytest.approx(q[0]) and rows["baseline"]["q_value"] == ""
    saved = json.loads(paths["json"].read_text())
    assert saved["variants"] == res["variants"]  # still the per-seed record
    assert [r["q_value"] for r in saved["table"]] == [None, pytest.approx(q[0]), pytest.approx(q[1])]
    assert "q (FDR)" in markdown(table_rows(res), metric="test/acc", confidence=0.95)


def test_a_sweep_adjusts_over_every_variant_of_its_jobs(tmp_path):
    for i, label in enumerate(DIFFS):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "ablation.json").write_text(json.dumps(result(label)))
    write_sweep_reports(tmp_path)
    with (tmp_path / "sweep.csv").open() as f:
        rows = {r["arm"]: r for r in csv.DictReader(f)}
    expected = st.false_discovery_control([p_of(n) for n in DIFFS], method="bh")
    assert [float(rows[n]["q_value"]) for n in DIFFS] == pytest.approx(list(expected))
    assert rows["clear"]["significant"] == "False"  # each job alone called it significant
    assert json.loads((tmp_path / "0" / "ablation.json").read_text())["variants"][0]["label"] == "clear"
