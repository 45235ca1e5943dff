"""The front exported as model configs (conf/model-style YAML files) that train as they are, and as ONNX files
beside them (the network as it ships: the trial's trained weights when it kept its checkpoint).

They go into the study folder's `conf/model/exported/` (EXPORT_SUBDIR), which makes `<study>/conf` a Hydra config
root: `python -m experiments.train model=exported/<name>` finds them through hydra_plugins/cnn_nas_exports.py.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from nas.latency.export import export_model, load_checkpoint
from nas.search.starts import PARAMS_LINE

log = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoints") / "last.ckpt"  # a trial's weights, inside its output folder
# The ONNX file of a front architecture: <name>.onnx with the trial's trained weights, <name>.init.onnx
# with the network's initial (random) weights when the trial's checkpoint is not on this machine.
ONNX_SUFFIX = {"trained": ".onnx", "random-init": ".init.onnx"}
# Where a study folder holds its exports: <study folder>/conf/model/exported/<name>.yaml (config group
# model/exported). Its own `conf/` root holds nothing else: were the study folder itself the root, its run
# folders (baselines/, trials/) would read as config groups and break overrides like baselines.enabled=false.
EXPORT_ROOT = Path("conf")
EXPORT_SUBDIR = EXPORT_ROOT / "model" / "exported"


def export_name(study_name: str, number: int) -> str:
    """The model-config name of a front trial: <study>-t<number>."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', study_name)}-t{number:04d}"


def trial_checkpoints(trials: Iterable[Any]) -> dict[int, Path]:
    """trial number -> its checkpoint path (`output_dir`/checkpoints/last.ckpt, or the source trial's for a
    reused result: `source_output_dir`), whether or not it exists."""
    out = {}
    for t in trials:
        where = t.user_attrs.get("output_dir") or t.user_attrs.get("source_output_dir")
        if where:
            out[t.number] = Path(where) / CHECKPOINT
    return out


def export_front(
    front: Sequence[Mapping[str, Any]],
    *,
    study_name: str,
    space: Any,
    data: Mapping[str, Any],
    fidelity: Mapping[str, Any],
    dirs: Sequence[Path],
    latency_unit: str = "",
    input_size: int | None = None,
    checkpoints: Mapping[int, Path] | None = None,
    onnx: bool = True,
) -> list[dict[str, Any]]:
    """Write every front architecture as a conf/model-style YAML into each of `dirs`, and as ONNX beside it.

    `data` is the search's data at its fidelity; `input_size` the size the networks are deployed (and their
    latency measured) at, when the fidelity trained them smaller. `checkpoints` (trial -> path, see
    `trial_checkpoints`): the ONNX file holds those trained weights when the file exists (<name>.onnx),
    else the network's initial weights (<name>.init.onnx, said in the YAML header and the record). Each ONNX
    file was run in ONNX Runtime and matched PyTorch's outputs on a batch (`nas.latency.export_model`); an
    architecture that does not export is recorded with the error, the YAML is still written. `onnx=False`: the
    YAMLs only (their header says so).

    Earlier exports of this study that are no longer on the front are removed, so a folder always holds
    exactly the current front. Returns [{trial, name, paths, onnx: {paths, weights, ...} or {error}}].
    """
    prefix = export_name(study_name, 0)[: -len("0000")]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        for pattern in (".yaml", *ONNX_SUFFIX.values()):
            for old in d.glob(f"{prefix}[0-9][0-9][0-9][0-9]{pattern}"):
                old.unlink()
    out = []
    for r in front:
        name = export_name(study_name, r["trial"])
        spec = dict(r["spec"])
        spec["name"] = name
        spec.setdefault("family", space.family[0] if space.family else space.name)
        spec.update(
            in_channels=int(data["channels"]),
            num_classes=int(data["num_classes"]),
            input_size=int(input_size or data["image_size"]),
        )
        record = (
            _write_onnx(spec, name, dirs, (checkpoints or {}).get(r["trial"]))
            if onnx
            else {"error": "onnx=false"}
        )
        lat = r.get("latency")
        header = [
            f"# Exported by nas.search from study {study_name!r}, trial {r['trial']} (space {space.name!r}).",
            f"# At the search fidelity ({fidelity.get('epochs')} epoch(s), data fraction {data.get('fraction')}, "
            f"{data.get('image_size')} px, {data.get('name')}): accuracy {_fmt(r.get('accuracy'), '.4f')}, "
            f"latency {_fmt(lat, '.4g')} {latency_unit}, {_fmt((r.get('n_params') or 0) / 1e6, '.3f')} M params, "
            f"{_fmt((r.get('macs') or 0) / 1e6, '.1f')} M MACs.",
            "# in_channels / num_classes / input_size are the search data's; the engine resets them from `data`.",
            f"# Train it: python -m experiments.train model=exported/{name}",
            # what start.known reads back to enqueue this architecture in a new study of the same space
            f"{PARAMS_LINE} (space '{space.name}'): {json.dumps(r.get('params') or {}, sort_keys=True)}",
            f"# ONNX: {_onnx_line(record)}",
        ]
        text = (
            "\n".join(header) + "\n" + yaml.safe_dump(_plain(spec), sort_keys=False, default_flow_style=None)
        )
        paths = []
        for d in dirs:
            p = d / f"{name}.yaml"
            p.write_text(text)
            paths.append(p)
        out.append({"trial": r["trial"], "name": name, "paths": [str(p) for p in paths], "onnx": record})
    return out


