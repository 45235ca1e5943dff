"""Plan the arms of an ablation, train every missing (config, seed) run through the cache, and collect results.

Runs go seed-major (every arm's seed 0, then every arm's seed 1, ...), so an interrupted ablation already
holds complete pairs for its first seeds. Arms whose configs hash the same (the baseline and `pooling=max`,
or two suite rows that mean the same thing) are trained once.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from experiments.ablation.cache import RunCache
from experiments.ablation.config import (
    Composer,
    config_key,
    keyed_part,
    not_applicable,
    plain,
    run_config,
    variant_label,
)
from experiments.ablation.init import WeightInit
from nas.data.errors import CorruptDataError, DataNotFoundError

log = logging.getLogger(__name__)
FitFn = Callable[..., Any]


@dataclasses.dataclass
class Arm:
    """One side of a comparison: the baseline or a variant, with its resolved run config and cache key."""

    label: str
    overrides: list[str]
    run_cfg: dict[str, Any] | None = None
    key: str | None = None
    skip: str | None = None  # why the arm is not run (not applicable to the data, or not reproducible)
    params: int | None = None
    macs: int | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return self.skip is None and self.key is not None

    @property
    def cost(self) -> float:
        """Relative training cost (MACs x training share x epochs), for the ETA."""
        if not self.run_cfg or not self.macs:
            return 1.0
        frac = float(self.run_cfg["data"].get("fraction", 1.0))
        return float(self.macs) * frac * float(self.run_cfg["trainer"].get("max_epochs", 1))


def plan_arm(
    compose: Composer,
    shared: Sequence[str],
    overrides: Sequence[str],
    *,
    label: str | None = None,
    requires: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Arm:
    """Compose, resolve and validate one arm (ValueError naming the arm on a bad config; no training)."""
    from nas.config import resolve_spec
    from nas.fit import validate
    from nas.latency import spec_costs

    label = label or variant_label(overrides)
    arm = Arm(label, list(overrides), meta=dict(meta or {}))
    try:
        cfg = plain(compose([*shared, *overrides]))
        base_data = plain(compose(list(shared)))["data"] if overrides else cfg["data"]
    except Exception as e:
        raise ValueError(f"{label}: {_first_line(e)}") from None
    arm.skip = not_applicable(cfg, requires, base_data)
    if arm.skip:
        return arm
    arm.run_cfg = run_config(cfg)
    try:
        validate({**arm.run_cfg, "seed": 0})
        costs = spec_costs(resolve_spec(arm.run_cfg))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{label}: {_first_line(e)}") from None
    arm.params, arm.macs = int(costs["params"]), int(costs["macs"])
    arm.key = config_key(arm.run_cfg)
    return arm


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _first_line(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text.strip() or type(e).__name__


class Progress:
    """Runs done / total and a cost-weighted ETA, printed one line per finished run."""

    def __init__(self, total: int, done: int, *, echo: Callable[[str], None] = print) -> None:
        self.total, self.done, self.echo = total, done, echo
        self.start = time.perf_counter()
        self.trained_s = 0.0
        self.trained_cost = 0.0

    def finish(self, what: str, seconds: float, cost: float, remaining_cost: float, note: str = "") -> None:
        self.done += 1
        self.trained_s += seconds
        self.trained_cost += cost
        rate = self.trained_s / self.trained_cost if self.trained_cost else math.nan
        eta = rate * remaining_cost
        self.echo(
            f"[{self.done}/{self.total}] {what}{note} ({_hms(seconds)}) | elapsed "
            f"{_hms(time.perf_counter() - self.start)}, ETA {_hms(eta) if math.isfinite(eta) else '?'}"
        )


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def unique_arms(arms: Sequence[Arm]) -> dict[str, Arm]:
    """{key: first arm with that key} of the runnable arms: arms that hash the same are one configuration."""
    unique: dict[str, Arm] = {}
    for arm in arms:
        if arm.runnable and arm.key not in unique:
            unique[arm.key] = arm  # type: ignore[index]
    return unique


def cached_records(
    arms: Sequence[Arm], *, seeds: int, cache: RunCache
) -> dict[str, dict[int, dict[str, Any]]]:
    """{key: {seed: record}} of the finished runs the cache holds for `arms` (seeds 0..seeds-1); trains nothing."""
    records: dict[str, dict[int, dict[str, Any]]] = {key: {} for key in unique_arms(arms)}
    for key in records:
        for seed in range(seeds):
            rec = cache.get(key, seed)
            if rec is not None:
                records[key][seed] = rec
    return records


def run_arms(
    arms: Sequence[Arm],
    *,
    seeds: int,
    cache: RunCache,
    metric: str,
    fit_fn: FitFn | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    latency: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[dict[str, dict[int, dict[str, Any]]], dict[str, dict[int, str]]]:
    """Train every missing (arm, seed) run; returns ({key: {seed: record}}, {key: {seed: failure reason}}).

    Records come from the cache when present; a run that raises is reported as failed (and retried by the
    next invocation, since failures are not cached), except for missing or damaged data, which stops the
    ablation with the data layer's message. With a `latency` config, each run's W&B summary gets
    its arm's latency and device (arm_latency: measured once per arm, cached).
    """
    if fit_fn is None:
        from nas.fit import fit as fit_fn
    unique = unique_arms(arms)
    todo = [(key, seed) for seed in range(seeds) for key in unique]
    records = cached_records(arms, seeds=seeds, cache=cache)
    failures: dict[str, dict[int, str]] = {key: {} for key in unique}
    pending = [(k, s) for k, s in todo if s not in records[k]]
    cached = len(todo) - len(pending)
    echo(
        f"{len(unique)} configuration(s) x {seeds} seeds = {len(todo)} runs: {cached} cached, "
        f"{len(pending)} to train (cache: {cache.root})"
    )
    progress = Progress(len(todo), cached, echo=echo)
    remaining = {(k, s): unique[k].cost for k, s in pending}

    def train(key: str, seed: int) -> None:
        arm = unique[key]
        cache.write_config(key, keyed_part(arm.run_cfg))  # type: ignore[arg-type]
        cache.clear_run(key, seed)
        cfg = copy.deepcopy(arm.run_cfg)
        cfg.update(seed=seed, output_dir=str(cache.run_dir(key, seed)), name=f"{arm.label}-seed{seed}")
        t0 = time.perf_counter()
        note = ""
        try:
            callbacks = [WeightInit(cfg.get("init", "default"))]
            summary = None
            if latency is not None:
                from nas.tracking import latency_summary

                lat = arm_latency(arm, latency, cache)
                summary = latency_summary(lat.get("value"), lat) if _finite(lat.get("value")) else None
            result = fit_fn(
                cfg, callbacks=callbacks, group=group, job_type="ablation-arm", tags=list(tags), verbose=False,
                **({"summary": summary} if summary else {}),
            )  # fmt: skip
            res = result.to_dict() if hasattr(result, "to_dict") else dict(result)
            state = str(res.get("state", "COMPLETE"))
            value = res.get("metrics", {}).get(metric)
            if state == "COMPLETE" and value is None:
                raise ValueError(f"the run reported no {metric!r} (it has {sorted(res.get('metrics', {}))})")
            # A diverged run (non-finite loss: fit() ends it as PRUNED) is a result, and the same seed would
            # diverge again: it is cached, and reported as diverged rather than given a made-up accuracy.
            records[key][seed] = cache.put(
                key, seed, res, {"label": arm.label, "seconds": time.perf_counter() - t0}
            )
            note = (
                f": {metric} {float(value):.4f}"
                if state == "COMPLETE"
                else f": {state} ({res.get('reason')})"
            )
        except (DataNotFoundError, CorruptDataError):
            raise  # missing or damaged data fails every run the same way: stop, say it once (nas.cli)
        except Exception as e:  # one failed run must not lose the others; it is retried next time
            failures[key][seed] = f"{type(e).__name__}: {_first_line(e)}"
            note = f": FAILED ({failures[key][seed]})"
            log.warning("run %s seed %d failed", arm.label, seed, exc_info=True)
        seconds = time.perf_counter() - t0
        cost = remaining.pop((key, seed))
        progress.finish(f"{arm.label} seed {seed}", seconds, cost, sum(remaining.values()), note)

    def settle(key, seed) -> None:
        """Under the claim: train (key, seed) unless another worker has finished it meanwhile."""
        rec = cache.get(key, seed)
        if rec is None:
            train(key, seed)
            return
        records[key][seed] = rec
        progress.finish(f"{unique[key].label} seed {seed}", 0.0, remaining.pop((key, seed)), 0.0,
                        " (by another worker)")  # fmt: skip

    deferred = []
    for key, seed in pending:
        with cache.claim(key, seed, wait=False) as mine:
            if mine:
                settle(key, seed)
            else:  # another worker is training it: come back when it is done
                deferred.append((key, seed))
    for key, seed in deferred:
        echo(f"waiting for another worker to finish {unique[key].label} seed {seed} ...")
        with cache.claim(key, seed, wait=True):
            settle(key, seed)
    return records, failures


def arm_latency(
    arm: Arm, latency_cfg: dict[str, Any], cache: RunCache, *, measure: bool = True
) -> dict[str, Any]:
    """The arm's latency record under the latency config (cached per config key, device and latency settings);
    with `measure=False` only the cached record ({} when there is none: nothing is timed)."""
    from nas.config import resolve_spec
    from nas.latency import LatencyConfig, device_fingerprint, latency_objective

    if not arm.runnable:
        return {}
    try:
        lcfg = LatencyConfig.from_cfg(latency_cfg)
        fp = device_fingerprint(lcfg).key
        name = f"latency-{lcfg.mode}-{fp}-b{lcfg.batch_size}.json"
        rec = cache.get_json(arm.key, name)  # type: ignore[arg-type]
        if rec is None and not measure:
            return {}
        if rec is None:
            value, rec = latency_objective(resolve_spec(arm.run_cfg), lcfg)  # type: ignore[arg-type]
            rec = {**rec, "value": value}
            cache.put_json(arm.key, name, rec)  # type: ignore[arg-type]
        return rec
    except Exception as e:  # latency is a column of the report; it must not lose the trained runs
        log.warning("latency of %s failed: %s", arm.label, e)
        return {"value": math.nan, "error": _first_line(e)}


def arm_result(
    arm: Arm,
    records: dict[int, dict[str, Any]],
    failures: dict[int, str],
    *,
    metric: str,
    latency: dict[str, Any],
) -> dict[str, Any]:
    """A plain, JSON-friendly summary of one arm: per-seed metric values and the arm's costs.

    Only completed runs give values; runs that ended otherwise (diverged) are listed with their reason.
    """
    values, diverged = [], []
    for seed, rec in sorted(records.items()):
        res = rec["result"]
        if res.get("state", "COMPLETE") == "COMPLETE" and res["metrics"].get(metric) is not None:
            values.append([seed, float(res["metrics"][metric])])
        else:
            diverged.append([seed, f"{res.get('state')}: {res.get('reason', '')}".strip()])
    walls = [float(rec["result"].get("wall_time_s", math.nan)) for rec in records.values()]
    return {
        "label": arm.label,
        "overrides": arm.overrides,
        "key": arm.key,
        "skip": arm.skip,
        "params": arm.params,
        "macs": arm.macs,
        "latency": latency,
        "values": values,
        "failures": [[seed, why] for seed, why in sorted(failures.items())],
        "diverged": diverged,
        "train_time_s": sum(walls) / len(walls) if walls else math.nan,
        "meta": arm.meta,
    }
