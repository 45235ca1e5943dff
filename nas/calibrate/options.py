"""The calibration command's options, the candidate syntax `epochs:fraction[:image_size][,key=value...]` and
the search plan of one fidelity."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nas.cli import parse_args

if TYPE_CHECKING:  # the training stack loads with the first plan, not for --help
    from nas.search.plan import SearchPlan

DESCRIPTION = """\
Calibrate a search fidelity against a reference training (or: python -m nas.calibrate).

A search can only be trusted if, at its fidelity, it ranks networks as a longer training does. This picks
--archs architectures of a space (valid draws spread evenly over their MACs), trains them at a reference
fidelity (--reference, default 5 epochs on the whole training split; test accuracy; a second seed for
--seeded of them: the seed-to-seed Spearman is the ceiling any cheap fidelity can reach), then at each
candidate of --fidelities (validation accuracy, what a search sees), and reports per candidate: median
seconds per trial, Spearman's rho with the reference (BCa bootstrap 95 % CI over architectures), the
ceiling, top-3 overlap, and whether it meets the bar (rho >= 0.7 or >= 80 % of the ceiling, at most
--max-seconds). --runtimes also gives rho(reference accuracy, latency) per runtime.

Everything lands in one small file, conf/calibration/<space>-<data>.json (--calibration), meant to be
committed: the architectures, every run's accuracy and seconds, the command and the machine. Re-running reads
it and trains only what is missing; one process per core started alike (OMP_NUM_THREADS=1) split the runs.
A search whose fidelity equals a candidate's prints that candidate's rho in its header.

A candidate is epochs:fraction[:image_size], optionally followed by ,key=value overrides of its own (the
levers: 3:0.3,data.batch_size=256 or 2:0.5:14,optim.label_smoothing=0.1). Extra Hydra overrides of
conf/search.yaml at the end apply to the reference and every candidate."""


def parse_fidelity(text: str) -> dict[str, Any]:
    """`epochs:fraction[:image_size][,key=value...]` -> {epochs, fraction, image_size, overrides};
    ValueError says what is wrong."""
    head, *overrides = text.split(",")
    if "=" in head:
        raise ValueError(
            f"fidelity {text!r} looks like a Hydra override: put overrides before --fidelities (or after --), "
            "or give one candidate its own as epochs:fraction,key=value"
        )
    parts = head.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        epochs, fraction = int(parts[0]), float(parts[1])
        image_size = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise ValueError(
            f"fidelity {text!r}: write epochs:fraction[:image_size][,key=value...], e.g. 1:0.05 or "
            "3:0.5:14,data.batch_size=256"
        ) from None
    if epochs < 1 or not 0 < fraction <= 1 or (image_size is not None and image_size < 4):
        raise ValueError(f"fidelity {text!r}: need epochs >= 1, 0 < fraction <= 1, image_size >= 4")
    bad = [o for o in overrides if "=" not in o or o.startswith("=")]
    if bad:
        raise ValueError(f"fidelity {text!r}: overrides after ',' are key=value, got {bad}")
    return {"epochs": epochs, "fraction": fraction, "image_size": image_size, "overrides": overrides}


def label(fid: dict[str, Any]) -> str:
    """A fidelity as the calibration table names it (`3 ep x 50% at 14 px, data.batch_size=256`)."""
    size = f" at {fid['image_size']} px" if fid["image_size"] else ""
    extra = "".join(f", {o}" for o in fid.get("overrides") or ())
    return f"{fid['epochs']} ep x {fid['fraction']:.0%}{size}{extra}"


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line; argparse's usage error (exit status 2) for a bad option or fidelity."""
    p = argparse.ArgumentParser(
        prog="nas-calibrate", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--space", default="resnet_like", help="search space (conf/space/<name>.yaml)")
    p.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
    p.add_argument("--archs", type=int, default=12, help="architectures (a new calibration; then the file's)")
    p.add_argument(
        "--reference", default="5:1.0", help="the reference fidelity, epochs:fraction[:image_size]"
    )
    p.add_argument("--seeded", type=float, default=0.5, help="share of the architectures given a 2nd seed")
    p.add_argument(
        "--fidelities", nargs="*", default=["1:0.1"],
        help="candidate fidelities, epochs:fraction[:image_size][,key=value...] each",
    )  # fmt: skip
    p.add_argument("--max-seconds", type=float, default=30.0, help="the bar's median seconds per trial")
    p.add_argument("--runtimes", default="", help="comma list of latency runtimes timed for the trade-off")
    p.add_argument(
        "--latency", default="macs", help="latency mode of the plans (unused: the trade-off uses --runtimes)"
    )
    p.add_argument("--draws", type=int, default=300, help="random draws the architectures are chosen from")
    p.add_argument(
        "--add", type=int, default=0,
        help="architectures added to the file's (a changed space): drawn from the space as it is now, spread "
             "over MACs; the file's architectures and runs stay",
    )  # fmt: skip
    p.add_argument(
        "--add-references", action="store_true",
        help="add the textbook networks the space holds (conf/space `references`) that meet its constraints",
    )  # fmt: skip
    p.add_argument(
        "--where", action="append", default=[], metavar="PARAM=VALUE",
        help="--add draws only architectures with this parameter value (e.g. n_stages=3: a new region)",
    )  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the CI")
    p.add_argument("--calibration", default=None, help="the calibration file (default conf/calibration/)")
    p.add_argument("--out", default="outputs/calibrate", help="folder of the runs' outputs and locks")
    p.add_argument("--dry-run", action="store_true", help="plan and report from the file; train nothing")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")
    args = parse_args(p, argv, "nas-calibrate")
    if args.archs < 4:
        p.error("need --archs >= 4 for a rank correlation with a confidence interval")
    if not 0 <= args.seeded <= 1:
        p.error("--seeded is a share of the architectures, in [0, 1]")
    try:
        args.ref = parse_fidelity(args.reference)
        args.fids = [parse_fidelity(f) for f in args.fidelities]
    except ValueError as e:
        p.error(str(e))
    args.runtime_list = [r for r in args.runtimes.split(",") if r]
    return args


def compose_plan(args: argparse.Namespace, fid: dict[str, Any], seed: int = 0) -> SearchPlan:
    """The search plan of one fidelity and training seed: conf/search.yaml with the fidelity, the common
    overrides and the fidelity's own."""
    from nas import runfile

    return runfile.compose_plan([
        f"space={args.space}", f"data={args.data}", f"fidelity.epochs={fid['epochs']}",
        f"fidelity.fraction={fid['fraction']}", f"latency.mode={args.latency}", f"seed={seed}",
        # no image size: the data's (not the space's default fidelity)
        f"fidelity.image_size={fid['image_size'] or 'null'}",
        *args.overrides, *fid.get("overrides", ()),
    ])  # fmt: skip
