"""Per-layer summary of a model: name, block, output shape, parameters and counted MACs, and a text table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from blocks.cost import count_macs_per_module


@dataclass(frozen=True)
class LayerRow:
    """One summary row; `out_shape` excludes the batch dimension, `macs` are for one forward pass."""

    name: str
    block: str
    out_shape: tuple[int, ...]
    params: int
    macs: int


def _roots(model: nn.Module) -> list[tuple[str, str, str, nn.Module]]:
    """(row name, block label, module path, module) of the top-level rows."""
    names = getattr(model, "layer_names", None)
    features = getattr(model, "features", None)
    if names is not None and isinstance(features, nn.Sequential) and len(names) == len(features):
        # A spec-built Network: one row per stem / stage entry, named as in the spec, then the head.
        spec = getattr(model, "spec", {}) or {}
        rows = []
        for i, (name, mod) in enumerate(zip(names, features, strict=True)):
            section, idx = name.rsplit(".", 1)
            entries = spec.get(section) or []
            entry = (
                entries[int(idx)] if int(idx) < len(entries) and isinstance(entries[int(idx)], dict) else {}
            )
            label = str(entry.get("block", type(mod).__name__))
            if int(entry.get("repeat", 1)) > 1:
                label += f" x{entry['repeat']}"
            rows.append((name, label, f"features.{i}", mod))
        head = getattr(model, "head", None)
        if isinstance(head, nn.Module):
            rows.append(("head", type(head).__name__, "head", head))
        return rows
    return [(n, type(m).__name__, n, m) for n, m in model.named_children()]


def _walk(
    name: str, label: str, path: str, mod: nn.Module, depth: int
) -> Iterator[tuple[str, str, str, nn.Module, bool]]:
    """Rows under one root, `depth` levels down; the bool marks a module's own (non-child) share."""
    children = list(mod.named_children())
    if depth <= 0 or not children:
        yield name, label, path, mod, False
        return
    yield name, label, path, mod, True
    for cname, child in children:
        yield from _walk(f"{name}.{cname}", type(child).__name__, f"{path}.{cname}", child, depth - 1)


def summarize(
    model: nn.Module, input_shape: Sequence[int] | None = None, *, depth: int = 0
) -> list[LayerRow]:
    """One row per layer entry of a spec-built Network (stem / stages, then the head), or per child module.

    `depth` > 0 expands each row into its submodules that many levels down; an expanded module keeps a
    "(own)" row only if it has parameters or MACs of its own. `input_shape` is (C, H, W) (default: the spec's
    input). Row parameters and MACs add up to the model's totals.
    """
    picked = [r for root in _roots(model) for r in _walk(*root, depth)]
    shapes: dict[str, tuple[int, ...]] = {}

    def record(path: str):
        def hook(m: nn.Module, inp: Any, out: Any) -> None:
            t = out[0] if isinstance(out, tuple | list) and out else out
            if hasattr(t, "shape"):
                shapes[path] = tuple(int(s) for s in t.shape[1:])

        return hook

    handles = [m.register_forward_hook(record(path)) for _, _, path, m, _ in picked]
    try:  # one forward pass: the MAC counter's, with the shape hooks attached
        macs = count_macs_per_module(model, input_shape)
    finally:
        for h in handles:
            h.remove()
    rows = []
    for name, label, path, mod, own in picked:
        if own:
            child_macs = sum(macs.get(f"{path}.{c}", 0) for c, _ in mod.named_children())
            own_params = sum(p.numel() for p in mod.parameters(recurse=False))
            own_macs = macs.get(path, 0) - child_macs
            if own_params or own_macs:
                rows.append(LayerRow(f"{name} (own)", label, shapes.get(path, ()), own_params, own_macs))
            continue
        params = sum(p.numel() for p in mod.parameters())
        rows.append(LayerRow(name, label, shapes.get(path, ()), params, macs.get(path, 0)))
    return rows


def human(n: float) -> str:
    """1234567 -> '1.23M' (K, M, G, T)."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def format_summary(rows: Sequence[LayerRow], *, title: str | None = None) -> str:
    """A fixed-width text table of `rows` with a total line (params and MACs also in K/M/G)."""
    header = ("layer", "block", "output", "params", "MACs")
    body = [
        (r.name, r.block, "x".join(map(str, r.out_shape)) or "-", f"{r.params:,}", f"{r.macs:,}")
        for r in rows
    ]
    total_params = sum(r.params for r in rows)
    total_macs = sum(r.macs for r in rows)
    total = ("total", "", "", f"{total_params:,}", f"{total_macs:,}")
    widths = [max(len(str(c[i])) for c in (header, *body, total)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        left = [str(c).ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
        right = [str(c).rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(line(header))
    out = [title] if title else []
    out += [line(header), rule, *(line(b) for b in body), rule, line(total)]
    out.append(f"{human(total_params)} parameters, {human(total_macs)} MACs")
    return "\n".join(out)
