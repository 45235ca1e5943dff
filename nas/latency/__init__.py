"""Hardware latency: measured on a device, predicted from a per-layer table, or proxied by MACs / params."""

from nas.latency.cache import LatencyCache
from nas.latency.config import MODES, LatencyConfig, default_cache_path
from nas.latency.costs import count_macs, count_params, spec_costs
from nas.latency.fingerprint import Fingerprint, device_fingerprint
from nas.latency.measure import LatencyResult, fixed_threads, measure_latency
from nas.latency.objective import latency_objective
from nas.latency.predictor import LatencyPredictor, Prediction

__all__ = [
    "MODES",
    "Fingerprint",
    "LatencyCache",
    "LatencyConfig",
    "LatencyPredictor",
    "LatencyResult",
    "Prediction",
    "count_macs",
    "count_params",
    "default_cache_path",
    "device_fingerprint",
    "fixed_threads",
    "latency_objective",
    "measure_latency",
    "spec_costs",
]
