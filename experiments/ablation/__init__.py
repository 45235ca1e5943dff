"""Single-factor ablations against a fixed baseline: planning, the run cache, statistics tables and suites.

`python -m experiments.ablate` is the command; this package holds its parts: `config` (axes, overrides,
composition, run configs and their hashes), `cache` (finished runs keyed by config hash and seed),
`runner` (trains what is missing, with progress), `report` (tables and plots, with nas.stats's t-intervals,
paired t-tests and FDR q-values), `suite` (the paper's module analysis side by side with ours), `tracking` (the W&B
summary run) and `callbacks` (the Hydra callback that writes one table for a whole `-m` sweep).
"""

from experiments.ablation.config import register_resolvers

register_resolvers()
