"""A tiny ablation end to end on synthetic data: a `-m` sweep through the real CLI (one table, baseline trained
once), then resume with more seeds in-process (only the new runs train), a not-applicable variant, bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.ablate import precheck, run_ablation
from experiments.ablation.config import composer, plain

REPO = Path(__file__).resolve().parents[2]
# ~140 training images of 16 px, 1 epoch, 2 seeds: seconds per run.
TINY = [
    "data=synthetic", "data.train_size=160", "data.test_size=64", "data.image_size=16", "data.batch_size=32",
    "logger=none", "latency.mode=macs", "epochs=1", "seeds=2",
]  # fmt: skip


def records(cache: Path) -> set[tuple[str, str]]:
    return {(p.parent.name, p.stem) for p in cache.glob("*/seed*.json")}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    cmd = [sys.executable, "-m", "experiments.ablate", "-m", "pooling=max,avg", *TINY, f"cache_dir={root / 'cache'}",
           f"hydra.sweep.dir={root / 'multirun'}"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc.stdout


def test_sweep_gives_one_table_and_trains_the_baseline_once(sweep):
    root, out = sweep
    sweep_dir = root / "multirun"
    for ext in ("csv", "md", "png"):
        assert (sweep_dir / f"sweep.{ext}").stat().st_size > 0
    table = (sweep_dir / "sweep.md").read_text()
    assert (
        sum(line.startswith("| baseline |") for line in table.splitlines()) == 1
        and "| pooling=max |" in table
        and "| pooling=avg |" in table
    )
    assert "same config as baseline" in table  # pooling=max is the baseline's own choice
    # 2 configurations x 2 seeds were trained in total: the second job found the baseline in the cache
    cache = root / "cache"
    assert len(records(cache)) == 4 and len({k for k, _ in records(cache)}) == 2
    assert "2 cached, 2 to train" in out
    assert "[4/4]" in out and "ETA" in out  # progress: runs done / total and an ETA
    jobs = sorted(sweep_dir.glob("*/ablation.json"))
    assert len(jobs) == 2
    res = json.loads(jobs[1].read_text())
    assert res["variants"][0]["label"] == "pooling=avg" and len(res["variants"][0]["values"]) == 2
    for arm in (res["baseline"], res["variants"][0]):
        assert all(0.0 <= v <= 1.0 for _, v in arm["values"])
        assert arm["params"] > 0 and arm["macs"] > 0 and arm["latency"]["value"] == arm["macs"]
    header = (sweep_dir / "sweep.csv").read_text().splitlines()[0]
    assert header.startswith("arm,key,overrides,status,n,mean,sd,ci_low,ci_high,delta,delta_ci_low,")


def test_more_seeds_train_only_the_new_runs_and_update_the_report(sweep, tmp_path):
    root, _ = sweep
    calls = []

    def counting_fit(cfg, **kw):
        from nas.fit import fit

        calls.append((cfg["name"], cfg["seed"]))
        return fit(cfg, **kw)

    overrides = [*TINY, "seeds=3", f"cache_dir={root / 'cache'}", "pooling=avg"]
    lines = []
    with composer() as compose:
        cfg = plain(compose(overrides))
    result = run_ablation(cfg, overrides, out_dir=tmp_path / "out", fit_fn=counting_fit, echo=lines.append)
    assert sorted(calls) == [("baseline-seed2", 2), ("pooling=avg-seed2", 2)]
    assert len(result["baseline"]["values"]) == 3 and len(result["variants"][0]["values"]) == 3
    md = (tmp_path / "out" / "ablation.md").read_text()
    assert "| pooling=avg |" in md and "| 3 |" in md
    assert any("4 cached, 2 to train" in line for line in lines)


def test_a_variant_that_does_not_apply_says_so_and_trains_nothing(tmp_path):
    def no_fit(cfg, **kw):
        raise AssertionError("nothing should be trained")

    overrides = [
        *TINY,
        "data.channels=1",
        f"cache_dir={tmp_path / 'cache'}",
        "colorspace=learned_10_3_maxout",
    ]
    lines = []
    with composer() as compose:
        cfg = plain(compose(overrides))
    result = run_ablation(cfg, overrides, out_dir=tmp_path / "out", fit_fn=no_fit, echo=lines.append)
    assert "not applicable" in result["variants"][0]["skip"]
    assert "not applicable" in (tmp_path / "out" / "ablation.md").read_text()
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["poolin=avg"], "unknown axis or option 'poolin'"),
        (["pooling=avgmax"], "unknown pooling variant 'avgmax'; valid: avg, avg_max"),
        (["-m", "pooling=max,avg", "seeds=1"], "at least 2 seeds"),
        (["-m", "pooling=avg", "width=x1,x9"], "unknown width variant 'x9'"),
        (["-m", "seeds=2,3"], "nothing to ablate"),
        (["-m", "suite=mishkin", "pooling=avg,max"], "runs its own variants"),
    ],
)
def test_bad_input_is_one_clear_message_before_compute(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        precheck([*argv, "data=synthetic", "logger=none"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ablate: error: ") and message in err and "Traceback" not in err


def test_suite_report_puts_the_paper_beside_ours(tmp_path):
    """The suite path with a stand-in trainer: rows, n/a and skipped rows, sign agreement, files."""

    def fake_fit(cfg, **kw):
        acc = 0.80 + 0.01 * cfg["seed"]
        if cfg["model"]["stages"][1]["type"] == "avg":
            acc -= 0.02 + 0.001 * cfg["seed"] ** 2  # paper: avg pooling -3.6 pp -> signs agree
        if cfg["model"]["head"]["dropout"] == 0.3:
            acc -= 0.01 + 0.002 * cfg["seed"]  # paper: dropout 0.3 +2.6 pp -> signs disagree
        return {"metrics": {"test/acc": acc}, "wall_time_s": 0.0}

    overrides = [*TINY, "data.channels=1", "suite=mishkin", f"cache_dir={tmp_path / 'cache'}"]
    with composer() as compose:
        cfg = plain(compose(overrides))
    keep = {("pooling", "max"), ("pooling", "avg"), ("dropout", "0.3"), ("colorspace", "ycrcb"),
            ("colorspace", "learned_16_3")}  # fmt: skip
    cfg["suite"]["rows"] = [r for r in cfg["suite"]["rows"] if (r["axis"], str(r["variant"])) in keep]
    result = run_ablation(cfg, overrides, out_dir=tmp_path / "out", fit_fn=fake_fit, echo=lambda s: None)
    assert result["suite"] == "mishkin" and len(result["variants"]) == 5
    with (tmp_path / "out" / "suite.csv").open() as f:
        rows = {f"{r['paper_axis']}/{r['paper_variant']}": r for r in csv.DictReader(f)}
    assert rows["pooling/max"]["signs_agree"] == "baseline"
    assert rows["pooling/avg"]["signs_agree"] == "yes" and float(rows["pooling/avg"]["paper_delta"]) == -0.036
    assert float(rows["pooling/avg"]["delta"]) == pytest.approx(-0.0205)
    assert rows["dropout/0.3"]["signs_agree"] == "no"
    assert rows["colorspace/ycrcb"]["status"].startswith("not reproduced")
    assert rows["colorspace/learned_16_3"]["status"].startswith("not applicable")
    md = (tmp_path / "out" / "suite.md").read_text()
    assert "Signs agree in **1 of 2**" in md and (tmp_path / "out" / "suite.png").stat().st_size > 0
