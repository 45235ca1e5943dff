"""Optuna pruning inside Lightning training: optuna_integration's PyTorchLightningPruningCallback, adapted.

optuna_integration's callback is written against the unified `lightning` package (`lightning.pytorch`),
while this project trains with `pytorch_lightning`; a Trainer of one refuses callbacks of the other. The
adapter below is the same callback (its report / should_prune / DDP logic is inherited unchanged) that
also *is* a `pytorch_lightning.Callback`, and that does not require `lightning` to be importable.
"""

from __future__ import annotations

import optuna
import pytorch_lightning as pl
from optuna_integration.pytorch_lightning import PyTorchLightningPruningCallback
from optuna_integration.pytorch_lightning import pytorch_lightning as _integration

# The inherited DDP check reads the module-level `pl` (lightning.pytorch) for its version; point it at
# pytorch_lightning when `lightning` itself is not installed.
if not hasattr(_integration, "pl"):
    _integration.pl = pl


class LightningPruning(PyTorchLightningPruningCallback, pl.Callback):
    """Report `monitor` to the trial after every validation epoch; raise optuna.TrialPruned when told to."""

    def __init__(self, trial: optuna.trial.Trial, monitor: str) -> None:
        pl.Callback.__init__(self)  # not the parent's __init__: it insists on `lightning` being installed
        self._trial = trial
        self.monitor = monitor
        self.is_ddp_backend = False
