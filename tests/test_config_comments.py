"""A defaults line that lists its group's options (`- sampler: tpe  # tpe | nsga2 | ...`) lists every one of them:
the comment is where a user reads the choices, and a new option file must not be missing from it."""

from __future__ import annotations

import re

import pytest

from nas.config import CONF_DIR

# `  - <group>: <default>   # a (why) | b | c ...`: a comment with at least one `|` is a list of options.
LISTING = re.compile(r"^\s*-\s*(\w+):\s*\S+\s*#\s*(.*\|.*)$")


def listings() -> list[tuple[str, str, set[str]]]:
    """(config file, group, the option names its comment lists) for every listing defaults line."""
    out = []
    for path in sorted(CONF_DIR.glob("*.yaml")):
        for line in path.read_text().splitlines():
            m = LISTING.match(line)
            if m and (CONF_DIR / m.group(1)).is_dir():
                names = {re.match(r"\s*([\w.]+)", part).group(1) for part in m.group(2).split("|")}
                out.append((path.name, m.group(1), names))
    return out


def test_the_sampler_storage_and_pruner_lines_are_checked():
    assert {("search.yaml", g) for g in ("sampler", "pruner", "storage")} <= {
        (c, g) for c, g, _ in listings()
    }


@pytest.mark.parametrize(
    ("config", "group", "names"), listings(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_defaults_comment_names_every_option_of_its_group(config, group, names):
    options = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    assert names == options, (
        f"conf/{config}: the `{group}` comment lists {sorted(names)}, conf/{group}/ has {sorted(options)}"
    )
