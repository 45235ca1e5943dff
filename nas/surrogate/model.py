"""The surrogate model: mean accuracy of an architecture at the space's search fidelity, and the fidelity's noise.

Regressors (`REGRESSORS`, chosen by name) map encoded architectures (nas.surrogate.features) to the mean
accuracy over their seeds:

- `gp`: a Gaussian process, ARD Matern-5/2 kernel, hyperparameters by marginal likelihood under the
  dimension-scaled log-normal lengthscale prior of Hvarfner et al. (2024), a constant mean, and per
  architecture the noise of its mean (seed noise / number of seeds). Exact and small: its state is ~d+3
  numbers, the posterior is recomputed from the data file's runs when loaded (milliseconds for 500 runs).
- `mlp`: an ensemble of 5 small MLPs (2 x 64 SiLU, Adam, weight decay), each from its own seed.
- `ridge`: linear in the encoded columns, the penalty chosen by leave-one-out error; the baseline.

`Surrogate` is a fitted one: predict mean accuracy, draw an evaluation's seed noise, and the model file
(`<data file stem>.model.json` beside the data) that holds what is needed to rebuild it from the data file.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from nas.space import Space
from nas.surrogate.features import Encoder

# ------------------------------------------------------------------------------------------------ the runs


@dataclass(frozen=True)
class Trained:
    """One architecture of a data file with its finished runs."""

    arch: int  # its index in the file's `archs`
    params: dict[str, Any]
    macs: int
    n_params: int
    reference: str | None
    accuracy: dict[int, float]  # seed -> accuracy at the fidelity
    keys: tuple[str, ...]  # the runs' keys in the file

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.accuracy.values())))

    @property
    def row(self) -> tuple[dict[str, Any], int, int]:
        return self.params, self.macs, self.n_params


def trained(doc: Mapping[str, Any], keys: Sequence[str] | None = None) -> list[Trained]:
    """The architectures of a data file that have finished runs (only the runs `keys`, when given), in the
    file's order. A run without a finite accuracy (a failed training) counts as not run."""
    wanted = None if keys is None else set(keys)
    by_arch: dict[int, dict[int, tuple[str, float]]] = {}
    for key, run in doc.get("runs", {}).items():
        acc = run.get("accuracy")
        if (wanted is not None and key not in wanted) or acc is None or not math.isfinite(float(acc)):
            continue
        by_arch.setdefault(int(run["arch"]), {})[int(run["seed"])] = (key, float(acc))
    archs = doc.get("archs", [])
    out = []
    for i in sorted(by_arch):
        a, runs = archs[i], by_arch[i]
        out.append(Trained(i, dict(a["params"]), int(a["macs"]), int(a["n_params"]), a.get("reference"),
                           {s: v for s, (_, v) in sorted(runs.items())},
                           tuple(k for _, (k, _) in sorted(runs.items()))))  # fmt: skip
    return out


def seed_pairs(archs: Sequence[Trained]) -> tuple[np.ndarray, np.ndarray]:
    """(seed-0, seed-1) accuracies of the architectures trained with both."""
    both = [a for a in archs if 0 in a.accuracy and 1 in a.accuracy]
    return np.array([a.accuracy[0] for a in both]), np.array([a.accuracy[1] for a in both])


def seed_noise(archs: Sequence[Trained]) -> float | None:
    """The fidelity's seed-to-seed standard deviation of one run's accuracy, from the architectures trained
    with two seeds: sqrt(mean((a0 - a1)^2) / 2) (None with fewer than 2 such architectures)."""
    a0, a1 = seed_pairs(archs)
    if a0.size < 2:
        return None
    return float(np.sqrt(np.mean((a0 - a1) ** 2) / 2))


# ------------------------------------------------------------------------------------------- regressors


