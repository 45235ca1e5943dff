"""The Python API beside the command line: the same overrides, composed by Hydra's compose API, run in-process.

    from nas import api
    run = api.train(["model=resnet18", "data=synthetic", "logger=none"])      # nas.fit.RunResult
    study = api.search(["space=resnet_like", "n_trials=5"])                   # nas.search.loop.SearchResult

`experiments.api.ablate([...])` is the ablation's (the experiments layer builds on this one). Each helper
takes exactly what `python -m <command>` takes after the command (no `-m`: call it once per job), writes
the same files in the same folders (relative paths to the working directory, as the command's), and returns
the result record instead of printing a summary. Bad input raises ValueError / KeyError with the message the
command prints. Inside a running Hydra app (or an enclosing `compose_config`) Hydra's search path is reused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.config import CONF_DIR, to_plain


@contextmanager
def _hydra() -> Iterator[None]:
    """Hydra initialised on the packaged configs for the block, unless something already initialised it."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """(the resolved config as plain data, the command's run folder: hydra.run.dir) of conf/<config_name>.yaml
    with `overrides`."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    overrides = [str(o) for o in overrides]
    flags = [o for o in overrides if o.startswith("-")]
    if flags:
        raise ValueError(
            f"{' '.join(flags)}: the Python API takes config overrides only; for a sweep (-m) call it once per job"
        )
    with _hydra():
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` interpolations resolve as in the command
    run_dir = str(OmegaConf.select(cfg, "hydra.run.dir"))  # only it: the sweep keys need a job number
    with open_dict(cfg):
        del cfg["hydra"]
    return to_plain(cfg), run_dir


def train(overrides: Sequence[str] = (), *, output_dir: str | Path | None = None) -> Any:
    """`python -m experiments.train <overrides>`: fit, validate and test one configuration; its RunResult.

    The run folder is `output_dir`, else the command's (hydra.run.dir: outputs/train/<time>_<name>)."""
    from nas.fit import fit

    cfg, run_dir = compose_config("train", overrides)
    cfg["output_dir"] = str(output_dir or run_dir)
    return fit(cfg)


def search(overrides: Sequence[str] = (), *, study_dir: str | Path | None = None) -> Any:
    """`nas-search space=<name> <overrides>`: run or resume the search; its SearchResult. The overrides are read
    as the command reads them (`+space=<name>` and `storage=<URL>` too: nas.search.overrides).

    The study folder is `study_dir`, else the command's (hydra.run.dir, by default the config's study_dir:
    outputs/search/<study_name>)."""
    from nas.search.loop import run_search
    from nas.search.overrides import normalise
    from nas.space import list_spaces

    cfg, run_dir = compose_config("search", normalise([str(o) for o in overrides]))
    if cfg.get("space") is None:
        names = ", ".join(name for name, _ in list_spaces())
        raise ValueError(f"a search needs a space: add space=<name> to the overrides; spaces: {names}")
    return run_search(cfg, study_dir=Path(study_dir or run_dir).absolute())  # as the command
