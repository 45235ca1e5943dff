"""python -m nas.surrogate build|fit|front --space resnet_like ...: a surrogate benchmark of a space.

build: trains the architectures at the space's calibrated search fidelity (nas.surrogate.build) into
conf/surrogate/<space>-<data>.json. Resumable: re-running trains only what the file lacks; two processes (one
per core, OMP_NUM_THREADS=1) started alike split the runs.
fit: compares the surrogate models by k-fold cross-validation against the fidelity's seed-to-seed agreement,
prints the table and writes the chosen model beside the data (<space>-<data>.model.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.runfile import compose_plan, machine
from nas.space import list_spaces, load_space
from nas.surrogate.build import build
from nas.surrogate.model import REGRESSORS
from nas.surrogate.options import data_file, model_file
from nas.surrogate.validate import fit_file, table


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nas.surrogate", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train the architectures (resumable, split between processes)")
    b.add_argument("--space", default="resnet_like", help="search space (conf/space/<name>.yaml)")
    b.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
    b.add_argument("--archs", type=int, default=500, help="architectures: the space's references + draws")
    b.add_argument("--seeded", type=int, default=30, help="random architectures also trained with seed 1")
    b.add_argument("--file", default=None, help="the data file (default conf/surrogate/<space>-<data>.json)")
    b.add_argument("--out", default="outputs/surrogate", help="folder of the runs' outputs and locks")
    b.add_argument("--dry-run", action="store_true", help="say what the file lacks; train nothing")
    b.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")
    f = sub.add_parser(
        "fit", help="compare the models by cross-validation, write the chosen one beside the data"
    )
    f.add_argument("--space", default="resnet_like", help="search space (a conf/space name or a YAML file)")
    f.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
    f.add_argument("--file", default=None, help="the data file (default conf/surrogate/<space>-<data>.json)")
    f.add_argument("--model", default="auto", choices=["auto", *REGRESSORS],
                   help="the model to write (auto: the best held-out Kendall tau of --compare)")  # fmt: skip
    f.add_argument(
        "--compare", default=",".join(REGRESSORS), help="models to cross-validate, comma-separated"
    )
    f.add_argument("--folds", type=int, default=10, help="k of the k-fold cross-validation")
    args = p.parse_args(argv)
    if args.command == "build" and (args.archs < 1 or args.seeded < 0 or args.seeded > args.archs):
        p.error("--archs must be >= 1 and --seeded between 0 and --archs")
    if args.command == "fit":
        args.compare = [m.strip() for m in args.compare.split(",") if m.strip()]
        bad = [m for m in args.compare if m not in REGRESSORS]
        if bad or not args.compare:
            p.error(f"--compare: unknown models {bad}; valid models: {', '.join(REGRESSORS)}")
        if args.model != "auto" and args.model not in args.compare:
            args.compare.append(args.model)
        if args.folds < 2:
            p.error("--folds must be >= 2")
    return args


def fit(args: argparse.Namespace, argv: list[str]) -> None:
    """The fit command: the comparison table, then the model file."""
    space = load_space(args.space)
    path = Path(args.file) if args.file else data_file(space.name, args.data)
    surrogate, scores, ceiling = fit_file(
        space, path, models=args.compare, model=args.model, k=args.folds,
        command="python -m nas.surrogate " + " ".join(argv), machine=machine(),
    )  # fmt: skip
    print(f"surrogate of {space.name} from {path}")
    print(table(scores, ceiling, args.folds))
    print(f"model: {surrogate.doc['model']} ({surrogate.doc['chosen_by']}), fitted on {surrogate.doc['n_archs']} "
          f"architectures; wrote {model_file(path)}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    spaces = [name for name, _ in list_spaces()]
    if args.command == "fit":
        try:
            fit(args, argv)
        except (ValueError, KeyError) as e:
            print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
            return 2
        return 0
    if args.space not in spaces:
        print(f"error: unknown space {args.space!r}; valid spaces: {', '.join(spaces)}", file=sys.stderr)
        return 2
    try:
        plans = [
            compose_plan([f"space={args.space}", f"data={args.data}", f"seed={seed}", *args.overrides])
            for seed in (0, 1)
        ]
        path = Path(args.file) if args.file else data_file(args.space, args.data)
        build(plans, path, n=args.archs, seeded=args.seeded, out=Path(args.out), dry_run=args.dry_run,
              command="python -m nas.surrogate " + " ".join(argv))  # fmt: skip
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
