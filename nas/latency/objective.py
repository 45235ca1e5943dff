"""The latency objective the search calls: one number per spec, in the configured mode, with its record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.latency.config import LatencyConfig
from nas.latency.costs import build_meta, count_macs, count_params
from nas.latency.measure import input_shape_of, measure_latency
from nas.latency.predictor import LatencyPredictor

UNITS = {"measured": "ms", "predicted": "ms", "macs": "MACs", "params": "params"}


def latency_objective(
    spec: Mapping[str, Any], cfg: Mapping[str, Any] | LatencyConfig | None = None
) -> tuple[float, dict[str, Any]]:
    """(value, record) of `spec` under the latency config's `mode`.

    `measured`: median ms per batch on the device; `predicted`: the per-layer table's estimate (ms);
    `macs`: multiply-accumulates per image; `params`: parameter count. The record always carries params
    and MACs, and for the latency modes the device fingerprint, batch size and how the figure was obtained,
    so a figure is never compared with one from other hardware.
    """
    cfg = LatencyConfig.from_cfg(cfg)
    meta = build_meta(spec)
    record: dict[str, Any] = {
        "mode": cfg.mode,
        "unit": UNITS[cfg.mode],
        "params": count_params(meta),
        "macs": count_macs(meta, input_shape_of(spec)),
    }
    if cfg.mode in ("macs", "params"):
        value = float(record[cfg.mode])
    elif cfg.mode == "measured":
        result = measure_latency(spec, None, cfg)
        value = result.median_ms
        record.update(result.record())
    else:
        prediction = LatencyPredictor(cfg).predict(spec)
        value = prediction.median_ms
        record.update(prediction.record())
    record["mode"] = cfg.mode
    record["value"] = value
    return value, record
