"""The runtimes a network is timed in: eager PyTorch, frozen TorchScript, ONNX Runtime, compiled (CUDA).

A runtime turns an eval-mode module and an example input into a `Prepared` call. `eager` calls the module
(CUDA: timed with events); `torchscript` traces, freezes and runs `torch.jit.optimize_for_inference`
(BatchNorm folded into the convolutions); `onnxruntime` exports to ONNX (`export_onnx`) and runs the
CPU execution provider with all graph optimisations (BatchNorm folded, conv + activation fused) and the
configured intra-op thread count; `compiled` is `torch.compile` on a CUDA device (default mode; written
for GPUs, not exercised on the CPU-only build machine).

A network a runtime cannot export is an `ExportError` naming the first layer that fails: figures of a
network timed in another runtime than asked are never reported as that runtime's.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

RUNTIMES = ("eager", "torchscript", "onnxruntime", "compiled")
# Runtimes that run a whole network as one call: the per-call overhead of timing layers one by one is not
# paid by the network (the predictor subtracts it), unlike eager PyTorch, where every layer is a call.
GRAPH_RUNTIMES = frozenset({"torchscript", "onnxruntime", "compiled"})
DEVICE_RUNTIMES = {
    "cpu": ("eager", "torchscript", "onnxruntime"),
    "cuda": ("eager", "torchscript", "compiled"),
}
ONNX_OPSET = 17  # the legacy (TorchScript-based) exporter's well-tested opset; ONNX Runtime 1.16+ runs it


class ExportError(ValueError):
    """A network (or one of its layers) that a runtime cannot export or run."""


def default_runtime(device_type: str) -> str:
    """The deployment runtime used unless a config names one: ONNX Runtime on the CPU, eager on CUDA."""
    return "onnxruntime" if device_type == "cpu" else "eager"


def check_runtime(runtime: Any, device_type: str) -> str:
    """`runtime` if it is valid on `device_type`, else a ValueError listing the valid choices."""
    valid = DEVICE_RUNTIMES.get(device_type, ("eager",))
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown latency runtime {runtime!r}; valid runtimes: {', '.join(RUNTIMES)}")
    if runtime not in valid:
        raise ValueError(
            f"latency runtime {runtime!r} does not run on device {device_type!r}; valid there: "
            f"{', '.join(valid)}"
        )
    if runtime == "onnxruntime":
        _ort()  # a missing package is a config error, before any timing
    return runtime


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:  # a core dependency; a broken install gets a message, not a traceback
        raise ValueError(
            "latency runtime 'onnxruntime' needs the onnxruntime and onnx packages "
            "(pip install onnxruntime onnx), or choose latency.runtime=eager"
        ) from e
    return onnxruntime


def runtime_version(runtime: str) -> str:
    """The version string of the software that executes `runtime` (part of the device fingerprint)."""
    if runtime == "onnxruntime":
        return f"onnxruntime {_ort().__version__} opset {ONNX_OPSET}"
    return f"torch {torch.__version__}"


@dataclass(frozen=True)
class Prepared:
    """A network ready to time: `fn(native_input) -> native_output`, and how to make a native input."""

    runtime: str
    fn: Callable[[Any], Any]
    to_native: Callable[[torch.Tensor], Any]


def export_onnx(
    model: nn.Module,
    input_shape: Sequence[int],
    path: str | Path | None = None,
    *,
    batch_size: int = 1,
    dynamic_batch: bool = False,
) -> bytes:
    """The ONNX bytes of `model` (eval mode) for inputs (batch, *input_shape); also written to `path`.

    Uses the TorchScript-based exporter (`dynamo=False`): it exports every registered block family
    (grouped / depthwise convs, maxout, stochastic and Lp pooling) in well under a second and needs no
    extra package. `dynamic_batch` makes the batch dimension symbolic (an exported front model), otherwise
    the graph has fixed shapes (timing). Raises ExportError with the exporter's message.
    """
    was = model.training
    model.eval()
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn(batch_size, *map(int, input_shape), device=device)
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation / constant-folding chatter
            torch.onnx.export(
                model,
                (x,),
                buf,
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None,
                do_constant_folding=True,
            )
    except Exception as e:  # noqa: BLE001  (the exporter raises many types; one message for people)
        raise ExportError(f"ONNX export failed: {type(e).__name__}: {_first_line(e)}") from e
    finally:
        model.train(was)
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def ort_session(data: bytes | str | Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with all graph optimisations and `threads` intra-op threads."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1  # sequential execution: one operator at a time, like the other runtimes
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    source = str(data) if isinstance(data, str | Path) else data
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


def _prepare_one(model: nn.Module, x: torch.Tensor, runtime: str, threads: int) -> Prepared:
    same: Callable[[torch.Tensor], Any] = lambda t: t  # noqa: E731
    if runtime == "eager":
        return Prepared(runtime, model, same)
    if runtime == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python values in shapes
            traced = torch.jit.trace(model, (x,), check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            frozen(x)  # the first calls of a frozen module run its profiling / optimisation passes
        return Prepared(runtime, frozen, same)
    if runtime == "onnxruntime":
        session = ort_session(export_onnx(model, tuple(x.shape[1:]), batch_size=x.shape[0]), threads)
        name = session.get_inputs()[0].name

        def run(a: Any) -> Any:
            return session.run(None, {name: a})[0]

        return Prepared(runtime, run, lambda t: t.detach().cpu().contiguous().numpy())
    if runtime == "compiled":  # CUDA only (check_runtime); the default mode, no CUDA graphs
        compiled = torch.compile(model)
        with torch.no_grad():
            compiled(x)  # compiles now, not inside the timing
        return Prepared(runtime, compiled, same)
    raise ValueError(f"unknown latency runtime {runtime!r}; valid runtimes: {', '.join(RUNTIMES)}")


def prepare(model: nn.Module, x: torch.Tensor, runtime: str, threads: int = 1) -> Prepared:
    """`model` (eval mode, on x's device) prepared in `runtime`; ExportError naming the failing layer."""
    try:
        return _prepare_one(model, x, runtime, threads)
    except ExportError as e:
        layer = _failing_layer(model, x, runtime, threads)
        raise ExportError(f"runtime {runtime!r} cannot run {layer}: {e}") from e
    except Exception as e:  # noqa: BLE001  (tracing / freezing / compiling raise many types)
        if runtime == "eager":
            raise
        layer = _failing_layer(model, x, runtime, threads)
        raise ExportError(
            f"runtime {runtime!r} cannot run {layer}: {type(e).__name__}: {_first_line(e)}; "
            "time this network with latency.runtime=eager"
        ) from e


def _failing_layer(model: nn.Module, x: torch.Tensor, runtime: str, threads: int) -> str:
    """'layer <path> (<class>)' of the first child of a network (features entries, head) that fails alone."""
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Sequential) or head is None:
        return f"the module {type(model).__name__}"
    y = x
    with torch.no_grad():
        for name, module in [*((f"features.{i}", m) for i, m in enumerate(features)), ("head", head)]:
            try:
                _prepare_one(module, y, runtime, threads)
            except Exception:  # noqa: BLE001
                inner = next((f"{name}.{n}" for n, _ in module.named_children()), name)
                return f"layer {name} ({type(module).__name__}; first part {inner})"
            y = module(y)
    return f"the network {type(model).__name__} (each layer exports alone; their composition does not)"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
