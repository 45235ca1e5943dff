"""The command line: `python -m nas.search` without a space lists the spaces; `space=` and `+space=` both pick
one; Hydra's own flags reach Hydra; bad input is one message, no traceback, exit status 2, and leaves an
existing study's folder as it was; output to a log file is a line per trial, not a redrawn bar."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nas.search.__main__ import _normalise_line, main
from tests.scale.conftest import fork_cli
from tests.search.conftest import OVERRIDES, TINY_SPACE

REQUIRED = {"resnet_like", "resnext_like", "inception_like", "separable_like", "densenet_like", "regnet"}
ROOT = Path(__file__).resolve().parents[2]


def search(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`python -m nas.search ARGS` in an empty folder, with this checkout's packages."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "nas.search", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_search_without_a_space_lists_the_spaces(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--version"], "Hydra 1.3"),
        (["-sc", "install=bash"], "hydra_bash_completion"),
        (["--hydra-help"], "Hydra (1.3"),
        (["--help"], "== Config groups (group=option) =="),
        (["-cn", "no_such_config"], "Cannot find primary config 'no_such_config'"),
        (["--experimental-rerun", "no_such_file.pickle"], "no_such_file.pickle does not exist"),
    ],
)
def test_hydras_own_flags_reach_hydra(tmp_path, args, expect):
    run = search(tmp_path, *args)
    assert expect in run.stdout + run.stderr
    assert "spaces (conf/space/*.yaml)" not in run.stdout  # not answered by the space listing


def test_another_config_without_a_space_still_lists_the_spaces(tmp_path):
    run = search(tmp_path, "-cn", "search")
    assert run.returncode == 0 and all(name in run.stdout for name in REQUIRED)


def test_bad_search_input_is_one_message_and_exit_status_2(tmp_path):
    run = search(tmp_path, "+space=resnet_like", "n_trials=0")
    assert run.returncode == 2
    assert run.stderr.strip() == "search: error: n_trials must be an integer >= 1, got 0"
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("form", ["space=resnet_like", "+space=resnet_like"])
def test_space_is_picked_with_or_without_plus(tmp_path, form):
    # `space=` once failed ("use +space=") while `benchmark=nb201` worked without `+`
    run = search(tmp_path, form, "--cfg", "job", "-p", "space")
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(run.stdout)["name"] == "resnet_like"


def test_a_storage_url_typed_as_the_storage_is_the_storage_url(tmp_path):
    run = search(tmp_path, "space=resnet_like", "storage=sqlite:///x.db", "--cfg", "job", "-p", "storage")
    assert run.returncode == 0, run.stderr
    stored = yaml.safe_load(run.stdout)
    assert (stored["name"], stored["url"]) == ("sqlite", "sqlite:///x.db")


def test_a_completed_line_is_read_as_the_command_reads_it():
    # shell completion composes the line typed so far: `+space=` there too, the new word's space kept
    assert _normalise_line("nas-search +space=resnet_like fid") == "nas-search space=resnet_like fid"
    assert _normalise_line("nas-search +space=x ") == "nas-search space=x "
    assert _normalise_line("") == ""


def tiny_search_args(tmp_path: Path) -> list[str]:
    """The tiny 2-trial search of tests/search/conftest.py as command-line overrides, its space in a config
    folder on Hydra's search path, the progress bar left at its default (on)."""
    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    return [
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "space=tiny", "study_name=tiny",
        f"latency.cache={tmp_path / 'latency.sqlite'}", *(o for o in OVERRIDES if o != "progress=false"),
    ]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_search_logged_to_a_file_prints_counted_trial_lines_and_a_refused_run_leaves_the_study_alone(
    tmp_path, monkeypatch
):
    args = tiny_search_args(tmp_path)
    run = search(tmp_path, *args)  # stdout and stderr are pipes, as under nohup or SLURM
    assert run.returncode == 0, run.stderr
    # one line per trial with its count, and no progress bar: each redraw of a bar stays in a log file
    assert re.findall(r"^\[(\d)/2\] trial", run.stdout, re.M) == ["1", "2"]
    assert not re.search(r"\r|\d+%\||trial/s|s/trial", run.stdout + run.stderr)

    study = tmp_path / "outputs" / "search" / "tiny"
    record = yaml.safe_load((study / ".hydra" / "overrides.yaml").read_text())
    assert "space=tiny" in record and "n_trials=2" in record
    before = snapshot(study)
    # refused by the plan (a bad value), then by the study (another fidelity than the one it was created with)
    # (forked from this process, the command's code path without its imports again; output to a log)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    for i, (bad, message) in enumerate(
        (("n_trials=abc", "n_trials must be an integer"), ("fidelity.epochs=2", "epochs"))
    ):
        log = tmp_path / f"refused-{i}.log"
        refused = fork_cli([*args, bad], log, cwd=tmp_path)
        refused.join(300)
        text = log.read_text()
        assert refused.exitcode == 2 and message in text and "Traceback" not in text, text
        assert snapshot(study) == before  # .hydra/ still records the command that made the study


def test_the_listings_example_searches_at_a_calibrated_fidelity():
    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR, to_plain
    from nas.search.__main__ import space_listing
    from nas.search.overrides import normalise
    from nas.search.plan import SearchPlan

    example = next(line for line in space_listing().splitlines() if line.startswith("example: "))
    words = example.split("   ")[0].split()
    assert words[:2] == ["example:", "nas-search"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(compose("search", overrides=normalise(words[2:])))
    calibration = SearchPlan.from_cfg(cfg).calibration()
    assert calibration["calibrated"], calibration["text"]
