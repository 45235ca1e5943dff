"""`python -m experiments.bench <name> [options]`: run the benchmark module experiments.bench.<name>."""

from __future__ import annotations

import importlib
import sys

from experiments.bench import available
from nas.cli import user_errors


@user_errors("bench")
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in names:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark {argv[0]!r}; valid benchmarks: {', '.join(names)}", file=sys.stderr)
        print("usage: python -m experiments.bench {" + ",".join(names) + "} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"experiments.bench.{argv[0]}")
    result = module.main(argv[1:])
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
