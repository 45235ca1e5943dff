"""W&B runs: mode resolution (online / offline / disabled), start-up that never hangs, the Lightning logger,
run summaries with state and exit code, and the `wandb sync` command for runs written offline.

Conventions (every W&B run the platform writes): `project`, `entity` and the folder from the logger config,
whose defaults read WANDB_PROJECT, WANDB_ENTITY and WANDB_DIR; `group` = the study or
ablation name; `job_type` = train | trial | baseline | retrain | ablation-arm | summary | profile; tags
`data:<dataset>`, `space:<space>`, `axis:<factor>`, `suite:<suite>`, `model:<reference net>`; the resolved
config flattened (`data.batch_size`, `spec.stages`, ...); the summary holds `state` (COMPLETE, PRUNED, FAIL,
INTERRUPTED), `reason`, `params`, `macs`, `latency/*` with the device fingerprint when known, final metrics and
`train/images_per_s`. The exit code tells states apart too (EXIT_CODES).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import netrc
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.tracking.records import flatten, git_revision, redact, redact_argv

log = logging.getLogger("nas.tracking")

LOGGERS = ("wandb", "csv", "tensorboard", "none")
WANDB_MODES = ("auto", "online", "offline", "disabled")
DEFAULT_PROJECT = "cnn-nas"
DEFAULT_BASE_URL = "https://api.wandb.ai"
# W&B marks a run with a non-zero exit code as failed; the code says which way it ended (130: like Ctrl-C).
EXIT_CODES = {"COMPLETE": 0, "FAIL": 1, "PRUNED": 2, "INTERRUPTED": 130}
MAX_TAG = 64  # W&B's limit on a tag's length

# Offline runs this process wrote, [(run folder, group)]: the `wandb sync` command printed at the end.
_OFFLINE: list[tuple[Path, str | None]] = []
_ARGV_LOCK = threading.Lock()
_ONLINE_FAILED: set[str] = set()  # servers an online start failed on in this process


# ------------------------------------------------------------------------------------------------- modes


def wandb_api_key_present() -> bool:
    """Whether an API key is configured (environment or ~/.netrc), i.e. online logging can work."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        host = _host(base_url()) or "api.wandb.ai"
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """auto -> online with an API key, offline without. WANDB_MODE in the environment overrides the config,
    except that a config saying `disabled` stays disabled (the environment never turns logging on)."""
    if mode not in WANDB_MODES:
        raise ValueError(f"unknown logger.mode {mode!r}; valid modes: {', '.join(WANDB_MODES)}")
    if mode == "disabled":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled", "dryrun"):
        return "offline" if env == "dryrun" else env
    if mode == "auto":
        return "online" if wandb_api_key_present() else "offline"
    return mode


def validate_logger(cfg: Mapping[str, Any]) -> None:
    """Check a logger config (conf/logger/*.yaml) before any compute."""
    name = cfg.get("name", "none")
    if name not in LOGGERS:
        raise ValueError(f"unknown logger {name!r}; valid loggers: {', '.join(LOGGERS)}")
    if name == "wandb":
        resolve_wandb_mode(cfg.get("mode", "auto"))
    if name == "tensorboard":
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ValueError(
                'logger=tensorboard needs TensorBoard: pip install tensorboard (or the ".[tensorboard]" extra)'
            )


def base_url() -> str:
    """The W&B server this process would talk to (WANDB_BASE_URL, else the public cloud)."""
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def _host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).hostname or ""


