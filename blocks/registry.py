"""Name -> constructor registries that refuse silent overwrites and list valid names on a miss."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class Registry:
    """A named mapping of constructors; `register` is a decorator, lookups of unknown names raise KeyError."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or obj.__name__.lower()
            if key in self._items:
                raise KeyError(f"{self.kind} {key!r} is already registered (by {self._items[key]!r})")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)


BLOCKS = Registry("block")
HEADS = Registry("head")


def register_block(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a block class under `name`.

    Every block is `Block(in_channels, out_channels, stride, *, act, norm, **params)` and handles
    `in_channels != out_channels` and `stride > 1` itself.
    """
    return BLOCKS.register(name)


def get_block(name: str) -> Callable[..., Any]:
    """The block class registered as `name` (KeyError listing the valid names otherwise)."""
    return BLOCKS.get(name)
