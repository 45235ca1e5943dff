"""The ablation tables' verdicts: a row whose paired differences are all equal is undefined and says why, and the
suite's sign agreement with the paper (a delta of zero, or zero up to float rounding, agrees with neither sign)."""

import math

import pytest

from experiments.ablation.report import markdown, table_rows
from experiments.ablation.suite import sign_agreement, suite_markdown, suite_rows


def arm(label, values, key):
    return {"label": label, "key": key, "overrides": [label], "values": list(values.items()),
            "params": 1, "macs": 1, "meta": {"paper_delta": 0.01, "paper_axis": "a", "paper_variant": label}}  # fmt: skip


def test_a_row_with_equal_differences_is_never_significant_and_says_why():
    result = {
        "metric": "test/acc", "confidence": 0.95, "seeds": 2, "suite": "s",
        "baseline": arm("baseline", {0: 0.80, 1: 0.81}, "k0"),
        "variants": [arm("baseline", {0: 0.80, 1: 0.81}, "k0"), arm("v", {0: 0.83, 1: 0.84}, "k1")],
    }  # fmt: skip
    (row,) = [r for r in table_rows(result) if r["arm"] == "v"]
    assert math.isnan(row["p_value"]) and math.isnan(row["delta_ci_low"]) and "undefined" in row["note"]
    assert row["delta"] == pytest.approx(0.03)
    (srow,) = [r for r in suite_rows(result) if r["arm"] == "v"]
    assert srow["significant"] is False and srow["signs_agree"] == "yes"
    text = markdown(table_rows(result), metric="test/acc", confidence=0.95)
    assert "- v: all 2 paired differences are equal (+3.00 pp)" in text


def test_a_delta_of_exactly_zero_is_neither_agreement_nor_disagreement():
    assert sign_agreement(0.01, 0.0) == sign_agreement(-0.01, 0.0) == "ours 0"
    assert sign_agreement(0.0, 0.01) == "paper 0" and sign_agreement(0.01, 0.02) == "yes"
    result = {
        "metric": "test/acc", "confidence": 0.95, "seeds": 2, "suite": "s",
        "baseline": arm("baseline", {0: 0.80, 1: 0.81}, "k0"),
        "variants": [
            arm("up", {0: 0.82, 1: 0.84}, "k1"),  # paper +1 pp, ours +2.5 pp: agree
            arm("flat", {0: 0.81, 1: 0.80}, "k2"),  # ours exactly 0 (mean of +1 and -1 pp)
        ],
    }  # fmt: skip
    rows = suite_rows(result)
    assert [r["signs_agree"] for r in rows] == ["yes", "ours 0"]
    assert "Signs agree in **1 of 1** rows where both deltas are non-zero" in suite_markdown(rows, result)


def test_a_delta_that_cancels_up_to_float_rounding_counts_as_zero():
    # +1 and -1 pp on the 1/10,000 accuracy grid: the mean of the paired differences is -5.6e-17, not 0.
    result = {
        "metric": "test/acc", "confidence": 0.95, "seeds": 2, "suite": "s",
        "baseline": arm("baseline", {0: 0.81, 1: 0.81}, "k0"),
        "variants": [arm("flat", {0: 0.82, 1: 0.80}, "k1")],
    }  # fmt: skip
    rows = suite_rows(result)
    assert rows[0]["delta"] != 0 and abs(rows[0]["delta"]) < 1e-15  # the premise: float rounding
    assert [r["signs_agree"] for r in rows] == ["ours 0"]
