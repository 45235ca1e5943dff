"""The suite's own scheduling: files holding a slow test are collected first (tests/conftest.py), so pytest-xdist
hands them out early and its workers finish together."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import pytest_collection_modifyitems


class Item:
    def __init__(self, path: str, slow: bool = False) -> None:
        self.path, self.slow = Path(path), slow

    def get_closest_marker(self, name: str):
        return object() if self.slow and name == "slow" else None


def test_files_with_a_slow_test_come_first_and_every_file_stays_together_in_its_order():
    items = [
        Item("a.py"),
        Item("b.py"),
        Item("b.py", slow=True),
        Item("c.py"),
        Item("d.py", slow=True),
        Item("d.py"),
    ]
    pytest_collection_modifyitems(None, items)
    assert [(str(i.path), i.slow) for i in items] == [
        ("b.py", False), ("b.py", True), ("d.py", True), ("d.py", False), ("a.py", False), ("c.py", False),
    ]  # fmt: skip