@functools.lru_cache(maxsize=8)
def server_reachable(url: str, timeout_s: float = 5.0) -> bool:
    """Whether a W&B server answers at `url` within `timeout_s` (proxies honoured; no credentials sent).

    It POSTs an empty GraphQL query to `<url>/graphql`: a W&B server answers it (200, or 400 / 401 / 403
    without a key). No answer, a 404 (not a W&B server: a captive portal or an intercepting network),
    407 (proxy authentication) or a 5xx (a proxy or load balancer that cannot reach it) count as
    unreachable. Cached for the process: a search with hundreds of trials probes once.
    """
    request = urllib.request.Request(
        url.rstrip("/") + "/graphql",
        data=b'{"query": "{ __typename }"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return True
    except urllib.error.HTTPError as e:
        return e.code not in (404, 407) and e.code < 500
    except (OSError, ValueError):
        return False


# -------------------------------------------------------------------------------------------- start a run


@contextlib.contextmanager
def _redacted_argv() -> Iterator[None]:
    """W&B records sys.argv with the run: hide secrets passed on the command line while it does."""
    with _ARGV_LOCK:
        saved = list(sys.argv)
        sys.argv[:] = [saved[0], *redact_argv(saved[1:])] if saved else saved
        try:
            yield
        finally:
            sys.argv[:] = saved


def _tags(tags: Sequence[str]) -> list[str]:
    return sorted({str(t)[:MAX_TAG] for t in tags if t})


def _is_rank_zero() -> bool:
    try:
        from lightning_fabric.utilities.rank_zero import rank_zero_only

        return getattr(rank_zero_only, "rank", 0) == 0
    except ImportError:
        return True


def init_run(
    logger_cfg: Mapping[str, Any] | None,
    *,
    dir: str | Path,
    name: str,
    job_type: str,
    group: str | None = None,
    tags: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> Any:
    """Start a W&B run as the logger config says; None when the logger is not W&B, is disabled, or W&B fails.

    Online needs an API key and a server that answers: an unreachable one is detected by a short probe
    (`logger.probe_timeout`, s) and the run goes offline instead, as does an online start that fails or
    takes longer than `logger.init_timeout`. The config is flattened with secrets masked, and the command
    line W&B records is masked too. Never raises: tracking must not cost a training run.
    """
    cfg = dict(logger_cfg or {})
    if cfg.get("name", "none") != "wandb":
        return None
    mode = resolve_wandb_mode(cfg.get("mode", "auto"))
    if mode == "disabled" or not _is_rank_zero():
        return None
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a dependency
        log.warning("wandb is not installed: this run is not tracked")
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    if mode == "online" and base_url() in _ONLINE_FAILED:
        mode = "offline"
    elif mode == "online" and not server_reachable(base_url(), float(cfg.get("probe_timeout", 5))):
        log.warning(
            "W&B server %s is unreachable: logging offline (upload later with `wandb sync`)", base_url()
        )
        mode = "offline"
    git = git_revision()
    full_config = {**flatten(redact(dict(config or {}))), **flatten({"git": dict(git)})}
    # The logger config's defaults read WANDB_PROJECT / WANDB_ENTITY / WANDB_DIR (conf/logger/wandb.yaml);
    # a config made without them still honours the environment.
    dir = Path(cfg.get("dir") or os.environ.get("WANDB_DIR") or dir)
    dir.mkdir(parents=True, exist_ok=True)
    kwargs = dict(
        project=cfg.get("project") or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        entity=cfg.get("entity") or os.environ.get("WANDB_ENTITY") or None,
        name=name,
        group=group or cfg.get("group"),
        job_type=job_type,
        tags=_tags([*(cfg.get("tags") or []), *tags]),
        dir=str(dir),
        config=full_config,
        reinit="finish_previous",
    )
    for attempt in [mode, "offline"] if mode == "online" else [mode]:
        # W&B's own git capture would record the remote URL as is (a token inside it included): the
        # config carries the commit, the dirty flag and the masked remote instead.
        settings = wandb.Settings(
            init_timeout=float(cfg.get("init_timeout", 60)), console="off", disable_git=True
        )
        try:
            with _redacted_argv():
                run = wandb.init(mode=attempt, settings=settings, **kwargs)
        except Exception as e:  # noqa: BLE001 - W&B raises many types (CommError, UsageError, timeouts)
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            if attempt == "online":
                log.warning("W&B online start failed (%s): logging offline instead", first)
                _ONLINE_FAILED.add(base_url())  # the next runs of this process go offline at once
                continue
            log.warning("W&B could not start a run (%s): this run is not tracked", first)
            return None
        if attempt == "offline":
            _OFFLINE.append((Path(run.dir).parent, kwargs["group"]))
        return run
    return None


def run_mode(run: Any) -> str:
    """online / offline / disabled of a started run."""
    try:
        return str(run.settings.mode)
    except AttributeError:
        return "disabled"


# -------------------------------------------------------------------------------------------- the logger


def _lightning_logger_cls() -> type:
    from pytorch_lightning.loggers import WandbLogger
    from pytorch_lightning.utilities import rank_zero_only

    class FlatWandbLogger(WandbLogger):
        """Lightning's W&B logger around a run started by init_run.

        The run's config is complete from the start (resolved config, spec, params, MACs, git revision,
        flattened, secrets masked). Lightning's automatic copy of the module's and datamodule's
        hyperparameters would repeat it under other, unprefixed names, so it is not logged.
        """

        @rank_zero_only
        def log_hyperparams(self, params: Any) -> None:
            return None

    return FlatWandbLogger


def make_logger(
    cfg: dict[str, Any],
    out: Path,
    run_config: dict[str, Any],
    *,
    name: str,
    group: str | None = None,
    job_type: str = "train",
    tags: list[str] | None = None,
):
    """The Lightning logger the config asks for (None for `none`). W&B never blocks on a missing network.

    The W&B run is started here (see init_run) and handed to Lightning, with the dataset tag added.
    """
    validate_logger(cfg)
    kind = cfg.get("name", "none")
    if kind == "none":
        return None
    if kind == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(out), name="csv", version="")
    if kind == "tensorboard":
        from pytorch_lightning.loggers import TensorBoardLogger

        # events in <run>/tensorboard/ (`tensorboard --logdir outputs/train` compares runs); no hp_metric
        # placeholder (-1) beside the real metrics
        return TensorBoardLogger(save_dir=str(out), name="tensorboard", version="", default_hp_metric=False)
    if resolve_wandb_mode(cfg.get("mode", "auto")) == "disabled":
        return None
    data = (run_config.get("data") or {}).get("name")
    tags = [*(tags or []), *([f"data:{data}"] if data else [])]
    cls = _lightning_logger_cls()
    if not _is_rank_zero():
        # DDP workers: Lightning's logger stays a placeholder there (only rank 0 starts the run)
        return cls(
            project=cfg.get("project") or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            name=name,
            save_dir=str(out),
        )
    run = init_run(cfg, dir=out, name=name, group=group, job_type=job_type, tags=tags, config=run_config)
    if run is None:
        return None
    # Metrics are plotted against Lightning's global step (as WandbLogger does for the runs it starts).
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    return cls(experiment=run, save_dir=str(out), name=name)


def logger_run(logger: Any) -> Any:
    """The W&B run behind a Lightning logger (None for other loggers or none)."""
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger) and getattr(logger, "_experiment", None) is not None:
        return logger._experiment
    return None


