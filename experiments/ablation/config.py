"""Axes, overrides and run configs: what the baseline and a variant are, and the key a finished run is cached by.

The baseline is `conf/ablate.yaml` composed with the *shared* command-line overrides (ablation options,
data, trainer, logger, latency); the variant is the same composition plus the remaining overrides, so the two
arms differ by exactly what the user asked to change. A run is identified by the hash of its training identity
(nas.identity: everything in its resolved config that decides the result, plus the device it trains on) and
its seed.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nas.config import CONF_DIR, to_plain
from nas.identity import identity_key, training_identity

CONFIG_NAME = "ablate"
# The axes: Hydra config groups whose default option is the baseline's choice.
AXES = (
    "pooling",
    "activation",
    "norm",
    "lr_policy",
    "batch",
    "colorspace",
    "classifier",
    "fraction",
    "label_noise",
    "input",
    "width",
    "bias",
    "dropout",
    "init",
)
# Axes the run config reads directly (not through interpolations into data / model / optim).
RUN_AXES = ("init",)
# Top-level ablation options: they configure the ablation itself and apply to both arms.
OPTIONS = (
    "seeds",
    "epochs",
    "subset",
    "metric",
    "confidence",
    "cache_dir",
    "name",
    "checkpoint",
    "test",
)
# Sections whose overrides set up both arms (a different dataset or trainer is a different baseline).
SHARED_SECTIONS = ("data", "trainer", "logger", "latency", "hydra", "suite")
# Sections a variant may change directly (e.g. optim.nesterov=true) besides the axes.
VARIANT_SECTIONS = ("model", "optim")
METRICS = ("test/acc", "val/acc", "val/acc_best")


def register_resolvers() -> None:
    """`${ablate.mul:a,b}`: a * b (the `fraction` axis scales the budget's `subset`)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ablate.mul"):
        OmegaConf.register_new_resolver("ablate.mul", lambda a, b: float(a) * float(b))


def axis_options(axis: str) -> list[str]:
    """The options of an axis (its config group's file names), or KeyError listing the valid axes."""
    if axis not in AXES and axis != "suite":
        raise KeyError(f"unknown axis {axis!r}; valid axes: {', '.join(AXES)}")
    return sorted(p.stem for p in (CONF_DIR / axis).glob("*.yaml"))


# ----------------------------------------------------------------------------------------------- overrides


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except Exception as e:  # Hydra's grammar errors are precise; keep them, drop the stack
        raise ValueError(f"cannot parse the overrides {list(overrides)}: {e}") from None


def override_root(override: str) -> str:
    """The top-level key an override changes: 'pooling' for 'pooling=avg', 'data' for '+data.x=1'."""
    (o,) = _parse([override])
    return o.key_or_group.split(".")[0].split("@")[0]


def is_shared(override: str) -> bool:
    """Whether an override sets up both arms (an option or a shared section) rather than the variant."""
    root = override_root(override)
    return root in OPTIONS or root in SHARED_SECTIONS


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(shared, variant): overrides that set up both arms, and those that make the variant."""
    shared, variant = [], []
    for o in overrides:
        (shared if is_shared(o) else variant).append(o)
    return shared, variant


def check_overrides(overrides: Sequence[str]) -> None:
    """Unknown axes / keys and unknown axis options -> ValueError naming the valid ones (no compute)."""
    for o in _parse(overrides):
        root = o.key_or_group.split(".")[0].split("@")[0]
        known = root in AXES or root in OPTIONS or root in SHARED_SECTIONS or root in VARIANT_SECTIONS
        if not known and o.type.name == "CHANGE":
            raise ValueError(
                f"unknown axis or option {root!r} in {o.input_line!r}.\n  axes: {', '.join(AXES)}\n"
                f"  options: {', '.join(OPTIONS)}\n  sections: {', '.join(SHARED_SECTIONS + VARIANT_SECTIONS)}\n"
                f"(`python -m experiments.ablate --help` lists each axis' variants)"
            )
        if (root in AXES or root == "suite") and "." not in o.key_or_group and o.type.name != "DEL":
            valid = axis_options(root)
            for value in _values(o, valid):
                if value not in valid:
                    raise ValueError(f"unknown {root} variant {value!r}; valid: {', '.join(valid)}")


def _values(o: Any, options: Sequence[str]) -> list[str]:
    """The string values of one parsed override (a sweep gives several; glob() is matched against `options`)."""
    from hydra.core.override_parser.types import Glob

    value = o.value()
    if isinstance(value, Glob):
        return value.filter(list(options))
    if o.is_sweep_override():
        return list(o.sweep_string_iterator())
    return [str(value)]


def expand_sweep(overrides: Sequence[str]) -> list[list[str]]:
    """The jobs of a `-m` sweep: the Cartesian product of every sweep override's values, as override lists."""
    choices: list[list[str]] = []
    for o in _parse(overrides):
        if o.is_sweep_override():
            root = o.key_or_group.split(".")[0]
            options = axis_options(root) if root in AXES and "." not in o.key_or_group else []
            key = o.get_key_element()
            choices.append([f"{key}={v}" for v in _values(o, options)])
        else:
            choices.append([o.input_line])
    return [list(job) for job in itertools.product(*choices)]


_REF = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def shadowed_axes(raw: dict[str, Any], shared: Sequence[str]) -> list[str]:
    """Warnings for shared overrides that replace a value an axis sets (that axis then has no effect).

    `raw` is ablate.yaml composed without overrides, interpolations unresolved; e.g. `data.batch_size=32` replaces
    `${batch.size}`, so `batch=b512` would change only the LR scaling.
    """
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{prefix}{i}.")
        else:
            flat[prefix[:-1]] = node

    walk(raw, "")
    out = []
    written = global_writes()
    for o in _parse(shared):
        key = o.key_or_group
        if "." not in key or o.type.name == "DEL":
            continue  # a group override (data=cifar10) keeps ablate.yaml's interpolations
        for path, value in flat.items():
            if (path == key or path.startswith(key + ".")) and isinstance(value, str):
                axes = sorted({ref.split(".")[0] for ref in _REF.findall(value)} & set(AXES))
                if axes:
                    out.append(
                        f"warning: {o.input_line} replaces {path} = {value}: the {', '.join(axes)} axis has no "
                        "effect on it in this ablation"
                    )
        for path, axis in written.items():
            if path == key or path.startswith(key + "."):
                out.append(f"warning: {o.input_line} overrides {path}, which options of the {axis} axis set")
    return out


def global_writes() -> dict[str, str]:
    """{config path: axis} for the keys that axis options in the global package write (e.g. data.image_size)."""
    import yaml

    out: dict[str, str] = {}
    for axis in AXES:
        for path in sorted((CONF_DIR / axis).glob("*.yaml")):
            text = path.read_text()
            if "@package _global_" not in text.split("\n", 1)[0]:
                continue
            for top, node in (yaml.safe_load(text) or {}).items():
                if top == axis or not isinstance(node, dict):
                    continue
                out.update({f"{top}.{k}": axis for k in node})
    return out


def variant_label(overrides: Sequence[str]) -> str:
    """How an arm is named in tables: its overrides, or "baseline"."""
    return " ".join(overrides) if overrides else "baseline"


# ------------------------------------------------------------------------------------------------ compose

Composer = Callable[[list[str]], Any]


@contextlib.contextmanager
def composer(config_dir: Path | None = None, config_name: str = CONFIG_NAME) -> Iterator[Composer]:
    """A function overrides -> composed ablate.yaml (DictConfig).

    Where Hydra is already initialised (inside the app, or an enclosing `composer` block) it uses that search
    path; elsewhere (tests, pre-checks) it initialises Hydra on `config_dir` (default: the packaged configs,
    nas.config.CONFIG_PATH) for the duration of the block. `config_name` may be a config that extends ablate.yaml (another baseline).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        yield _memoised(lambda overrides: compose(config_name=config_name, overrides=list(overrides)))
        return
    # The packaged configs as the command reads them (a search's exports are on its search path too)
    with initialize_config_dir(config_dir=str(config_dir or CONF_DIR), version_base="1.3"):
        yield _memoised(lambda overrides: compose(config_name=config_name, overrides=list(overrides)))


def _memoised(fn: Composer) -> Composer:
    """Compose each override list once (about 0.1 s of CPU each; a suite repeats many). Do not mutate results."""
    memo: dict[tuple[str, ...], Any] = {}

    def cached(overrides: list[str]) -> Any:
        key = tuple(overrides)
        if key not in memo:
            memo[key] = fn(list(key))
        return memo[key]

    return cached


def plain(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain data (interpolations into the spec, data and optim applied)."""
    try:
        return to_plain(cfg)
    except Exception as e:  # an interpolation that cannot resolve: name it, not the OmegaConf internals
        raise ValueError(f"the ablation config does not resolve: {e}") from None


# ------------------------------------------------------------------------------------------- run configs


def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config one fit() takes, without seed and output folder (the runner sets those per run)."""
    out = {k: copy.deepcopy(cfg[k]) for k in ("data", "model", "optim", "trainer", "logger") if k in cfg}
    out["test"] = bool(cfg.get("test", True))
    out["checkpoint"] = bool(cfg.get("checkpoint", False))
    # Not read by fit(): the runner applies it (experiments.ablation.init); it is hashed and recorded.
    out["init"] = str((cfg.get("init") or {}).get("scheme", "default"))
    return out


def config_key(run_cfg: dict[str, Any]) -> str:
    """A stable hash of what a run computes: its training identity (seed excluded: runs are keyed by seed)."""
    return identity_key(run_cfg)


def keyed_part(run_cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a run config the key hashes (stored beside cached runs for people to read)."""
    return training_identity(run_cfg)


def not_applicable(
    cfg: dict[str, Any], requires: dict[str, Any] | None = None, data: dict[str, Any] | None = None
) -> str | None:
    """Why an arm does not apply to the ablation's data (None when it does).

    Axis options (and suite rows) may carry `requires: {<data key>: value}`, checked against `data` (the
    baseline's data config; default the arm's own): e.g. the learned colour transforms need `channels: 3`.
    """
    needs: list[tuple[str, str, Any]] = []
    for axis in AXES:
        node = cfg.get(axis)
        if isinstance(node, dict) and node.get("requires"):
            needs += [(axis, k, v) for k, v in node["requires"].items()]
    needs += [("row", k, v) for k, v in (requires or {}).items()]
    data = cfg.get("data", {}) if data is None else data
    for who, key, want in needs:
        have = data.get(key)
        if have != want:
            what = "this variant" if who == "row" else f"the {who} option"
            return (
                f"not applicable: {what} needs data.{key}={want!r}, but data {data.get('name', '?')!r} has "
                f"{key}={have!r}"
                + (" (grey images have no colour to transform)" if key == "channels" else "")
            )
    return None


def validate_options(cfg: dict[str, Any]) -> None:
    """The ablation options, checked before any compute (ValueError saying what is valid)."""
    seeds = cfg.get("seeds")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise ValueError(
            f"seeds={seeds!r}: an ablation needs at least 2 seeds per arm for a confidence interval and a "
            "paired test (3 or more recommended)"
        )
    epochs = cfg.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}: must be an integer >= 1")
    subset = cfg.get("subset")
    if isinstance(subset, bool) or not isinstance(subset, int | float) or not 0 < subset <= 1:
        raise ValueError(
            f"subset={subset!r}: the share of the training split each run uses must be in (0, 1]"
        )
    if cfg.get("metric") not in METRICS:
        raise ValueError(f"metric={cfg.get('metric')!r}: valid metrics: {', '.join(METRICS)}")
    if cfg.get("metric", "").startswith("test/") and not cfg.get("test", True):
        raise ValueError(f"metric={cfg['metric']} needs test=true (runs are evaluated on the test split)")
    conf = cfg.get("confidence")
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 < conf < 1:
        raise ValueError(f"confidence={conf!r}: must be in (0, 1), e.g. 0.95")


def finite(x: Any) -> bool:
    """Whether `x` is a finite number."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
