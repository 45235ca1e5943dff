"""The one place Hydra configs become plain containers and external objects (the Trainer) are built."""

from __future__ import annotations

import copy
import importlib.resources
import os
import warnings
from pathlib import Path
from typing import Any

# The configs are the `conf` package's data, installed beside the `nas` package (in the wheel, or this
# checkout's conf/). They are found by that path, never by importing `conf`: a user's own `conf/` folder in the
# working directory (common in Hydra projects) would shadow the import (`python -m` puts the working directory
# first on sys.path). Hydra apps read them as CONFIG_PATH (an absolute path), code that lists a config group's
# files reads CONF_DIR.
CONF_PACKAGE = "conf"


def conf_dir() -> Path:
    """The folder of the platform's `conf` package (every config group is a sub-folder of it)."""
    beside = Path(__file__).resolve().parents[1] / CONF_PACKAGE
    if (beside / "train.yaml").is_file():
        return beside
    try:  # installed some other way: the package wherever it is importable from
        root = Path(str(importlib.resources.files(CONF_PACKAGE)))
    except ModuleNotFoundError:
        root = None
    if root is None or not (root / "train.yaml").is_file():
        raise ModuleNotFoundError(
            f"the platform's configs (the `conf` package, expected at {beside}) are missing: install the "
            "project (pip install . or pip install -e .) or run from its checkout"
        )
    return root


CONF_DIR = conf_dir()
CONFIG_PATH = str(CONF_DIR)
# Keys of the `trainer` group that are ours rather than pytorch_lightning.Trainer's.
OWN_TRAINER_KEYS = ("channels_last", "compile")
# Trainer arguments the platform sets itself, and the option a user sets instead.
RESERVED_TRAINER_KEYS = {
    "logger": "choose the logger with logger=wandb|csv|tensorboard|none",
    "callbacks": "add a callback with callbacks=early_stopping or +callbacks.<name>._target_=<class>",
    "default_root_dir": "the run folder is Hydra's (hydra.run.dir=<folder>), or output_dir in the Python API",
}


def group_options(group: str) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml), sorted."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _register_resolvers() -> None:
    """`${nas.options:<group>}`: a group's options, comma-separated. The commands' help pages (hydra.help in
    conf/search.yaml, conf/train.yaml) list the groups that matter through it, and Hydra resolves them before any
    command code runs: so it is registered when this module (which every command imports) is imported."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("nas.options"):
        OmegaConf.register_new_resolver("nas.options", lambda group: ", ".join(group_options(str(group))))


_register_resolvers()


def to_plain(cfg: Any) -> dict[str, Any]:
    """A resolved, plain-dict copy of a Hydra/OmegaConf config (or of a dict)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return copy.deepcopy(dict(cfg))


def resolve_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    """The model spec sized for the dataset: in_channels, num_classes and input_size come from `data`."""
    spec = copy.deepcopy(cfg["model"])
    data = cfg["data"]
    spec["in_channels"] = int(data["channels"])
    spec["num_classes"] = int(data["num_classes"])
    spec["input_size"] = int(data["image_size"])
    return spec


def validate_trainer(trainer_cfg: dict[str, Any]) -> dict[str, Any]:
    """The pytorch_lightning.Trainer arguments of the `trainer` group; unknown or reserved keys -> ValueError."""
    import inspect

    import pytorch_lightning as pl

    kwargs = {k: v for k, v in trainer_cfg.items() if k not in OWN_TRAINER_KEYS}
    reserved = sorted(set(kwargs) & set(RESERVED_TRAINER_KEYS))
    if reserved:
        raise ValueError(
            "; ".join(f"trainer.{k} is set by the platform: {RESERVED_TRAINER_KEYS[k]}" for k in reserved)
        )
    valid = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    unknown = set(kwargs) - valid
    if unknown:
        raise ValueError(
            f"unknown trainer keys {sorted(unknown)}; valid keys are pytorch_lightning.Trainer's arguments "
            f"plus {', '.join(OWN_TRAINER_KEYS)}"
        )
    check_epochs(kwargs)
    return kwargs


def check_epochs(kwargs: dict[str, Any]) -> None:
    """trainer.max_epochs must train something: an integer >= 1, null (Lightning's default), or -1 (endless)
    with a positive trainer.max_steps. Lightning itself accepts 0 and trains nothing."""
    epochs, steps = kwargs.get("max_epochs"), kwargs.get("max_steps")
    is_int = isinstance(epochs, int) and not isinstance(epochs, bool)
    by_steps = epochs == -1 and isinstance(steps, int) and steps > 0
    if epochs is not None and not (is_int and (epochs >= 1 or by_steps)):
        raise ValueError(
            f"trainer.max_epochs={epochs!r} trains nothing: it must be an integer >= 1 "
            "(or -1 together with a positive trainer.max_steps, to stop by steps)"
        )


def make_trainer(
    trainer_cfg: dict[str, Any], *, logger: Any, callbacks: list[Any], out: Path, **overrides: Any
):
    """A pytorch_lightning.Trainer from the `trainer` config group (unknown keys -> a clear error).

    Lightning's progress bar is drawn on a terminal only, redrawn every few steps (nas.progress.terminal_bar)
    unless a callback brings its own: with stdout a file or a pipe (nohup, SLURM) it is replaced by one line per
    epoch (nas.progress)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ProgressBar

    from nas.progress import EpochLines, is_terminal, terminal_bar  # imports Lightning: kept beside its use

    kwargs = {**validate_trainer(trainer_cfg), **overrides}
    quiet_srun_hint()
    if kwargs.get("enable_progress_bar", True):
        if not is_terminal():
            kwargs["enable_progress_bar"] = False
            callbacks = [*callbacks, EpochLines()]
        elif not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks = [*callbacks, terminal_bar()]
    return pl.Trainer(
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=str(out),
        **kwargs,
    )


SRUN_HINT = r"\s*The `srun` command is available on your system but is not used"


def quiet_srun_hint() -> None:
    """Silence Lightning's `srun` hint outside a SLURM allocation. Lightning warns at every Trainer and every fit
    when `srun` is on PATH but the process is not an srun task: on a login node, or any machine with SLURM
    installed, that is every run (twice a trial in a search), and it says nothing about the run. Inside an
    allocation (SLURM_JOB_ID set) the hint stays: there, a missing `srun` may be the user's mistake."""
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message=SRUN_HINT)


def make_callbacks(callbacks_cfg: dict[str, Any] | None) -> list[Any]:
    """The `callbacks` group's entries as Lightning callbacks: `<name>: {_target_: <class>, <arguments>}`, in
    order; a null entry is skipped (`callbacks.<name>=null` drops one). A bad entry -> ValueError naming it."""
    import pytorch_lightning as pl
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    out: list[Any] = []
    for name, entry in (callbacks_cfg or {}).items():
        if entry is None:
            continue
        if not isinstance(entry, dict) or "_target_" not in entry:
            raise ValueError(
                f"callbacks.{name} needs a _target_ naming a Lightning callback class, e.g. "
                f"+callbacks.{name}._target_=pytorch_lightning.callbacks.EarlyStopping; got {entry!r}"
            )
        try:
            callback = instantiate(entry)
        except InstantiationException as e:
            raise ValueError(f"callbacks.{name} could not be built: {str(e).strip().splitlines()[-1]}") from e
        if not isinstance(callback, pl.Callback):
            raise ValueError(
                f"callbacks.{name}: {entry['_target_']} is a {type(callback).__name__}, not a "
                "pytorch_lightning.Callback"
            )
        out.append(callback)
    return out
