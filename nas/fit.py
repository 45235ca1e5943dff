"""Fit one fully-resolved configuration and return its result record: train, ablate and search all call this."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from nas import timing_lock
from nas.config import make_callbacks, make_trainer, resolve_spec, validate_trainer
from nas.identity import identity_key
from nas.latency.costs import spec_costs
from nas.module import Classifier, NonFiniteLossError
from nas.optim import validate_optim
from nas.speed import parse_channels_last
from nas.tracking import (
    failure_state,
    finish_run,
    latency_summary,
    make_logger,
    save_run_record,
    validate_logger,
    write_json,
)


class ThroughputMonitor(pl.Callback):
    """Training images per second, counting only training batches (data slicing included, validation not)."""

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self._mark = 0.0
        self.epoch_rates: list[float] = []
        self._epoch_images = 0
        self._epoch_seconds = 0.0
        self.first_epoch: int | None = None  # the first epoch this fit trained (> 0 when it resumed)

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.first_epoch is None:
            self.first_epoch = trainer.current_epoch
        self._epoch_images, self._epoch_seconds = 0, 0.0
        self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # type: ignore[override]
        now = time.perf_counter()
        self._epoch_seconds += now - self._mark
        self._epoch_images += len(batch[1])
        self._mark = now

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.images += self._epoch_images
        self.seconds += self._epoch_seconds
        if self._epoch_seconds > 0:
            self.epoch_rates.append(self._epoch_images / self._epoch_seconds)
            if trainer.logger is not None:  # per-epoch throughput beside the epoch's metrics
                trainer.logger.log_metrics(
                    {"train/images_per_s": self.epoch_rates[-1], "epoch": trainer.current_epoch},
                    step=trainer.global_step,
                )

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else float("nan")


@dataclasses.dataclass
class RunResult:
    """What one fit produced: the record every caller (train, ablate, search) stores and compares."""

    name: str
    output_dir: str
    spec: dict[str, Any]
    params: int
    macs: int
    metrics: dict[str, float]
    wall_time_s: float
    train_images_per_s: float
    state: str = "COMPLETE"
    reason: str = ""
    checkpoint: str | None = None
    seed: int = 0
    val_size: int | None = None  # validation images the val/ metrics were measured on
    resumed_epoch: int | None = None  # epochs an interrupted run had finished when this one resumed it

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check every part of a config that can be checked without training; returns the resolved spec."""
    return checked(cfg)[0]


