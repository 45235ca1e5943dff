"""`python -m experiments.ablate <axis>=<variant>`: a single-factor ablation against conf/ablate.yaml's baseline.

    python -m experiments.ablate pooling=avg_max                   # baseline vs avg+max pooling, 3 seeds each
    python -m experiments.ablate activation=maxout width=x0_71     # a variant may change several factors
    python -m experiments.ablate -m pooling=max,avg,avg_max,stochastic   # one table for the axis
    python -m experiments.ablate suite=mishkin epochs=3 subset=0.1       # the paper's module analysis

Both arms train over `seeds` seeds (seed k: same initial randomness and data order in both), every finished
run is cached by (config hash, seed), and the answer is a table: accuracy mean ± t-CI per arm, the paired
delta vs the baseline with its CI and p-value, params, MACs and latency (CSV, Markdown, PNG, W&B).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from experiments.ablation.cache import RunCache
from experiments.ablation.config import (
    AXES,
    CONFIG_NAME,
    check_overrides,
    composer,
    expand_sweep,
    plain,
    shadowed_axes,
    split_overrides,
    validate_options,
)
from experiments.ablation.report import COLUMNS, markdown, table_rows, write_report
from experiments.ablation.runner import Arm, arm_latency, arm_result, plan_arm, run_arms
from experiments.ablation.suite import (
    SUITE_COLUMNS,
    plan_suite,
    suite_markdown,
    suite_rows,
    write_suite_report,
)
from experiments.ablation.tracking import log_summary
from nas.cli import error_message, fail, user_errors
from nas.config import CONFIG_PATH
from nas.tracking import write_json

RESULT_FILE = "ablation.json"
PROG = "ablate"


class AblationError(ValueError):
    """A problem with what the user asked for, reported as one message before any compute."""


def quiet_lightning() -> None:
    """Lightning's per-fit banners would bury the progress lines; keep its warnings and errors."""
    import pytorch_lightning  # noqa: F401  (it sets its loggers to INFO on import: import first, then lower)

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")


