"""Latency predicted from a per-layer lookup table: the sum of the layers' latencies plus a fixed overhead.

Each child of `Network.features` (one per stem / stage entry) and the head is timed once per (layer,
input shape, batch size, device fingerprint) and stored in a SQLite table that any number of processes
share. A layer is timed in place, inside the first network it appears in (`measure_layers`): timed alone
in a loop it runs with its weights and code hot from its previous call, which made the sum of isolated
timings of a small conv net 10 % faster than the network on the build machine. A network's prediction is

    sum_i t_i + (t_shell - t_call)

where t_i are the table's layer latencies, t_shell the latency of an empty network (the
`head(features(x))` call structure with no layers) and t_call that of a call doing nothing (the head's
call, which t_i already includes); both are measured once per device, runtime and batch size.

Layers are timed in the configured runtime (one ONNX graph or frozen TorchScript module per layer, so
the conv + BN + activation fusions inside a layer happen as in the whole network). In a graph runtime
(`GRAPH_RUNTIMES`) the network is one call while its layers were timed as n calls, so the n - 1 extra
calls are taken off:

    sum_i t_i + (t_shell - t_call) - (n - 1) t_call

Fusion across layer boundaries (rare: the boundaries are stage entries) is not modelled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from nas.latency.cache import LatencyCache
from nas.latency.config import LatencyConfig
from nas.latency.costs import build_meta
from nas.latency.fingerprint import Fingerprint, device_fingerprint
from nas.latency.measure import input_shape_of, measure_latency, measure_layers
from nas.latency.runtimes import GRAPH_RUNTIMES

# Bump when what a key describes, or how a layer is timed, changes: old rows are then simply not found.
KEY_VERSION = 3  # 3: the runtime is part of the device fingerprint and of every key


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces; tuples as lists)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def key_of(what: Mapping[str, Any]) -> str:
    """The cache key of a layer description: a hash of its canonical JSON."""
    return hashlib.sha256(canonical_json(what).encode()).hexdigest()[:32]


def _arch_hash(module: nn.Module) -> str:
    # The module's printed structure: a key changes if the block library builds the entry differently.
    return hashlib.sha256(repr(module).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LayerTerm:
    """One layer of a prediction: its path, cache key, description, input shape and isolated latency."""

    name: str
    key: str
    what: dict[str, Any]
    in_shape: tuple[int, ...]
    ms: float = float("nan")
    cached: bool = False


@dataclass(frozen=True)
class Prediction:
    """A predicted latency (ms per call of `batch_size` images) with its per-layer breakdown."""

    median_ms: float
    batch_size: int
    fingerprint: str
    device: dict[str, Any]
    overhead_ms: float  # t_shell - t_call, less (n - 1) t_call in a graph runtime
    layers: list[LayerTerm] = field(repr=False)
    new_layers: int = 0  # layers this prediction timed into the table
    timings: int = 0  # timing runs this prediction made (one per network with new layers, two for overhead)
    mode: str = "predicted"
    runtime: str = "eager"

    def record(self) -> dict[str, Any]:
        """Plain fields for logs (the per-layer breakdown as name -> ms)."""
        out = asdict(self)
        out["layers"] = {t.name: t.ms for t in self.layers}
        out["cache_hits"] = sum(t.cached for t in self.layers)
        return out


class _Shell(nn.Module):
    """A network with no layers: the call structure of `Network.forward`, for the fixed overhead."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.head = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LatencyPredictor:
    """Predicts a spec's latency on one device config from the shared per-layer table."""

    def __init__(
        self, cfg: Mapping[str, Any] | LatencyConfig | None = None, *, cache: LatencyCache | None = None
    ):
        self.cfg = LatencyConfig.from_cfg(cfg)
        self.fp: Fingerprint = device_fingerprint(self.cfg)
        self.cache = cache if cache is not None else LatencyCache(self.cfg.cache_path)
        self.timings = 0  # timing runs this predictor has made (tests and reports read it)

    # ---- keys -------------------------------------------------------------------------------------
    def layer_terms(self, spec: Mapping[str, Any]) -> list[LayerTerm]:
        """Cache keys and input shapes of every layer of `spec` (built on the meta device: no compute)."""
        from blocks.assemble import iter_layers

        net = build_meta(spec)
        batch = self.cfg.batch_size
        act, norm = spec.get("act", "relu"), spec.get("norm", "batchnorm")
        common = {"v": KEY_VERSION, "batch": batch, "device": self.fp.key, "runtime": self.cfg.runtime}
        # Meta tensors unless the network had to be built for real (a block without meta kernels).
        device = next((p.device for p in net.parameters()), torch.device("meta"))
        x = torch.zeros(batch, *input_shape_of(spec), device=device)
        terms = []
        entries = list(iter_layers(dict(spec)))
        for (path, entry), module in zip(entries, net.features, strict=True):
            in_shape = tuple(x.shape[1:])
            with torch.no_grad():
                x = module(x)
            resolved = {
                **entry,
                "act": entry.get("act", act),
                "norm": entry.get("norm", norm),
                "stride": entry.get("stride", 1),
                "repeat": int(entry.get("repeat", 1)),
                "channels": int(x.shape[1]),  # after width_mult, or the block's own rule
            }
            what = {
                **common,
                "kind": "layer",
                "entry": resolved,
                "width_mult": float(spec.get("width_mult", 1.0)),
                "in": list(in_shape),
                "arch": _arch_hash(module),
            }
            terms.append(LayerTerm(path, key_of(what), what, in_shape))
        head = {"type": "linear", **dict(spec.get("head") or {})}
        head.setdefault("act", act)
        what = {
            **common,
            "kind": "head",
            "head": head,
            "num_classes": int(spec["num_classes"]),
            "in": list(x.shape[1:]),
            "arch": _arch_hash(net.head),
        }
        terms.append(LayerTerm("head", key_of(what), what, tuple(x.shape[1:])))
        return terms

    def overhead_key(self) -> tuple[str, dict[str, Any]]:
        what = {
            "v": KEY_VERSION,
            "kind": "overhead",
            "batch": self.cfg.batch_size,
            "device": self.fp.key,
            "runtime": self.cfg.runtime,
        }
        return key_of(what), what

    # ---- measuring --------------------------------------------------------------------------------
    def _store(self, key: str, what: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """Store a record unless present; returns the stored one (a concurrent process may have won)."""
        self.cache.put(
            key,
            fingerprint=self.fp.key,
            what=canonical_json(what),
            median_ms=record["median_ms"],
            record=record,
        )
        return self.cache.get(key) or record

    def overhead_parts(self) -> tuple[float, float]:
        """(t_shell - t_call, t_call) in ms for this device, runtime and batch size, measured once."""
        key, what = self.overhead_key()
        rec = self.cache.get(key)
        if rec is None:
            shape = (1, 8, 8)  # any small input: neither call touches the data
            call = measure_latency(nn.Identity(), shape, self.cfg).record()
            shell = measure_latency(_Shell(), shape, self.cfg).record()
            self.timings += 2
            rec = {"median_ms": shell["median_ms"] - call["median_ms"], "call": call, "shell": shell}
            rec = self._store(key, what, rec)
        return float(rec["median_ms"]), float(rec["call"]["median_ms"])

    def overhead(self, layers: int = 1) -> float:
        """The fixed part of a prediction for a network of `layers` timed units (features entries + head)."""
        fixed, call = self.overhead_parts()
        return fixed - (layers - 1) * call if self.cfg.runtime in GRAPH_RUNTIMES else fixed

    def predict(self, spec: Mapping[str, Any]) -> Prediction:
        """Predicted latency of `spec` at its own input size; layers not in the table are timed now."""
        timings_before = self.timings
        terms = self.layer_terms(spec)
        found = self.cache.get_many(t.key for t in terms)
        new = {t.key for t in terms if t.key not in found}
        if new:
            from blocks import build_model

            net = build_model(dict(spec))
            results = measure_layers([*net.features, net.head], input_shape_of(spec), self.cfg)
            self.timings += 1
            for t, result in zip(terms, results, strict=True):
                if t.key not in found:  # the first of repeated identical layers
                    found[t.key] = self._store(t.key, t.what, result.record())
        terms = [
            LayerTerm(t.name, t.key, t.what, t.in_shape, float(found[t.key]["median_ms"]), t.key not in new)
            for t in terms
        ]
        overhead = self.overhead(len(terms))
        return Prediction(
            median_ms=sum(t.ms for t in terms) + overhead,
            batch_size=self.cfg.batch_size,
            fingerprint=self.fp.key,
            device=self.fp.info,
            overhead_ms=overhead,
            runtime=str(self.cfg.runtime),
            layers=terms,
            new_layers=len(new),
            timings=self.timings - timings_before,
        )
