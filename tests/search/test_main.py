"""The command line: `python -m nas.search` without a space lists the spaces; Hydra's own flags reach Hydra;
bad input is one message, no traceback, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.search.__main__ import main

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
        (["--help"], "== Configuration groups =="),
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
