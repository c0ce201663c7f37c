"""The engine's LogitCache protocol over the project database (table ``logit_cache``).

A batch of keys is looked up with one SELECT that searches the composite primary key
(``example_id IN (...) AND module_id IN (...) AND module_version IN (...)``); only batches beyond SQLite's
bound-parameter limit are split. Logits are float32 little-endian bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import and_, delete, func, not_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from conpet.core.protocols import CacheKey
from conpet.store.models import LogitCacheEntry

if TYPE_CHECKING:
    from conpet.store.db import Database

# SQLite allows 32766 bound parameters; leave room for the module ids and versions.
MAX_KEYS_PER_STATEMENT = 20_000
_DTYPE = np.dtype("<f4")


def _key(key: CacheKey) -> CacheKey:
    example_id, module_id, version = key
    return (str(example_id), str(module_id), int(version))


class ProjectLogitCache:
    """Implements ``conpet.core.protocols.LogitCache``; safe to use from a worker thread."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.selects = 0  # statements issued by get_many (tests check batching)

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, np.ndarray]:
        wanted = set(_key(k) for k in keys)
        found: dict[CacheKey, np.ndarray] = {}
        if not wanted:
            return found
        examples = sorted({k[0] for k in wanted})
        modules = sorted({k[1] for k in wanted})
        versions = sorted({k[2] for k in wanted})
        cols = (LogitCacheEntry.example_id, LogitCacheEntry.module_id, LogitCacheEntry.module_version)
        with self._db.read() as s:
            for i in range(0, len(examples), MAX_KEYS_PER_STATEMENT):
                # three IN lists let SQLite search the primary key (a row-value IN scans the table);
                # the few extra rows of the cross product are dropped below
                q = select(*cols, LogitCacheEntry.logits).where(
                    LogitCacheEntry.example_id.in_(examples[i:i + MAX_KEYS_PER_STATEMENT]),
                    LogitCacheEntry.module_id.in_(modules),
                    LogitCacheEntry.module_version.in_(versions),
                )
                self.selects += 1
                for example_id, module_id, version, blob in s.execute(q):
                    key = (example_id, module_id, version)
                    if key in wanted:
                        found[key] = np.frombuffer(blob, dtype=_DTYPE).astype(np.float32)
        return found

    def put_many(self, items: Mapping[CacheKey, np.ndarray]) -> None:
        rows = [
            {"example_id": k[0], "module_id": k[1], "module_version": k[2],
             "logits": np.ascontiguousarray(np.asarray(v, dtype=_DTYPE).reshape(-1)).tobytes()}
            for k, v in ((_key(k), v) for k, v in items.items())
        ]
        if not rows:
            return
        with self._db.transaction() as s:
            insert = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
            stmt = insert(LogitCacheEntry)
            stmt = stmt.on_conflict_do_update(
                index_elements=["example_id", "module_id", "module_version"],
                set_={"logits": stmt.excluded.logits},
            )
            for i in range(0, len(rows), 5_000):
                s.execute(stmt, rows[i:i + 5_000])

    def count(self, module_id: str | None = None) -> int:
        with self._db.read() as s:
            q = select(func.count()).select_from(LogitCacheEntry)
            if module_id is not None:
                q = q.where(LogitCacheEntry.module_id == module_id)
            return int(s.scalar(q) or 0)

    def clear(self, module_id: str | None = None, module_version: int | None = None) -> int:
        """Forget cached logits (of one module, or one module version); returns how many rows went."""
        with self._db.transaction() as s:
            q = delete(LogitCacheEntry)
            if module_id is not None:
                q = q.where(LogitCacheEntry.module_id == module_id)
            if module_version is not None:
                q = q.where(LogitCacheEntry.module_version == module_version)
            return int(s.execute(q).rowcount or 0)

    def prune_model(self, uid: str, keep: Mapping[str, int]) -> int:
        """Forget every cached row of the model ``uid`` (module ids ``"<uid>/<name>"``) except those of the
        module versions in ``keep`` (module id -> version): what a failed, cancelled or interrupted step
        computed, and what superseded versions left. Returns how many rows went."""
        mine = LogitCacheEntry.module_id.startswith(f"{uid}/", autoescape=True)
        kept = [and_(LogitCacheEntry.module_id == mid, LogitCacheEntry.module_version == int(v))
                for mid, v in keep.items()]
        with self._db.transaction() as s:
            q = delete(LogitCacheEntry).where(mine)
            if kept:
                q = q.where(not_(or_(*kept)))
            return int(s.execute(q).rowcount or 0)