class Regressor(ABC):
    """Encoded architectures -> mean accuracy. Columns are scaled to [0, 1] over the training rows and the
    target standardised here; a subclass fits and predicts in those units."""

    name = ""

    def fit(self, x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> Regressor:
        """Fit on rows `x`, mean accuracies `y`, each the mean of `reps` seeds."""
        self.lo, span = x.min(axis=0), np.ptp(x, axis=0)
        self.span = np.where(span > 0, span, 1.0)
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        self._fit(self._x(x), (y - self.y_mean) / self.y_std, np.asarray(reps, float))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted mean accuracy of each row."""
        out = np.concatenate([self._predict(self._x(x[i : i + 8192])) for i in range(0, len(x), 8192)])
        return self.y_mean + self.y_std * out

    def state(self) -> dict[str, Any]:
        """What rebuilds the fitted regressor (with the training rows, for one that keeps them)."""
        return {"lo": _round(self.lo), "span": _round(self.span), "y_mean": self.y_mean, "y_std": self.y_std,
                **self._state()}  # fmt: skip

    @classmethod
    def load(cls, state: Mapping[str, Any], x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> Regressor:
        """The regressor `state` describes, its training rows `x`, `y`, `reps` (those of the fit)."""
        self = cls()
        self.lo, self.span = np.array(state["lo"]), np.array(state["span"])
        self.y_mean, self.y_std = float(state["y_mean"]), float(state["y_std"])
        self._load(state, self._x(x), (y - self.y_mean) / self.y_std, np.asarray(reps, float))
        return self

    def _x(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, float) - self.lo) / self.span

    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load(self, state: Mapping[str, Any], x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None: ...


def _matern52(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Matern-5/2 correlation of rows already divided by their lengthscales."""
    r2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    r = torch.sqrt(r2.clamp_min(1e-12))  # the clamp also keeps the gradient finite at r = 0
    s = math.sqrt(5.0) * r
    return (1.0 + s + s * s / 3.0) * torch.exp(-s)


class GaussianProcess(Regressor):
    """Exact GP regression (see the module docstring)."""

    name = "gp"
    JITTER = 1e-6
    START_NOISE = (1e-1, 1e-2, 1e-3)  # noise variances (standardised accuracy) the fit starts from

    def _fit(self, x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        d = x.shape[1]
        # Hvarfner et al. 2024, "Vanilla Bayesian optimization performs great in high dimensions": lengthscales
        # ~ LogNormal(sqrt(2) + log(d) / 2, sqrt(3)) for inputs in the unit cube, so that many columns do not
        # make every pair of points look unrelated.
        mu, sigma = math.sqrt(2.0) + math.log(d) / 2.0, math.sqrt(3.0)
        xt, yt, rt = (torch.as_tensor(v, dtype=torch.float64) for v in (x, y, reps))

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            t = torch.as_tensor(theta, dtype=torch.float64).requires_grad_(True)
            log_ls, log_sf2, log_sn2 = t[:d], t[d], t[d + 1]
            nll = -self._log_likelihood(xt, yt, rt, log_ls, log_sf2, log_sn2)
            nll = nll + (((log_ls - mu) ** 2) / (2 * sigma**2)).sum()
            nll.backward()
            return float(nll.detach()), t.grad.numpy().copy()

        bounds = [(math.log(1e-2), math.log(1e3))] * d + [(math.log(1e-2), math.log(1e2)),
                                                          (math.log(1e-6), math.log(2.0))]  # fmt: skip
        # Several starting noise levels: from a large one alone, the optimiser can stop at "it is all noise"
        # (a local optimum of the likelihood that predicts the mean everywhere).
        fits = [minimize(loss, np.concatenate([np.full(d, mu), [0.0, math.log(noise)]]), jac=True,
                         method="L-BFGS-B", bounds=bounds, options={"maxiter": 200})
                for noise in self.START_NOISE]  # fmt: skip
        theta = min(fits, key=lambda f: f.fun).x
        self.log_ls, self.log_sf2, self.log_sn2 = theta[:d], float(theta[d]), float(theta[d + 1])
        self._posterior(x, y, reps)

    def _log_likelihood(self, x, y, reps, log_ls, log_sf2, log_sn2) -> torch.Tensor:  # noqa: ANN001
        xs = x / torch.exp(log_ls)
        k = torch.exp(log_sf2) * _matern52(xs, xs)
        k = k + torch.diag(torch.exp(log_sn2) / reps + self.JITTER)
        chol = torch.linalg.cholesky(k)
        alpha = torch.cholesky_solve(y[:, None], chol)[:, 0]
        return (
            -0.5 * (y @ alpha) - torch.log(torch.diagonal(chol)).sum() - 0.5 * len(y) * math.log(2 * math.pi)
        )

    def _posterior(self, x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        with torch.no_grad():
            self._xs = torch.as_tensor(x, dtype=torch.float64) / torch.exp(torch.as_tensor(self.log_ls))
            k = math.exp(self.log_sf2) * _matern52(self._xs, self._xs)
            k = k + torch.diag(
                math.exp(self.log_sn2) / torch.as_tensor(reps, dtype=torch.float64) + self.JITTER
            )
            chol = torch.linalg.cholesky(k)
            self._alpha = torch.cholesky_solve(torch.as_tensor(y, dtype=torch.float64)[:, None], chol)[:, 0]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xs = torch.as_tensor(x, dtype=torch.float64) / torch.exp(torch.as_tensor(self.log_ls))
            return (math.exp(self.log_sf2) * _matern52(xs, self._xs) @ self._alpha).numpy()

    def _state(self) -> dict[str, Any]:
        return {"lengthscales": _round(np.exp(self.log_ls)), "signal_var": math.exp(self.log_sf2),
                "noise_var": math.exp(self.log_sn2)}  # fmt: skip

    def _load(self, state: Mapping[str, Any], x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        self.log_ls = np.log(np.array(state["lengthscales"], dtype=float))
        self.log_sf2, self.log_sn2 = math.log(state["signal_var"]), math.log(state["noise_var"])
        self._posterior(x, y, reps)


class Ridge(Regressor):
    """Ridge regression; the penalty from a grid by the closed-form leave-one-out error."""

    name = "ridge"
    PENALTIES = tuple(10.0**k for k in range(-4, 4))

    def _fit(self, x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        xc = x - x.mean(axis=0)
        best = None
        for lam in self.PENALTIES:
            inv = np.linalg.inv(xc.T @ xc + lam * np.eye(x.shape[1]))
            hat = np.einsum("ij,jk,ik->i", xc, inv, xc) + 1.0 / len(y)  # leverage, the intercept's included
            coef = inv @ xc.T @ y
            loo = np.mean(((y - xc @ coef) / np.clip(1.0 - hat, 1e-9, None)) ** 2)
            if best is None or loo < best[0]:
                best = (loo, lam, coef)
        _, self.penalty, self.coef = best  # type: ignore[misc]
        self.intercept = float(-x.mean(axis=0) @ self.coef)  # y is centred: its mean is 0

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept

    def _state(self) -> dict[str, Any]:
        return {"penalty": self.penalty, "coef": _round(self.coef), "intercept": self.intercept}

    def _load(self, state: Mapping[str, Any], x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        self.penalty, self.intercept = float(state["penalty"]), float(state["intercept"])
        self.coef = np.array(state["coef"], dtype=float)


class MLPEnsemble(Regressor):
    """The mean of `MEMBERS` MLPs, each trained from its own seed (full batch, Adam)."""

    name = "mlp"
    MEMBERS, HIDDEN, STEPS = 5, 64, 600

    def _fit(self, x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        self.nets = []
        for seed in range(self.MEMBERS):
            torch.manual_seed(seed)
            net = self._net(x.shape[1])
            opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
            for _ in range(self.STEPS):
                opt.zero_grad()
                torch.nn.functional.mse_loss(net(xt)[:, 0], yt).backward()
                opt.step()
            self.nets.append(net.eval())

    def _net(self, d: int) -> torch.nn.Module:
        h = self.HIDDEN
        return torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.SiLU(), torch.nn.Linear(h, h), torch.nn.SiLU(),
                                   torch.nn.Linear(h, 1))  # fmt: skip

    def _predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float32)
            return torch.stack([net(xt)[:, 0] for net in self.nets]).mean(0).double().numpy()

    def _state(self) -> dict[str, Any]:
        return {"members": [{k: _round(v.numpy()) for k, v in net.state_dict().items()} for net in self.nets]}

    def _load(self, state: Mapping[str, Any], x: np.ndarray, y: np.ndarray, reps: np.ndarray) -> None:
        self.nets = []
        for member in state["members"]:
            net = self._net(x.shape[1])
            net.load_state_dict(
                {k: torch.as_tensor(np.array(v), dtype=torch.float32) for k, v in member.items()}
            )
            self.nets.append(net.eval())


REGRESSORS: dict[str, type[Regressor]] = {c.name: c for c in (GaussianProcess, MLPEnsemble, Ridge)}


def regressor(name: str) -> Regressor:
    """A new regressor by name; ValueError with the valid names."""
    if name not in REGRESSORS:
        raise ValueError(f"unknown surrogate model {name!r}; valid models: {', '.join(REGRESSORS)}")
    return REGRESSORS[name]()


def _round(a: np.ndarray | Sequence[float]) -> list:
    """Nested lists of 7 significant digits: what a JSON file keeps of the arrays (float32 precision)."""
    return np.vectorize(lambda v: float(f"{v:.7g}"), otypes=[float])(np.asarray(a, float)).tolist()


# -------------------------------------------------------------------------------------- a fitted surrogate


@dataclass
class Surrogate:
    """A fitted surrogate of one space's data file: mean accuracy and the fidelity's seed noise."""

    space: Space
    encoder: Encoder
    regressor: Regressor
    noise_sd: float | None  # one run's seed-to-seed standard deviation (None: no architecture had two seeds)
    doc: dict[str, Any]  # the model file's content

    @classmethod
    def fit(cls, space: Space, data: Mapping[str, Any], model: str, **summary: Any) -> Surrogate:
        """Fit `model` on every finished run of the data file's content `data`; `summary`: more to record."""
        encoder = Encoder(space)
        archs = trained(data)
        x, y, reps = _training_rows(encoder, archs)
        reg = regressor(model).fit(x, y, reps)
        noise = seed_noise(archs)
        doc = {
            "space": space.name, "space_hash": space.hash(), "data": data.get("data"),
            "signature": data.get("signature"), "fidelity": data.get("fidelity"), "metric": data.get("metric"),
            "model": model, "columns": encoder.columns, "state": reg.state(), "noise_sd": noise,
            "n_archs": len(archs), "runs": sorted(k for a in archs for k in a.keys), **summary,
        }  # fmt: skip
        return cls(space, encoder, reg, noise, doc)

    @classmethod
    def load(cls, path: Path, space: Space, data: Mapping[str, Any]) -> Surrogate:
        """The surrogate of model file `path`, rebuilt on the runs it was fitted on in the data file's content
        `data`; ValueError when the space or the data no longer match it."""
        doc = json.loads(Path(path).read_text())
        if doc.get("space_hash") != space.hash():
            raise ValueError(
                f"{path} was fitted on another version of space {space.name!r} (its parameters or template "
                f"changed): fit it again (python -m nas.surrogate fit --space {space.name})"
            )
        archs = trained(data, doc["runs"])
        have = sum(len(a.keys) for a in archs)
        if have != len(doc["runs"]):
            raise ValueError(f"{path} was fitted on {len(doc['runs'])} runs, its data file holds {have} of them: "
                             f"fit it again (python -m nas.surrogate fit --space {space.name})")  # fmt: skip
        encoder = Encoder(space)
        if encoder.columns != doc["columns"]:
            raise ValueError(f"{path}: its columns differ from the space's encoding: fit it again")
        x, y, reps = _training_rows(encoder, archs)
        if doc["model"] not in REGRESSORS:
            raise ValueError(f"{path}: unknown model {doc['model']!r}; valid models: {', '.join(REGRESSORS)}")
        reg = REGRESSORS[doc["model"]].load(doc["state"], x, y, reps)
        return cls(space, encoder, reg, doc.get("noise_sd"), doc)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.doc, indent=1) + "\n")

    @property
    def hash(self) -> str:
        """A short hash of what decides the predictions: the model, its state, its runs, the noise."""
        what = {k: self.doc[k] for k in ("space_hash", "model", "state", "runs", "noise_sd")}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def predict(self, rows: Sequence[tuple[Mapping[str, Any], float, float]]) -> np.ndarray:
        """Mean accuracy of (params, MACs, parameter count) rows."""
        return self.regressor.predict(self.encoder.encode(rows))

    def draw(self, mean: float, params: Mapping[str, Any], seed: int) -> float:
        """One evaluation's accuracy: `mean` plus the seed noise drawn from (`seed`, the architecture), so the
        same network under the same training seed gets the same result; clipped to [0, 1]."""
        if not self.noise_sd:
            return float(mean)
        key = hashlib.sha256(json.dumps(dict(params), sort_keys=True).encode()).digest()
        rng = np.random.default_rng([int(seed) % 2**32, int.from_bytes(key[:8], "little")])
        return float(np.clip(mean + self.noise_sd * rng.standard_normal(), 0.0, 1.0))


def _training_rows(encoder: Encoder, archs: Sequence[Trained]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        encoder.encode([a.row for a in archs]),
        np.array([a.mean for a in archs]),
        np.array([len(a.accuracy) for a in archs], dtype=float),
    )
