"""`python -m experiments.export model=<name> | checkpoint=<file> [key=value ...]`: a network as ONNX.

    model=resnet18             a conf/model/ name, or a model YAML (e.g. a search's exported front config)
    checkpoint=path/last.ckpt  a training checkpoint: its spec and trained weights (instead of model=)
    out=resnet18.onnx          the ONNX file (default outputs/export/<name>.onnx)
    input_size=28 in_channels=1 num_classes=10   size the model for a dataset (default: the config's own)
    atol=1e-4                  tolerance of the ONNX Runtime vs PyTorch check on a random batch

The batch dimension of the file is dynamic. The file is run in ONNX Runtime and its outputs compared
with PyTorch's before the command reports success; a mismatch or an export failure is an error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from nas.cli import shell_completion, user_errors
from nas.latency.export import ExportRecord, export_model, load_checkpoint

KEYS = ("model", "checkpoint", "out", "input_size", "in_channels", "num_classes", "atol")
INT_KEYS = ("input_size", "in_channels", "num_classes")


def parse(argv: list[str]) -> dict[str, str]:
    """key=value arguments; ValueError naming the valid keys otherwise."""
    args: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise ValueError(f"unknown argument {item!r}; valid: {', '.join(k + '=...' for k in KEYS)}")
        args[key] = value
    if ("model" in args) == ("checkpoint" in args):
        raise ValueError("give exactly one of model=<conf/model name or YAML file> and checkpoint=<file>")
    return args


def load_model_config(name: str) -> dict[str, Any]:
    """The spec of a conf/model/ name or of a model YAML file."""
    from nas.config import CONF_DIR

    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        available = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
        if name not in available:
            raise ValueError(f"unknown model {name!r}; valid: a model YAML file or {', '.join(available)}")
        path = CONF_DIR / "model" / f"{name}.yaml"
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(spec, dict) or "stages" not in spec:
        raise ValueError(f"{path} is not a model config (a mapping with stem / stages / head)")
    return spec


def export(args: dict[str, str]) -> ExportRecord:
    """Run one export from parsed arguments."""
    weights = None
    if "checkpoint" in args:
        spec, weights = load_checkpoint(args["checkpoint"])
    else:
        spec = load_model_config(args["model"])
    for key in INT_KEYS:
        if key in args:
            try:
                spec[key] = int(args[key])
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {args[key]!r}") from None
            if spec[key] < 1:
                raise ValueError(f"{key} must be >= 1, got {spec[key]}")
    try:
        atol = float(args.get("atol", 1e-4))
    except ValueError:
        raise ValueError(f"atol must be a number, got {args['atol']!r}") from None
    name = str(spec.get("name") or Path(args.get("model") or args["checkpoint"]).stem)
    out = Path(args.get("out") or Path("outputs") / "export" / f"{name}.onnx")
    return export_model(spec, out, state_dict=weights, atol=atol)


@user_errors("export")  # bad input and failed exports: one message, no traceback, exit status 2
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if shell_completion("nas-export", argv, [f"{k}=" for k in KEYS]):
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    record = export(parse(argv))
    print(
        f"wrote {record.path} ({record.bytes / 1e6:.2f} MB, opset {record.opset}); ONNX Runtime matches "
        f"PyTorch on a batch of {record.check_batch} (max |diff| {record.max_abs_diff:.2e} <= {record.atol:g})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
