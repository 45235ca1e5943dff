"""The user commands as their users know them: console scripts (`nas-search`, `nas-train`, ...), Hydra's shell
completion working for them, and the search's and training's own `--help` pages (what the command does, its
main options with true defaults, the config groups that matter and not the ablation axes)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from nas.config import CONF_DIR, to_plain

ROOT = Path(__file__).resolve().parents[1]
# pyproject.toml's [project.scripts] table (tomllib is Python 3.11+; the project supports 3.10)
SCRIPTS = dict(re.findall(r'^(nas-[\w-]+) = "([\w.:]+)"$',
                          (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0], re.M))  # fmt: skip
BIN = Path(sysconfig.get_path("scripts"))
REINSTALL = "console scripts not installed as pyproject.toml declares them: pip install -e . --no-deps"


def test_every_user_command_has_a_console_script():
    assert set(SCRIPTS) == {f"nas-{name}" for name in
                            ("search", "train", "ablate", "summary", "export", "profile", "reproduce", "calibrate",
                             "surrogate")}  # fmt: skip
    for name, target in SCRIPTS.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    installed = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert {n: installed.get(n) for n in SCRIPTS} == SCRIPTS, REINSTALL


def run_script(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = shutil.which(argv[0], path=str(BIN))
    assert script, REINSTALL
    return subprocess.run([script, *argv[1:]], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "WANDB_MODE": "disabled", **(env or {})})  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("nas-search samp", {"sampler=", "sampler."}),
        ("nas-search space=resn", {"space=resnet_like", "space=resnext_like"}),
        # an option of the chosen space's config, after the older `+space=` too
        ("nas-search +space=resnet_like fidelity.ep", {"fidelity.epochs="}),
        ("nas-train model=vgg1", {"model=vgg11", "model=vgg13", "model=vgg16", "model=vgg19"}),
    ],
)
def test_shell_completion_installed_for_a_console_script_completes(line, expected):
    # `python -m` commands complete nothing: Hydra's bash function only completes an executable or a .py file
    assert shutil.which("bash"), "bash is needed to check the completion script"
    command = line.split()[0]
    install = run_script(command, "-sc", "install=bash")
    assert install.returncode == 0 and f"hydra_bash_completion {command}" in install.stdout, install.stderr
    script = (
        f"{install.stdout}\nline={shlex.quote(line)}\n"
        'COMP_LINE="$line"; COMP_POINT=${#line}; words=($line); COMP_CWORD=$(( ${#words[@]} - 1 ))\n'
        'hydra_bash_completion; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "WANDB_MODE": "disabled"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert set(done.stdout.split()) == expected, done.stderr


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("nas-calibrate --fid", {"--fidelities"}),
        ("nas-surrogate b", {"build"}),
        ("nas-surrogate build --arc", {"--archs"}),
        ("nas-export mod", {"model="}),
        ("nas-profile --no", {"--no-log"}),
        ("nas-reproduce --str", {"--strict"}),
    ],
)
def test_the_commands_that_are_not_hydra_apps_complete_too(line, expected, monkeypatch, capsys):
    # the same habit as nas-search's: eval "$(<command> -sc install=bash)"; the console script's function is run
    # in this process (starting each script costs seconds)
    command = line.split()[0]

    def run(*argv: str) -> tuple[int, str]:
        module, _, function = SCRIPTS[command].partition(":")
        monkeypatch.setattr("sys.argv", [command, *argv])
        try:
            status = getattr(importlib.import_module(module), function)(*([] if function == "cli" else [list(argv)]))
        except SystemExit as e:
            status = e.code
        out = capsys.readouterr()
        return int(status or 0), out.out + out.err

    status, install = run("-sc", "install=bash")
    assert status == 0, install
    func = re.search(rf"complete .*-F (\S+) {command}$", install, re.M).group(1)
    script = (
        f"{install}\nline={shlex.quote(line)}\n"
        "COMP_WORDS=($line); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        f'{func}; printf "%s\\n" "${{COMPREPLY[@]}}"\n'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert set(done.stdout.split()) == expected, done.stderr
    status, removed = run("-sc", "uninstall=bash")
    assert status == 0 and f"complete -r {command}" in removed
    status, refused = run("-sc", "install=zsh")
    assert status == 2 and "use -sc install=bash" in refused and "Traceback" not in refused


def help_page(command: str) -> str:
    run = run_script(command, "--help")
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("command", ["nas-calibrate", "nas-surrogate"])
def test_the_engines_run_file_commands_answer_help(command):
    assert help_page(command).startswith("usage: ")


def main_options(page: str) -> dict[str, str]:
    """The `key=default` pairs of a help page's "Main options" section."""
    section = page.split("== Main options (default) ==\n", 1)[1].split("\n\n", 1)[0]
    return dict(line.split()[0].split("=", 1) for line in section.splitlines())


@pytest.mark.parametrize(
    ("command", "config", "groups"),
    [
        (
            "nas-search",
            "search",
            "space data sampler pruner scheduler storage benchmark latency logger optim trainer",
        ),
        ("nas-train", "train", "model data optim trainer logger callbacks"),
    ],
)
def test_search_and_train_have_their_own_help_page(command, config, groups):
    page = help_page(command)
    assert page.startswith(f"{command} ") and "python -m " in page.splitlines()[0]
    listed = page.split("== Config groups (group=option) ==\n", 1)[1]
    assert [line.split(":")[0].strip() for line in listed.split("\n\n")[0].splitlines()] == groups.split()
    for group in groups.split():  # each group with its options
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        assert f"  {group}:".ljust(14) + ", ".join(options) in page
    assert "pooling:" not in page and "activation:" not in page  # the ablation axes are ablate's
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_plain(compose(config))
    for key, default in main_options(page).items():  # the page's defaults are the config's
        node = cfg
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{command} --help names {key}, not in the config"
            node = node[part]
        if "<" not in default:
            assert yaml.safe_load(default) == node, f"{command} --help: {key}={default}, config: {node}"
