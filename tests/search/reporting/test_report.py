"""Results a user can act on: trials.csv marks the front, the reference network a trial came from and the
front's hypervolume after each trial; front.csv carries each architecture's spec and exported file; every cost
column says its image size; the Pareto plot is readable (title inside the figure, log cost axis over a wide
range), one per pair of quantities past two objectives; the hypervolume history is drawn; an online W&B
summary run prints its URL and the study's group URL."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from blocks import build_model
from nas.latency import spec_costs
from nas.search.loop import run_search
from nas.search.reporting import summary_run
from nas.search.reporting.figures import pareto_figure, pareto_pairs
from nas.search.reporting.tables import sized_names, table

REFERENCE = {"act": "relu", "width_0": 8, "width_1": 8, "pool": "avg"}  # the widest tiny net: most accurate


def by_width(spec) -> float:
    """Wider networks are more accurate, the reference's layout most of all (the front's most accurate end,
    whatever the measured latencies)."""
    best = spec["act"] == "relu" and spec["head"]["pool"] == "avg"
    return 0.3 + sum(s["channels"] for s in spec["stages"]) / 40 + (0.05 if best else 0.0)


def search_with_a_reference(search_cfg, tmp_path, *overrides: str, echo=None):
    """A tiny search whose second trial is enqueued from a reference network (user attribute `reference`)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_search(search_cfg("n_trials=1", f"storage.url={url}", *overrides), study_dir=tmp_path / "study",
               echo=lambda s: None)  # fmt: skip
    optuna.load_study(study_name="tiny", storage=url).enqueue_trial(
        REFERENCE, user_attrs={"reference": "resnet20"}
    )
    lines: list[str] = []
    result = run_search(search_cfg("n_trials=5", f"storage.url={url}", *overrides), study_dir=tmp_path / "study",
                        echo=echo or lines.append)  # fmt: skip
    return result, lines, optuna.load_study(study_name="tiny", storage=url)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_trials_and_front_files_mark_the_front_references_sizes_and_hypervolume(
    search_cfg, tmp_path, fake_fit
):
    fake_fit(by_width)
    # trained at 4 px, judged (latency, MACs) at the data's 8 px
    result, lines, study = search_with_a_reference(search_cfg, tmp_path, "fidelity.image_size=4")
    study_dir = tmp_path / "study"
    on_front = {r["trial"] for r in result.front}
    ref_trial = next(t.number for t in study.trials if t.user_attrs.get("reference"))
    assert ref_trial in on_front  # the case the printed marker is about

    trials = read_csv(study_dir / "trials.csv")
    cols = set(trials[0])
    assert {"on_front", "reference", "hypervolume", "latency_ms_8px", "macs_8px"} <= cols
    assert not {"latency", "macs"} & cols  # no cost column without its size
    assert {int(r["trial"]) for r in trials if r["on_front"] == "True"} == on_front
    assert [r["reference"] for r in trials if r["reference"]] == ["resnet20"]
    assert next(r for r in trials if r["reference"])["trial"] == str(ref_trial)
    # the MACs column holds the network's cost at the size it names (8 px), not at the training size
    row = next(r for r in trials if int(r["trial"]) == ref_trial)
    spec = next(t.user_attrs["spec"] for t in study.trials if t.number == ref_trial)
    at_8px = spec_costs({**spec, "in_channels": 3, "num_classes": 10, "input_size": 8})["macs"]
    assert int(row["macs_8px"]) == at_8px != spec_costs({**spec, "in_channels": 3, "num_classes": 10,
                                                           "input_size": 4})["macs"]  # fmt: skip
    # the front's hypervolume after each trial, in trial order: it only grows, and ends at the report's value
    hv = [float(r["hypervolume"]) for r in sorted(trials, key=lambda r: int(r["trial"]))]
    summary = json.loads((study_dir / "summary.json").read_text())
    assert hv == sorted(hv) and hv[-1] == pytest.approx(summary["hypervolume"]["value"])
    assert [h["hypervolume"] for h in summary["hypervolume_history"]] == pytest.approx(hv)
    assert (study_dir / "hypervolume.png").stat().st_size > 0 and summary["files"]["hypervolume_png"]

    # front.csv: each architecture's spec (JSON) and its exported config; the same sized names
    front_rows = read_csv(study_dir / "front.csv")
    assert [int(r["trial"]) for r in front_rows] == [r["trial"] for r in result.front]
    for r in front_rows:
        spec = json.loads(r["spec"])
        assert spec == next(t.user_attrs["spec"] for t in study.trials if t.number == int(r["trial"]))
        build_model({**spec, "in_channels": 3, "num_classes": 10, "input_size": 8})  # a network, as is
        assert Path(r["config"]).is_file() and r["config"].endswith(f"-t{int(r['trial']):04d}.yaml")
        assert "latency_ms_8px" in r and "macs_8px" in r and "latency" not in r
    assert next(r for r in front_rows if int(r["trial"]) == ref_trial)["reference"] == "resnet20"
    doc = json.loads((study_dir / "front.json").read_text())
    assert doc["columns"] == {"latency": "latency_ms_8px", "macs": "macs_8px"}
    assert all("latency_ms_8px" in r and "latency" not in r for r in doc["front"])

    # the printed front: the sizes in its header, the reference network beside its trial number
    text = "\n".join(lines)
    assert "latency_ms_8px" in text and "macs_8px (M)" in text and "trained at 4 px" in text
    assert f"trial {ref_trial} (resnet20)" in text


