"""The surrogate's true front, approximated: random draws of the space plus an evolutionary search, scored by the
surrogate's mean accuracy (no noise) against the search's latency objective, under the space's constraints.

Counting a network's MACs on the meta device takes ~0.1-0.5 s, so 10^5 draws cannot all be counted. The draws
are screened instead, and only what the screen cannot rule out is counted:

1. A cost model (the `gp` regressor on the encoded parameters) predicts log10 MACs and log10 parameters; its
   held-out error e (standard deviation, log10 units) is measured on the data file's architectures.
2. Every draw gets approximate costs, hence an approximate latency (MACs or parameters) and accuracy (the
   surrogate fed the approximate costs; its error d is measured the same way).
3. A draw is set aside only when, with every error at SLACK standard deviations against it, it is still
   dominated by a draw surely inside the constraints: a draw that is at least 2 SLACK d more accurate and
   10^(2 SLACK e) times faster. A draw surely outside the constraints is set aside too.
4. The rest are counted exactly, nearest the approximate front first (at most `max_exact`), and the front of
   the exact results is kept.

The evolutionary search then mutates members of that front (one or two parameters: a categorical redrawn, a
number moved a little, on a log scale for a log range) and counts its children exactly, generation after
generation. Two approximations from independent seeds, and the hypervolume of each against their union, say
how close the result is to the true front.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.pareto import ACCURACY_LATENCY, front_mask, hypervolume
from nas.space import Space, SpecRejected
from nas.space.params import RandomSuggester
from nas.surrogate.model import Surrogate, regressor
from nas.surrogate.validate import folds

if TYPE_CHECKING:  # a plan is handed in: the training stack is not loaded for `nas-surrogate --help`
    from nas.search.plan import SearchPlan

SLACK = 3.0  # standard deviations of the screen's errors a draw is given
MODES = ("macs", "params")  # latency objectives the front can count exactly for thousands of networks


@dataclass(frozen=True)
class Point:
    """One exactly evaluated network: its parameters, costs, mean accuracy and latency objective."""

    params: dict[str, Any]
    macs: int
    n_params: int
    accuracy: float
    latency: float


def key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


class Exact:
    """Exact evaluation of parameter sets, each once: counted costs, the constraints, the mean accuracy."""

    def __init__(self, plan: SearchPlan, surrogate: Surrogate, mode: str) -> None:
        self.plan, self.surrogate, self.mode = plan, surrogate, mode
        self.done: dict[str, Point | None] = {}  # None: invalid (rejected, or breaks a constraint)

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> list[Point | None]:
        new = {key(p): dict(p) for p in batch if key(p) not in self.done}
        counted = []
        for k, params in new.items():
            try:
                cost = self.plan.cost(self.plan.space.compile(params))[2]
            except (SpecRejected, ValueError):  # e.g. a feature map below 1x1 at either size
                self.done[k] = None
                continue
            if self.plan.space.constraints.violations({"params": cost["params"], "macs": cost["macs"]}):
                self.done[k] = None
                continue
            counted.append((k, params, int(cost["macs"]), int(cost["params"])))
        if counted:
            mean = self.surrogate.predict([(p, m, n) for _, p, m, n in counted])
            for (k, p, m, n), acc in zip(counted, mean, strict=True):
                self.done[k] = Point(p, m, n, float(acc), float(m if self.mode == "macs" else n))
        return [self.done[key(p)] for p in batch]

    def points(self) -> list[Point]:
        return [p for p in self.done.values() if p is not None]


def front_of(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points (accuracy up, latency down), by increasing latency."""
    if not points:
        return []
    mask = front_mask([(p.accuracy, p.latency) for p in points], ACCURACY_LATENCY)
    return sorted((p for p, m in zip(points, mask, strict=True) if m), key=lambda p: (p.latency, -p.accuracy))


# ---------------------------------------------------------------------------------------------- the screen