def _write_onnx(
    spec: Mapping[str, Any], name: str, dirs: Sequence[Path], ckpt: Path | None
) -> dict[str, Any]:
    """Export `spec` to ONNX into each of `dirs` (trained weights from `ckpt` when it exists); the record."""
    weights, note = None, "no checkpoint of the trial on this machine"
    if ckpt is not None and Path(ckpt).is_file():
        try:
            weights = load_checkpoint(ckpt)[1]
            note = ""
        except ValueError as e:
            note = f"its checkpoint is unreadable ({e})"
    record: dict[str, Any] | None = None
    error = ""
    for state_dict in [weights, None] if weights is not None else [None]:
        kind = "trained" if state_dict is not None else "random-init"
        path = dirs[0] / f"{name}{ONNX_SUFFIX[kind]}"
        try:
            with torch.random.fork_rng(
                devices=[]
            ):  # export_model seeds the initial weights: leave the caller's RNG be
                record = export_model(spec, path, state_dict=state_dict).record()
            break
        except Exception as e:  # noqa: BLE001 - the ONNX file is an extra of the report: record why, go on
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if state_dict is not None:
                note = f"the trained weights did not export ({error})"
    if record is None:
        log.warning("front architecture %s was not exported to ONNX: %s", name, error)
        return {"error": error}
    data = path.read_bytes()
    paths = [path]
    for d in dirs[1:]:
        paths.append(d / path.name)
        paths[-1].write_bytes(data)
    return {
        **{k: record[k] for k in ("opset", "runtime_version", "max_abs_diff", "atol", "bytes")},
        "paths": [str(p) for p in paths],
        "weights": kind,
        "note": note,
    }


def _onnx_line(onnx: Mapping[str, Any]) -> str:
    if "error" in onnx:
        return f"not exported ({onnx['error']})"
    file = Path(onnx["paths"][0]).name
    if onnx["weights"] == "trained":
        return f"{file} (the trial's trained weights at the search fidelity)"
    return f"{file} (random-init weights: {onnx['note']}; the architecture, for latency on the target)"


def _plain(obj: Any) -> Any:
    """Plain containers with the spec's key order (yaml.safe_dump refuses tuples and other types)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _fmt(v: Any, spec: str) -> str:
    return "?" if v is None else format(v, spec)
