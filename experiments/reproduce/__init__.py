"""The reproduction page (docs/reproduction.md) rebuilt from the caches only: `nas-reproduce` or
`python -m experiments.reproduce` (its `--help` says how).

Modules: page (the page: its sections, the kept hand-written text, the commands, the figures), suite_section
(Mishkin et al.'s suite from the ablation cache), profile_section (Canziani et al.'s analysis from the profiles'
output folders), __main__ (the command).
"""

from experiments.reproduce.page import (
    DEFAULT_BUDGET,
    HUMAN_BEGIN,
    HUMAN_END,
    PLACEHOLDER,
    ReproduceError,
    build_page,
    human_section,
    parse_budget,
)

__all__ = [
    "DEFAULT_BUDGET",
    "HUMAN_BEGIN",
    "HUMAN_END",
    "PLACEHOLDER",
    "ReproduceError",
    "build_page",
    "human_section",
    "parse_budget",
]
