"""`python -m nas.search +space=<name> [options]`: multi-objective architecture search driven by Optuna.

Creates or resumes the study (same `study_name` -> resume), runs trials until the study has `n_trials`
counted trials (a re-run continues an interrupted search), then reports: the Pareto front as a table,
CSV and JSON, a Pareto plot with the family's reference networks as baselines, Optuna's HTML figures, the
front exported as model configs, and optionally the top-k retrained at full fidelity. Without `+space=`
it lists the spaces. See conf/search.yaml for every option.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nas.cli import user_errors
from nas.config import CONFIG_PATH, to_plain
from nas.space import list_spaces
from nas.tracking import redact_hydra_outputs


def space_listing() -> str:
    """The text `python -m nas.search` prints without a space."""
    lines = [
        "usage: python -m nas.search +space=<name> [option=value ...]   (options: conf/search.yaml)",
        "",
        "spaces (conf/space/*.yaml):",
    ]
    spaces = list_spaces()
    width = max((len(n) for n, _ in spaces), default=0)
    lines += [f"  {name:<{width}}  {desc}" for name, desc in spaces]
    lines += [
        "",
        "example: python -m nas.search +space=resnet_like n_trials=20 fidelity.epochs=1 fidelity.fraction=0.1",
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


def _main_hydra() -> None:
    @hydra.main(config_path=CONFIG_PATH, config_name="search", version_base="1.3")
    @user_errors("search")  # below hydra.main: a bad input is one message and exit status 2, no traceback
    def main(cfg: DictConfig) -> None:
        hc = HydraConfig.get()  # a password in storage.url=... must not stay in .hydra/*.yaml
        redact_hydra_outputs(hc.runtime.output_dir, hc.sweep.dir if hc.mode.name == "MULTIRUN" else None)
        if cfg.get("space") is None:
            print(space_listing())
            return
        # The search stack (torch, Lightning, Optuna) takes seconds to import: not paid for the listing above.
        from nas.search.loop import run_search

        result = run_search(to_plain(cfg), study_dir=study_dir(cfg, hc))
        if result.interrupted:
            sys.exit(130)
        if result.failed:
            print(f"search: error: {result.stopped}", file=sys.stderr)
            sys.exit(1)

    main()


def main(argv: list[str] | None = None) -> int:
    """Entry point: list the spaces, or hand the command line to Hydra."""
    argv = sys.argv[1:] if argv is None else argv
    if not _wants_hydra(argv):
        print(space_listing())
        return 0
    _main_hydra()
    return 0


if __name__ == "__main__":
    sys.exit(main())
