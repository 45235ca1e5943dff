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

import argparse
import functools
import os
import re
import shlex
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


# ------------------------------------------------------------------ shell completion of the argparse commands


def completion_words(parser: argparse.ArgumentParser) -> list[str]:
    """What Tab completes for an argparse command: its option strings, and its subcommands with theirs."""
    words: set[str] = set()
    for action in parser._actions:  # argparse keeps its actions here; there is no public accessor
        words.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.add(name)
                words.update(completion_words(sub))
    return sorted(words)


def shell_completion(command: str, argv: list[str], words: list[str]) -> bool:
    """Hydra's habit for the commands that are not Hydra apps: `<command> -sc install=bash` prints a bash script
    that makes Tab complete `words` for the console script `command` (`eval "$(nas-calibrate -sc install=bash)"`,
    as for `nas-search`), `-sc uninstall=bash` one that removes it. True when it answered (the command stops)."""
    if len(argv) != 2 or argv[0] not in ("-sc", "--shell-completion"):
        return False
    action, _, shell = argv[1].partition("=")
    if shell != "bash" or action not in ("install", "uninstall"):
        raise ValueError(f"shell completion: use -sc install=bash or -sc uninstall=bash; got {argv[1]!r}")
    func = "_nas_complete_" + re.sub(r"\W", "_", command)
    if action == "uninstall":
        print(f"complete -r {command} 2>/dev/null; unset -f {func}")
        return True
    keys = [w for w in words if not w.startswith("-")]
    nospace = " -o nospace" if keys and all(w.endswith("=") for w in keys) else ""  # key=value commands
    print(
        f"{func}() {{\n"
        '  local cur="${COMP_WORDS[COMP_CWORD]}"\n'
        f'  COMPREPLY=($(compgen -W {shlex.quote(" ".join(words))} -- "$cur"))\n'
        "}\n"
        f"complete -o default{nospace} -F {func} {command}"
    )
    return True


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None, command: str) -> argparse.Namespace:
    """`parser.parse_args(argv)`, after answering `-sc install=bash` (shell_completion) for console script
    `command`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        answered = shell_completion(command, argv, completion_words(parser))
    except ValueError as e:
        parser.error(str(e))  # exit status 2, argparse's usage line
    if answered:
        raise SystemExit(0)
    return parser.parse_args(argv)
