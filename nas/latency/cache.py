"""A small on-disk table of measured latencies (SQLite, WAL), shared safely by concurrent processes."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS latency (
    key TEXT PRIMARY KEY,       -- hash of the canonical JSON in `what`
    fingerprint TEXT NOT NULL,  -- device fingerprint key (also inside `what`), for housekeeping
    what TEXT NOT NULL,         -- canonical JSON: layer spec, input shape, batch size, device
    median_ms REAL NOT NULL,
    record TEXT NOT NULL,       -- JSON of the full measurement record
    created REAL NOT NULL       -- unix time
)
"""


class LatencyCache:
    """Key -> latency record in one SQLite file.

    Each process (and thread) keeps its own connection, opened on first use (a forked child opens a fresh
    one), in WAL mode with `busy_timeout_s` of waiting on locks, so any number of processes can share the
    file. A key is written once: when two processes time the same layer, the first record stays (both are
    valid measurements).
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        con, pid = getattr(self._local, "con", None), getattr(self._local, "pid", None)
        if con is None or pid != os.getpid():
            con = sqlite3.connect(self.path, timeout=self.busy_timeout_s)
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            # WAL lets readers proceed while one process writes; switching the mode needs a lock, which
            # busy_timeout waits for. NORMAL sync: a commit survives a crash of the process, not of the OS.
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            self._local.con, self._local.pid = con, os.getpid()
        return con

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = self._connection()
        with con:  # one transaction: commit on success, roll back on error
            yield con

    def close(self) -> None:
        """Close this thread's connection (reopened on next use)."""
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            con.close()
        self._local.con = None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for `key`, or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored records for those of `keys` that are present."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        with self._connect() as con:
            for i in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(f"SELECT key, record FROM latency WHERE key IN ({marks})", chunk)
                out.update((k, json.loads(r)) for k, r in rows)
        return out

    def put(self, key: str, *, fingerprint: str, what: str, median_ms: float, record: dict[str, Any]) -> bool:
        """Store a record unless `key` is already there; True if this call wrote it."""
        with self._connect() as con:
            cur = con.execute(
                "INSERT OR IGNORE INTO latency (key, fingerprint, what, median_ms, record, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, fingerprint, what, float(median_ms), json.dumps(record, sort_keys=True), time.time()),
            )
            return cur.rowcount == 1

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM latency").fetchone()[0])

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete every record (or those of one device fingerprint); returns how many."""
        with self._connect() as con:
            if fingerprint is None:
                return con.execute("DELETE FROM latency").rowcount
            return con.execute("DELETE FROM latency WHERE fingerprint = ?", (fingerprint,)).rowcount