# ------------------------------------------------------------------------------------------- end a run


def failure_state(exc: BaseException) -> tuple[str, str]:
    """(state, reason) of a run that raised: PRUNED (optuna.TrialPruned), INTERRUPTED (Ctrl-C), else FAIL."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    if type(exc).__name__ == "TrialPruned":
        return "PRUNED", first or "pruned"
    if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "StopRequested":
        return "INTERRUPTED", first or "interrupted"
    if isinstance(exc, SystemExit):  # Lightning turns a Ctrl-C during training into sys.exit(1)
        return "INTERRUPTED", f"interrupted (exit status {exc.code})"
    return "FAIL", f"{type(exc).__name__}: {first}".rstrip(": ")


def latency_summary(value: float | None, record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The summary keys of a latency figure: `latency/value` in `latency/unit`, its mode, batch size, and
    the device it was measured on (`latency/device_key`, `latency/device`)."""
    if value is None:
        return {}
    rec = dict(record or {})
    out: dict[str, Any] = {"latency/value": float(value), "latency/unit": rec.get("unit", "")}
    for key in ("mode", "batch_size", "stable", "rel_ci"):
        if rec.get(key) is not None:
            out[f"latency/{key}"] = rec[key]
    if rec.get("fingerprint"):
        out["latency/device_key"] = rec["fingerprint"]
    if isinstance(rec.get("device"), Mapping):
        out["latency/device"] = dict(rec["device"])
    return out


