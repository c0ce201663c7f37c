"""Logit caches: round trip, batched look-ups, stale versions never hit, SQLite persistence."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conpet.core.protocols import LogitCache
from conpet.model.logit_cache import MemoryLogitCache, SqliteLogitCache


@pytest.fixture(params=["memory", "sqlite"])
def cache(request, tmp_path):
    if request.param == "memory":
        yield MemoryLogitCache()
    else:
        c = SqliteLogitCache(tmp_path / "c.sqlite")
        yield c
        c.close()


def test_protocol(cache):
    assert isinstance(cache, LogitCache)


def test_round_trip_and_misses(cache):
    a = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    cache.put_many({("e1", "run/expert_0", 1): a, ("e2", "run/expert_0", 1): a * 2})
    got = cache.get_many([("e1", "run/expert_0", 1), ("e2", "run/expert_0", 1), ("e3", "run/expert_0", 1)])
    assert set(got) == {("e1", "run/expert_0", 1), ("e2", "run/expert_0", 1)}
    np.testing.assert_array_equal(got[("e1", "run/expert_0", 1)], a)
    np.testing.assert_array_equal(got[("e2", "run/expert_0", 1)], a * 2)
    assert cache.stats.hits == 2 and cache.stats.misses == 1 and cache.stats.lookups == 1


def test_stale_version_never_hits(cache):
    cache.put_many({("e1", "run/selector", 3): np.zeros(3, np.float32)})
    assert cache.get_many([("e1", "run/selector", 4)]) == {}
    assert cache.get_many([("e1", "run/selector", 2)]) == {}
    assert cache.get_many([("e1", "run/other", 3)]) == {}
    assert len(cache.get_many([("e1", "run/selector", 3)])) == 1


def test_many_keys_one_call(cache):
    items = {(f"e{i}", "m", 1): np.full(4, i, np.float32) for i in range(1000)}
    cache.put_many(items)
    got = cache.get_many(list(items))
    assert len(got) == 1000 and cache.stats.lookups == 1
    np.testing.assert_array_equal(got[("e999", "m", 1)], np.full(4, 999, np.float32))


def test_clear(cache):
    cache.put_many({("e1", "m", 1): np.ones(2), ("e1", "m", 2): np.ones(2), ("e1", "n", 1): np.ones(2)})
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0


def test_stored_values_are_copies(cache):
    a = np.ones(3, np.float32)
    cache.put_many({("e", "m", 1): a})
    a[:] = 7
    assert cache.get_many([("e", "m", 1)])[("e", "m", 1)].tolist() == [1, 1, 1]


def test_sqlite_persists_and_works_across_threads(tmp_path):
    path = tmp_path / "p.sqlite"
    with SqliteLogitCache(path) as c:
        c.put_many({("e", "m", 1): np.arange(5, dtype=np.float32)})
    c2 = SqliteLogitCache(path)
    errors = []

    def worker(i: int) -> None:
        try:
            c2.put_many({(f"t{i}", "m", 1): np.ones(2)})
            assert ("e", "m", 1) in c2.get_many([("e", "m", 1)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(c2) == 5
    c2.close()


def test_memory_items_copy_into_sqlite(tmp_path):
    mem = MemoryLogitCache()
    mem.put_many({("e", "m", 1): np.arange(3, dtype=np.float32)})
    with SqliteLogitCache(tmp_path / "c.sqlite") as sql:
        sql.put_many(mem.items())
        assert sql.get_many([("e", "m", 1)])[("e", "m", 1)].tolist() == [0, 1, 2]


def test_memory_cap():
    c = MemoryLogitCache(max_entries=2)
    c.put_many({("a", "m", 1): np.ones(1), ("b", "m", 1): np.ones(1), ("c", "m", 1): np.ones(1)})
    assert len(c) == 2 and c.get_many([("a", "m", 1)]) == {}
