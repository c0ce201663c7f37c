"""Copy a whole project between a folder and a PostgreSQL server (either way), and check the copy.

The copy is made at the newest schema: the source is opened (an older one upgraded), the target is built
by the same migrations and filled in the same transaction, so a failure leaves no half project (a SQLite
target is written to a temporary file and renamed into place; a server target stays empty). Every row of
every table is copied with its id; afterwards each table of the target is compared with the source's,
row by row (``table_digests``), and any difference is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, select

from conpet.store import schema
from conpet.store.db import mapped_errors, sync_id_sequences
from conpet.store.errors import StoreError
from conpet.store.location import DB_NAME, ProjectLocation, locate, sqlite_location
from conpet.store.models import Base, Lease, SchemaVersion
from conpet.store.project import MODULES_DIR, Project

CHUNK_ROWS = 2_000
# Not copied: the schema version (the migrations write it in the target) and the leases (a lease belongs to a
# job running on the source; the copy has none). Everything else is copied and compared.
_NOT_COPIED = {SchemaVersion.__tablename__, Lease.__tablename__}


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    rows: dict[str, int]  # table -> rows copied
    files: int  # files of modules/ copied to the target's folder
    seconds: float


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in _NOT_COPIED]


def _ordered(table: Table) -> Any:
    return select(table).order_by(*table.primary_key.columns)


def _chunks(conn: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    result = conn.execution_options(yield_per=CHUNK_ROWS).execute(_ordered(table))
    for part in result.mappings().partitions(CHUNK_ROWS):
        yield [dict(row) for row in part]


def _copy_rows(source: Project, rows: dict[str, int],
               progress: Callable[[str], None] | None) -> Callable[[Connection], None]:
    def fill(target: Connection) -> None:
        with source.db.engine.connect() as src:
            for table in _tables():
                n = 0
                for chunk in _chunks(src, table):
                    target.execute(table.insert(), chunk)
                    n += len(chunk)
                rows[table.name] = n
                if progress is not None:
                    progress(f"{table.name}: {n} rows")
        sync_id_sequences(target, [t.name for t in _tables() if "id" in t.c and t.c.id.primary_key])
    return fill


def _refuse_existing(target: ProjectLocation) -> None:
    if Project.exists(target):
        raise StoreError(f"{target.display} already holds a project (or other tables): copy to an empty "
                         "database or a new folder")


def _write_sqlite(folder: Path, fill: Callable[[Connection], None]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{DB_NAME}.copying-{os.getpid()}"
    extra = [Path(f"{tmp}-wal"), Path(f"{tmp}-shm")]
    try:
        schema.upgrade(sqlite_location(tmp), then=fill)
        # fold the WAL back in before the rename (the file appears complete or not at all)
        with sqlite3.connect(tmp) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for p in extra:
            p.unlink(missing_ok=True)
        os.replace(tmp, folder / DB_NAME)
    except BaseException:
        for p in [tmp, *extra]:
            p.unlink(missing_ok=True)
        raise


def _copy_files(source: Project, target: ProjectLocation) -> int:
    src = source.modules_dir
    dst = target.folder / MODULES_DIR
    dst.mkdir(parents=True, exist_ok=True)
    if not src.is_dir() or src.resolve() == dst.resolve():
        return 0
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return sum(1 for p in src.rglob("*") if p.is_file())


def copy_project(source: str | Path, target: str | Path, *,
                 progress: Callable[[str], None] | None = None) -> CopyReport:
    """Copy the project at ``source`` to ``target`` (a new folder or an empty ``postgresql://`` database),
    then check that every table of the target equals the source's (StoreError naming the first table that
    differs)."""
    started = time.perf_counter()
    where = locate(target)
    _refuse_existing(where)
    rows: dict[str, int] = {}
    with Project.open(source) as src:
        fill = _copy_rows(src, rows, progress)
        with mapped_errors(where):
            if where.is_server:
                schema.upgrade(where, then=fill)
            else:
                _write_sqlite(where.folder, fill)
        files = _copy_files(src, where)
        with Project.open(target) as dst:
            differences = compare_projects(src, dst)
        if differences:
            raise StoreError(f"the copy at {where.display} differs from {src.where}: {'; '.join(differences)}")
        return CopyReport(source=src.where, target=where.display, rows=rows, files=files,
                          seconds=time.perf_counter() - started)


def _normal(value: Any) -> Any:
    """One spelling per value whatever the database: aware datetimes, JSON with sorted keys, bytes as hex."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def table_digests(project: Project) -> dict[str, tuple[int, str]]:
    """table -> (rows, SHA-256 over its rows in primary-key order, values normalised): equal digests mean
    equal contents, whichever database holds them."""
    out: dict[str, tuple[int, str]] = {}
    with project.db.engine.connect() as conn:
        for table in _tables():
            h = hashlib.sha256()
            n = 0
            for chunk in _chunks(conn, table):
                for row in chunk:
                    h.update(repr([_normal(row[c.name]) for c in table.columns]).encode("utf-8"))
                    n += 1
            out[table.name] = (n, h.hexdigest())
    return out


def compare_projects(a: Project, b: Project) -> list[str]:
    """What differs between two projects' tables (empty: the same rows in every table)."""
    da, db = table_digests(a), table_digests(b)
    return [f"{name}: {da[name][0]} rows vs {db[name][0]}" + (" (same count, different values)"
                                                               if da[name][0] == db[name][0] else "")
            for name in da if da[name] != db.get(name)]