def test_three_objectives_get_a_hypervolume_and_a_plot_per_pair(search_cfg, tmp_path, fake_fit):
    fake_fit(by_width)
    objectives = "objectives=[accuracy,latency,params]"
    result, _, _ = search_with_a_reference(search_cfg, tmp_path, objectives, "latency.mode=macs")
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["hypervolume"]["value"] > 0 and len(summary["hypervolume"]["reference"]) == 3
    for name in ("pareto.png", "pareto_accuracy_params.png", "pareto_latency_params.png"):
        assert (tmp_path / "study" / name).stat().st_size > 0, name
    assert pareto_pairs(["accuracy", "latency", "params"]) == [
        ("accuracy", "latency"), ("accuracy", "params"), ("latency", "params")
    ]  # fmt: skip


class FakeRun:
    """What log_study uses of a W&B run, online or offline."""

    def __init__(self, mode: str) -> None:
        self.settings = SimpleNamespace(mode=mode)
        online = mode == "online"
        self.url = "https://wandb.example/team/cnn-nas/runs/abc123" if online else None
        self.project_url = "https://wandb.example/team/cnn-nas" if online else None
        self.group = "tiny"
        self.summary: dict = {}
        self.logged: list[dict] = []
        self.artifacts: list = []

    def log(self, payload: dict) -> None:
        self.logged.append(payload)

    def log_artifact(self, artifact) -> None:
        self.artifacts.append(artifact)

    def finish(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code


def test_an_online_summary_run_prints_its_urls_and_logs_references_and_hypervolume(
    search_cfg, tmp_path, fake_fit, monkeypatch
):
    fake_fit(by_width)
    run = FakeRun("online")
    monkeypatch.setattr(summary_run, "init_run", lambda *a, **k: run)
    result, lines, study = search_with_a_reference(search_cfg, tmp_path)
    assert [line for line in lines if line.startswith("W&B ")] == [
        "W&B run: https://wandb.example/team/cnn-nas/runs/abc123",
        "W&B group: https://wandb.example/team/cnn-nas/groups/tiny",
    ]
    assert run.exit_code == 0
    payload = run.logged[-1]  # the second run's report (the first ran before the reference was enqueued)
    trials = payload["trials"]
    assert {"reference", "on_front", "hypervolume", "latency_ms_8px", "macs_8px"} <= set(trials.columns)
    refs = [row[trials.columns.index("reference")] for row in trials.data]
    assert refs.count("resnet20") == 1
    assert "hypervolume/history" in payload and "hypervolume/plot" in payload and "pareto/plot" in payload
    artifact = run.artifacts[-1]
    entries = {e["trial"]: e for e in artifact.metadata["front"]}
    ref_trial = next(t.number for t in study.trials if t.user_attrs.get("reference"))
    assert entries[ref_trial]["reference"] == "resnet20" and "latency_ms_8px" in entries[ref_trial]


def test_the_links_of_an_online_run_only():
    assert summary_run.links(FakeRun("offline")) == []  # no page yet: the report prints `wandb sync` instead
    assert summary_run.links(SimpleNamespace()) == []  # no settings: treated as disabled
    online = FakeRun("online")
    online.group = "resnet_like fashion"  # the group's name is quoted into its URL
    assert summary_run.links(online)[1].endswith("/groups/resnet_like%20fashion")


# ------------------------------------------------------------------------------------------- figures


def recs_with(latencies, accuracies, reference_at=None):
    return [
        {"trial": i, "state": "COMPLETE", "accuracy": a, "latency": lat, "n_params": 1000, "macs": 10_000,
         "reference": "resnet20" if i == reference_at else None}
        for i, (lat, a) in enumerate(zip(latencies, accuracies, strict=True))
    ]  # fmt: skip


def test_the_pareto_plots_title_fits_inside_the_figure():
    recs = recs_with([0.1, 0.2, 0.3], [0.7, 0.8, 0.9])
    # the quick start's title, one line: cut at both edges at 9 pt on a 7.5 inch figure before it was wrapped
    title = (
        "resnet_like-fashion_mnist (resnet_like): validation accuracy vs latency (ms, 28 px), 1 epoch(s), "
        "fraction 1.0, trained at 14 px (rho +0.96 vs reference)"
    )
    fig = pareto_figure(recs, recs, [], "accuracy", "latency", title=title, unit="ms")
    box = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert fig.axes[0].title.get_text().replace("\n", " ") == title  # wrapped, nothing lost


@pytest.mark.parametrize(
    "latencies, baseline_ms, scale",
    [
        ([0.04, 0.1, 0.5], 5.2, "log"),  # the case: trials at 0.04-0.5 ms beside a 5.2 ms reference
        ([0.04, 0.1, 0.5], None, "log"),  # trials alone spanning 12.5x
        ([0.1, 0.2, 0.5], None, "linear"),  # 5x: linear reads better
    ],
)
def test_the_latency_axis_is_logarithmic_when_the_plotted_range_spans_more_than_10x(
    latencies, baseline_ms, scale
):
    recs = recs_with(latencies, [0.7, 0.8, 0.9])
    baselines = (
        [] if baseline_ms is None else [{"name": "resnet56", "accuracy": 0.92, "latency": baseline_ms}]
    )
    fig = pareto_figure(recs, recs, baselines, "accuracy", "latency", title="t", unit="ms")
    assert fig.axes[0].get_xscale() == scale and fig.axes[0].get_yscale() == "linear"


def test_trials_from_reference_networks_have_their_own_marker_and_label():
    recs = recs_with([0.1, 0.2, 0.3], [0.7, 0.8, 0.9], reference_at=1)
    fig = pareto_figure(recs, recs, [], "accuracy", "latency", title="t", unit="ms", px={"latency": 28})
    ax = fig.axes[0]
    assert "trials from reference networks (1)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "resnet20" in [t.get_text() for t in ax.texts]
    assert ax.get_xlabel() == "latency (ms, 28 px)"


def test_the_printed_table_names_sizes_and_references():
    names = sized_names("ms", latency_px=28, macs_px=14)
    assert names == {"latency": "latency_ms_28px", "macs": "macs_14px"}
    text = table(recs_with([0.305], [0.9217], reference_at=0), names=names)
    head, _, row = text.splitlines()
    assert "latency_ms_28px" in head and "macs_14px (M)" in head
    assert row.startswith("trial 0 (resnet20)") and "0.305" in row and "0.010" in row
    assert sized_names("MACs", latency_px=8, macs_px=8)["latency"] == "latency_macs_8px"
    assert copy.deepcopy(names) == names


def test_a_trials_own_w_and_b_run_names_the_reference_network_it_came_from():
    from nas.tracking import trial_summary

    attrs = {"latency": 0.305, "latency_unit": "ms", "device_key": "k"}
    assert trial_summary(3, {"depth": 3}, {**attrs, "reference": "resnet20"})["reference"] == "resnet20"
    assert "reference" not in trial_summary(4, {"depth": 2}, attrs)
