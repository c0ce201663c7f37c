"""Logit caches (ConPET III-C4): (example id, module id, module version) -> logits of a frozen module.

Both implementations satisfy `conpet.core.protocols.LogitCache`: look-ups are batched (one call, and for
SQLite one query per few hundred keys, per batch). A module's version changes whenever its weights do,
so a stale entry can never be returned: its key no longer matches.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from conpet.core.protocols import CacheKey

_CHUNK = 300  # keys per SQL statement (3 parameters each, far below SQLite's limit)


class CacheStats:
    """Hit and miss counters (keys, not calls)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.lookups = 0  # get_many calls



class MemoryLogitCache:
    """A dict in memory; thread-safe; optional cap on entries (oldest dropped first)."""

    def __init__(self, max_entries: int | None = None) -> None:
        self._data: dict[CacheKey, np.ndarray] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.stats = CacheStats()

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, np.ndarray]:
        keys = list(keys)
        with self._lock:
            out = {k: self._data[k] for k in keys if k in self._data}
            self.stats.lookups += 1
            self.stats.hits += len(out)
            self.stats.misses += len(keys) - len(out)
        return out

    def put_many(self, items: Mapping[CacheKey, np.ndarray]) -> None:
        with self._lock:
            for k, v in items.items():
                self._data[_key(k)] = np.array(v, dtype=np.float32, copy=True)
            if self.max_entries is not None:
                while len(self._data) > self.max_entries:
                    self._data.pop(next(iter(self._data)))

    def items(self) -> dict[CacheKey, np.ndarray]:
        """A snapshot of every entry (e.g. to copy into a persistent cache)."""
        with self._lock:
            return dict(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class SqliteLogitCache:
    """A standalone SQLite file (WAL). Logits are stored as float32 blobs. Usable from several threads."""

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS logits (
            example_id TEXT NOT NULL,
            module_id TEXT NOT NULL,
            module_version INTEGER NOT NULL,
            n INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (example_id, module_id, module_version)
        ) WITHOUT ROWID
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(self.SCHEMA)
        self._conn.commit()
        self.stats = CacheStats()

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, np.ndarray]:
        keys = list(dict.fromkeys(_key(k) for k in keys))
        out: dict[CacheKey, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                marks = ",".join(["(?,?,?)"] * len(chunk))
                params = [x for k in chunk for x in k]
                rows = self._conn.execute(
                    "SELECT example_id, module_id, module_version, n, data FROM logits "
                    f"WHERE (example_id, module_id, module_version) IN (VALUES {marks})", params)
                for ex, mod, ver, n, blob in rows:
                    arr = np.frombuffer(blob, dtype=np.float32)
                    if arr.size == n:
                        out[(ex, mod, int(ver))] = arr.copy()
            self.stats.lookups += 1
            self.stats.hits += len(out)
            self.stats.misses += len(keys) - len(out)
        return out

    def put_many(self, items: Mapping[CacheKey, np.ndarray]) -> None:
        rows = []
        for k, v in items.items():
            ex, mod, ver = _key(k)
            arr = np.ascontiguousarray(v, dtype=np.float32).ravel()
            rows.append((ex, mod, ver, int(arr.size), arr.tobytes()))
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO logits VALUES (?,?,?,?,?)", rows)

    def clear(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM logits")

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM logits").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteLogitCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key(k: CacheKey) -> CacheKey:
    return (str(k[0]), str(k[1]), int(k[2]))
