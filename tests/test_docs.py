"""The commands the README and docs/ pages show still work: every `python -m <module> ...` line in a fenced
code block names a module that exists, its Hydra overrides compose against that command's config, and its
`--flags` are options the command's parser knows. Nothing is trained: a page that drifts from the code fails
here instead of in a user's shell."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from nas.config import CONF_DIR
from nas.search.overrides import normalise

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HYDRA_APPS = {  # module -> its primary config
    "nas.search": "search",
    "experiments.train": "train",
    "experiments.ablate": "ablate",
    "experiments.summary": "summary",
}
# Override values that only exist after a run a page describes first (a search's exported front).
NEEDS_A_RUN = ("exported/",)


def fenced_lines(text: str) -> list[str]:
    """The lines inside fenced code blocks, backslash continuations joined."""
    out, inside, buf = [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    return out


def commands(text: str) -> list[list[str]]:
    """`python -m ...` invocations (argv after `python`), one per `&&`/`;`-separated part of a line."""
    found = []
    for line in fenced_lines(text):
        if "python -m" not in line or "<" in line or "..." in line:
            continue  # placeholders are prose, not a command to check
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        part: list[str] = []
        for w in [*words, "&&"]:
            if w in ("&&", ";", "||", "|"):
                if len(part) >= 3 and part[0].endswith("python") and part[1] == "-m":
                    found.append(part[1:])
                part = []
                continue
            if "=" in w and not part and re.match(r"^[A-Z_][A-Z0-9_]*=", w):
                continue  # an environment assignment before the command
            part.append(w)
    return found


def all_commands() -> list[tuple[str, list[str]]]:
    return [(page.name, argv) for page in PAGES for argv in commands(page.read_text())]


ALL = all_commands()
PROJECT = [(p, a) for p, a in ALL if a[1].split(".")[0] in ("nas", "experiments")]


def test_the_pages_show_commands():
    assert len(PROJECT) >= 10, [a for _, a in PROJECT]


def test_the_command_parser_finds_commands_and_skips_placeholders():
    text = (
        "```bash\nWANDB_MODE=offline python -m nas.search +space=x n_trials=3  # a comment\n"
        "python -m experiments.train model=<name>\nbash .ci/setup.sh && python -m experiments.bench \\\n"
        "  latency --runtimes eager\n```\nprose python -m not.this\n"
    )
    assert commands(text) == [
        ["-m", "nas.search", "+space=x", "n_trials=3"],
        ["-m", "experiments.bench", "latency", "--runtimes", "eager"],
    ]


@pytest.mark.parametrize(("page", "argv"), PROJECT, ids=[" ".join(a)[:70] for _, a in PROJECT])
def test_a_documented_command_is_valid(page, argv):
    module, args = argv[1], argv[2:]
    assert importlib.util.find_spec(module) is not None, f"{page}: no module {module}"
    if module in HYDRA_APPS:
        multirun = "-m" in args or "--multirun" in args
        overrides = [
            a
            for a in args
            if not a.startswith("-")
            and not a.startswith(("hydra/", "hydra."))
            and not any(s in a for s in NEEDS_A_RUN)
            and not (multirun and re.search(r",|\b(range|glob|choice|interval)\(", a.split("=", 1)[-1]))
        ]
        if module == "nas.search":  # the command reads `+space=` and `storage=<URL>` before Hydra does
            overrides = normalise(overrides)
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                compose(config_name=HYDRA_APPS[module], overrides=overrides)
        except Exception as e:  # the page's reader would see this error
            pytest.fail(f"{page}: `python {' '.join(argv)}` does not compose: {e}")
        finally:
            GlobalHydra.instance().clear()
        return
    flags = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    if not flags:
        return
    sub = [args[0]] if args and not args[0].startswith("-") else []
    text = _help(module, tuple(sub))
    missing = [f for f in flags if f not in text]
    assert not missing, f"{page}: `python {' '.join(argv)}`: {module} {' '.join(sub)} has no {missing}"


_HELP: dict[tuple[str, tuple[str, ...]], str] = {}


def _help(module: str, sub: tuple[str, ...]) -> str:
    """`python -m module [sub] --help`, run in this process (the imports are paid once)."""
    key = (module, sub)
    if key not in _HELP:
        out = io.StringIO()
        argv = sys.argv
        sys.argv = [module, *sub, "--help"]
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit:
            pass
        finally:
            sys.argv = argv
        _HELP[key] = out.getvalue()
    return _HELP[key]


@pytest.mark.parametrize("group", ["sampler", "pruner", "scheduler", "storage"])
def test_the_search_pages_option_row_names_every_option_of_its_group(group):
    # docs/search.md's options table: the `<group>=` row lists what conf/<group>/ holds (a new option, or one
    # the row forgot, as `postgres` once was, fails here)
    row = next(line for line in (ROOT / "docs" / "search.md").read_text().splitlines()
               if line.startswith(f"| `{group}=`"))  # fmt: skip
    named = set(re.findall(r"`([\w-]+)`", row))
    options = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    assert options <= named, f"docs/search.md's {group}= row omits {sorted(options - named)}"
