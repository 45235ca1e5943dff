"""The citation file agrees with the package: CFF 1.2.0's required keys, the version and licence pyproject.toml
declares, and the licence text beside it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_citation_cff_matches_the_package():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+; the project supports 3.10
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    license_ = re.search(r'^license = \{ text = "([^"]+)" \}', pyproject, re.M).group(1)
    assert cff["cff-version"] == "1.2.0"
    assert {"cff-version", "message", "title", "authors"} <= set(cff)
    assert cff["authors"] == [{"name": "the cnn-nas authors"}]  # an entity, not a person
    assert cff["version"] == version
    assert cff["license"] == license_ == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the cnn-nas authors" in text
