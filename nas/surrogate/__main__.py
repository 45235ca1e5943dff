"""python -m nas.surrogate build|fit|front --space resnet_like ...: a surrogate benchmark of a space.

build: trains the architectures at the space's calibrated search fidelity (nas.surrogate.build) into
conf/surrogate/<space>-<data>.json. Resumable: re-running trains only what the file lacks; two processes (one
per core, OMP_NUM_THREADS=1) started alike split the runs.
fit: compares the surrogate models by k-fold cross-validation against the fidelity's seed-to-seed agreement,
prints the table and writes the chosen model beside the data (<space>-<data>.model.json).
front: approximates the fitted surrogate's true front (random draws plus an evolutionary search), once per seed,
prints how close the approximations come, and writes their union beside the data (<space>-<data>.front.json).
A search then looks its trials up in the surrogate: python -m nas.search space=<space> benchmark=surrogate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from nas.cli import parse_args
from nas.space import list_spaces, load_space
from nas.surrogate import front
from nas.surrogate.model import REGRESSORS, Surrogate
from nas.surrogate.options import data_file, front_file, model_file
from nas.surrogate.validate import fit_file, table

# nas.runfile and nas.surrogate.build load the training stack (Lightning: seconds): imported by the commands
# that train or compose a plan, not for --help or a refused option.


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nas.surrogate", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(q: argparse.ArgumentParser, space_help: str = "search space (conf/space/<name>.yaml)") -> None:
        q.add_argument("--space", default="resnet_like", help=space_help)
        q.add_argument("--data", default="fashion_mnist", help="dataset config (conf/data/<name>.yaml)")
        q.add_argument(
            "--file", default=None, help="the data file (default conf/surrogate/<space>-<data>.json)"
        )

    b = sub.add_parser("build", help="train the architectures (resumable, split between processes)")
    common(b)
    b.add_argument("--archs", type=int, default=500, help="architectures: the space's references + draws")
    b.add_argument("--seeded", type=int, default=30, help="random architectures also trained with seed 1")
    b.add_argument("--out", default="outputs/surrogate", help="folder of the runs' outputs and locks")
    b.add_argument("--dry-run", action="store_true", help="say what the file lacks; train nothing")
    b.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")

    f = sub.add_parser("fit", help="compare the models by cross-validation, write the best beside the data")
    common(f, "search space (a conf/space name or a YAML file)")
    f.add_argument("--model", default="auto", choices=["auto", *REGRESSORS],
                   help="the model to write (auto: the best held-out Kendall tau of --compare)")  # fmt: skip
    f.add_argument(
        "--compare", default=",".join(REGRESSORS), help="models to cross-validate, comma-separated"
    )
    f.add_argument("--folds", type=int, default=10, help="k of the k-fold cross-validation")

    t = sub.add_parser("front", help="approximate the surrogate's true front, write it beside the data")
    common(t)
    t.add_argument("--latency", default="macs", choices=front.MODES, help="the latency objective (the search's "
                   "latency.mode under benchmark=surrogate; its default is macs)")  # fmt: skip
    t.add_argument("--draws", type=int, default=100_000, help="random draws per approximation")
    t.add_argument("--seeds", type=int, default=2, help="independent approximations (seeds 0, 1, ...)")
    t.add_argument(
        "--max-exact", type=int, default=2000, help="draws counted exactly per approximation, at most"
    )
    t.add_argument("--generations", type=int, default=20, help="generations of the evolutionary search")
    t.add_argument("--children", type=int, default=50, help="children per generation")
    t.add_argument("overrides", nargs="*", help="extra Hydra overrides of conf/search.yaml (key=value)")

    args = parse_args(p, argv, "nas-surrogate")
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
    if args.command == "front" and min(args.draws, args.seeds, args.max_exact) < 1:
        p.error("--draws, --seeds and --max-exact must be >= 1")
    if args.command == "front" and min(args.generations, args.children) < 0:
        p.error("--generations and --children must be >= 0")
    return args


def _known(space: str) -> None:
    """A conf/space name (the commands that compose a search plan need one)."""
    spaces = [name for name, _ in list_spaces()]
    if space not in spaces:
        raise ValueError(f"unknown space {space!r}; valid spaces: {', '.join(spaces)}")


def run_build(args: argparse.Namespace, command: str) -> None:
    """The build command: train what the data file lacks."""
    from nas.runfile import compose_plan
    from nas.surrogate.build import build

    _known(args.space)
    plans = [compose_plan([f"space={args.space}", f"data={args.data}", f"seed={seed}", *args.overrides])
             for seed in (0, 1)]  # fmt: skip
    path = Path(args.file) if args.file else data_file(args.space, args.data)
    build(plans, path, n=args.archs, seeded=args.seeded, out=Path(args.out), dry_run=args.dry_run,
          command=command)  # fmt: skip


def run_fit(args: argparse.Namespace, command: str) -> None:
    """The fit command: the comparison table, then the model file."""
    from nas.runfile import machine

    space = load_space(args.space)
    path = Path(args.file) if args.file else data_file(space.name, args.data)
    surrogate, scores, ceiling = fit_file(space, path, models=args.compare, model=args.model, k=args.folds,
                                          command=command, machine=machine())  # fmt: skip
    print(f"surrogate of {space.name} from {path}")
    print(table(scores, ceiling, args.folds))
    print(f"model: {surrogate.doc['model']} ({surrogate.doc['chosen_by']}), fitted on {surrogate.doc['n_archs']} "
          f"architectures; wrote {model_file(path)}")  # fmt: skip


def run_front(args: argparse.Namespace, command: str) -> None:
    """The front command: the approximations, how close they come, then the front file."""
    from nas.runfile import compose_plan, stamp

    _known(args.space)
    path = Path(args.file) if args.file else data_file(args.space, args.data)
    if not model_file(path).is_file():
        raise ValueError(
            f"no fitted surrogate at {model_file(path)}: python -m nas.surrogate fit --space {args.space}"
        )
    plan = compose_plan([f"space={args.space}", f"data={args.data}", f"latency.mode={args.latency}",
                         *args.overrides])  # fmt: skip
    doc = json.loads(path.read_text())
    surrogate = Surrogate.load(model_file(path), plan.space, doc)
    out = front.run(plan, surrogate, doc["archs"], mode=args.latency, seeds=range(args.seeds), draws=args.draws,
                    max_exact=args.max_exact, generations=args.generations, children=args.children)  # fmt: skip
    stamp(out, command)
    front_file(path).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'seed':>4} {'draws':>8} {'screened in':>11} {'counted':>8} {'evolved':>8} {'front':>6} "
          f"{'HV / union':>10}")  # fmt: skip
    for r in out["runs"]:
        print(f"{r['seed']:>4} {r['draws']:>8} {r['screened_in']:>11} {r['counted']:>8} {r['evolved']:>8} "
              f"{r['front_size']:>6} {r['hypervolume_vs_union']:>10.4f}")  # fmt: skip
    print(f"{out['evaluations']} surrogate evaluations ({out['counted']} networks counted exactly); the union's "
          f"front: {len(out['front'])} networks, accuracy vs {args.latency}; wrote {front_file(path)}")  # fmt: skip


COMMANDS: dict[str, Callable[[argparse.Namespace, str], None]] = {
    "build": run_build,
    "fit": run_fit,
    "front": run_front,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        COMMANDS[args.command](args, "python -m nas.surrogate " + " ".join(argv))
    except (ValueError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
