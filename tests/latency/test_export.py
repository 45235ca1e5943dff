"""ONNX export of a spec, a model config or a checkpoint: the file runs in ONNX Runtime and matches PyTorch."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import conv_spec

from blocks import build_model
from experiments.export import main
from nas.latency.export import export_model, load_checkpoint
from nas.latency.runtimes import ExportError, ort_session


def _ort_outputs(path, x: torch.Tensor):
    session = ort_session(str(path), threads=1)
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def test_export_matches_pytorch_on_a_batch_with_a_dynamic_batch_dimension(tmp_path):
    spec = conv_spec(8, input_size=16)
    torch.manual_seed(1)
    weights = build_model(spec).state_dict()  # other weights than export_model's own seed would give
    record = export_model(spec, tmp_path / "net.onnx", state_dict=weights)
    assert record.max_abs_diff <= 1e-4 and record.bytes == (tmp_path / "net.onnx").stat().st_size
    model = build_model(spec).eval()
    model.load_state_dict(weights)
    for batch in (1, 5):  # the file was checked at 4; the batch dimension is dynamic
        x = torch.randn(batch, 3, 16, 16)
        with torch.no_grad():
            ref = model(x).numpy()
        assert abs(_ort_outputs(tmp_path / "net.onnx", x) - ref).max() <= 1e-4


def test_weights_that_do_not_fit_the_spec_are_refused(tmp_path):
    weights = build_model(conv_spec(16)).state_dict()
    with pytest.raises(ExportError, match="do not fit the spec"):
        export_model(conv_spec(8), tmp_path / "x.onnx", state_dict=weights)


def test_command_exports_a_model_config_sized_for_a_dataset(tmp_path, capsys):
    out = tmp_path / "simple.onnx"
    assert main(["model=simple_cnn", f"out={out}", "input_size=28", "in_channels=1", "num_classes=10"]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    y = _ort_outputs(out, torch.randn(2, 1, 28, 28))
    assert y.shape == (2, 10)


def test_command_exports_a_checkpoint_with_its_trained_weights(tmp_path):
    spec = conv_spec(8, input_size=16)
    torch.manual_seed(2)
    model = build_model(spec).eval()
    ckpt = {
        "hyper_parameters": {"spec": spec, "optim": {}},
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()} | {"val_acc.x": torch.ones(1)},
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    loaded_spec, weights = load_checkpoint(tmp_path / "last.ckpt")
    assert loaded_spec == spec and set(weights) == set(model.state_dict())
    out = tmp_path / "trained.onnx"
    assert main([f"checkpoint={tmp_path / 'last.ckpt'}", f"out={out}"]) == 0
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        ref = model(x).numpy()
    assert abs(_ort_outputs(out, x) - ref).max() <= 1e-4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["model=no_such_net"], "unknown model 'no_such_net'; valid: .*simple_cnn"),
        (["modle=simple_cnn"], "unknown argument 'modle=simple_cnn'; valid: model="),
        (["model=simple_cnn", "checkpoint=x.ckpt"], "exactly one of model="),
        (["checkpoint=/no/such.ckpt"], "does not exist"),
        (["model=simple_cnn", "input_size=big"], "input_size must be an integer"),
        (["model={tmp}/damaged.yaml"], "damaged.yaml is not valid YAML"),
        (["model=simple_cnn", "out={tmp}/damaged.yaml/x.onnx"], "File exists"),
    ],
)
def test_bad_input_is_one_message_and_exit_status_2(argv, message, capsys, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in argv]
    (tmp_path / "damaged.yaml").write_text("name: x\nstages: [unclosed\n")
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("export: error: ") and "Traceback" not in err

    assert re.search(message, err)
