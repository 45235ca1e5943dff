"""`nas-profile` or `python -m experiments.profile`: see experiments.profile."""

import sys

from experiments.profile import main


def cli() -> int:
    """The console script's entry point: main() returns its report, which is not an exit status."""
    main()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
