"""Hardware latency: measured on a device in a runtime, predicted from a per-layer table, or proxied by MACs /
params; and the ONNX export of a network as it ships."""

from nas.latency.cache import LatencyCache
from nas.latency.config import MODES, LatencyConfig, default_cache_path
from nas.latency.costs import count_macs, count_params, spec_costs
from nas.latency.export import ExportRecord, export_model
from nas.latency.fingerprint import Fingerprint, device_fingerprint
from nas.latency.measure import LatencyResult, fixed_threads, measure_latency
from nas.latency.objective import latency_objective
from nas.latency.predictor import LatencyPredictor, Prediction
from nas.latency.runtimes import RUNTIMES, ExportError, export_onnx

__all__ = [
    "MODES",
    "RUNTIMES",
    "ExportError",
    "ExportRecord",
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
    "export_model",
    "export_onnx",
    "fixed_threads",
    "latency_objective",
    "measure_latency",
    "spec_costs",
]
