"""How every command fails on bad input: one message on stderr, no traceback, exit status 2.

Commands wrap their entry function once, instead of a try/except each:

    @hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
    @user_errors("train")                 # below hydra.main: it sees the task's exceptions before Hydra does
    def main(cfg): ...

    @user_errors("profile")               # an argparse command: wrap its main(argv)
    def main(argv=None): ...

User errors are what the project raises for people (see DESIGN.md "Errors are for people"): ValueError and
KeyError with the valid choices (ranges, unknown names, impossible shapes), the data layer's
DataNotFoundError / CorruptDataError (missing, damaged files, empty folders), a missing or unreadable path,
OmegaConf's errors (an interpolation that does not resolve), and Hydra's composition errors raised inside a
command that composes a config itself (`experiments.reproduce --suite nope`). Everything else (a bug) keeps its
traceback. `HYDRA_FULL_ERROR=1`, Hydra's own switch, re-raises user errors too, for debugging.

Hydra reports errors in composing the config (an unknown config group option) itself, before the task runs:
one message, no traceback, exit status 1.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

USAGE_STATUS = 2  # the status argparse and the shell use for bad usage
F = TypeVar("F", bound=Callable[..., Any])


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the input is wrong" rather than "the code is wrong"."""
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import OmegaConfBaseException

    return (
        ConfigCompositionException,  # a composed config (ablate, reproduce, the Python API): unknown option
        ValueError,
        KeyError,
        FileNotFoundError,
        FileExistsError,  # an output path through a file (`out=results.csv/x.onnx`)
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        OmegaConfBaseException,
    )


def error_message(e: BaseException) -> str:
    """The text of a user error: KeyError's message without its repr quotes, else str(e), else the type."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    # Hydra appends its config search path to a missing option's message: noise to the user, who gets the
    # available options above it.
    text = text.split("\nConfig search path:")[0]
    return text.strip() or type(e).__name__


def fail(prog: str, message: str, status: int = USAGE_STATUS) -> NoReturn:
    """Print `<prog>: error: <message>` to stderr and exit with `status` (2: bad input)."""
    sys.stdout.flush()
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def user_errors(prog: str) -> Callable[[F], F]:
    """Decorator: a user error raised by the wrapped entry function becomes `fail(prog, message)`."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)  # sets __wrapped__: hydra.main unwraps it to find the config path
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except user_error_types() as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                fail(prog, error_message(e))

        return wrapper  # type: ignore[return-value]

    return deco
