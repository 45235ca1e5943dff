"""The optional extras install what their features use: the `scale` extra's PostgreSQL driver is the one
SQLAlchemy 2 uses for the URLs the docs give (`postgresql+psycopg://`: psycopg 3, not psycopg2)."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy

ROOT = Path(__file__).resolve().parents[1]


def extra(name: str) -> list[str]:
    """pyproject.toml's optional-dependencies entry `name` (tomllib is 3.11+; the project supports 3.10)."""
    text = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
    block = re.search(rf"^{name} = \[(.*?)\]\s*$", text, re.M | re.S).group(1)
    return re.findall(r'"([^"]+)"', block)


def test_the_scale_extra_installs_psycopg_3_the_driver_of_the_documented_urls():
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in extra("scale")}
    assert "psycopg" in names and "psycopg2" not in names and "psycopg2-binary" not in names
    assert re.search(r">=\s*3", names["psycopg"]), names["psycopg"]
    # the URL form docs/scale-out.md gives loads its driver (creating an engine connects to nothing)
    assert sqlalchemy.create_engine("postgresql+psycopg://nas@127.0.0.1/nas").dialect.driver == "psycopg"
    assert "postgresql+psycopg://" in (ROOT / "docs" / "scale-out.md").read_text()
