"""Canziani et al.'s part of the reproduction page, from `python -m experiments.profile` output folders only.

Every folder under the profile directory that holds a `profile.csv` is one profile (one input size, one runtime).
Its per-network summary is rebuilt from the CSV (batch-1 latency, best images/s) and, where present, from
`profile.json` (device, budget, capped and failed networks, wall time); the dense-convolution line and the
depthwise networks' distance to it are recomputed with the profile's own functions. Nothing is timed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from experiments.ablation.report import human
from experiments.profile import fit_dense_line, plot, summarize


@dataclasses.dataclass
class Profile:
    """One profile folder: its rows (network x batch), per-network summaries, fit and settings."""

    label: str
    folder: Path
    rows: list[dict[str, Any]]
    models: list[dict[str, Any]]
    fit: dict[str, float] | None
    meta: dict[str, Any]
    summary: str


def _num(v: str) -> Any:
    if v in ("True", "False"):
        return v == "True"
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def read_profile(folder: Path, label: str) -> Profile:
    """A profile from its folder's profile.csv (and profile.json when it is there)."""
    with (folder / "profile.csv").open(newline="") as f:
        rows = [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(f)]
    meta_path = folder / "profile.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    capped = {m["model"]: m.get("capped_at") for m in meta.get("models", [])}
    models: list[dict[str, Any]] = []
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = sorted((r for r in rows if r["model"] == name), key=lambda r: r["batch_size"])
        first = mine[0]
        models.append({
            **{k: first[k] for k in ("model", "family", "separable", "input_size", "params", "macs")},
            "latency_bs1_ms": first["latency_ms"] if first["batch_size"] == 1 else math.nan,
            "best_images_per_s": max(r["images_per_s"] for r in mine),
            "max_batch": mine[-1]["batch_size"],
            "capped_at": capped.get(name),
        })  # fmt: skip
    fit = fit_dense_line(models)
    summary = summarize(models, fit, dict(meta.get("failed") or {}))
    if not meta:  # an older profile: its CSV does not say which networks the budget capped or failed
        summary += "\n(no profile.json in this folder: capped and failed networks are not known)"
    return Profile(label, folder, rows, models, fit, meta, summary)


def find_profiles(root: Path) -> list[Profile]:
    """Every profile under `root` (itself included), labelled by its path below `root`."""
    if not root.is_dir():
        return []
    folders = sorted({p.parent for p in root.rglob("profile.csv")})
    return [read_profile(f, str(f.relative_to(root)) if f != root else root.name) for f in folders]


def _runtime(p: Profile) -> str:
    dev = p.meta.get("device") or {}
    return (
        f"{dev.get('runtime', '?')} ({dev.get('runtime_version') or 'torch ' + str(dev.get('torch', '?'))})"
    )


def _ms(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, int | float) and math.isfinite(v) else "–"


def _r2(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) and math.isfinite(v) else "–"


def profile_markdown(profiles: list[Profile], *, figures: dict[str, list[str]], profile_dir: str) -> str:
    """The profile section of the page: one headline table over profiles, then one table per profile."""
    lines = ["## Canziani et al.: operations, latency and throughput", ""]
    if not profiles:
        return "\n".join(lines + [f"**Not run yet: no `profile.csv` under `{profile_dir}`.** Run the commands below, "
                                  "then rebuild this page.", ""])  # fmt: skip
    lines += [
        "| profile | runtime | device | networks | dense line (ms/GMAC, fixed ms) | R^2 (n) | depthwise per-op cost vs dense median | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in profiles:
        dev = p.meta.get("device") or {}
        fit = p.fit or {}
        sep = [m for m in p.models if "vs_dense_per_op" in m]
        excess = ", ".join(f"{m['model']} {m['vs_dense_per_op']:.2f}x" for m in sep) or "–"
        line = f"{_ms(fit.get('slope_ms_per_gmac'))}, {_ms(fit.get('intercept_ms'))}" if fit else "no fit"
        wall = p.meta.get("wall_s")
        lines.append(
            f"| {p.label} | {_runtime(p)} | {dev.get('gpu') or dev.get('cpu', '?')}, {dev.get('threads', '?')} thread(s) "
            f"| {len(p.models)} | {line} | {_r2(fit.get('r2'))} ({fit.get('n', 0)}) | {excess} "
            f"| {f'{wall / 60:.1f} min' if isinstance(wall, int | float) else '–'} |"
        )
    for p in profiles:
        batches = sorted({r["batch_size"] for r in p.rows})
        lines += ["", f"### {p.label}: {_runtime(p)}", ""]
        if p.meta.get("command"):
            lines += ["```bash", p.meta["command"], "```", ""]
        lines += [
            "| network | depthwise | input px | params | MACs | "
            + " | ".join(f"ms/img @{b}" for b in batches)
            + " | best img/s | vs dense line @1 | per-op vs dense median |",
            "|" + "---|" * (8 + len(batches)),
        ]
        for m in p.models:
            per = {r["batch_size"]: r["per_image_ms"] for r in p.rows if r["model"] == m["model"]}
            line = m.get("vs_dense_line")
            per_op = m.get("vs_dense_per_op")
            lines.append(
                f"| {m['model']} | {'yes' if m['separable'] else ''} | {m['input_size']} | {human(m['params'])} "
                f"| {human(m['macs'])} | "
                + " | ".join(_ms(per.get(b, math.nan)) for b in batches)
                + f" | {m['best_images_per_s']:.4g} | {f'{line:.2f}x' if line else '–'} "
                f"| {f'{per_op:.2f}x' if per_op else '–'} |"
            )
        lines += ["", "```text", p.summary, "```"]
        lines += [f"![{p.label}]({fig})" for fig in figures.get(p.label, [])]
    return "\n".join(lines) + "\n"


def profile_figures(profile: Profile, fig_dir: Path, stem: str) -> list[Path]:
    """MACs vs latency (with the dense line) and latency per image vs batch, redrawn from the profile's files."""
    title = (profile.meta.get("device") or {}).get("cpu", "") + f" | {_runtime(profile)}"
    if not any(math.isfinite(m["latency_bs1_ms"]) for m in profile.models):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        drawn = plot(profile.models, profile.rows, profile.fit, Path(tmp), title)
        out = []
        for name, path in drawn.items():
            dest = fig_dir / f"{stem}_{name}.png"
            fig_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), dest)
            out.append(dest)
    return out
