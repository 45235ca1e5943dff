"""Runtimes: every block exports and matches PyTorch, BatchNorm is folded, figures of runtimes never mix,
an unexportable layer is named, and bad runtime names are refused with the valid choices."""

from __future__ import annotations

import onnx
import pytest
import torch
from conftest import conv_spec
from torch import nn

import blocks.families  # noqa: F401  (registers every block)
from blocks.layers import ACTS, ConvNormAct
from blocks.pooling import POOLS, create_pool2d
from blocks.registry import BLOCKS
from nas.latency import LatencyConfig, LatencyPredictor, device_fingerprint, measure_latency
from nas.latency.runtimes import ExportError, check_runtime, export_onnx, ort_session, prepare


def _block(name: str, stride: int) -> tuple[nn.Module, int]:
    cls = BLOCKS.get(name)
    params = dict(getattr(cls, "example_params", None) or {})
    cin, cout = getattr(cls, "example_channels", None) or (8, 16)
    try:
        return cls(cin, cout, stride, act="relu", norm="batchnorm", **params), cin
    except ValueError:  # a block with its own channel rule
        return cls(
            cin, int(cls.out_channels_for(cin, **params)), stride, act="relu", norm="batchnorm", **params
        ), cin


def _matches_in_ort(module: nn.Module, x: torch.Tensor) -> None:
    module.eval()
    session = ort_session(export_onnx(module, tuple(x.shape[1:]), batch_size=x.shape[0]), threads=1)
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = module(x).numpy()
    assert out.shape == ref.shape
    assert abs(out - ref).max() <= 1e-4 * max(1.0, abs(ref).max())


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", BLOCKS.names())
def test_every_registered_block_exports_to_onnx_and_matches(name, stride):
    torch.manual_seed(0)
    block, cin = _block(name, stride)
    _matches_in_ort(block, torch.randn(2, cin, 16, 16))


@pytest.mark.parametrize("act", ACTS.names())
def test_every_activation_exports(act):
    _matches_in_ort(ConvNormAct(8, 8, 3, act=act), torch.rand(2, 8, 12, 12))


@pytest.mark.parametrize("pool", POOLS.names())
def test_every_pooling_exports(pool):  # stochastic and Lp pooling included (eval mode: deterministic)
    _matches_in_ort(create_pool2d(pool, 3, 2, channels=8), torch.rand(2, 8, 12, 12))


@pytest.mark.parametrize("name", BLOCKS.names())
def test_every_registered_block_runs_frozen_torchscript(name):
    torch.manual_seed(0)
    block, cin = _block(name, 1)
    block.eval()
    x = torch.randn(1, cin, 12, 12)
    prepared = prepare(block, x, "torchscript")
    with torch.no_grad():
        assert torch.allclose(prepared.fn(x), block(x), atol=1e-4, rtol=1e-3)


def test_batchnorm_is_folded_in_the_deployment_runtimes():
    from blocks import build_model

    model = build_model(conv_spec(8)).eval()
    ops = {n.op_type for n in onnx.load_from_string(export_onnx(model, (3, 16, 16))).graph.node}
    assert "Conv" in ops and "BatchNormalization" not in ops
    frozen = prepare(model, torch.randn(1, 3, 16, 16), "torchscript").fn
    assert "batch_norm" not in str(frozen.graph) and "conv" in str(frozen.graph)
    assert "batch_norm" in str(torch.jit.trace(model, torch.randn(1, 3, 16, 16)).inlined_graph)


def test_runtime_is_in_the_fingerprint_and_the_table_keys(fast_cfg):
    spec = conv_spec(8, input_size=12)
    keys, terms = {}, {}
    for runtime in ("eager", "torchscript", "onnxruntime"):
        cfg = LatencyConfig.from_cfg({**fast_cfg, "runtime": runtime})
        fp = device_fingerprint(cfg)
        assert fp.info["runtime"] == runtime and fp.info["runtime_version"]
        assert runtime in fp.label()
        keys[runtime] = fp.key
        terms[runtime] = {t.key for t in LatencyPredictor(cfg).layer_terms(spec)}
        result = measure_latency(spec, None, cfg)
        assert result.median_ms > 0 and result.device["runtime"] == runtime
    assert len(set(keys.values())) == 3
    assert not terms["eager"] & terms["onnxruntime"] and not terms["eager"] & terms["torchscript"]
    assert (
        "onnxruntime"
        in device_fingerprint(LatencyConfig.from_cfg(fast_cfg | {"runtime": None})).info["runtime_version"]
    )


def test_a_table_filled_in_one_runtime_is_not_read_in_another(fast_cfg):
    spec = conv_spec(8, input_size=12)
    eager = LatencyPredictor({**fast_cfg, "runtime": "eager"}).predict(spec)
    ort = LatencyPredictor({**fast_cfg, "runtime": "onnxruntime"}).predict(spec)
    # Every distinct layer is timed again in the second runtime: nothing of the first is read.
    assert eager.new_layers == len({t.key for t in eager.layers}) == ort.new_layers
    again = LatencyPredictor({**fast_cfg, "runtime": "onnxruntime"}).predict(spec)
    assert again.new_layers == 0 and again.median_ms == pytest.approx(ort.median_ms)
    assert ort.runtime == "onnxruntime" and ort.record()["runtime"] == "onnxruntime"


class _Bessel(nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x)  # no ONNX symbolic in opset 17


def test_an_unexportable_layer_is_named():
    from blocks import build_model

    model = build_model(conv_spec(8)).eval()
    model.features.insert(2, _Bessel())
    with pytest.raises(ExportError, match=r"runtime 'onnxruntime' cannot run layer features\.2 \(_Bessel"):
        prepare(model, torch.randn(1, 3, 16, 16), "onnxruntime")


def test_default_cpu_runtime_is_onnxruntime_and_bad_runtimes_are_refused():
    assert LatencyConfig.from_cfg({}).runtime == "onnxruntime"
    with pytest.raises(ValueError, match="valid runtimes: eager, torchscript, onnxruntime, compiled"):
        LatencyConfig.from_cfg({"runtime": "tensorrt"})
    with pytest.raises(ValueError, match="does not run on device 'cpu'; valid there: eager, torchscript"):
        LatencyConfig.from_cfg({"runtime": "compiled"})
    with pytest.raises(ValueError, match="does not run on device 'cuda'.*compiled"):
        check_runtime("onnxruntime", "cuda")
