"""Finished runs on disk, keyed by (config hash, seed): re-running an ablation trains only what is missing.

Layout under the cache folder:

    <key>/config.json       the hashed part of the run config (for people; the key is its hash)
    <key>/seed<k>/          the run's own folder (fit's config.yaml, spec.json, metrics.json, W&B files ...)
    <key>/seed<k>.json      the finished run's record, written atomically after the run completes
    <key>/seed<k>.lock      held (flock) while a process trains that run

A run counts as cached only when `seed<k>.json` exists, parses and names the same key and seed; a crash
mid-run leaves no record, so the next invocation retrains exactly that run. The lock is an OS file lock:
released when its process dies (even by kill -9), so a stale lock never blocks a restart, and two workers
sharing a cache never train the same run twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from nas.claims import claim
from nas.tracking import write_json

log = logging.getLogger(__name__)
RECORD_VERSION = 1


class RunCache:
    """Finished-run records under `root` (see the module docstring for the layout)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_dir(self, key: str, seed: int) -> Path:
        """The folder fit() writes the run into."""
        return self.root / key / f"seed{seed}"

    def _record_path(self, key: str, seed: int) -> Path:
        return self.root / key / f"seed{seed}.json"

    def get(self, key: str, seed: int) -> dict[str, Any] | None:
        """The finished run's record, or None if it is missing; a corrupt record is removed (and retrained)."""
        path = self._record_path(key, seed)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
            ok = (
                isinstance(record, dict)
                and record.get("key") == key
                and record.get("seed") == seed
                and isinstance(record.get("result"), dict)
                and isinstance(record["result"].get("metrics"), dict)
            )
        except (OSError, ValueError):
            ok = False
        if not ok:
            log.warning("cache entry %s is unreadable or does not match its key; it will be retrained", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return record

    def put(
        self, key: str, seed: int, result: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Store a finished run's result (atomically: a crash never leaves half a record)."""
        record = {"version": RECORD_VERSION, "key": key, "seed": seed, "result": result, **(extra or {})}
        write_json(self._record_path(key, seed), record)
        return record

    def write_config(self, key: str, keyed: dict[str, Any]) -> None:
        """Store the hashed part of the config next to its runs (once)."""
        path = self.root / key / "config.json"
        if not path.exists():
            write_json(path, keyed)

    def clear_run(self, key: str, seed: int) -> None:
        """Remove what an interrupted run left behind (its folder), before training it again."""
        shutil.rmtree(self.run_dir(key, seed), ignore_errors=True)

    def claim(self, key: str, seed: int, *, wait: bool) -> contextlib.AbstractContextManager[bool]:
        """Hold the run's lock for the block; yields False (without waiting) if another process holds it."""
        return claim(self.root / key / f"seed{seed}.lock", wait=wait, where="cache_dir")

    def get_json(self, key: str, name: str) -> dict[str, Any] | None:
        """A per-key side record (e.g. the arm's latency), or None if missing or unreadable."""
        path = self.root / key / name
        try:
            obj = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return obj if isinstance(obj, dict) else None

    def put_json(self, key: str, name: str, obj: dict[str, Any]) -> None:
        write_json(self.root / key / name, obj)
