"""A search configuration, checked before any compute: space, objectives, fidelity, budgets, and the run
configs (for `nas.fit.fit`) that trials, baselines and retraining use.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config import resolve_spec
from nas.fit import validate
from nas.identity import identity_key, training_identity
from nas.latency import LatencyConfig, spec_costs
from nas.search import local_workers
from nas.search.calibration import lookup as lookup_calibration
from nas.search.calibration import signature as calibration_signature
from nas.search.calibration import uncalibrated
from nas.search.evaluators import benchmark_options
from nas.search.objectives import OBJECTIVES
from nas.search.scheduler import SchedulerOptions, scheduler_config
from nas.search.starts import Starts
from nas.search.starts import resolve as resolve_starts
from nas.search.storage import STORAGES
from nas.search.study import PRUNERS, SAMPLERS, PrunerSettings, SamplerSettings, latency_identity
from nas.space import FIDELITY_KEYS, Space, SpecRejected, list_spaces
from nas.surrogate.options import SurrogateOptions
from nas.tabular.options import BenchmarkOptions

SEARCH_KEYS = (
    "space",
    "study_name",
    "study_dir",
    "n_trials",
    "timeout_s",
    "seed",
    "objectives",
    "latency_budget_ms",
    "metric",
    "chance_alpha",
    "fidelity",
    "max_failures",
    "max_rejected",
    "baselines",
    "start",
    "retrain_top_k",
    "retrain",
    "export_dir",
    "html",
    "onnx",
    "progress",
    "reuse",
    "worker",
    "workers",
    "data",
    "optim",
    "trainer",
    "logger",
    "latency",
    "sampler",
    "pruner",
    "storage",
    "scheduler",
    "benchmark",
)
BASELINE_KEYS = ("enabled", "models", "max_macs", "max_share")
LATENCY_MS_MODES = ("measured", "predicted")
REUSE = ("study", "storage", "none")


@dataclass(frozen=True)
class Fidelity:
    """The search's fidelity, in one place: the epochs a trial trains (a full result's: the top rung's under a
    scheduler with rungs), the share of the training split (None: all of it) and the image size (None: the
    data's own). Every run config at the search fidelity is the configured setup with it applied (`apply`):
    `SearchPlan.base`, the trials', the baselines', and through them the run keys, the study's identity and the
    calibration signature."""

    epochs: int = 1
    fraction: float | None = None
    image_size: int | None = None

    @classmethod
    def from_cfg(cls, raw: Mapping[str, Any]) -> Fidelity:
        """The `fidelity` config group, checked; ValueError with the valid keys and ranges."""
        unknown = sorted(set(raw) - set(FIDELITY_KEYS))
        if unknown:
            raise ValueError(f"unknown fidelity keys {unknown}; valid keys: {', '.join(FIDELITY_KEYS)}")
        fraction, image_size = raw.get("fraction"), raw.get("image_size")
        epochs = _int(raw.get("epochs", 1), "fidelity.epochs", 1)
        if fraction is not None:
            fraction = float(fraction)
            if not 0.0 < fraction <= 1.0:
                raise ValueError(
                    f"fidelity.fraction must be in (0, 1] (share of the training split), got {fraction}"
                )
        if image_size is not None:
            image_size = _int(image_size, "fidelity.image_size", 4)
        return cls(epochs=epochs, fraction=fraction, image_size=image_size)

    def data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A data config at this fidelity (a copy): its fraction and image size where the fidelity sets them."""
        out = copy.deepcopy(dict(data))
        if self.fraction is not None:
            out["fraction"] = self.fraction
        if self.image_size is not None:
            out["image_size"] = self.image_size
        return out

    def apply(self, setup: Mapping[str, Any]) -> dict[str, Any]:
        """A run config (seed, data, optim, trainer, logger) at this fidelity, as a copy: its data, and its
        trainer's max_epochs."""
        cfg = copy.deepcopy(dict(setup))
        cfg["data"] = self.data(setup["data"])
        cfg["trainer"] = {**cfg["trainer"], "max_epochs": self.epochs}
        return cfg

    def as_dict(self) -> dict[str, Any]:
        """The fidelity as files store it (the surrogate's data; the report's exports)."""
        return {"epochs": self.epochs, "fraction": self.fraction, "image_size": self.image_size}


@dataclass(frozen=True)
class Baselines:
    """The `baselines` config group, checked: whether the reference networks train beside the search, which
    (None: the space's family's), and the caps on their MACs and on their share of the search's training time."""

    enabled: bool = True
    models: tuple[str, ...] | None = None
    max_macs: float | None = None
    max_share: float | None = None

    @classmethod
    def from_cfg(cls, raw: Mapping[str, Any]) -> Baselines:
        """ValueError with the valid keys and ranges."""
        unknown = sorted(set(raw) - set(BASELINE_KEYS))
        if unknown:
            raise ValueError(f"unknown baselines keys {unknown}; valid keys: {', '.join(BASELINE_KEYS)}")
        share = raw.get("max_share")
        if share is not None and not (isinstance(share, (int, float)) and 0 < share < 1):
            raise ValueError(
                f"baselines.max_share is the share of the search's training time baselines may take, in (0, 1) "
                f"(e.g. 0.33), or null for no limit; got {share!r}"
            )
        models = raw.get("models")
        if models is not None:
            models = (models,) if isinstance(models, str) else tuple(models)
        return cls(
            enabled=bool(raw.get("enabled", True)),
            models=models,
            max_macs=raw.get("max_macs"),
            max_share=share,
        )


@dataclass
class SearchPlan:
    """Everything a search needs, validated; built by `SearchPlan.from_cfg(plain_dict)`."""

    space: Space
    study_name: str
    n_trials: int
    objectives: list[str]
    fidelity: Fidelity  # the one place it lives: `base` and every run config of a trial apply it
    setup: dict[str, Any]  # seed, data, optim, trainer, logger as configured (full fidelity)
    latency: dict[str, Any]  # nas.latency.LatencyConfig's options (its own checks)
    sampler: SamplerSettings
    pruner: PrunerSettings
    storage: dict[str, Any]  # nas.search.storage's options, read there (make_storage checks them)
    seed: int = 0
    timeout_s: float | None = None
    latency_budget_ms: float | None = None
    metric: str = "val/acc"
    chance_alpha: float | None = 0.01  # a completed trial not above chance at this level is "not trained"
    max_failures: int = 5
    max_rejected: int = 500
    baselines: Baselines = field(default_factory=Baselines)
    starts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # a new study's first trials
    workers: int = 1  # processes training this study's trials on this machine (nas.search.local_workers)
    retrain_top_k: int = 0
    # a retrained network's epochs (full fidelity): retrain.epochs, else trainer.max_epochs
    retrain_epochs: int | None = None
    export_dir: Path | None = None
    html: bool = True
    onnx: bool = True  # each exported front network also as ONNX (checked in ONNX Runtime)
    progress: bool = True
    reuse: str = "study"
    scheduler: SchedulerOptions = SchedulerOptions("single", (1,))  # replaced by from_cfg's
    benchmark: BenchmarkOptions | SurrogateOptions | None = None  # results looked up instead of trained
    _base: tuple[Fidelity, dict[str, Any]] | None = field(default=None, init=False, repr=False, compare=False)
    _full: tuple[int | None, dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    # ------------------------------------------------------------------------------- the run configs' base

    @property
    def base(self) -> dict[str, Any]:
        """seed, data, optim, trainer, logger at the search's fidelity: `setup` with `fidelity` applied (made
        again when the fidelity is replaced; read it, do not change it: `run_config` gives a copy)."""
        if self._base is None or self._base[0] is not self.fidelity:
            self._base = (self.fidelity, self.fidelity.apply(self.setup))
        return self._base[1]

    @property
    def full(self) -> dict[str, Any]:
        """The same at full fidelity, for retraining: `setup`, its trainer at `retrain_epochs`."""
        if self._full is None or self._full[0] != self.retrain_epochs:
            cfg = copy.deepcopy(self.setup)
            if self.retrain_epochs is not None:
                cfg["trainer"]["max_epochs"] = self.retrain_epochs
            self._full = (self.retrain_epochs, cfg)
        return self._full[1]

    # ---------------------------------------------------------------------------------------- building

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> SearchPlan:
        """Check a plain search config (conf/search.yaml + overrides); ValueError with the valid choices."""
        if not cfg.get("space"):
            raise ValueError(
                "no search space: add space=<name>; valid spaces: " + ", ".join(n for n, _ in list_spaces())
            )
        unknown = sorted(set(cfg) - set(SEARCH_KEYS) - {"hydra"})
        if unknown:
            raise ValueError(f"unknown search config keys {unknown}; valid keys: {', '.join(SEARCH_KEYS)}")
        space = Space.from_dict(cfg["space"])
        objectives = cfg.get("objectives") or ["accuracy", "latency"]
        objectives = [objectives] if isinstance(objectives, str) else list(objectives)
        bad = [o for o in objectives if o not in OBJECTIVES]
        if bad or not objectives or len(set(objectives)) != len(objectives):
            raise ValueError(
                f"objectives must be distinct names from {', '.join(OBJECTIVES)} (e.g. [accuracy, latency]); "
                f"got {objectives}"
            )
        if "accuracy" not in objectives:
            raise ValueError(
                f"objectives must include accuracy (it is what training measures); got {objectives}"
            )
        fidelity = Fidelity.from_cfg(cfg.get("fidelity") or {})
        scheduler = scheduler_config(cfg.get("scheduler"), fidelity.epochs)
        for group, names in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("storage", STORAGES)):
            name = (cfg.get(group) or {}).get("name")
            if name not in names:
                raise ValueError(f"unknown {group} {name!r}; valid {group}s: {', '.join(names)}")
        sampler = SamplerSettings.from_cfg(cfg.get("sampler"))
        pruner = PrunerSettings.from_cfg(cfg.get("pruner"))
        if scheduler.multi_rung:
            if pruner.prunes:
                raise ValueError(
                    f"scheduler={scheduler.name} decides which trials go on; use it with pruner=none "
                    "(or scheduler=single with an Optuna pruner)"
                )
            # A full result is the top rung's: baselines, reuse keys and the study's identity use its epochs.
            fidelity = dataclasses.replace(fidelity, epochs=scheduler.top)
        latency = dict(cfg.get("latency") or {})
        lat_cfg = LatencyConfig.from_cfg(latency)
        benchmark = benchmark_options(cfg.get("benchmark"), fidelity.epochs)
        if benchmark is not None:
            benchmark.check_data(fidelity.data(cfg["data"]))
        if sampler.knows_latency:
            _check_ehvi(objectives)
        sampler = _priced(sampler, table=isinstance(benchmark, BenchmarkOptions))
        budget = _positive(cfg.get("latency_budget_ms"), "latency_budget_ms", allow_none=True)
        if (
            (budget is not None or "latency_ms" in space.constraints.bounds)
            and lat_cfg.mode not in LATENCY_MS_MODES
            and (benchmark is None or not benchmark.latency_from_table)  # a table's latency is in ms
        ):
            raise ValueError(
                f"a latency budget in milliseconds needs latency.mode measured or predicted, not {lat_cfg.mode!r}"
            )
        setup = {
            "seed": int(cfg.get("seed", 0)),
            "data": copy.deepcopy(cfg["data"]),
            "optim": copy.deepcopy(cfg["optim"]),
            "trainer": copy.deepcopy(cfg["trainer"]),
            "logger": copy.deepcopy(cfg.get("logger") or {"name": "none"}),
        }
        retrain = dict(cfg.get("retrain") or {})
        retrain_epochs = (
            _int(retrain["epochs"], "retrain.epochs", 1)
            if retrain.get("epochs") is not None
            else cfg["trainer"].get("max_epochs")
        )
        baselines = Baselines.from_cfg(cfg.get("baselines") or {})
        if benchmark is not None and baselines.enabled:
            raise ValueError(
                f"baselines cannot run under benchmark={benchmark.name}: its table has results for its own "
                "cells only, and training reference networks would take hours; set baselines.enabled=false"
            )
        study_name = str(cfg.get("study_name") or f"{space.name}-{cfg['data'].get('name', 'data')}")
        if not re.fullmatch(r"[A-Za-z0-9_.=+-]+", study_name):
            raise ValueError(
                f"study_name {study_name!r}: use letters, digits and _ . = + - only (it names files)"
            )
        timeout = cfg.get("timeout_s")
        plan = cls(
            space=space,
            study_name=study_name,
            n_trials=_int(cfg.get("n_trials", 20), "n_trials", 1),
            objectives=objectives,
            fidelity=fidelity,
            setup=setup,
            latency=latency,
            sampler=sampler,
            pruner=pruner,
            storage=dict(cfg.get("storage") or {"name": "sqlite"}),
            seed=int(cfg.get("seed", 0)),
            timeout_s=_positive(timeout, "timeout_s", allow_none=True),
            latency_budget_ms=budget,
            metric=str(cfg.get("metric") or "val/acc"),
            chance_alpha=_alpha(cfg.get("chance_alpha", 0.01)),
            max_failures=_int(cfg.get("max_failures", 5), "max_failures", 1),
            max_rejected=_int(cfg.get("max_rejected", 500), "max_rejected", 1),
            baselines=baselines,
            starts=[] if benchmark is not None else resolve_starts(Starts.parse(cfg.get("start")), space),
            workers=local_workers.resolve(
                cfg.get("workers", 1), trainer=cfg.get("trainer") or {},
                storage=str((cfg.get("storage") or {}).get("name", "sqlite")), table=benchmark is not None,
                n_trials=_int(cfg.get("n_trials", 20), "n_trials", 1),
            ),  # fmt: skip
            retrain_top_k=_int(cfg.get("retrain_top_k", 0), "retrain_top_k", 0),
            retrain_epochs=retrain_epochs,
            export_dir=Path(cfg["export_dir"]) if cfg.get("export_dir") else None,
            html=bool(cfg.get("html", True)),
            onnx=bool(cfg.get("onnx", True)),
            progress=bool(cfg.get("progress", True)),
            reuse=_choice(cfg.get("reuse", "study"), "reuse", REUSE),
            scheduler=scheduler,
            benchmark=benchmark,
        )
        plan._check_run_config()
        if benchmark is not None:  # its checks against the whole plan (a surrogate: the fidelity it models)
            plan.benchmark = benchmark.bind(plan)
        return plan

    def _check_run_config(self) -> None:
        """Data, optimiser, logger and trainer checks (nas.fit.validate) on sample specs, before compute.

        One draw too small for the input is a rejection at search time; a space none of whose first 20 draws
        can run at the search's input size (the feature map shrinks below 1x1) is an error now.
        """
        drawn, shape_error = 0, None
        for seed in range(20):
            try:
                spec = self.space.sample_random(seed).spec
            except SpecRejected:
                continue
            drawn += 1
            try:
                validate(self.run_config(spec, output_dir="", name="check"))
                return
            except ValueError as e:
                if "feature map" not in str(e) and "cannot run on" not in str(e):
                    raise
                shape_error = shape_error or str(e).splitlines()[0]
        if not drawn:
            raise ValueError(
                f"space {self.space.name!r}: 20 random draws were all rejected; check its ranges"
            )
        raise ValueError(
            f"space {self.space.name!r}: none of {drawn} random draws can run on "
            f"{self.base['data'].get('image_size')} px inputs ({shape_error}); use a larger fidelity.image_size "
            "or fewer / later stride-2 stages"
        )

    # ------------------------------------------------------------------------------------- run configs

    def run_config(
        self, spec: Mapping[str, Any], *, output_dir: str, name: str, full: bool = False
    ) -> dict[str, Any]:
        """The `nas.fit.fit` config of one network at the search fidelity (or at full fidelity)."""
        base = self.full if full else self.base
        cfg = copy.deepcopy(base)
        cfg.update(
            model=copy.deepcopy(dict(spec)), output_dir=output_dir, name=name, test=full, checkpoint=full
        )
        if not full:
            cfg["trainer"]["enable_progress_bar"] = False
        return cfg

    def resolved_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """`spec` sized for the data at the search fidelity (channels, classes, input size)."""
        return resolve_spec({"model": dict(spec), "data": self.base["data"]})

    def deployed_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """`spec` as it is deployed: sized for the dataset at its own image size, not `fidelity.image_size`.

        A smaller training resolution is a cheaper proxy for accuracy; the latency, MACs and parameters a trial
        is judged (and constrained) on are the network's at the size it will run at.
        """
        return resolve_spec({"model": dict(spec), "data": self.full["data"]})

    def cost(self, spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(trained spec, deployed spec, deployed params / MACs) of a rendered spec: the one count of a trial
        (FlopCounterMode on the meta device, `nas.latency.spec_costs`), passed on from here. When the fidelity
        trains at another size, the costs also hold the trained network's under "trained" (training logs
        them; they are not counted again).

        ValueError when the network cannot run at either size (e.g. the feature map shrinks below 1x1).
        """
        trained, deployed = self.resolved_spec(spec), self.deployed_spec(spec)
        cost: dict[str, Any] = spec_costs(deployed)
        if trained["input_size"] != deployed["input_size"]:
            cost["trained"] = spec_costs(trained)  # it must also run at the training size
        return trained, deployed, cost

    def run_key(self, resolved_spec: Mapping[str, Any]) -> str:
        """Hash of what determines a trial's result: the run config at the search fidelity (nas.identity: data,
        optimiser, trainer, seed, the device it trains on) with the sized spec as its model, and the metric."""
        cfg = self.run_config({}, output_dir="", name="")
        cfg["model"] = {k: v for k, v in resolved_spec.items() if k != "name"}
        cfg["metric"] = self.metric
        if self.scheduler.multi_rung:
            # A trial stopped at a low rung is PRUNED: only a study with the same rungs may reuse that.
            cfg["scheduler"] = self.scheduler.as_config()
        return identity_key(cfg)

    def training_identity(self) -> dict[str, Any]:
        """What decides a trial's training besides its architecture (nas.identity), as a study stores it."""
        cfg = self.run_config({}, output_dir="", name="")
        cfg.pop("model")
        return {**training_identity(cfg), "metric": self.metric}

    def hypervolume_bounds(self) -> dict[str, float | None]:
        """Upper bounds the space's constraints (and latency_budget_ms) put on each minimised front quantity:
        the study's hypervolume reference (nas.search.study.hypervolume_reference)."""
        limit = {k: hi for k, (_, hi) in self.space.constraints.bounds.items()}
        mode = LatencyConfig.from_cfg(self.latency).mode
        lat = limit.get("latency_ms") if mode in LATENCY_MS_MODES else limit.get(mode)
        if mode in LATENCY_MS_MODES and self.latency_budget_ms is not None:
            lat = self.latency_budget_ms if lat is None else min(lat, self.latency_budget_ms)
        return {"latency": lat, "params": limit.get("params"), "macs": limit.get("macs")}

    def identity_fidelity(self) -> dict[str, Any]:
        """The fidelity as a study stores it (effective values, validation split included)."""
        data = self.base["data"]
        return {
            "epochs": self.fidelity.epochs,
            "fraction": data.get("fraction"),
            "image_size": data.get("image_size"),
            "val_size": data.get("val_size"),
            "val_fraction": data.get("val_fraction"),
        }

    def calibration_signature(self, epochs: int | None = None) -> dict[str, Any]:
        """What decides how this search's fidelity (or its rung of `epochs`) ranks its space's networks
        (nas.search.calibration)."""
        return calibration_signature(
            space=self.space.name,
            data=self.base["data"],
            epochs=self.fidelity.epochs if epochs is None else epochs,
            optim=self.base["optim"],
            trainer=self.base["trainer"],
        )

    def calibration(self, folder: Path | None = None) -> dict[str, Any] | None:
        """Whether the fidelity is calibrated for the space (the measured rho, or why not), from the files in
        `folder` (default conf/calibration/); None under a tabular benchmark, whose results are the table's,
        not a fidelity's. The front is trained at the fidelity (the top rung under successive halving), so
        `calibrated` is about it; with rungs, `rungs` and the text also say which rungs that rank the
        candidates on the way up are calibrated."""
        if self.benchmark is not None:
            return None
        sig = self.calibration_signature()
        found = lookup_calibration(sig, folder)
        out = (
            {"calibrated": False, "text": uncalibrated(sig)}
            if found is None
            else {**found.as_dict(), "text": found.describe()}
        )
        rungs = list(self.scheduler.epochs) if self.scheduler.multi_rung else []
        if len(rungs) > 1:
            top = self.fidelity.epochs  # the fidelity's own rung: looked up above
            per = [
                (e, found if e == top else lookup_calibration(self.calibration_signature(e), folder))
                for e in rungs
            ]
            out["rungs"] = [{"epochs": e, "calibrated": c is not None, "rho": c and c.rho} for e, c in per]
            words = [f"calibrated (Spearman {c.rho:+.2f})" if c else "uncalibrated" for _, c in per]
            out["text"] += f"; rungs {'/'.join(map(str, rungs))} epochs: {' / '.join(words)}"
        return out

    def latency_identity(self) -> dict[str, Any]:
        """The latency entry of the study's identity: the device (fingerprint) or the benchmark's table; a
        benchmark whose latency is latency.mode's adds what its results depend on (a surrogate: its model)."""
        if self.benchmark is not None and self.benchmark.latency_from_table:
            return self.benchmark.identity()
        extra = self.benchmark.identity() if self.benchmark is not None else {}
        return {**latency_identity(self.latency), **extra}

    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @property
    def front_dims(self) -> list[str]:
        """The two quantities the front and the plot use: the objectives, or (accuracy, latency) for one."""
        return self.objectives if len(self.objectives) >= 2 else ["accuracy", "latency"]


