"""The latency objective the search calls: one number per spec, in the configured mode, with its record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from nas.latency.config import LatencyConfig
from nas.latency.costs import build_meta, count_macs, count_params
from nas.latency.measure import input_shape_of, measure_latency
from nas.latency.predictor import LatencyPredictor

UNITS = {"measured": "ms", "predicted": "ms", "macs": "MACs", "params": "params"}


def latency_objective(
    spec: Mapping[str, Any],
    cfg: Mapping[str, Any] | LatencyConfig | None = None,
    *,
    costs: Mapping[str, int] | None = None,
    model: nn.Module | None = None,
) -> tuple[float, dict[str, Any]]:
    """(value, record) of `spec` under the latency config's `mode`.

    `measured`: median ms per batch on the device; `predicted`: the per-layer table's estimate (ms);
    `macs`: multiply-accumulates per image; `params`: parameter count. The record always carries params
    and MACs, and for the latency modes the device fingerprint, batch size and how the figure was obtained,
    so a figure is never compared with one from other hardware.

    Work done once: `costs` ({"params", "macs"} of `spec`, e.g. the trial's `nas.latency.spec_costs`) are
    taken as they are instead of building and counting the network again; `model` (the spec's network
    with real weights) is timed instead of building one (`measured` mode only).
    """
    cfg = LatencyConfig.from_cfg(cfg)
    if costs is None:
        meta = build_meta(spec)
        costs = {"params": count_params(meta), "macs": count_macs(meta, input_shape_of(spec))}
    record: dict[str, Any] = {
        "mode": cfg.mode,
        "unit": UNITS[cfg.mode],
        "params": int(costs["params"]),
        "macs": int(costs["macs"]),
    }
    if cfg.mode in ("macs", "params"):
        value = float(record[cfg.mode])
    elif cfg.mode == "measured":
        result = measure_latency(spec if model is None else model, input_shape_of(spec), cfg)
        value = result.median_ms
        record.update(result.record())
    else:
        prediction = LatencyPredictor(cfg).predict(spec)
        value = prediction.median_ms
        record.update(prediction.record())
    record["mode"] = cfg.mode
    record["value"] = value
    return value, record
