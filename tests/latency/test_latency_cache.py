"""The SQLite latency table: semantics, WAL mode, and two processes writing at once."""

from __future__ import annotations

import multiprocessing
import sqlite3

from nas.latency import LatencyCache


def test_put_get_first_writer_wins(tmp_path):
    cache = LatencyCache(tmp_path / "sub" / "t.sqlite")  # creates the folder
    assert cache.get("a") is None and cache.get_many([]) == {} and len(cache) == 0
    assert cache.put(
        "a", fingerprint="dev1", what="{}", median_ms=1.5, record={"median_ms": 1.5, "x": [1, 2]}
    )
    assert not cache.put("a", fingerprint="dev1", what="{}", median_ms=9.0, record={"median_ms": 9.0})
    assert cache.get("a") == {"median_ms": 1.5, "x": [1, 2]}
    cache.put("b", fingerprint="dev2", what="{}", median_ms=2.0, record={"median_ms": 2.0})
    assert set(cache.get_many(["a", "b", "missing"])) == {"a", "b"}
    assert cache.clear(fingerprint="dev2") == 1 and len(cache) == 1


def test_uses_write_ahead_logging(tmp_path):
    path = tmp_path / "t.sqlite"
    LatencyCache(path)
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_get_many_handles_more_keys_than_sqlite_parameters(tmp_path):
    cache = LatencyCache(tmp_path / "t.sqlite")
    for i in range(0, 1200, 100):
        cache.put(f"k{i}", fingerprint="d", what="{}", median_ms=float(i), record={"median_ms": float(i)})
    found = cache.get_many(f"k{i}" for i in range(1200))
    assert len(found) == len(range(0, 1200, 100)) and found["k700"]["median_ms"] == 700.0


def _writer(cache: LatencyCache | str, worker: int, n: int, barrier, errors) -> None:
    try:
        if not isinstance(cache, LatencyCache):
            cache = LatencyCache(cache, busy_timeout_s=30)
        barrier.wait(timeout=30)
        for i in range(n):
            # Each write is its own transaction; half the keys are shared, so both processes race on them.
            key = f"shared{i}" if i % 2 else f"w{worker}-{i}"
            cache.put(
                key, fingerprint="d", what="{}", median_ms=float(worker), record={"median_ms": float(worker)}
            )
            assert cache.get(key) is not None
    except Exception as e:  # reported to the parent: an assertion here would only kill the child
        errors.put(f"worker {worker}: {type(e).__name__}: {e}")


def test_two_processes_share_the_table(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("fork")  # the children use only sqlite3, never torch
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    n = 2000
    inherited = LatencyCache(path)  # worker 1 uses the parent's instance (and its connection) after the fork
    assert len(inherited) == 0
    procs = [
        ctx.Process(target=_writer, args=(c, w, n, barrier, errors)) for w, c in ((0, path), (1, inherited))
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert errors.empty(), errors.get()
    cache = LatencyCache(path)
    shared = n // 2
    assert len(cache) == 2 * (n - shared) + shared  # every private key, each shared key exactly once
    assert cache.get("shared1")["median_ms"] in (0.0, 1.0)
