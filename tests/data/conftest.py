"""Fixtures for the data tests: every test gets an isolated cache and no system dataset folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import nas.data.idx as idx_module


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data cache, and no system dataset folder unless it asks for one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNN_NAS_CACHE", str(cache))
    monkeypatch.setattr(idx_module, "DEBIAN_DIR", tmp_path / "no-system-datasets")
    return cache
