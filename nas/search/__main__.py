"""`nas-search space=<name> [options]` (or `python -m nas.search`): multi-objective architecture search
driven by Optuna.

Creates or resumes the study (same `study_name` -> resume), runs trials until the study has `n_trials`
counted trials (a re-run continues an interrupted search), then reports: the Pareto front as a table,
CSV and JSON, a Pareto plot with the family's reference networks as baselines, Optuna's HTML figures, the
front exported as model configs, and optionally the top-k retrained at full fidelity. Without `space=`
it lists the spaces. See conf/search.yaml for every option; `+space=` and `storage=<URL>` are read as
nas.search.overrides says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nas.cli import fail, user_errors
from nas.config import CONFIG_PATH, to_plain
from nas.search.overrides import normalise
from nas.space import list_spaces
from nas.tracking import redact_hydra_outputs

# Where the run records its command line: Hydra's usual .hydra/, written by `record_command` once the run has
# passed its checks (conf/search.yaml sets hydra.output_subdir to null so that Hydra does not write it first).
COMMAND_DIR = ".hydra"


def space_listing() -> str:
    """The text `python -m nas.search` prints without a space."""
    lines = [
        "usage: nas-search space=<name> [option=value ...]   (or python -m nas.search; options: --help)",
        "",
        "spaces (conf/space/*.yaml):",
    ]
    spaces = list_spaces()
    width = max((len(n) for n, _ in spaces), default=0)
    lines += [f"  {name:<{width}}  {desc}" for name, desc in spaces]
    lines += [
        "",
        "example: nas-search space=resnet_like n_trials=10   (the space's calibrated fidelity)",
    ]
    return "\n".join(lines)


def _wants_hydra(argv: list[str]) -> bool:
    """Whether Hydra must see the command line: it picks a space, or passes any flag (`--help`, `-cn`, `-sc`,
    `--version`, `-m`, `--experimental-rerun`, ...: Hydra's own, all of them). Only plain `key=value`
    overrides without a space are answered here, with the space listing, without starting Hydra."""
    return any(a.startswith("-") or a.lstrip("+~").startswith("space=") for a in argv)


def study_dir(cfg: DictConfig, hc: Any) -> Path:
    """The study's folder: a single run's Hydra run folder (hydra.run.dir defaults to `study_dir`); under -m,
    `study_dir` itself (relative to where the command was started), not the job's sweep folder, so every job
    of a sweep, on any launcher, and the follow-up run without -m share one study."""
    if hc.mode.name != "MULTIRUN":
        return Path(hc.runtime.output_dir)
    path = Path(str(cfg.study_dir))
    return path if path.is_absolute() else Path(hc.runtime.cwd) / path


def record_command(cfg: DictConfig, hc: Any) -> None:
    """Write what Hydra saves of a run (.hydra/config.yaml, hydra.yaml, overrides.yaml) into the run folder, a
    password in storage.url=... masked. Called when the run starts, not before its checks: a refused command
    (`n_trials=abc`, another study's space) must not replace the record of the command that made the study."""
    out = Path(hc.runtime.output_dir) / COMMAND_DIR
    out.mkdir(parents=True, exist_ok=True)
    saved = {
        "config.yaml": cfg,
        "hydra.yaml": HydraConfig.instance().cfg,
        "overrides.yaml": hc.overrides.task,
    }
    for name, node in saved.items():
        (out / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")
    redact_hydra_outputs(hc.runtime.output_dir)


def _main_hydra() -> None:
    @hydra.main(config_path=CONFIG_PATH, config_name="search", version_base="1.3")
    @user_errors("search")  # below hydra.main: a bad input is one message and exit status 2, no traceback
    def main(cfg: DictConfig) -> None:
        hc = HydraConfig.get()
        if hc.mode.name == "MULTIRUN":  # a password in storage.url=... must not stay in the sweep's record
            redact_hydra_outputs(hc.runtime.output_dir, hc.sweep.dir)
        if cfg.get("space") is None:
            print(space_listing())
            return
        # The search stack (torch, Lightning, Optuna) takes seconds to import: not paid for the listing above.
        from nas.search.loop import run_search

        plain = to_plain(cfg)
        if hc.mode.name == "MULTIRUN" and plain.get("workers") == "auto":
            plain["workers"] = 1  # a sweep's jobs are the workers (worker=range(K)): each runs one process
        result = run_search(plain, study_dir=study_dir(cfg, hc), on_start=lambda: record_command(cfg, hc))
        if result.interrupted:
            sys.exit(130)
        if result.failed:
            print(f"search: error: {result.stopped}", file=sys.stderr)
            sys.exit(1)

    main()


def main(argv: list[str] | None = None) -> int:
    """Entry point (`nas-search`, `python -m nas.search`): list the spaces, or hand the command line to Hydra."""
    try:
        argv = normalise(sys.argv[1:] if argv is None else argv)
    except ValueError as e:  # before Hydra: one message, exit status 2, as the command's own refusals
        fail("search", str(e))
    if not _wants_hydra(argv):
        print(space_listing())
        return 0
    sys.argv[1:] = argv  # Hydra reads sys.argv
    if "COMP_LINE" in os.environ:  # shell completion (-sc query=bash) reads the line being typed
        os.environ["COMP_LINE"] = _normalise_line(os.environ["COMP_LINE"])
    _main_hydra()
    return 0


def _normalise_line(line: str) -> str:
    """A command line being completed, its words normalised (the trailing space that starts a new word kept)."""
    words = line.split()
    if not words:
        return line
    tail = line[len(line.rstrip()) :]
    try:
        return " ".join([words[0], *normalise(words[1:])]) + tail
    except ValueError:  # a line the command will refuse still completes as typed
        return line


if __name__ == "__main__":
    sys.exit(main())
