"""python -m nas.surrogate build --space resnet_like [--archs 500] [--seeded 30] [override ...]

Trains the architectures of a surrogate benchmark of a space at its calibrated search fidelity (nas.surrogate
.build) into conf/surrogate/<space>-<data>.json. Resumable: re-running trains only what the file lacks; two
processes (one per core, OMP_NUM_THREADS=1) started alike split the runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.runfile import compose_plan
from nas.space import list_spaces
from nas.surrogate.build import build, data_file


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
    args = p.parse_args(argv)
    if args.archs < 1 or args.seeded < 0 or args.seeded > args.archs:
        p.error("--archs must be >= 1 and --seeded between 0 and --archs")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    spaces = [name for name, _ in list_spaces()]
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
