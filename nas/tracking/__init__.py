"""Experiment tracking every run uses: run records on disk and W&B runs that work online, offline or not at
all. No secret (API key, a password in a storage URL) leaves the process. (The search's summary run is the
search's own, nas.search.reporting.summary_run; the latency profile's run lives with its study,
experiments/profile/tracking.py.)

    records   redact, write_json, save_run_record, git_revision, environment, flatten (files on disk)
    runs      W&B modes, init_run / make_logger / finish_run (conventions in its docstring), sync_command
"""

from nas.tracking.records import (
    REPO_ROOT,
    environment,
    flatten,
    git_revision,
    redact,
    redact_argv,
    redact_files,
    redact_hydra_outputs,
    redact_text,
    save_run_record,
    write_json,
)
from nas.tracking.runs import (
    EXIT_CODES,
    LOGGERS,
    WANDB_MODES,
    failure_state,
    finish_run,
    init_run,
    latency_summary,
    logger_run,
    make_logger,
    offline_mark,
    offline_runs,
    resolve_wandb_mode,
    server_reachable,
    sync_command,
    trial_summary,
    validate_logger,
    wandb_api_key_present,
)

__all__ = [
    "EXIT_CODES",
    "LOGGERS",
    "REPO_ROOT",
    "WANDB_MODES",
    "environment",
    "failure_state",
    "finish_run",
    "flatten",
    "git_revision",
    "init_run",
    "latency_summary",
    "logger_run",
    "make_logger",
    "offline_mark",
    "offline_runs",
    "redact",
    "redact_argv",
    "redact_files",
    "redact_hydra_outputs",
    "redact_text",
    "resolve_wandb_mode",
    "save_run_record",
    "server_reachable",
    "sync_command",
    "trial_summary",
    "validate_logger",
    "wandb_api_key_present",
    "write_json",
]
