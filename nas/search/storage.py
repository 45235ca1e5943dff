"""Where a study lives: storages by name (sqlite, journal, memory, url, postgres), their URLs (never printed
with a password), and the retry of trials whose worker died (Optuna's heartbeat callback).

This is the one place Optuna storages are built from config.
"""

from __future__ import annotations

import copy
import os
import random
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from nas.tracking import redact

if TYPE_CHECKING:  # a type only: nas.search.study comes after this module
    from nas.search.study import PrunerSettings

STORAGES = ("sqlite", "journal", "memory", "url", "postgres")
# storage=postgres reads its URL from this environment variable (never from the config: configs are logged).
URL_ENV = "NAS_STORAGE_URL"
RDB_STORAGES = ("sqlite", "url", "postgres")
# System attributes a retry keeps (Optuna's own retry bookkeeping and enqueued parameters); the rest
# (e.g. a DDP pruning decision of the dead attempt) belongs to the attempt, not to the architecture.
RETRY_SYSTEM_ATTRS = ("fixed_params", "failed_trial", "retry_history")


def storage_url(cfg: Mapping[str, Any], study_dir: Path) -> str:
    """A printable description of where the study lives (a URL with any password masked, or a file path)."""
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
                f"export {env}=postgresql+psycopg://<user>:<password>@<host>:5432/<database> (the URL is never "
                "logged)"
            )
        if not url.startswith(("postgresql:", "postgresql+", "postgres:")):
            raise ValueError(
                f"${env} must be a PostgreSQL URL (postgresql+psycopg://<user>:<password>@<host>:5432/<database>), "
                f"got {redact(url)!r}"
            )
        return "postgresql" + url[len("postgres") :] if url.startswith("postgres:") else url
    if name == "sqlite":
        return cfg.get("url") or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    return str(cfg.get("url"))


def with_driver(url: str) -> str:
    """`postgresql://` with the PostgreSQL driver that is installed, psycopg (3) first: SQLAlchemy 2.1 defaults
    to it, older versions to psycopg2. The `scale` extra installs psycopg 3; the URLs the platform shows are
    already `postgresql+psycopg://`."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util  # only for a PostgreSQL URL (the module is cheap; kept beside its one use)

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://" + url.removeprefix("postgresql://")
    raise ValueError(
        "storage: a PostgreSQL URL needs a driver: pip install 'psycopg[binary]' (or pip install -e '.[scale]')"
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
        from optuna.storages.journal import JournalFileBackend, JournalStorage  # only for journal storage

        path = Path(cfg.get("path") or study_dir / "journal.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    url = with_driver(_url(cfg, study_dir))
    if not url or url in ("None", "???"):  # unset, or Hydra's mandatory value left unfilled
        raise ValueError(
            "storage=url needs storage.url=<SQLAlchemy URL> (e.g. postgresql+psycopg://user@host/db)"
        )
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
                    heartbeat_stale_trial_callback=retry_callback(max_retry) if heartbeat else None,
                )
        except Exception as e:  # SQLAlchemy raises many types; the user needs the reason, not the stack
            text = str(e)
            if attempt < 5 and any(m in text for m in ("already exists", "duplicate key", "UniqueViolation")):
                # Workers started together on an empty database all create Optuna's tables; the losers of
                # that race see the winner's tables on the next try.
                time.sleep(0.2 + random.random())
                continue
            reason = redact(text.strip().splitlines()[0] if text.strip() else type(e).__name__)
            raise ValueError(f"cannot open storage {redact(url)}: {reason}") from None
    raise AssertionError("unreachable")


def check_distributed(trainer: Mapping[str, Any], pruner: PrunerSettings, storage: Mapping[str, Any]) -> None:
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
    if spawned and pruner.prunes and storage.get("name") not in RDB_STORAGES:
        raise ValueError(
            f"pruning a multi-process trial (trainer.strategy={strategy}, pruner={pruner.name}) needs an "
            f"RDB storage (sqlite, url or postgres): rank 0 reports to the study through it; storage="
            f"{storage.get('name')} cannot"
        )


class RetryLostTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry callback, queueing a clean copy: the same parameters, `retry_of` as its only user
    attribute (the dead attempt's results, worker and failure marks stay on the failed trial)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        clean = copy.deepcopy(trial)
        clean.user_attrs = {"retry_of": trial.number}
        clean.system_attrs = {k: v for k, v in trial.system_attrs.items() if k in RETRY_SYSTEM_ATTRS}
        super().__call__(study, clean)


def retry_callback(max_retry: int | None) -> RetryLostTrial:
    """Optuna's retry callback for heartbeat-stale trials (used by Optuna's own `optimize` loops too)."""
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8; chosen knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryLostTrial(max_retry=max_retry)


def will_retry(trial: FrozenTrial, max_retry: int | None) -> bool:
    """Whether a lost `trial` gets another attempt (RetryHeartbeatStaleTrialCallback's rule)."""
    return max_retry is None or len(trial.system_attrs.get("retry_history", [])) < max_retry