def checked(
    cfg: dict[str, Any], costs: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """`validate`, also returning the network's {"params", "macs"} at the spec's input size.

    The network is built once, on the meta device (no weights), and run once to count its MACs: that raises
    on unknown blocks and impossible shapes. A caller that already counted the resolved spec passes `costs`
    and nothing is built.
    """
    from nas.data import validate_data_config

    for key in ("data", "model", "optim", "trainer"):
        if key not in cfg:
            raise ValueError(f"config has no {key!r} section; it needs data, model, optim and trainer")
    validate_data_config(cfg["data"])
    validate_optim(cfg["optim"])
    validate_logger(cfg.get("logger") or {"name": "none"})
    validate_trainer(cfg["trainer"])
    parse_channels_last(cfg["trainer"].get("channels_last", "auto"))
    spec = resolve_spec(cfg)
    if costs is None:
        costs = spec_costs(spec)  # raises on unknown blocks / impossible shapes
    if cfg.get("ckpt_path"):
        validate_resume(Path(cfg["ckpt_path"]), spec)
    return spec, {"params": int(costs["params"]), "macs": int(costs["macs"])}


def validate_resume(path: Path, spec: dict[str, Any]) -> None:
    """A checkpoint to resume from must exist and hold this configuration's architecture."""
    if not path.is_file():
        raise ValueError(
            f"ckpt_path={path} is not a file; resume from a run's checkpoint, e.g. "
            "ckpt_path=outputs/train/<run>/checkpoints/last.ckpt"
        )
    # weights_only=False: a Lightning checkpoint holds plain hyperparameters beside the tensors (our own file)
    saved = torch.load(path, map_location="cpu", weights_only=False).get("hyper_parameters", {}).get("spec")
    if saved is not None and saved != spec:
        raise ValueError(
            f"ckpt_path={path} holds another architecture ({saved.get('name')!r}, "
            f"{saved.get('input_size')} px) than this configuration's ({spec.get('name')!r}, "
            f"{spec.get('input_size')} px): resume with the model and data options of the interrupted run"
        )


def resume_path(cfg: Mapping[str, Any]) -> Path | None:
    """Where a run of `cfg` keeps the checkpoint of its last finished epoch while it trains:
    `<resume_dir>/<identity key>/last.ckpt`, or None without `resume_dir` or with `checkpoint: false`.

    The key is the run's training identity (`nas.identity`: what decides its result, not its output folder or
    name), so the same configuration run again (a requeued SLURM job, a search trial queued again) finds the
    checkpoint an interrupted run left and resumes from it.
    """
    where = cfg.get("resume_dir")
    if not where or not cfg.get("checkpoint", True):
        return None
    return Path(where) / identity_key(cfg) / "last.ckpt"


def fit(
    cfg: dict[str, Any],
    *,
    callbacks: list[pl.Callback] | None = None,
    group: str | None = None,
    job_type: str = "train",
    tags: list[str] | None = None,
    verbose: bool = True,
    summary: dict[str, Any] | None = None,
    costs: Mapping[str, int] | None = None,
) -> RunResult:
    """Train, validate and (if `cfg.test`) test one configuration; save its record in `cfg.output_dir`.

    W&B (logger=wandb): the run carries the flattened config and spec; its summary gets state, reason,
    params, MACs, final metrics, throughput, plus `summary` (what the caller knows: the latency and its
    device from `nas.tracking.latency_summary`, a trial's number and parameters). With a `latency` section
    in `cfg` (`+latency=cpu` on the train command) the latency is measured after training and logged too.
    A run that raises is logged with its state (FAIL / PRUNED / INTERRUPTED) and exit code, then re-raised.

    `costs`: {"params", "macs"} of the resolved spec when the caller counted them already (a search trial):
    then the network is built only once, for training.

    Resuming (`cfg.resume_dir`, see `resume_path`): every epoch's checkpoint is written to the resume file. A
    run interrupted (SIGTERM, Ctrl-C, a search's stop) leaves it there, and the next run of the same
    configuration resumes from it. The epoch in progress is trained again; an epoch's data order and
    augmentation follow from the seed, so the result is the uninterrupted run's up to the random draws of
    dropout-like layers, which the checkpoint does not hold. A run that ends otherwise moves the file to
    `checkpoints/last.ckpt` in its run folder. An explicit `cfg.ckpt_path` is resumed from instead.
    """
    from nas.data import build_datamodule

    spec, costs = checked(cfg, costs)
    seed = int(cfg.get("seed", 0))
    out = Path(cfg.get("output_dir") or f"outputs/runs/{time.strftime('%Y%m%d-%H%M%S')}")
    name = str(cfg.get("name") or spec.get("name", "run"))
    pl.seed_everything(seed, workers=True, verbose=False)
    data_cfg = dict(cfg["data"])
    if data_cfg.get("seed") is None:
        data_cfg["seed"] = seed
    trainer_cfg = dict(cfg["trainer"])
    user_callbacks = make_callbacks(cfg.get("callbacks"))  # before any compute: a bad entry is an input error
    save_run_record(out, cfg, spec)
    resume = resume_path(cfg)
    ckpt_path = cfg.get("ckpt_path") or None
    if ckpt_path is None and resume is not None and resume.is_file():
        # An interrupted run of this configuration: go on after its last finished epoch.
        ckpt_path = str(resume)

    dm = build_datamodule(data_cfg)
    module = Classifier(
        spec,
        cfg["optim"],
        batch_size=int(data_cfg.get("batch_size", 128)),
        channels_last=trainer_cfg.get("channels_last", "auto"),
        compile=bool(trainer_cfg.get("compile", False)),
    )
    params, macs = costs["params"], costs["macs"]
    logger = make_logger(
        cfg.get("logger") or {"name": "none"},
        out,
        {**cfg, "spec": spec, "params": params, "macs": macs},
        name=name,
        group=group,
        job_type=job_type,
        tags=tags,
    )
    monitor = ThroughputMonitor()
    cbs: list[pl.Callback] = [monitor, *user_callbacks, *(callbacks or [])]
    if timing_lock.lock_path() is not None:  # another worker of this search times latency between our steps
        cbs.append(timing_lock.StepLock(timing_lock.lock_path()))
    if (
        logger is not None
    ):  # the learning rate per epoch, as `train/lr` (Lightning refuses it without a logger)
        from pytorch_lightning.callbacks import LearningRateMonitor

        cbs.append(LearningRateMonitor(logging_interval="epoch"))
    ckpt_cb = None
    if cfg.get("checkpoint", True):
        from pytorch_lightning.callbacks import ModelCheckpoint

        # With a resume file, it is the one checkpoint written per epoch (moved to the run folder at the end).
        where, stem = (resume.parent, resume.stem) if resume else (out / "checkpoints", "last")
        ckpt_cb = ModelCheckpoint(
            dirpath=str(where), filename=stem, save_top_k=1, monitor=None, enable_version_counter=not resume
        )
        cbs.append(ckpt_cb)
    try:
        trainer = make_trainer(
            trainer_cfg,
            logger=logger,
            callbacks=cbs,
            out=out,
            enable_checkpointing=ckpt_cb is not None,
            enable_model_summary=False,
            enable_progress_bar=bool(trainer_cfg.get("enable_progress_bar", verbose)),
        )
    except BaseException as e:  # the W&B run has started: close it as failed
        state, reason = failure_state(e)
        finish_run(logger, state=state, reason=reason)
        raise
    if logger is not None:
        logger.log_hyperparams({"params": params, "macs": macs})
    start = time.perf_counter()
    state, reason = "COMPLETE", ""
    metrics: dict[str, float] = {}
    extra = dict(summary or {})
    try:
        with warnings.catch_warnings():  # resuming: the checkpoint's folder holds it, as it should
            warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
            trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
        if ckpt_path and monitor.first_epoch is None:
            # The checkpoint had every epoch trained (interrupted after its last save): fit trained nothing, so
            # validate for the metrics the run reports.
            trainer.validate(module, datamodule=dm, verbose=False)
        metrics = scalar_metrics(trainer)
        if cfg.get("test", True):
            trainer.test(module, datamodule=dm, verbose=False)
            metrics.update({k: v for k, v in scalar_metrics(trainer).items() if k.startswith("test/")})
        if cfg.get("latency") and "latency/value" not in extra:
            extra.update(_measure_latency(spec, cfg["latency"]))
    except NonFiniteLossError as e:
        # Divergence is a result, not a crash: the run is recorded as pruned with the reason.
        state, reason = "PRUNED", str(e)
        metrics = scalar_metrics(trainer)
    except BaseException as e:  # failed, pruned by Optuna, interrupted: logged as such, then raised
        state, reason = failure_state(e)
        metrics = scalar_metrics(trainer)
        raise
    finally:
        wall = time.perf_counter() - start
        kept = None
        if resume is not None and state != "INTERRUPTED":
            kept = _keep_checkpoint(resume, out)
        elif resume is not None and verbose and resume.is_file():
            print(f"interrupted: {resume} holds the last finished epoch; the same command resumes from it")
        final = {k: v for k, v in metrics.items() if not k.endswith("_step")}
        finish_run(
            logger,
            state=state,
            reason=reason,
            summary={
                **extra,
                **final,
                "params": params,
                "macs": macs,
                "train/images_per_s": monitor.images_per_s,
                "wall_time_s": wall,
                "seed": seed,
            },
        )
    metrics = {k: v for k, v in sorted(metrics.items()) if not k.endswith("_step")}
    resumed = monitor.first_epoch if monitor.first_epoch is not None else trainer.current_epoch
    result = RunResult(
        name=name,
        output_dir=str(out),
        spec=spec,
        params=params,
        macs=macs,
        metrics=metrics,
        wall_time_s=wall,
        train_images_per_s=monitor.images_per_s,
        state=state,
        reason=reason,
        checkpoint=(
            str(kept) if kept else (ckpt_cb.last_model_path or ckpt_cb.best_model_path) if ckpt_cb else None
        ),
        seed=seed,
        val_size=dm.val_size if getattr(dm, "splits", None) else None,
        resumed_epoch=resumed if ckpt_path else None,
    )
    write_json(out / "metrics.json", result.to_dict())
    return result


def _keep_checkpoint(resume: Path, out: Path) -> Path | None:
    """Move a finished run's resume checkpoint to `checkpoints/last.ckpt` in its run folder (None: there is none)."""
    target = out / "checkpoints" / "last.ckpt"
    if not resume.is_file():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(resume, target)
    except FileNotFoundError:  # another run of the same configuration (a twin worker) moved it first
        return None
    with contextlib.suppress(OSError):  # the key's folder, now empty
        resume.parent.rmdir()
    return target


def scalar_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The trainer's current scalar metrics as floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}


def _measure_latency(spec: dict[str, Any], latency_cfg: dict[str, Any]) -> dict[str, Any]:
    """The trained network's latency under `latency_cfg` as summary keys (a failure is a warning, not a crash)."""
    import logging

    from nas.latency import latency_objective

    try:
        value, record = latency_objective(spec, latency_cfg)
    except Exception as e:  # noqa: BLE001 - latency is a column of the record, not the run's result
        logging.getLogger(__name__).warning("latency measurement failed: %s", e)
        return {}
    return latency_summary(value, record)