def check_request(cfg: dict[str, Any], overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """The checks that need no composition: names, options, and what was asked; returns (shared, variant)."""
    check_overrides(overrides)
    validate_options(cfg)
    shared, variant = split_overrides(overrides)
    suite = cfg.get("suite")
    if suite and variant:
        raise AblationError(
            f"suite={suite.get('name')} runs its own variants; drop {' '.join(variant)} (options such as seeds, "
            "epochs, subset, data=... apply to the whole suite)"
        )
    if not suite and not variant:
        raise AblationError(
            "nothing to ablate: give the variant as overrides of the baseline, e.g. pooling=avg_max, or "
            f"suite=mishkin.\n  axes: {', '.join(AXES)}\n  (`python -m experiments.ablate --help` lists each "
            "axis' variants)"
        )
    return shared, variant


def plan(
    cfg: dict[str, Any],
    overrides: Sequence[str],
    *,
    config_dir: Path | None = None,
    config_name: str = CONFIG_NAME,
) -> tuple[Arm, list[Arm], list[str]]:
    """(baseline, variant arms, shared overrides) of an ablation or suite; composes and validates, trains nothing."""
    shared, variant = check_request(cfg, overrides)
    suite = cfg.get("suite")
    with composer(config_dir, config_name) as compose:
        baseline = plan_arm(compose, shared, [], label="baseline")

        def plan_row(compose_: Any, shared_: Sequence[str], overrides_: Sequence[str], **kw: Any) -> Arm:
            if not overrides_ and not kw.get("requires"):  # a paper-baseline row: our baseline, planned above
                return dataclasses.replace(baseline, label=kw.get("label") or baseline.label)
            return plan_arm(compose_, shared_, overrides_, **kw)

        arms = (
            plan_suite(compose, shared, suite, plan=plan_row)
            if suite
            else [plan_arm(compose, shared, variant)]
        )
    if baseline.skip:
        raise AblationError(f"the baseline itself does not apply: {baseline.skip}")
    return baseline, arms, shared


def result_header(cfg: dict[str, Any], shared: Sequence[str], *, group: str) -> dict[str, Any]:
    """The fields of a result record that describe the comparison (the arms are added by the caller)."""
    seeds = int(cfg["seeds"])
    return {
        "name": group,
        "metric": str(cfg["metric"]),
        "confidence": float(cfg["confidence"]),
        "seeds": seeds,
        "shared": list(shared),
        "suite": (cfg.get("suite") or {}).get("name"),
        "budget": f"epochs={cfg['epochs']} subset={cfg['subset']} seeds={seeds}",
    }


def run_ablation(
    cfg: dict[str, Any],
    overrides: Sequence[str],
    *,
    out_dir: Path,
    group: str | None = None,
    sweep: bool = False,
    fit_fn: Callable[..., Any] | None = None,
    config_dir: Path | None = None,
    config_name: str = CONFIG_NAME,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Plan, train what is missing, and write the report into `out_dir`; returns the result record."""
    baseline, arms, shared = plan(cfg, overrides, config_dir=config_dir, config_name=config_name)
    with composer(config_dir, config_name) as compose:
        for warning in shadowed_axes(OmegaConf.to_container(compose([]), resolve=False), shared):
            echo(warning)
    group = cfg.get("name") or group or f"ablate-{out_dir.name}"
    seeds, metric = int(cfg["seeds"]), str(cfg["metric"])
    suite = cfg.get("suite")
    runnable = [a for a in arms if a.runnable]
    for a in arms:
        if a.skip:
            echo(f"{a.label}: {a.skip}")
    result = result_header(cfg, shared, group=group)
    cache = RunCache(cfg["cache_dir"])
    if runnable:
        tags = [f"data:{cfg['data'].get('name', '?')}"]
        tags += (
            [f"suite:{suite['name']}"]
            if suite
            else sorted({f"axis:{o.split('=')[0]}" for a in arms for o in a.overrides})
        )
        records, failures = run_arms(
            [baseline, *runnable], seeds=seeds, cache=cache, metric=metric, fit_fn=fit_fn, group=group, tags=tags,
            latency=cfg.get("latency"), echo=echo,
        )  # fmt: skip
    else:  # nothing applies: say so, train nothing (not even the baseline)
        records, failures = {}, {}

    def summary(arm: Arm) -> dict[str, Any]:
        if not arm.runnable:
            return arm_result(arm, {}, {}, metric=metric, latency={})
        lat = arm_latency(arm, cfg.get("latency") or {}, cache)
        return arm_result(arm, records[arm.key], failures[arm.key], metric=metric, latency=lat)  # type: ignore[index]

    result["baseline"] = (
        summary(baseline) if runnable else arm_result(baseline, {}, {}, metric=metric, latency={})
    )
    result["variants"] = [summary(a) for a in arms]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / RESULT_FILE, result)
    if suite:
        paths = write_suite_report(result, out_dir)
        rows, columns = suite_rows(result), SUITE_COLUMNS
        echo(suite_markdown(rows, result))
    else:
        paths = write_report(result, out_dir, title=group)
        rows, columns = table_rows(result), COLUMNS
        echo(markdown(rows, metric=metric, confidence=result["confidence"]))
    echo(f"report: {paths['md']} (+ .csv, .json, .png); runs cached in {cache.root}")
    if not sweep:
        hint = log_summary(
            rows, columns, logger_cfg=cfg.get("logger") or {}, group=group, out_dir=out_dir, plot=paths["png"],
            config={"ablation": {k: result[k] for k in ("metric", "confidence", "seeds", "shared", "suite")}},
            tags=[f"data:{cfg['data'].get('name', '?')}"],
        )  # fmt: skip
        if hint:
            echo(f"W&B is offline: upload the runs with\n  {hint}")
    return result


@hydra.main(config_path=CONFIG_PATH, config_name="ablate", version_base="1.3")
@user_errors(PROG)
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    sweep = hc.mode == RunMode.MULTIRUN
    out_dir = Path(hc.runtime.output_dir)
    group = f"ablate-{Path(hc.sweep.dir).name}" if sweep else None
    quiet_lightning()
    run_ablation(
        plain(cfg), list(hc.overrides.task), out_dir=out_dir, group=group, sweep=sweep,
        config_name=hc.job.config_name or CONFIG_NAME,
    )  # fmt: skip


HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "--info", "-i", "--resolve", "-p", "--package",
               "-sc", "--shell-completion", "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
               "--experimental-rerun")  # fmt: skip


def precheck(argv: Sequence[str]) -> None:
    """Check the command line before Hydra starts any job: unknown axes or variants, and for a `-m` sweep every
    job's configuration (so a bad value in the last job fails in seconds, not after hours of training)."""
    if any(a.split("=")[0] in HYDRA_FLAGS for a in argv):
        return  # help / inspection / another config: let Hydra handle it
    overrides = [a for a in argv if not a.startswith("-")]
    try:
        check_overrides(overrides)
        if "-m" not in argv and "--multirun" not in argv:
            return
        jobs = expand_sweep(overrides)
        if len(jobs) < 2:
            return
        print(f"checking the {len(jobs)} jobs of the sweep ...", flush=True)
        with composer() as compose:
            for job in jobs:
                cfg = plain(compose(job))
                if cfg.get("suite"):  # a suite job plans (composes, builds) its rows itself before training
                    check_request(cfg, job)
                else:
                    plan(cfg, job)
    except Exception as e:  # noqa: BLE001 - Hydra's composition errors are user errors here too
        fail(PROG, error_message(e))


def cli() -> None:
    """Entry point (`nas-ablate`, `python -m experiments.ablate`): the command line checked, then Hydra runs it."""
    precheck(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()