@dataclass(frozen=True)
class Screen:
    """The screen's cost model and its measured errors (see the module docstring)."""

    macs: Any  # fitted regressors of log10 MACs / log10 parameters
    params: Any
    macs_sd: float  # held-out error, log10 units
    params_sd: float
    accuracy_sd: float  # the surrogate's accuracy error from approximate instead of counted costs

    def costs(
        self, surrogate: Surrogate, drawn: Sequence[Mapping[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray]:
        x = surrogate.encoder.encode([(p, 1, 1) for p in drawn])  # the cost columns unused: constant
        return 10 ** self.macs.predict(x), 10 ** self.params.predict(x)


def fit_screen(surrogate: Surrogate, archs: Sequence[Mapping[str, Any]], k: int = 5) -> Screen:
    """The cost model, fitted on counted architectures `archs` ({params, macs, n_params}); its errors held out."""
    x = surrogate.encoder.encode([(a["params"], 1, 1) for a in archs])
    logs = {c: np.log10([float(a[c]) for a in archs]) for c in ("macs", "n_params")}
    held = {c: np.empty(len(archs)) for c in logs}
    for test in folds(len(archs), min(k, len(archs)), seed=0):
        train = np.setdiff1d(np.arange(len(archs)), test)
        for c, y in logs.items():
            held[c][test] = regressor("gp").fit(x[train], y[train], np.ones(train.size)).predict(x[test])
    rows = [
        (a["params"], 10**m, 10**n) for a, m, n in zip(archs, held["macs"], held["n_params"], strict=True)
    ]
    exact = surrogate.predict([(a["params"], a["macs"], a["n_params"]) for a in archs])
    return Screen(
        regressor("gp").fit(x, logs["macs"], np.ones(len(archs))),
        regressor("gp").fit(x, logs["n_params"], np.ones(len(archs))),
        float(np.std(held["macs"] - logs["macs"])),
        float(np.std(held["n_params"] - logs["n_params"])),
        float(np.std(surrogate.predict(rows) - exact)),
    )


def screened(
    accuracy: np.ndarray, latency: np.ndarray, lat_sd: float, acc_sd: float, sure: np.ndarray
) -> np.ndarray:
    """Indices of the draws the screen cannot rule out, nearest the approximate front first.

    Draw c is ruled out when a draw p that is surely valid (`sure`) has accuracy >= c's + 2 SLACK `acc_sd` and
    latency <= c's / 10^(2 SLACK `lat_sd`) (log10 units): p dominates c whatever the errors within SLACK.
    """
    margin_a, factor = 2 * SLACK * acc_sd, 10 ** (2 * SLACK * lat_sd)
    dominators = np.flatnonzero(sure)
    order = dominators[np.argsort(latency[dominators] * factor)]
    lat_sorted = latency[order] * factor
    best_before = np.maximum.accumulate(accuracy[order]) if order.size else np.array([])
    # The most accurate surely-valid draw at least `factor` faster than each draw (-inf if none).
    best = np.full(latency.size, -np.inf)
    if order.size:
        n = np.searchsorted(lat_sorted, latency, side="right")
        best[n > 0] = best_before[n[n > 0] - 1]
    gap = best - margin_a - accuracy  # >= 0: ruled out; the more negative, the clearer a front member
    keep = np.flatnonzero(gap < 0)
    return keep[np.argsort(gap[keep], kind="stable")]


# ------------------------------------------------------------------------------------------ the evolution


class Mutation:
    """A suggester that redraws a parent's parameters: those in `change` move (a categorical to another choice,
    a number a step on its scale), parameters the parent lacks (newly active) are drawn at random, the rest kept."""

    def __init__(self, parent: Mapping[str, Any], change: set[str], rng: random.Random) -> None:
        self.parent, self.change, self.rng = dict(parent), change, rng
        self.fresh = RandomSuggester(rng)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if name not in self.parent:
            return self.fresh.suggest_int(name, low, high, step=step, log=log)
        v = int(self.parent[name])
        if name not in self.change:
            return v
        if log:
            moved = round(v * math.exp(self.rng.gauss(0.0, 0.3)))
        else:
            moved = v + step * self.rng.choice([-1, 1]) * max(1, round(abs(self.rng.gauss(0, 1))))
        moved = low + step * round((min(high, max(low, moved)) - low) / step)
        return moved if moved != v else min(high, v + step) if v < high else v - step

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ):
        if name not in self.parent:
            return self.fresh.suggest_float(name, low, high, step=step, log=log)
        v = float(self.parent[name])
        if name not in self.change:
            return v
        if log:
            return float(min(high, max(low, v * math.exp(self.rng.gauss(0.0, 0.3)))))
        moved = min(high, max(low, v + self.rng.gauss(0.0, 0.15 * (high - low))))
        return low + step * round((moved - low) / step) if step else moved

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        choices = list(choices)
        if name not in self.parent:
            return self.fresh.suggest_categorical(name, choices)
        if name not in self.change or len(choices) < 2:
            return self.parent[name]
        return self.rng.choice([c for c in choices if c != self.parent[name]])


def mutate(space: Space, parent: Mapping[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """A child of `parent`: one parameter changed (two, one time in three); None if it renders nothing."""
    names = sorted(parent)
    change = set(rng.sample(names, min(len(names), 2 if rng.random() < 1 / 3 else 1)))
    try:
        return space.sample(Mutation(parent, change, rng)).params
    except SpecRejected:
        return None


# -------------------------------------------------------------------------------------------- the front


@dataclass(frozen=True)
class Run:
    """One approximation: what it evaluated and the front it found."""

    seed: int
    draws: int  # distinct random draws screened
    screened_in: int  # draws the screen could not rule out
    counted: int  # of those, counted exactly (at most max_exact)
    evolved: int  # children of the evolutionary search counted exactly
    front: list[Point]


def approximate(
    plan: SearchPlan,
    surrogate: Surrogate,
    exact: Exact,
    screen: Screen,
    *,
    seed: int,
    draws: int,
    max_exact: int,
    generations: int,
    children: int,
    echo: Callable[[str], None] = print,
) -> Run:
    """One approximation of the true front (see the module docstring); `exact` may be shared between runs."""
    space, bounds = plan.space, plan.space.constraints.bounds
    drawn: dict[str, dict[str, Any]] = {}
    rng = random.Random(seed)
    for _ in range(draws * 3):  # rejected draws and repeats are redrawn, within reason
        if len(drawn) >= draws:
            break
        try:
            params = space.sample(RandomSuggester(rng)).params
        except SpecRejected:
            continue
        drawn.setdefault(key(params), params)
    params_list = list(drawn.values())
    macs, n_params = screen.costs(surrogate, params_list)
    accuracy = surrogate.predict(list(zip(params_list, macs, n_params, strict=True)))
    latency = macs if exact.mode == "macs" else n_params
    lat_sd = screen.macs_sd if exact.mode == "macs" else screen.params_sd
    sure = np.ones(len(params_list), bool)
    maybe = np.ones(len(params_list), bool)
    for name, approx, sd in (("macs", macs, screen.macs_sd), ("params", n_params, screen.params_sd)):
        lo, hi = bounds.get(name, (None, None))
        widen = 10 ** (SLACK * sd)
        if hi is not None:
            sure &= approx * widen <= hi
            maybe &= approx / widen <= hi
        if lo is not None:
            sure &= approx / widen >= lo
            maybe &= approx * widen >= lo
    candidates = screened(accuracy, latency, lat_sd, screen.accuracy_sd, sure & maybe)
    candidates = candidates[maybe[candidates]]
    chosen = [params_list[i] for i in candidates[:max_exact]]
    echo(f"seed {seed}: {len(params_list)} draws, {candidates.size} not ruled out by the screen, counting "
         f"{len(chosen)}")  # fmt: skip
    found = [p for p in exact(chosen) if p is not None]
    front = front_of(found)
    evolved = 0
    for g in range(generations):
        if not front:
            break
        kids = [mutate(space, rng.choice(front).params, rng) for _ in range(children)]
        kids = [k for k in kids if k is not None and key(k) not in exact.done]
        evolved += len(kids)
        found += [p for p in exact(kids) if p is not None]
        front = front_of(found)
        echo(
            f"seed {seed}: generation {g + 1}/{generations}, {len(kids)} new children, front of {len(front)}"
        )
    return Run(seed, len(params_list), int(candidates.size), len(chosen), evolved, front)


def reference(runs: Sequence[Run], latency_bound: float | None) -> tuple[float, float]:
    """The hypervolume reference point (accuracy, latency): the lowest front accuracy of any run, and the latency
    objective's bound from the constraints (else the largest front latency)."""
    points = [p for r in runs for p in r.front]
    acc = min(p.accuracy for p in points)
    lat = latency_bound if latency_bound is not None else max(p.latency for p in points)
    return acc, float(lat)


def box_hypervolume(
    points: Sequence[tuple[float, float]], ref: tuple[float, float], ideal: tuple[float, float]
) -> float:
    """Hypervolume of (accuracy, latency) points as a fraction of the box between `ref` (worst) and `ideal` (best
    accuracy, lowest latency); a point outside the box on the reference's side adds nothing."""
    if not points:
        return 0.0
    p = np.asarray(points, float).reshape(-1, 2)
    a = (p[:, 0] - ref[0]) / (ideal[0] - ref[0] or 1.0)
    g = (ref[1] - p[:, 1]) / (ref[1] - ideal[1] or 1.0)
    return hypervolume(np.column_stack((a, g)), ("maximize", "maximize"), (0.0, 0.0))


def compare(runs: Sequence[Run], ref: tuple[float, float]) -> tuple[list[Point], list[float], float]:
    """(the union's front, each run's hypervolume as a fraction of the union's, the union's hypervolume), the
    hypervolume in the box between `ref` and the union's ideal point (best accuracy, lowest latency)."""
    union = front_of(list({key(p.params): p for r in runs for p in r.front}.values()))  # each network once
    ideal = (max(p.accuracy for p in union), min(p.latency for p in union))

    def hv(points: Sequence[Point]) -> float:
        return box_hypervolume([(q.accuracy, q.latency) for q in points], ref, ideal)

    total = hv(union)
    return union, [hv(r.front) / total if total > 0 else 1.0 for r in runs], total


def regret_curve(doc: Mapping[str, Any], points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Hypervolume regret 1 - HV / HV* after each of a search's evaluations (points: its (mean accuracy,
    latency) in order), against the approximated true front of front file content `doc`, in its box: its
    reference point and its front's ideal point. Negative where a search beat the approximation."""
    front = [(float(p["accuracy"]), float(p["latency"])) for p in doc["front"]]
    ref = (float(doc["reference"][0]), float(doc["reference"][1]))
    ideal = (max(a for a, _ in front), min(g for _, g in front))
    star = box_hypervolume(front, ref, ideal)
    return np.array([1.0 - box_hypervolume(points[: k + 1], ref, ideal) / star for k in range(len(points))])


def as_record(run: Run, share: float) -> dict[str, Any]:
    out = {k: v for k, v in asdict(run).items() if k != "front"}
    return {**out, "front_size": len(run.front), "hypervolume_vs_union": round(share, 6)}


def run(
    plan: SearchPlan,
    surrogate: Surrogate,
    archs: Sequence[Mapping[str, Any]],
    *,
    mode: str,
    seeds: Sequence[int],
    draws: int,
    max_exact: int,
    generations: int,
    children: int,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Approximate the front once per seed (sharing exact counts), compare them, and return the front file's
    content; `archs`: the data file's counted architectures (the screen's cost model learns from them)."""
    if mode not in MODES:
        raise ValueError(
            f"the front counts the latency of thousands of networks: latency {mode!r} is not one it can count "
            f"exactly; valid: {', '.join(MODES)}"
        )
    screen = fit_screen(surrogate, archs)
    echo(f"screen: held-out error of log10 MACs {screen.macs_sd:.3f}, of log10 parameters {screen.params_sd:.3f}; "
         f"accuracy from approximate costs off by {screen.accuracy_sd:.4f} (sd)")  # fmt: skip
    exact = Exact(plan, surrogate, mode)
    runs = [approximate(plan, surrogate, exact, screen, seed=s, draws=draws, max_exact=max_exact,
                        generations=generations, children=children, echo=echo) for s in seeds]  # fmt: skip
    if not any(r.front for r in runs):
        raise ValueError("no valid network found: every draw broke the space's constraints or did not render")
    bound = plan.hypervolume_bounds()["latency"] if mode == "macs" else plan.space.constraints.bounds.get(
        "params", (None, None))[1]  # fmt: skip
    ref = reference(runs, bound)
    union, shares, total = compare(runs, ref)
    return {
        "space": plan.space.name, "space_hash": plan.space.hash(), "model": surrogate.hash, "latency": mode,
        "accuracy": "the surrogate's mean prediction (no noise)", "reference": list(ref),
        "hypervolume": total, "evaluations": sum(r.draws + r.counted + r.evolved for r in runs),
        "counted": len(exact.done),
        "screen": {"model": "gp", "slack_sd": SLACK, "log10_macs_sd": screen.macs_sd,
                   "log10_params_sd": screen.params_sd, "accuracy_sd": screen.accuracy_sd},
        "runs": [as_record(r, share) for r, share in zip(runs, shares, strict=True)],
        "front": [asdict(p) for p in union],
    }  # fmt: skip
