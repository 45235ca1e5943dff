"""A network as it ships: a spec (with trained weights, or from a checkpoint) written as an ONNX file,
checked against PyTorch in ONNX Runtime. The search calls `export_model` for each front architecture."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nas.latency.measure import input_shape_of
from nas.latency.runtimes import ONNX_OPSET, ExportError, export_onnx, ort_session, runtime_version


@dataclass(frozen=True)
class ExportRecord:
    """Where an ONNX file was written and how closely ONNX Runtime reproduces PyTorch on a batch."""

    path: str
    opset: int
    runtime_version: str
    input_shape: tuple[int, int, int]  # (channels, height, width); the batch dimension is dynamic
    check_batch: int
    max_abs_diff: float  # largest |ONNX Runtime - PyTorch| over the check batch's logits
    atol: float
    bytes: int

    def record(self) -> dict[str, Any]:
        """Plain fields for logs and front reports."""
        return asdict(self)


def export_model(
    spec: Mapping[str, Any],
    path: str | Path,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    check_batch: int = 4,
    atol: float = 1e-4,
    seed: int = 0,
) -> ExportRecord:
    """Write `spec`'s network (with `state_dict`, else its initial weights) to `path` as ONNX, then run the
    file in ONNX Runtime on a random batch and compare with PyTorch's eval-mode outputs.

    The batch dimension is dynamic. ExportError (a ValueError) when the exporter fails or the outputs
    differ by more than `atol` (absolute, on the logits; also relative to their scale).
    """
    from blocks import build_model

    torch.manual_seed(seed)
    model = build_model(dict(spec)).eval()
    if state_dict is not None:
        try:
            model.load_state_dict(dict(state_dict))
        except RuntimeError as e:
            raise ExportError(f"the weights do not fit the spec {spec.get('name', '?')!r}: {e}") from e
    shape = input_shape_of(spec)
    data = export_onnx(model, shape, path, batch_size=1, dynamic_batch=True)
    x = torch.randn(check_batch, *shape)
    with torch.no_grad():
        ref = model(x).numpy()
    session = ort_session(data, threads=1)
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    diff = float(abs(out - ref).max()) if out.shape == ref.shape else float("inf")
    scale = max(1.0, float(abs(ref).max()))
    if not diff <= atol * scale:
        raise ExportError(
            f"ONNX Runtime's outputs differ from PyTorch's by {diff:.3g} (tolerance {atol * scale:.3g}) "
            f"for {spec.get('name', '?')!r}; the file {path} is not a faithful export"
        )
    return ExportRecord(
        path=str(path),
        opset=ONNX_OPSET,
        runtime_version=runtime_version("onnxruntime"),
        input_shape=shape,
        check_batch=check_batch,
        max_abs_diff=diff,
        atol=atol,
        bytes=len(data),
    )


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(spec, network state_dict) of a training checkpoint (`nas.module.Classifier`'s Lightning file)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:  # plain data only: a checkpoint holds tensors and the hyperparameters' dicts
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (pickle / zip errors of a damaged or foreign file)
        raise ValueError(f"{path} is not a readable training checkpoint: {type(e).__name__}: {e}") from e
    spec = (ckpt.get("hyper_parameters") or {}).get("spec") if isinstance(ckpt, dict) else None
    if not isinstance(spec, Mapping) or "state_dict" not in ckpt:
        raise ValueError(f"{path} holds no model spec (hyper_parameters.spec) and state_dict")
    prefix = "model."  # Classifier keeps the network as `self.model`
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    return dict(spec), weights
