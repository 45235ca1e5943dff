"""How well a surrogate ranks architectures it was not fitted on, against how well the fidelity agrees with itself;
the model chosen by it, fitted and written beside the data (`python -m nas.surrogate fit`).

k-fold cross-validation over architectures: each fold's architectures are predicted by a model fitted on the
others (on their mean accuracy over seeds), then compared with one run's accuracy (seed 0) by Spearman's rho
and Kendall's tau. The ceiling is the fidelity's own agreement: seed 0 against seed 1 over the architectures
trained with both. A perfect model of the mean, compared with one noisy run, can beat that ceiling a little (it
carries one run's noise, not two); a model far below it misranks what the fidelity ranks reliably.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.space import Space
from nas.stats import kendall, spearman
from nas.surrogate.features import Encoder
from nas.surrogate.model import Surrogate, Trained, regressor, seed_noise, seed_pairs, trained
from nas.surrogate.options import model_file

MIN_ARCHS = 10  # fewer architectures than this rank nothing reliably: no fit, no table


@dataclass(frozen=True)
class Score:
    """A model's held-out ranking: over all architectures, and over those trained with two seeds."""

    model: str
    n: int
    spearman: float
    kendall: float
    rmse: float  # against one run's accuracy: a perfect model of the mean still has the seed noise
    n_seeded: int
    seeded_spearman: float
    seeded_kendall: float


@dataclass(frozen=True)
class Agreement:
    """The fidelity's seed-to-seed agreement (seed 0 against seed 1)."""

    n: int
    spearman: float
    kendall: float
    noise_sd: float | None  # one run's standard deviation (nas.surrogate.model.seed_noise)


def one_run(a: Trained) -> float:
    """The accuracy a prediction is compared with: seed 0's run (the lowest seed's if it has none)."""
    return a.accuracy[0] if 0 in a.accuracy else a.accuracy[min(a.accuracy)]


def folds(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """`k` disjoint index sets covering range(n), shuffled by `seed`."""
    return [np.sort(f) for f in np.array_split(np.random.default_rng(seed).permutation(n), k)]


def held_out(model: str, encoder: Encoder, archs: Sequence[Trained], k: int, seed: int = 0) -> np.ndarray:
    """Each architecture's prediction by `model` fitted on the folds it is not in."""
    x = encoder.encode([a.row for a in archs])
    y = np.array([a.mean for a in archs])
    reps = np.array([len(a.accuracy) for a in archs], dtype=float)
    pred = np.empty(len(archs))
    for test in folds(len(archs), k, seed):
        train = np.setdiff1d(np.arange(len(archs)), test)
        pred[test] = regressor(model).fit(x[train], y[train], reps[train]).predict(x[test])
    return pred


def score(model: str, pred: np.ndarray, archs: Sequence[Trained]) -> Score:
    """`pred` (held out) against each architecture's one run."""
    truth = np.array([one_run(a) for a in archs])
    seeded = np.array([0 in a.accuracy and 1 in a.accuracy for a in archs])
    return Score(model, len(archs), spearman(pred, truth), kendall(pred, truth),
                 float(np.sqrt(np.mean((pred - truth) ** 2))), int(seeded.sum()),
                 spearman(pred[seeded], truth[seeded]) if seeded.sum() > 2 else float("nan"),
                 kendall(pred[seeded], truth[seeded]) if seeded.sum() > 2 else float("nan"))  # fmt: skip


def agreement(archs: Sequence[Trained]) -> Agreement:
    """Seed 0 against seed 1 over the architectures trained with both."""
    a0, a1 = seed_pairs(archs)
    enough = a0.size > 2
    return Agreement(int(a0.size), spearman(a0, a1) if enough else float("nan"),
                     kendall(a0, a1) if enough else float("nan"), seed_noise(archs))  # fmt: skip


def compare(
    encoder: Encoder, archs: Sequence[Trained], models: Sequence[str], *, k: int = 10, seed: int = 0
) -> list[Score]:
    """Every model's `k`-fold held-out score (the same folds for all); ValueError below MIN_ARCHS."""
    if len(archs) < MIN_ARCHS:
        raise ValueError(
            f"the data holds {len(archs)} architecture(s) with finished runs; a surrogate needs at least "
            f"{MIN_ARCHS} (train more: python -m nas.surrogate build)"
        )
    k = min(k, len(archs))
    return [score(m, held_out(m, encoder, archs, k, seed), archs) for m in models]


def best(scores: Sequence[Score]) -> Score:
    """The score of the model that ranks held-out architectures best: highest Kendall tau, then Spearman."""
    return max(scores, key=lambda s: (np.nan_to_num(s.kendall, nan=-2), np.nan_to_num(s.spearman, nan=-2)))


def table(scores: Sequence[Score], ceiling: Agreement, k: int) -> str:
    """The comparison as text: one line per model, then the fidelity's own agreement."""
    n, seeded = scores[0].n, scores[0].n_seeded
    lines = [
        f"{min(k, n)}-fold cross-validation over {n} architectures (held-out prediction vs one run, seed 0)",
        f"{'model':<8} {'spearman':>9} {'kendall':>8} {'rmse':>8}   on the {seeded} with two seeds: "
        "spearman  kendall",
    ]
    for s in scores:
        lines.append(f"{s.model:<8} {s.spearman:>9.3f} {s.kendall:>8.3f} {s.rmse:>8.4f}   "
                     f"{'':>26}{s.seeded_spearman:>8.3f} {s.seeded_kendall:>8.3f}")  # fmt: skip
    noise = "unknown" if ceiling.noise_sd is None else f"{ceiling.noise_sd:.4f}"
    lines.append(
        f"{'seeds':<8} {ceiling.spearman:>9.3f} {ceiling.kendall:>8.3f} {'':>8}   the fidelity's own "
        f"agreement: seed 0 vs seed 1 over {ceiling.n} architectures; one run's seed noise sd {noise}"
    )
    return "\n".join(lines)


def fit_file(
    space: Space, data: Path, *, models: Sequence[str], model: str = "auto", k: int = 10, **summary: Any
) -> tuple[Surrogate, list[Score], Agreement]:
    """Compare `models` on the data file `data`, fit `model` (auto: the best of them) on all its runs, and
    write the model file beside it (nas.surrogate.model.model_file); `summary`: more for the file."""
    if not data.is_file():
        raise ValueError(
            f"no surrogate data at {data}: train it first (python -m nas.surrogate build --space {space.name})"
        )
    doc = json.loads(data.read_text())
    if doc.get("space") != space.name:
        raise ValueError(f"{data} holds runs of space {doc.get('space')!r}, not {space.name!r}")
    archs = trained(doc)
    scores = compare(Encoder(space), archs, models, k=k)
    ceiling = agreement(archs)
    chosen = best(scores).model if model == "auto" else model
    why = "the highest held-out Kendall tau" if model == "auto" else "named by --model"
    surrogate = Surrogate.fit(
        space, doc, chosen, data_file=data.name, chosen_by=why, folds=min(k, len(archs)),
        cross_validation=[_plain(s) for s in scores], seed_agreement=_plain(ceiling), **summary,
    )  # fmt: skip
    surrogate.save(model_file(data))
    return surrogate, scores, ceiling


def _plain(row: Score | Agreement) -> dict[str, Any]:
    """A dataclass's fields for a JSON file: NaN (undefined) as null, figures to 4 decimals."""
    out = asdict(row)
    for key, v in out.items():
        if isinstance(v, float):
            out[key] = None if math.isnan(v) else round(v, 4)
    return out
