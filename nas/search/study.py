"""The Optuna study a search drives: samplers and pruners by name with their typed settings, the study's identity,
create-or-resume with checks, and which finished trials count toward `n_trials`.

This is the one place Optuna samplers and pruners are built from config (`SamplerSettings`, `PrunerSettings`:
the checked config groups the plan holds). A worker builds one sampler (nas.search.trial.worker_sampler) and
reseeds it for each trial (nas.search.optuna_internals.reseed). A study remembers what it was
created for (space hash, objectives, fidelity, data, latency device) in its user attributes; resuming it
with anything else is refused with a message, because mixing trials of different spaces, objectives or
fidelities would make the front meaningless.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.latency import LatencyConfig, device_fingerprint
from nas.search.ehvi import Active, Costs, Known, KnownLatencyEHVI
from nas.search.norepeat import NoRepeat
from nas.search.objectives import ATTR, OBJECTIVES, directions
from nas.space import CellDag

log = logging.getLogger(__name__)

# How long a worker waits for another worker that has just created the study to record its identity (s).
IDENTITY_WAIT_S = 10.0
# The key under which `latency_identity` hands the device fingerprint's readable fields to `study_identity`.
MACHINE = "machine"

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "random": optuna.samplers.RandomSampler,
    "qmc": optuna.samplers.QMCSampler,
    "gp": optuna.samplers.GPSampler,
    "ehvi": KnownLatencyEHVI,  # latency known before evaluation (nas.search.ehvi)
}
PRUNERS: dict[str, type[optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}


def _kwargs(cls: type, cfg: Mapping[str, Any], what: str, name: str) -> dict[str, Any]:
    """The config's keys except `name`, checked against `cls`'s keyword arguments."""
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"{what} {name!r}: unknown options {unknown}; valid options: {', '.join(valid)}")
    return kwargs


@dataclass(frozen=True)
class SamplerSettings:
    """A checked `sampler` config (conf/sampler/<name>.yaml): its name and its options as written. The search
    reads `seed` (None: the search's), `no_repeat` and ehvi's `cell` and `measure` itself; the rest are the
    sampler class's keyword arguments, checked when it is built (`make_sampler`)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cfg(cls, raw: Mapping[str, Any] | None) -> SamplerSettings:
        """The settings of a plain config (default: tpe); ValueError saying what to change."""
        cfg = dict(raw or {"name": "tpe"})
        name = str(cfg.pop("name", "tpe"))
        if name not in SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")
        no_repeat = cfg.get("no_repeat", False)
        if not isinstance(no_repeat, bool):
            raise ValueError(
                f"sampler.no_repeat is true or false (redraw proposals already evaluated), got {no_repeat!r}"
            )
        if SAMPLERS[name] is KnownLatencyEHVI:
            if not isinstance(cfg.get("cell", True), bool):
                raise ValueError(
                    f"sampler.cell is true or false (model a cell by the function it computes), got {cfg['cell']!r}"
                )
            if not isinstance(cfg.get("measure", False), bool):
                raise ValueError(
                    "sampler.measure is true or false (time every candidate instead of predicting its latency), "
                    f"got {cfg['measure']!r}"
                )
        return cls(name, cfg)

    @property
    def seed(self) -> int | None:
        """The config's own seed (None: the search's)."""
        return self.options.get("seed")

    @property
    def no_repeat(self) -> bool:
        """Whether proposals the study has evaluated are redrawn (nas.search.norepeat)."""
        return bool(self.options.get("no_repeat", False))

    @property
    def knows_latency(self) -> bool:
        """Whether the sampler is told a candidate's latency before it is evaluated (ehvi: the trial's latency
        oracle, the space's parameters and rule)."""
        return SAMPLERS[self.name] is KnownLatencyEHVI

    @property
    def measure(self) -> bool:
        """ehvi's `measure`: its latency oracle times every candidate instead of predicting a measured latency."""
        return bool(self.options.get("measure", False))

    @property
    def shared_scrambling(self) -> bool:
        """Whether the sampler draws one scrambled sequence the study's workers share (QMC): its seed must be
        the same in every worker and never move, so the study continues the sequence instead of restarting it."""
        return SAMPLERS[self.name] is optuna.samplers.QMCSampler

    @property
    def reseeds_per_trial(self) -> bool:
        """Whether each trial draws from its own seed (nas.search.workers.trial_seed): N workers do not all
        propose the first run's draws, a resumed run does not replay them, and trial k gets the same draws
        whichever worker runs it. Not for a shared scrambled sequence."""
        return not self.shared_scrambling

    def as_config(self) -> dict[str, Any]:
        """The config as written (W&B's run config)."""
        return {"name": self.name, **copy.deepcopy(self.options)}


@dataclass(frozen=True)
class PrunerSettings:
    """A checked `pruner` config (conf/pruner/<name>.yaml): its name and the pruner class's keyword arguments
    (checked when it is built, `make_pruner`)."""

    name: str = "none"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cfg(cls, raw: Mapping[str, Any] | None) -> PrunerSettings:
        """The settings of a plain config (default: none); ValueError with the valid names."""
        cfg = dict(raw or {"name": "none"})
        name = str(cfg.pop("name", "none"))
        if name not in PRUNERS:
            raise ValueError(f"unknown pruner {name!r}; valid pruners: {', '.join(PRUNERS)}")
        return cls(name, cfg)

    @property
    def prunes(self) -> bool:
        """Whether an Optuna pruner may stop a trial (per validation epoch); `none` never does."""
        return self.name != "none"

    def as_config(self) -> dict[str, Any]:
        """The config as written: what a trial records as its `pruner` (a PRUNED result is reused only under
        the same one) and W&B's run config."""
        return {"name": self.name, **copy.deepcopy(self.options)}


def make_sampler(
    cfg: Mapping[str, Any] | SamplerSettings,
    *,
    seed: int | None,
    known: Known | None = None,
    costs: Costs | None = None,
    active: Active | None = None,
    distributions: Mapping[str, optuna.distributions.BaseDistribution] | None = None,
    dag: CellDag | None = None,
) -> optuna.samplers.BaseSampler:
    """The sampler `cfg` names (conf/sampler/*.yaml, or its checked `SamplerSettings`), seeded with `seed` unless
    the config sets one; `known`: a candidate's latency before it is evaluated (params -> latency or None), which
    `ehvi` needs (also set later, `bind_latency`), and `costs` what it costs (params / MACs); `active` and `distributions`: the parameters the space uses of a
    full assignment and every parameter it may use (nas.search.space_rules), for `ehvi`'s conditional
    parameters; `dag`: the space's cell (nas.space.dag), which `ehvi` models by the function a cell computes
    unless `cell: false`."""
    settings = cfg if isinstance(cfg, SamplerSettings) else SamplerSettings.from_cfg({"name": "tpe", **cfg})
    name, cls, ehvi = settings.name, SAMPLERS[settings.name], settings.knows_latency
    own = ("no_repeat", "cell", "measure") if ehvi else ("no_repeat",)
    kwargs = _kwargs(cls, {k: v for k, v in settings.options.items() if k not in own}, "sampler", name)
    if ehvi and kwargs.get("priced") == "auto":  # SearchPlan resolves it per evaluator; alone: price all
        kwargs["priced"] = None
    if "seed" in inspect.signature(cls.__init__).parameters and kwargs.get("seed") is None:
        kwargs["seed"] = seed
    try:
        with (
            warnings.catch_warnings()
        ):  # "experimental" notes on group / QMC: the configs choose them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if ehvi:
                # model a cell by the function it computes where the space has a dag
                cell = settings.options.get("cell", True)
                canonical = dag.canonical if cell and dag else None
                sampler = cls(
                    known,
                    costs=costs,
                    canonical=canonical,
                    active=active,
                    distributions=distributions,
                    **kwargs,
                )
            else:
                sampler = cls(**kwargs)
        return NoRepeat(sampler, seed=kwargs.get("seed")) if settings.no_repeat else sampler
    except (TypeError, ValueError) as e:
        raise ValueError(f"sampler {name!r} rejected its options {kwargs}: {e}") from None


def bind_latency(
    sampler: optuna.samplers.BaseSampler, known: Known | None, costs: Costs | None = None
) -> None:
    """Tell a sampler that uses a candidate's latency before evaluation (ehvi, also inside NoRepeat) its latency
    oracle and its cost oracle (params / MACs), once the search's evaluator exists; other samplers are left
    alone."""
    inner = sampler.inner if isinstance(sampler, NoRepeat) else sampler
    if isinstance(inner, KnownLatencyEHVI):
        inner.known, inner.costs = known, costs


def make_pruner(
    cfg: Mapping[str, Any] | PrunerSettings, *, n_objectives: int, epochs: int
) -> optuna.pruners.BasePruner:
    """The pruner `cfg` names (conf/pruner/*.yaml, or its checked `PrunerSettings`); refused with more than one
    objective (Optuna's limit)."""
    settings = cfg if isinstance(cfg, PrunerSettings) else PrunerSettings.from_cfg({"name": "none", **cfg})
    name = settings.name
    if settings.prunes and n_objectives > 1:
        raise ValueError(
            f"pruner {name!r} needs a single objective, but this search has {n_objectives}: Optuna prunes on one "
            "intermediate value per epoch and does not support pruning in multi-objective studies. Use pruner=none "
            "with objectives [accuracy, latency], or objectives=[accuracy] with latency_budget_ms=<ms> (latency "
            "as a constraint) to prune."
        )
    cls = PRUNERS[name]
    kwargs = _kwargs(cls, settings.options, "pruner", name)
    if name == "hyperband" and kwargs.get("max_resource") in (None, "auto"):
        kwargs["max_resource"] = epochs  # one resource unit = one epoch
    if settings.prunes and epochs < 2:
        log.warning(
            "pruner %r with fidelity.epochs=%d: a trial reports once, so nothing can be pruned", name, epochs
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"pruner {name!r} rejected its options {kwargs}: {e}") from None


def study_identity(
    *,
    space: Any,
    objectives: list[str],
    fidelity: Mapping[str, Any],
    data: str,
    latency: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a study is for; stored on creation, compared on resume. `training`: optimiser and metric.

    The latency device's readable fields (`latency_identity`'s MACHINE) are kept beside it as `latency_machine`
    for messages, not compared: the fingerprint key in `latency` holds them.
    """
    latency = dict(latency)
    machine = latency.pop(MACHINE, None)
    out = {
        "space": space.name,
        "space_hash": space.hash(),
        "objectives": list(objectives),
        "fidelity": dict(fidelity),
        "data": data,
        "latency": latency,
        "training": dict(training or {}),
    }
    if machine:
        out["latency_machine"] = dict(machine)
    return out


def latency_identity(latency_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The latency mode and, for timed modes, the device fingerprint: a study never mixes devices (and under
    MACHINE the fingerprint's readable fields, which `study_identity` keeps apart)."""
    cfg = LatencyConfig.from_cfg(latency_cfg)
    if cfg.mode in ("macs", "params"):
        return {"mode": cfg.mode}
    fp = device_fingerprint(cfg)
    return {"mode": cfg.mode, "device": fp.key, "batch_size": cfg.batch_size, MACHINE: fp.info}


def open_study(
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    identity: Mapping[str, Any],
    space_raw: Mapping[str, Any] | None = None,
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it and check it was made for the same search; returns (study, resumed)."""
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    resumed = study_name in existing
    if resumed:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        # Another worker may have created it a moment ago and not yet recorded its identity (create_study and
        # set_user_attr are two writes): a study without trials gets a few seconds for it.
        deadline = time.monotonic() + IDENTITY_WAIT_S
        while (
            ATTR + "identity" not in study.user_attrs
            and not study.get_trials(deepcopy=False)
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        check_identity(study, identity)
        return study, True
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=directions(identity["objectives"]),
        load_if_exists=True,  # another worker may have created it a moment ago
    )
    if study.user_attrs.get(ATTR + "identity") is None:
        study.set_user_attr(ATTR + "identity", dict(identity))
        if space_raw is not None:
            study.set_user_attr(ATTR + "space", dict(space_raw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(identity["objectives"]))
    else:
        check_identity(study, identity)
    return study, False


def check_identity(study: optuna.Study, identity: Mapping[str, Any]) -> None:
    """Refuse to continue a study created for a different space, objectives, fidelity, data or device."""
    stored = study.user_attrs.get(ATTR + "identity")
    if stored is None:
        raise ValueError(
            f"study {study.study_name!r} exists but was not created by nas.search (no {ATTR}identity attribute); "
            "choose another study_name=..."
        )
    what = {
        "space_hash": "search space",
        "objectives": "objectives",
        "fidelity": "fidelity",
        "data": "dataset",
        "latency": "latency device",
        "training": "training (data, optimiser, trainer, seed, device, metric)",
    }
    if [k for k in what if _norm(stored.get(k)) != _norm(identity.get(k))] == ["latency"]:
        machine = _other_machine(study, stored, identity)
        if machine:
            raise ValueError(machine)
    diffs = []
    for key, label in what.items():
        if _norm(stored.get(key)) != _norm(identity.get(key)):
            old, new = stored.get(key), identity.get(key)
            if key == "space_hash":
                old, new = f"{stored.get('space')} ({old})", f"{identity.get('space')} ({new})"
            elif isinstance(old, Mapping) and isinstance(
                new, Mapping
            ):  # only what differs, e.g. trainer.precision
                old, new = _differing(_norm(old), _norm(new))
            diffs.append(f"{label}: study has {old}, this run asks for {new}")
    if diffs:
        raise ValueError(
            f"study {study.study_name!r} was created for a different search, so its trials cannot be continued "
            "with this one:\n  "
            + "\n  ".join(diffs)
            + "\nUse a new study_name=<name> for this search (or run "
            "the original configuration to resume the study)."
        )


def _other_machine(study: optuna.Study, stored: Mapping[str, Any], identity: Mapping[str, Any]) -> str | None:
    """The refusal of a worker whose latency entry differs from the study's only by the device fingerprint (a
    SLURM partition with several CPU models), saying what to do; None when more than the device differs."""
    old, new = dict(stored.get("latency") or {}), dict(identity.get("latency") or {})
    if "device" not in old or _norm({**old, "device": None}) != _norm({**new, "device": None}):
        return None
    theirs = stored.get("latency_machine")
    # A study made before the machine was stored beside its identity: a timed trial's record of it, if any.
    for t in study.get_trials(deepcopy=False) if theirs is None else ():
        a = t.user_attrs
        if a.get("device_key") == old["device"] and isinstance(a.get("device"), Mapping):
            theirs = a["device"]
            break
    mine = identity.get("latency_machine") or {}
    if theirs:
        fields = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
        differ = "\n  ".join(f"{k}: study {theirs.get(k)!r}, this worker {mine.get(k)!r}" for k in fields)
    else:
        differ = f"device fingerprint: study {old['device']}, this worker {new['device']} ({mine.get('cpu')})"
    return (
        f"study {study.study_name!r} has its latencies ({old.get('mode')}) from another machine, and latencies "
        f"of two machines are not comparable, so this worker cannot add trials to it:\n  {differ}\n"
        "Run every worker of the study on one CPU model (and GPU model for latency=cuda) with the same torch and "
        "runtime: under SLURM, pin the array to one node type with hydra.launcher.constraint=<feature> (sbatch "
        "--constraint; sinfo -o '%N %f' lists each node's features) or a partition of identical nodes. Or "
        "search with a latency that does not depend on the machine, latency.mode=macs (or params), under a new "
        "study_name."
    )


def _differing(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> tuple[dict, dict]:
    """The dotted keys whose values differ between two nested mappings: ({key: old}, {key: new})."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    for k in sorted(set(old) | set(new)):
        x, y = old.get(k), new.get(k)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            da, db = _differing(x, y, f"{prefix}{k}.")
            a.update(da)
            b.update(db)
        elif x != y:
            a[prefix + k], b[prefix + k] = x, y
    return a, b


def _norm(v: Any) -> Any:
    """JSON round-trip normal form (tuples -> lists, ints vs floats kept) for comparing stored attributes."""
    return json.loads(json.dumps(v, sort_keys=True, default=str))


def counted(trial: FrozenTrial) -> bool:
    """Whether a finished trial counts toward `n_trials`: constraint rejections, interruptions, trials of dead
    workers that were queued again, and surplus trials (nas.search.workers) do not."""
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        return False
    a = trial.user_attrs
    if a.get("rejected") or a.get("interrupted") or a.get("surplus"):
        return False
    # A trial whose worker died is replaced by its retry (nas.search.workers), which counts instead.
    return not (trial.state == TrialState.FAIL and a.get("retried"))


def n_counted(study: optuna.Study) -> int:
    """Finished trials that count toward the budget."""
    return sum(counted(t) for t in study.get_trials(deepcopy=False))


HV_REFERENCE = ATTR + "hypervolume_reference"
# Without a bound from the constraints, a minimised quantity's reference is this multiple of its largest value
# among the trained trials when the study first reports a front, then fixed.
HV_HEADROOM = 2.0


def hypervolume_reference(
    study: optuna.Study,
    dims: Sequence[str],
    *,
    bounds: Mapping[str, float | None],
    observed: Mapping[str, Sequence[float]] | None = None,
) -> list[float] | None:
    """The study's hypervolume reference point over `dims`, fixed once and recorded in its user attributes.

    Per quantity: 0 for a maximised one (accuracy); for a minimised one its upper bound from the space's
    constraints (`bounds`, known when the study is created), else HV_HEADROOM x its largest `observed` value
    at the first front. Every later report of the study (resumed, or in another worker) reads the recorded
    point, so the hypervolume only grows as the front improves and compares across resumes. None while a
    quantity has neither a bound nor observed values.
    """
    stored = study.user_attrs.get(HV_REFERENCE)
    if stored and list(stored.get("dims", ())) == list(dims):
        return [float(v) for v in stored["point"]]
    point, sources = [], []
    for d in dims:
        if OBJECTIVES[d] == "maximize":
            point.append(0.0)
            continue
        seen = list((observed or {}).get(d, ()))
        if bounds.get(d) is not None:
            point.append(float(bounds[d]))  # type: ignore[arg-type]
            sources.append(f"{d}: the space's upper bound")
        elif seen:
            point.append(HV_HEADROOM * max(float(v) for v in seen))
            sources.append(
                f"{d}: {HV_HEADROOM:g} x the largest of {len(seen)} trained trials at the first front"
            )
        else:
            return None
    # Two workers may record it at once; the storage keeps the last write and every later report reads it.
    study.set_user_attr(HV_REFERENCE, {"dims": list(dims), "point": point, "source": "; ".join(sources)})
    return point
