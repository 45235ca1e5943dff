"""The ablation's Python API, beside `nas.api.train` / `nas.api.search` (see nas/api.py for the conventions).

from experiments import api
result = api.ablate(["pooling=avg_max", "epochs=1", "seeds=2"])     # the ablation.json record (a dict)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.ablation.config import CONFIG_NAME
from nas.api import compose_config


def ablate(
    overrides: Sequence[str] = (), *, output_dir: str | Path | None = None, config_name: str = CONFIG_NAME
) -> dict[str, Any]:
    """`python -m experiments.ablate <overrides>`: plan, train what the cache lacks, write the report; the
    result record (what ablation.json holds). The report folder is `output_dir`, else the command's
    (hydra.run.dir: outputs/ablate/<time>). A sweep (`-m a=x,y`) is one call per job."""
    from experiments.ablate import quiet_lightning, run_ablation

    overrides = [str(o) for o in overrides]
    cfg, run_dir = compose_config(config_name, overrides)
    quiet_lightning()
    return run_ablation(cfg, overrides, out_dir=Path(output_dir or run_dir), config_name=config_name)