def _alpha(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < float(v) < 1.0:
        raise ValueError(f"chance_alpha must be a significance level in (0, 1), or null (no test), got {v!r}")
    return float(v)


def _choice(v: Any, what: str, valid: tuple[str, ...]) -> str:
    if v not in valid:
        raise ValueError(f"unknown {what} {v!r}; valid: {', '.join(valid)}")
    return str(v)


def _int(v: Any, what: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer() or v < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {v!r}")
    return int(v)


def _positive(v: Any, what: str, *, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} must be a number > 0{' or null' if allow_none else ''}, got {v!r}"
        ) from None
    if not f > 0 or math.isinf(f):
        raise ValueError(f"{what} must be a finite number > 0, got {v!r}")
    return f


# Candidates `sampler=ehvi` prices exactly per trial where a candidate's latency is not a table look-up (pricing
# builds the network and looks its layers up, timing new ones: 0.1-3 s each on a 2-core CPU); `priced: auto`.
EHVI_PRICED = 16


def _priced(sampler: SamplerSettings, *, table: bool) -> SamplerSettings:
    """The sampler's settings, `ehvi`'s `priced: auto` resolved: every candidate where latency is looked up in a
    table (benchmark=nb201: microseconds), else the best EHVI_PRICED at an estimated latency."""
    if not sampler.knows_latency or sampler.options.get("priced", "auto") != "auto":
        return sampler
    return dataclasses.replace(sampler, options={**sampler.options, "priced": None if table else EHVI_PRICED})


def _check_ehvi(objectives: list[str]) -> None:
    """`sampler=ehvi` (nas.search.ehvi) models accuracy with latency known before training: it needs them as the
    objectives (any space: categorical, integer, float and conditional parameters; a measured latency is
    predicted for its candidates, nas.search.trial.latency_oracle); ValueError saying what to change."""
    if list(objectives) != ["accuracy", "latency"]:
        raise ValueError(
            f"sampler=ehvi searches objectives=[accuracy,latency]; got {list(objectives)}: choose another "
            "sampler for these objectives, e.g. sampler=tpe (ehvi is benchmark=nb201's default)"
        )
