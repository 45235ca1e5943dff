"""`python -m experiments.reproduce`: rebuild docs/reproduction.md and its figures from the caches only.

    python -m experiments.reproduce                                     # the published budget, default folders
    python -m experiments.reproduce --budget "epochs=5 subset=0.2 seeds=3" --cache-dir outputs/ablate/cache \\
        --profile-dir outputs/profile --page docs/reproduction.md

The suite part plans `suite=<name>` at the budget (composes and builds each row, as the ablation does before
training) and reads the finished runs from the ablation cache; the Canziani part reads the `profile.csv` /
`profile.json` files that `python -m experiments.profile` wrote. Nothing is trained or timed: rows whose runs
are missing are marked, counted, and the page gives the command that fills them. The text between the page's
human-section markers is kept as it is when the page is rebuilt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments.reproduce.page import DEFAULT_BUDGET, build_page, parse_budget
from nas.cli import parse_args, user_errors


@user_errors("reproduce")
def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(
        prog="python -m experiments.reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--suite", default="mishkin", help="the suite (conf/suite/<name>.yaml)")
    p.add_argument(
        "--budget", default=DEFAULT_BUDGET, help=f"the suite's shared overrides (default {DEFAULT_BUDGET!r})"
    )
    p.add_argument(
        "--cache-dir", default="outputs/ablate/cache", help="the ablation run cache the suite trained into"
    )
    p.add_argument(
        "--profile-dir", default="outputs/profile", help="folder holding the profiles' output folders"
    )
    p.add_argument(
        "--page", default="docs/reproduction.md", help="the page to write (figures go in <page>/ without .md)"
    )
    p.add_argument(
        "--rows", default="", help="only these suite rows: comma-separated axis/variant patterns (fnmatch)"
    )
    p.add_argument(
        "--strict", action="store_true", help="exit with status 1 when runs or profiles are missing"
    )
    args = parse_args(p, argv, "nas-reproduce")
    budget = parse_budget(args.budget)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    found = build_page(suite=args.suite, budget=budget, cache_dir=args.cache_dir, profile_dir=args.profile_dir,
                       page=Path(args.page), rows=rows)  # fmt: skip
    print(
        f"wrote {args.page}: {found['runs_total'] - found['runs_missing']} of {found['runs_total']} suite runs in the "
        f"cache ({found['rows_missing']} rows missing runs); profiles: {', '.join(found['profiles']) or 'none'}; "
        f"{len(found['figures'])} figures"
    )
    if found["runs_missing"]:
        print(
            f"fill the missing runs: python -m experiments.ablate suite={args.suite} {' '.join(budget)} cache_dir={args.cache_dir}"
        )
    if args.strict and (found["runs_missing"] or not found["profiles"]):
        raise SystemExit(1)
    return found


def cli() -> int:
    """The console script's entry point: main() returns its report, which is not an exit status."""
    main()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
