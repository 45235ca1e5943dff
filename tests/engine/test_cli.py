"""Every command fails on bad input the same way (nas.cli): one message, no traceback, exit status 2.

The mechanism in-process, then each entry point run as a user runs it (a subprocess) on input a user can
get wrong: ranges, missing and damaged data files, empty folders, unknown names. The subprocesses start
together (each spends ~10 s importing torch and Lightning) and are checked one test each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import USAGE_STATUS, user_errors
from nas.data.errors import CorruptDataError, DataNotFoundError
from tests.data.datafixtures import write_idx
from tests.scale.conftest import fork_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ValueError("data.fraction=0.0 is out of range"), "data.fraction=0.0 is out of range"),
        (KeyError("unknown block 'x'; valid blocks: conv"), "unknown block 'x'; valid blocks: conv"),
        (DataNotFoundError("no images in /d"), "no images in /d"),
        (CorruptDataError("/d/f: truncated"), "/d/f: truncated"),
        (
            FileNotFoundError(2, "No such file or directory", "/d/x"),
            "[Errno 2] No such file or directory: '/d/x'",
        ),
    ],
)
def test_a_user_error_becomes_one_line_and_status_2(error, message, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @user_errors("prog")
    def main():
        raise error

    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == USAGE_STATUS == 2
    err = capsys.readouterr().err
    assert err.startswith(f"prog: error: {message}") and err.count("error:") == 1


def test_a_bug_keeps_its_traceback_and_hydra_full_error_keeps_every_traceback(monkeypatch):
    @user_errors("prog")
    def bug():
        raise RuntimeError("a bug")

    @user_errors("prog")
    def bad_input():
        raise ValueError("bad")

    with pytest.raises(RuntimeError, match="a bug"):
        bug()
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ValueError, match="bad"):
        bad_input()


def test_the_wrapped_function_keeps_its_identity_for_hydra():
    """hydra.main unwraps __wrapped__ to find the calling file, hence conf/ relative to it."""

    def main():
        """Doc."""

    wrapped = user_errors("prog")(main)
    assert wrapped.__wrapped__ is main and wrapped.__name__ == "main" and wrapped.__doc__ == "Doc."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """An empty folder and a (Fashion-)MNIST folder whose training images are truncated."""
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "empty").mkdir()
    write_idx(tmp / "damaged", gz=False, n_train=20, n_test=10)
    images = tmp / "damaged" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100])
    return tmp


def one_message(status, text, message):
    assert status != 0, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 1 and re.search(message, text), text


# In-process (as `python -m experiments.train ...`): the data a user can get wrong.
TRAIN_CASES = [
    (["data=imagefolder", "data.root={tmp}/nowhere", "data.num_classes=2"], r"nowhere"),
    (["data=mnist", "data.root={tmp}/damaged", "data.download=false"], r"truncated"),
    (["data=imagefolder", "data.root={tmp}/empty", "data.num_classes=2"], r"no images in .*empty"),
    (["data=synthetic", "model.stages.0.block=nope"], r"unknown block 'nope'"),
]


@pytest.mark.parametrize(
    ("argv", "message"), TRAIN_CASES, ids=["missing folder", "damaged file", "empty folder", "unknown block"]
)
def test_train_refuses_bad_data_and_names_with_one_message(data_dir, argv, message, monkeypatch, capsys):
    from experiments import train

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")  # as `python -m experiments.train`
    monkeypatch.setenv("CNN_NAS_CACHE", str(data_dir / "data-cache"))
    args = [a.format(tmp=data_dir) for a in argv]
    monkeypatch.setattr(sys, "argv", ["train", *args, "logger=none", f"hydra.run.dir={data_dir}/run"])
    with pytest.raises(SystemExit) as exit_:
        train.main()
    out = capsys.readouterr()
    one_message(exit_.value.code, out.out + out.err, message)
    assert exit_.value.code == 2


# Each entry point as a user runs it: (id, module and arguments, what the one message must say).
CASES = [
    ("train: range", ["experiments.train", "data.fraction=0"], r"data.fraction=0.0 is out of range"),
    (
        "ablate: damaged data",
        [
            "experiments.ablate",
            "pooling=avg",
            "data=mnist",
            "data.root={tmp}/damaged",
            "data.download=false",
            "seeds=2",
            "epochs=1",
            "cache_dir={tmp}/cache",
        ],
        r"truncated",
    ),  # fmt: skip
    ("summary: unknown block", ["experiments.summary", "model.stages.0.block=nope"], r"unknown block 'nope'"),
    ("profile: unknown model", ["experiments.profile", "--models", "nope", "--no-log"], r"unknown models"),
    ("bench: unknown model", ["experiments.bench", "throughput", "--model", "nope"], r"unknown model 'nope'"),
    ("export: unknown model", ["experiments.export", "model=nope"], r"export: error: unknown model 'nope'"),
    (
        "reproduce: unknown suite",
        ["experiments.reproduce", "--suite", "nope", "--page", "{tmp}/r.md"],
        r"nope",
    ),
]


@pytest.fixture(scope="module")
def finished(data_dir):
    """{case id: (stdout + stderr, exit status)} of every case, run side by side: the first as typed, the others
    forked from this process (`python -m`'s code path without paying the imports again)."""
    env = {"WANDB_MODE": "offline", "CNN_NAS_CACHE": str(data_dir / "data-cache"), "HYDRA_FULL_ERROR": None}
    procs = {}
    for i, (case, argv, _) in enumerate(CASES):
        args = [a.format(tmp=data_dir) for a in argv]
        if argv[0] in ("experiments.train", "experiments.ablate"):
            args += ["logger=none", f"hydra.run.dir={data_dir}/out{i}"]
        if i == 0:
            typed = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
            typed.update({k: v for k, v in env.items() if v is not None})
            typed.pop("HYDRA_FULL_ERROR", None)
            procs[case] = subprocess.Popen(
                [sys.executable, "-m", *args], cwd=data_dir, env=typed, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        else:
            log = data_dir / f"case{i}.log"
            procs[case] = (fork_cli(args[1:], log, data_dir, module=args[0], env=env), log)
    out = {}
    for case, proc in procs.items():
        if isinstance(proc, tuple):
            proc[0].join(600)
            out[case] = (proc[1].read_text(), proc[0].exitcode)
        else:
            out[case] = (proc.communicate(timeout=600)[0], proc.returncode)
    return out


@pytest.mark.parametrize(("case", "argv", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_command_refuses_bad_input_with_one_message_and_no_traceback(finished, case, argv, message):
    text, status = finished[case]
    one_message(status, text, message)
