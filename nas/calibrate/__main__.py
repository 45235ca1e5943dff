"""`nas-calibrate [options] [override ...]` (or `python -m nas.calibrate`): calibrate a search fidelity against
a reference training; `--help` says how (nas.calibrate.options)."""

from __future__ import annotations

import shlex
import sys

from nas.calibrate.options import parse
from nas.cli import user_errors


@user_errors("calibrate")  # a refused file or space: one message, exit status 2, no traceback
def main(argv: list[str] | None = None) -> int:
    """The command: parse `argv` (default the process's arguments), calibrate, 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)  # --help answers here, before the training stack loads
    from nas.calibrate.runs import calibrate

    calibrate(args, command=shlex.join(["python", "-m", "nas.calibrate", *argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
