"""The Optuna study a search drives: storages, samplers and pruners by name, and create-or-resume with checks.

This is the one place Optuna objects are built from config. A study remembers what it was created for
(space hash, objectives, fidelity, data, latency device) in its user attributes; resuming it with anything
else is refused with a message, because mixing trials of different spaces, objectives or fidelities would
make the front meaningless.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import random
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)

# Objective name -> Optuna direction. "latency" is whatever the latency mode gives (ms for measured /
# predicted, MACs or parameters for the macs / params modes).
OBJECTIVES = {"accuracy": "maximize", "latency": "minimize", "params": "minimize", "macs": "minimize"}

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "random": optuna.samplers.RandomSampler,
    "qmc": optuna.samplers.QMCSampler,
    "gp": optuna.samplers.GPSampler,
}
PRUNERS: dict[str, type[optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}
STORAGES = ("sqlite", "journal", "memory", "url", "postgres")
# storage=postgres reads its URL from this environment variable (never from the config: configs are logged).
URL_ENV = "NAS_STORAGE_URL"
RDB_STORAGES = ("sqlite", "url", "postgres")

# Keys of the study's user attributes (prefixed so they never collide with a user's own).
ATTR = "nas:"


def _kwargs(cls: type, cfg: Mapping[str, Any], what: str, name: str) -> dict[str, Any]:
    """The config's keys except `name`, checked against `cls`'s keyword arguments."""
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"{what} {name!r}: unknown options {unknown}; valid options: {', '.join(valid)}")
    return kwargs


def make_sampler(cfg: Mapping[str, Any], *, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler `cfg` names (conf/sampler/*.yaml), seeded with `seed` unless the config sets one."""
    name = str(cfg.get("name", "tpe"))
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")
    cls = SAMPLERS[name]
    kwargs = _kwargs(cls, cfg, "sampler", name)
    if "seed" in inspect.signature(cls.__init__).parameters and kwargs.get("seed") is None:
        kwargs["seed"] = seed
    try:
        with (
            warnings.catch_warnings()
        ):  # "experimental" notes on group / QMC: the configs choose them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"sampler {name!r} rejected its options {kwargs}: {e}") from None