def trial_summary(number: int, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Summary keys of a search trial's run: its number, its sampled parameters, the reference network it came
    from when it was enqueued from one (`reference`), and its latency with the device it was measured on
    (from the trial's user attributes)."""
    record = {
        **(attrs.get("latency_record") or {}),
        "unit": attrs.get("latency_unit", ""),
        "fingerprint": attrs.get("device_key"),
        "device": attrs.get("device"),
    }
    return {
        "trial": int(number),
        "trial_params": dict(params),
        **({"reference": str(attrs["reference"])} if attrs.get("reference") else {}),
        **latency_summary(attrs.get("latency"), record),
    }


def finish_run(
    run_or_logger: Any, *, state: str = "COMPLETE", reason: str = "", summary: Mapping[str, Any] | None = None
) -> None:
    """Write `state`, `reason` and `summary` into the run's summary and close it with the state's exit code.

    A no-op for loggers other than W&B; never raises (closing a logger must not hide the run's own result).
    """
    run = run_or_logger if hasattr(run_or_logger, "summary") else logger_run(run_or_logger)
    if run is None:
        return
    try:
        values = {
            k: v for k, v in redact(dict(summary or {})).items() if v is not None and _finite_or_other(v)
        }
        run.summary.update({**values, "state": state, "reason": reason})
    except Exception as e:  # noqa: BLE001
        log.warning("could not write the W&B summary: %s", e)
    try:
        run.finish(exit_code=EXIT_CODES.get(state, 1))
    except Exception as e:  # noqa: BLE001
        log.warning("could not close the W&B run: %s", e)


def _finite_or_other(v: Any) -> bool:
    """False for NaN / inf floats (a diverged run's loss): JSON has no spelling for them."""
    import math

    return not isinstance(v, float) or math.isfinite(v)


# ------------------------------------------------------------------------------------------- wandb sync


def offline_mark() -> int:
    """A position in this process's list of offline runs (pass to sync_command(since=...))."""
    return len(_OFFLINE)


def offline_runs(*, since: int = 0, group: str | None = None) -> list[Path]:
    """Offline run folders this process wrote (after `since`; only `group`'s when given) that still exist."""
    return [p for p, g in _OFFLINE[since:] if (group is None or g == group) and p.exists()]


def sync_command(*, since: int = 0, group: str | None = None) -> str | None:
    """`wandb sync <run folders>` for the offline runs this process wrote, or None when there are none.

    Runs in sibling folders are folded into one glob (`.../trials/*/wandb/offline-run-*`); `wandb sync`
    skips runs it already uploaded, so a glob that also matches older runs is harmless.
    """
    import shlex

    runs = offline_runs(since=since, group=group)
    if not runs:
        return None
    owners: dict[Path, list[Path]] = {}
    for r in runs:  # r = <owner>/wandb/offline-run-*
        owner = r.parent.parent
        owners.setdefault(owner.parent, []).append(owner)
    patterns: list[str] = []
    for parent, kids in owners.items():
        kids = sorted(set(kids))
        if len(kids) > 1:
            patterns.append(f"{shlex.quote(str(parent))}/*/wandb/offline-run-*")
        else:
            patterns.append(f"{shlex.quote(str(kids[0]))}/wandb/offline-run-*")
    return "wandb sync " + " ".join(sorted(dict.fromkeys(patterns)))
