"""The `benchmark=surrogate` option of a search (conf/benchmark/surrogate.yaml), and where a space's surrogate
files are: the data (`<space>-<data>.json`), the fitted model (`.model.json`) and its front (`.front.json`).

Checked against the whole search plan before any compute (`bind`): the model file exists and was fitted on this
space, at this search's fidelity and training setup (the data file's signature); the latency is one known
without timing each network; one rung (the surrogate models one fidelity). A leaf of nas.surrogate: the model
itself is loaded only when a search uses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nas.config import CONF_DIR

if TYPE_CHECKING:  # the plan imports this module
    from nas.search.plan import SearchPlan
    from nas.surrogate.model import Surrogate

SURROGATE_DIR = CONF_DIR / "surrogate"
KEYS = ("name", "file", "noise")
# Latency modes a look-up can afford: counted (macs, params) or summed from the per-layer table (predicted,
# deterministic once the table holds the layers); `measured` would time every network.
LATENCY_MODES = ("macs", "params", "predicted")


def data_file(space: str, data: str, folder: Path | None = None) -> Path:
    """Where the surrogate data of `space` on dataset `data` is kept."""
    return Path(folder or SURROGATE_DIR) / f"{space}-{data}.json"


def model_file(data: Path) -> Path:
    """Where the model fitted on a data file is kept: beside it, `<stem>.model.json`."""
    return data.with_name(f"{data.stem}.model.json")


def front_file(data: Path) -> Path:
    """Where the approximated true front of a data file's model is kept: beside it, `<stem>.front.json`."""
    return data.with_name(f"{data.stem}.front.json")


@dataclass(frozen=True)
class SurrogateOptions:
    """A validated `benchmark=surrogate` config; `bind` resolves its files against the search plan."""

    name: str = "surrogate"
    file: str | None = None  # the data file; None: conf/surrogate/<space>-<data>.json
    noise: bool = True  # each evaluation adds the fidelity's seed noise, drawn from the trial's training seed
    dataset: str = ""  # the data the surrogate was trained on (set by `bind`)
    model_hash: str = ""  # the model file's content hash (set by `bind`): part of the study's identity
    latency_from_table: ClassVar[bool] = False  # latency is latency.mode's, as in a trained search

    @classmethod
    def from_cfg(cls, raw: Mapping[str, Any], *, epochs: int) -> SurrogateOptions:
        """The options of `raw`; ValueError with the valid keys."""
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown benchmark keys {unknown}; valid keys for surrogate: {', '.join(KEYS)}")
        if not isinstance(raw.get("noise", True), bool):
            raise ValueError(f"benchmark.noise is true or false, got {raw['noise']!r}")
        return cls(file=raw.get("file"), noise=bool(raw.get("noise", True)))

    def check_data(self, data: Mapping[str, Any]) -> None:
        """Nothing here: the data is checked with the rest of the training setup in `bind`."""

    def data_path(self, plan: SearchPlan) -> Path:
        return Path(self.file) if self.file else data_file(plan.space.name, str(plan.base["data"]["name"]))

    def bind(self, plan: SearchPlan) -> SurrogateOptions:
        """These options checked against the plan (see the module docstring), the model's hash resolved;
        ValueError saying what to change."""
        space, path = plan.space.name, self.data_path(plan)
        model = model_file(path)
        if not model.is_file():
            step = "build" if not path.is_file() else "fit"
            raise ValueError(
                f"benchmark=surrogate: no fitted surrogate of space {space!r} at {model}; make it with "
                f"`python -m nas.surrogate {step} --space {space}`"
                + (" then `fit`" if step == "build" else "")
            )
        doc = json.loads(model.read_text())
        if doc.get("space_hash") != plan.space.hash():
            raise ValueError(
                f"benchmark=surrogate: {model} was fitted on another version of space {space!r}: fit it again "
                f"(python -m nas.surrogate fit --space {space})"
            )
        mode = str(plan.latency.get("mode", "measured"))
        if mode not in LATENCY_MODES:
            raise ValueError(
                f"benchmark=surrogate looks trials up in milliseconds; latency.mode={mode} would time each "
                f"network: use latency.mode={' or '.join(LATENCY_MODES)}"
            )
        if plan.scheduler.multi_rung:
            raise ValueError(
                f"benchmark=surrogate models one fidelity ({plan.fidelity.epochs} epoch(s)), not the rungs of "
                f"scheduler={plan.scheduler.name}: use scheduler=single"
            )
        want = plan.calibration_signature()
        if doc.get("signature") != want:
            diff = sorted(k for k in set(want) | set(doc.get("signature") or {})
                          if want.get(k) != (doc.get("signature") or {}).get(k))  # fmt: skip
            raise ValueError(
                f"benchmark=surrogate: the surrogate models {doc.get('fidelity')} at the training setup it was "
                f"built with; this search differs in {', '.join(diff)}: search at the surrogate's fidelity "
                "(the space's default; no fidelity.*, optim or data overrides)"
            )
        if self.noise and not doc.get("noise_sd"):
            raise ValueError(
                f"benchmark=surrogate: {model} has no seed-noise estimate (no architecture with two seeds): "
                "set benchmark.noise=false, or train second seeds (python -m nas.surrogate build --seeded 30)"
            )
        digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
        return dataclasses.replace(self, dataset=str(doc.get("data")), model_hash=digest)

    def identity(self) -> dict[str, Any]:
        """What a study's results depend on besides its latency config: the model and the noise."""
        return {"benchmark": self.name, "model": self.model_hash, "noise": self.noise}

    def load(self, plan: SearchPlan) -> Surrogate:
        """The fitted surrogate (rebuilt from the data file; once per process and model)."""
        from nas.surrogate.model import Surrogate  # torch and scipy: only when a search uses the surrogate

        path = self.data_path(plan)
        key = (str(path.resolve()), self.model_hash)
        if key not in _LOADED:
            _LOADED[key] = Surrogate.load(model_file(path), plan.space, json.loads(path.read_text()))
        return _LOADED[key]


_LOADED: dict[tuple[str, str], Surrogate] = {}
