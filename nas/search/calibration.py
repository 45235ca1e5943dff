"""Is a search's fidelity calibrated for its space? The measured answer, read from a committed file.

`nas-calibrate` (python -m nas.calibrate) trains a reference (architectures spread over a space's MACs, the
whole training split, several epochs, two seeds for some) and candidate fidelities of the same architectures,
and writes `conf/calibration/<space>-<data>.json`: per candidate its `signature` (what decides how a fidelity
ranks networks: space, data, epochs, fraction, image size, batch size, validation size, optimiser), Spearman's
rho of its accuracy with the reference's (with a bootstrap CI), the seed-to-seed ceiling and its median
seconds per trial. A search whose own signature equals a candidate's prints that rho in its header, report
and W&B summary; any other search is "uncalibrated", and its report says a front's dominance over a
reference network is not evidence at that fidelity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.config import CONF_DIR

CALIBRATION_DIR = CONF_DIR / "calibration"

__all__ = ["CALIBRATION_DIR", "Calibration", "calibration_file", "lookup", "signature"]


def signature(
    *, space: str, data: Mapping[str, Any], epochs: int, optim: Mapping[str, Any], trainer: Mapping[str, Any]
) -> dict[str, Any]:
    """What decides how a fidelity ranks a space's networks, as JSON-comparable values. `data` is the run's
    data section at that fidelity (fraction, image size, batch size, validation split), `optim` its optimiser
    and schedule, `trainer` its trainer section (precision, clipping, batch limits)."""
    keys = ("name", "fraction", "image_size", "batch_size", "val_size", "val_fraction", "augment")
    trainer_keys = ("precision", "gradient_clip_val", "limit_train_batches", "accumulate_grad_batches")
    return json.loads(
        json.dumps(
            {
                "space": space,
                "data": {k: data.get(k) for k in keys},
                "epochs": int(epochs),
                "optim": dict(optim),
                "trainer": {k: trainer.get(k) for k in trainer_keys},
            },
            sort_keys=True,
            default=str,
        )
    )


def calibration_file(space: str, data: str, folder: Path | None = None) -> Path:
    """Where the calibration of `space` on dataset `data` is kept."""
    return Path(folder or CALIBRATION_DIR) / f"{space}-{data}.json"


@dataclass(frozen=True)
class Calibration:
    """One candidate fidelity's measured agreement with the reference."""

    label: str
    rho: float
    ci: tuple[float, float]
    ceiling: float | None
    n_archs: int
    reference: str
    seconds: float
    file: str

    def describe(self) -> str:
        ceiling = f", seed ceiling {self.ceiling:+.2f}" if self.ceiling is not None else ""
        return (
            f"calibrated: Spearman {self.rho:+.2f} (95 % CI {self.ci[0]:+.2f} to {self.ci[1]:+.2f}) with "
            f"{self.reference} over {self.n_archs} architectures{ceiling}; {self.seconds:.0f} s per trial"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "calibrated": True, "label": self.label, "rho": self.rho, "ci": list(self.ci),
            "ceiling": self.ceiling, "n_archs": self.n_archs, "reference": self.reference,
            "seconds": self.seconds, "file": self.file,
        }  # fmt: skip


def lookup(sig: Mapping[str, Any], folder: Path | None = None) -> Calibration | None:
    """The calibration of the fidelity with signature `sig`, or None when none was measured."""
    path = calibration_file(str(sig["space"]), str(sig["data"]["name"]), folder)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    ref = doc.get("reference") or {}
    for cand in doc.get("candidates") or []:
        if cand.get("signature") == dict(sig) and cand.get("rho") is not None:
            return Calibration(
                label=str(cand.get("label")),
                rho=float(cand["rho"]),
                ci=(float(cand["ci"][0]), float(cand["ci"][1])),
                ceiling=doc.get("ceiling"),
                n_archs=int(cand.get("n_archs") or 0),
                reference=str(ref.get("label", "the reference")),
                seconds=float(cand.get("seconds") or 0.0),
                file=str(path),
            )
    return None


def uncalibrated(sig: Mapping[str, Any]) -> str:
    """The header's line for a fidelity no calibration covers, with the command that calibrates it."""
    return (
        f"uncalibrated: no measurement says this fidelity ranks {sig['space']} networks on "
        f"{sig['data']['name']} as a longer training would (calibrate: python -m nas.calibrate "
        f"--space {sig['space']} --data {sig['data']['name']} --fidelities <epochs:fraction[:image_size]>)"
    )
