"""The front exported as model configs (conf/model-style YAML files) that train as they are.

They go into the study folder's `model/exported/` (EXPORT_SUBDIR), which makes the study folder a Hydra config
root: `python -m experiments.train model=exported/<name>` finds them through hydra_plugins/cnn_nas_exports.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

# Where a study folder holds its exports: <study folder>/model/exported/<name>.yaml (config group model/exported).
EXPORT_SUBDIR = Path("model") / "exported"


def export_name(study_name: str, number: int) -> str:
    """The model-config name of a front trial: <study>-t<number>."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', study_name)}-t{number:04d}"


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
) -> list[dict[str, Any]]:
    """Write every front architecture as a conf/model-style YAML into each of `dirs`.

    `data` is the search's data at its fidelity; `input_size` the size the networks are deployed (and their
    latency measured) at, when the fidelity trained them smaller.

    Earlier exports of this study that are no longer on the front are removed, so a folder always holds
    exactly the current front. Returns [{trial, name, paths}].
    """
    prefix = export_name(study_name, 0)[: -len("0000")]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob(f"{prefix}[0-9][0-9][0-9][0-9].yaml"):
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
        lat = r.get("latency")
        header = [
            f"# Exported by nas.search from study {study_name!r}, trial {r['trial']} (space {space.name!r}).",
            f"# At the search fidelity ({fidelity.get('epochs')} epoch(s), data fraction {data.get('fraction')}, "
            f"{data.get('image_size')} px, {data.get('name')}): accuracy {_fmt(r.get('accuracy'), '.4f')}, "
            f"latency {_fmt(lat, '.4g')} {latency_unit}, {_fmt((r.get('n_params') or 0) / 1e6, '.3f')} M params, "
            f"{_fmt((r.get('macs') or 0) / 1e6, '.1f')} M MACs.",
            "# in_channels / num_classes / input_size are the search data's; the engine resets them from `data`.",
            f"# Train it: python -m experiments.train model=exported/{name}",
        ]
        text = (
            "\n".join(header) + "\n" + yaml.safe_dump(_plain(spec), sort_keys=False, default_flow_style=None)
        )
        paths = []
        for d in dirs:
            p = d / f"{name}.yaml"
            p.write_text(text)
            paths.append(p)
        out.append({"trial": r["trial"], "name": name, "paths": [str(p) for p in paths]})
    return out


def _plain(obj: Any) -> Any:
    """Plain containers with the spec's key order (yaml.safe_dump refuses tuples and other types)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _fmt(v: Any, spec: str) -> str:
    return "?" if v is None else format(v, spec)