def make_pruner(cfg: Mapping[str, Any], *, n_objectives: int, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner `cfg` names (conf/pruner/*.yaml); refused with more than one objective (Optuna's limit)."""
    name = str(cfg.get("name", "none"))
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; valid pruners: {', '.join(PRUNERS)}")
    if name != "none" and n_objectives > 1:
        raise ValueError(
            f"pruner {name!r} needs a single objective, but this search has {n_objectives}: Optuna prunes on one "
            "intermediate value per epoch and does not support pruning in multi-objective studies. Use pruner=none "
            "with objectives [accuracy, latency], or objectives=[accuracy] with latency_budget_ms=<ms> (latency "
            "as a constraint) to prune."
        )
    cls = PRUNERS[name]
    kwargs = _kwargs(cls, cfg, "pruner", name)
    if name == "hyperband" and kwargs.get("max_resource") in (None, "auto"):
        kwargs["max_resource"] = epochs  # one resource unit = one epoch
    if name != "none" and epochs < 2:
        log.warning(
            "pruner %r with fidelity.epochs=%d: a trial reports once, so nothing can be pruned", name, epochs
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"pruner {name!r} rejected its options {kwargs}: {e}") from None


def storage_url(cfg: Mapping[str, Any], study_dir: Path) -> str:
    """A printable description of where the study lives (a URL with any password masked, or a file path)."""
    from nas.tracking import redact

    name = cfg.get("name", "sqlite")
    if name == "sqlite":
        return cfg.get("url") or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    if name == "journal":
        return str(Path(cfg.get("path") or study_dir / "journal.log").resolve())
    if name == "memory":
        return "memory (not saved: no resume)"
    if name == "postgres":
        env = str(cfg.get("url_env") or URL_ENV)
        return f"{redact(os.environ.get(env, ''))} (from ${env})"
    return redact(str(cfg.get("url")))


def _url(cfg: Mapping[str, Any], study_dir: Path) -> str:
    """The storage's real URL (password included): never printed, logged or written."""
    name = cfg.get("name", "sqlite")
    if name == "postgres":
        env = str(cfg.get("url_env") or URL_ENV)
        url = os.environ.get(env, "").strip()
        if not url:
            raise ValueError(
                f"storage=postgres reads the database URL from the environment variable {env}, which is not set; "
                f"export {env}=postgresql://<user>:<password>@<host>:5432/<database> (the URL is never logged)"
            )
        if not url.startswith(("postgresql:", "postgresql+", "postgres:")):
            from nas.tracking import redact

            raise ValueError(f"${env} must be a postgresql:// URL, got {redact(url)!r}")
        return "postgresql" + url[len("postgres") :] if url.startswith("postgres:") else url
    if name == "sqlite":
        return cfg.get("url") or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    return str(cfg.get("url"))


def with_driver(url: str) -> str:
    """`postgresql://` with the PostgreSQL driver that is installed: SQLAlchemy 2.1 defaults to psycopg (3),
    older versions to psycopg2; the `scale` extra installs psycopg2-binary."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://" + url.removeprefix("postgresql://")
    raise ValueError(
        "storage: a PostgreSQL URL needs a driver: pip install psycopg2-binary (or pip install -e '.[scale]')"
    )


def _seconds(cfg: Mapping[str, Any], key: str, low: int) -> int | None:
    v = cfg.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer() or v < low:
        raise ValueError(f"storage.{key} must be a whole number of seconds >= {low} or null, got {v!r}")
    return int(v)


def lost_trial_retries(cfg: Mapping[str, Any]) -> int | None:
    """storage.max_retry: attempts a trial gets after its worker died (null = unlimited)."""
    v = cfg.get("max_retry", 3)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"storage.max_retry must be an integer >= 0 or null (unlimited), got {v!r}")
    return v


def make_storage(cfg: Mapping[str, Any], study_dir: Path) -> optuna.storages.BaseStorage:
    """The storage `cfg` names (conf/storage/*.yaml): sqlite (default: study.db in the study folder), journal
    (a file several processes on one machine can share), memory (tests; no resume), postgres (many workers on
    many machines; URL from $NAS_STORAGE_URL) or url (any SQLAlchemy URL).

    RDB storages (sqlite, url, postgres) take `heartbeat_interval` / `grace_period` (s): a trial whose worker
    stops beating is failed and queued again (`max_retry` times) by the next worker that looks."""
    name = str(cfg.get("name", "sqlite"))
    if name not in STORAGES:
        raise ValueError(f"unknown storage {name!r}; valid storages: {', '.join(STORAGES)}")
    max_retry = lost_trial_retries(cfg)
    heartbeat = _seconds(cfg, "heartbeat_interval", 1)
    grace = _seconds(cfg, "grace_period", 1)
    if name in ("memory", "journal") and heartbeat is not None:
        raise ValueError(
            f"storage={name} has no heartbeats (Optuna records them in RDB storages only); remove "
            "storage.heartbeat_interval. Dead workers on this machine are still found by their process id; "
            "for workers on several machines use storage=postgres"
        )
    if heartbeat is not None and grace is not None and grace <= heartbeat:
        raise ValueError(
            f"storage.grace_period ({grace} s) must be longer than storage.heartbeat_interval ({heartbeat} s), "
            "or every slow heartbeat fails a live trial"
        )
    if name == "memory":
        return optuna.storages.InMemoryStorage()
    if name == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(cfg.get("path") or study_dir / "journal.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    url = with_driver(_url(cfg, study_dir))
    if not url or url == "None":
        raise ValueError("storage=url needs storage.url=<SQLAlchemy URL> (e.g. postgresql://user@host/db)")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] | None = None
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        # An unreachable server fails in connect_timeout seconds instead of the OS's minutes; pre-ping
        # replaces connections a server restart or an idle timeout closed while a trial trained.
        timeout = _seconds(cfg, "connect_timeout", 1) or 10
        engine_kwargs = {"connect_args": {"connect_timeout": timeout}, "pool_pre_ping": True}
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat,
                    grace_period=grace if heartbeat else None,
                    heartbeat_stale_trial_callback=_retry_callback(max_retry) if heartbeat else None,
                )
        except Exception as e:  # SQLAlchemy raises many types; the user needs the reason, not the stack
            text = str(e)
            if attempt < 5 and any(m in text for m in ("already exists", "duplicate key", "UniqueViolation")):
                # Workers started together on an empty database all create Optuna's tables; the losers of
                # that race see the winner's tables on the next try.
                time.sleep(0.2 + random.random())
                continue
            from nas.tracking import redact

            reason = redact(text.strip().splitlines()[0] if text.strip() else type(e).__name__)
            raise ValueError(f"cannot open storage {redact(url)}: {reason}") from None
    raise AssertionError("unreachable")


def _retry_callback(max_retry: int | None) -> Any:
    """Optuna's retry callback for heartbeat-stale trials (used by Optuna's own `optimize` loops too)."""
    from nas.workers import RetryLostTrial

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryLostTrial(max_retry=max_retry)


def check_distributed(
    trainer: Mapping[str, Any], pruner: Mapping[str, Any], storage: Mapping[str, Any]
) -> None:
    """Refuse trainer / pruner / storage combinations that cannot work for multi-process trials, before compute."""
    strategy = str(trainer.get("strategy") or "auto")
    if strategy in ("ddp", "ddp_find_unused_parameters_true", "fsdp", "deepspeed") or strategy.startswith(
        ("ddp_popen", "deepspeed")
    ):
        raise ValueError(
            f"trainer.strategy={strategy} starts its processes by running the whole command again, so every "
            "process would run its own search; a search trains multi-GPU trials with trainer=ddp "
            "(strategy ddp_spawn, or ddp_fork on CPU), which starts them inside the trial"
        )
    spawned = strategy.startswith("ddp_")
    if spawned and pruner.get("name", "none") != "none" and storage.get("name") not in RDB_STORAGES:
        raise ValueError(
            f"pruning a multi-process trial (trainer.strategy={strategy}, pruner={pruner.get('name')}) needs an "
            f"RDB storage (sqlite, url or postgres): rank 0 reports to the study through it; storage="
            f"{storage.get('name')} cannot"
        )


def study_identity(
    *,
    space: Any,
    objectives: list[str],
    fidelity: Mapping[str, Any],
    data: str,
    latency: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a study is for; stored on creation, compared on resume. `training`: optimiser and metric."""
    return {
        "space": space.name,
        "space_hash": space.hash(),
        "objectives": list(objectives),
        "fidelity": dict(fidelity),
        "data": data,
        "latency": dict(latency),
        "training": dict(training or {}),
    }


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
    directions = [OBJECTIVES[o] for o in identity["objectives"]]
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    resumed = study_name in existing
    if resumed:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        check_identity(study, identity)
        return study, True
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=directions,
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
        "training": "training (optimiser, metric)",
    }
    diffs = []
    for key, label in what.items():
        if _norm(stored.get(key)) != _norm(identity.get(key)):
            old, new = stored.get(key), identity.get(key)
            if key == "space_hash":
                old, new = f"{stored.get('space')} ({old})", f"{identity.get('space')} ({new})"
            diffs.append(f"{label}: study has {old}, this run asks for {new}")
    if diffs:
        raise ValueError(
            f"study {study.study_name!r} was created for a different search, so its trials cannot be continued "
            "with this one:\n  "
            + "\n  ".join(diffs)
            + "\nUse a new study_name=<name> for this search (or run "
            "the original configuration to resume the study)."
        )


def _norm(v: Any) -> Any:
    """JSON round-trip normal form (tuples -> lists, ints vs floats kept) for comparing stored attributes."""
    import json

    return json.loads(json.dumps(v, sort_keys=True, default=str))


def counted(trial: FrozenTrial) -> bool:
    """Whether a finished trial counts toward `n_trials`: constraint rejections, interruptions, trials of dead
    workers that were queued again, and surplus trials (nas.workers) do not."""
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        return False
    a = trial.user_attrs
    if a.get("rejected") or a.get("interrupted") or a.get("surplus"):
        return False
    # A trial whose worker died is replaced by its retry (nas.workers), which counts instead.
    return not (trial.state == TrialState.FAIL and a.get("retried"))


def n_counted(study: optuna.Study) -> int:
    """Finished trials that count toward the budget."""
    return sum(counted(t) for t in study.get_trials(deepcopy=False))


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Keep a trial's heartbeat while it runs (storages with heartbeat_interval; a no-op otherwise).

    ask/tell does not start Optuna's heartbeat thread the way `optimize` does, so it is started here;
    a worker killed mid-trial then has its trial failed by `fail_stale_trials` in the other workers.
    """
    from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled

    if not is_heartbeat_enabled(study._storage):
        yield
        return
    thread = get_heartbeat_thread(trial._trial_id, study._storage)
    with thread:
        yield


def fail_stale(study: optuna.Study, *, max_retry: int | None = 3) -> list[str]:
    """Fail the trials of dead workers (no heartbeat, or their process gone) and queue retries (nas.workers)."""
    from nas.workers import fail_lost

    return fail_lost(study, max_retry=max_retry)
