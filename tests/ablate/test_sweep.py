"""A `-m` sweep's jobs merge into one table only when they compare the same way; no job's variant is dropped."""

import json

from experiments.ablation.callbacks import collect_sweep, write_sweep_reports


def job(root, num, *, metric, shared, variant="pooling=avg", base_key="kb", var_key="kv"):
    arm = {"params": 1, "macs": 1, "latency": {}, "failures": [], "diverged": [], "meta": {}}
    res = {
        "name": "ablate-x", "metric": metric, "confidence": 0.95, "seeds": 2, "shared": shared, "suite": None,
        "baseline": {**arm, "label": "baseline", "overrides": [], "key": base_key,
                     "values": [[0, 0.80], [1, 0.82]]},
        "variants": [{**arm, "label": variant, "overrides": [variant], "key": var_key,
                      "values": [[0, 0.81 + (metric == "val/acc") * 0.05], [1, 0.84]]}],
    }  # fmt: skip
    (root / str(num)).mkdir()
    (root / str(num) / "ablation.json").write_text(json.dumps(res))


def test_sweeping_a_comparison_option_gives_one_table_per_value(tmp_path, capsys):
    """-m metric=test/acc,val/acc pooling=avg: same baseline runs, two comparisons; both are reported."""
    job(tmp_path, 0, metric="test/acc", shared=["metric=test/acc"])
    job(tmp_path, 1, metric="val/acc", shared=["metric=val/acc"])
    results = collect_sweep(tmp_path)
    assert [(r["metric"], [v["label"] for v in r["variants"]]) for r in results] == [
        ("test/acc", ["pooling=avg"]),
        ("val/acc", ["pooling=avg"]),
    ]
    paths = write_sweep_reports(tmp_path)
    assert [p.name for p in paths] == ["sweep-0.md", "sweep-1.md"]
    assert "val/acc" in paths[1].read_text() and "2 comparisons" in capsys.readouterr().out


def test_variants_of_one_comparison_share_a_table_and_a_repeated_job_counts_once(tmp_path):
    job(tmp_path, 0, metric="test/acc", shared=[], variant="pooling=avg", var_key="k1")
    job(tmp_path, 1, metric="test/acc", shared=[], variant="pooling=avg_max", var_key="k2")
    job(tmp_path, 2, metric="test/acc", shared=[], variant="pooling=avg", var_key="k1")
    (result,) = collect_sweep(tmp_path)
    assert [v["label"] for v in result["variants"]] == ["pooling=avg", "pooling=avg_max"]
