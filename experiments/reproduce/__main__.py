"""`nas-reproduce` or `python -m experiments.reproduce`: see experiments.reproduce."""

import sys

from experiments.reproduce import main


def cli() -> int:
    """The console script's entry point: main() returns its report, which is not an exit status."""
    main()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
