"""Engine, connection settings and session scopes for one project database.

Why the transaction handling looks like this:
- Python's sqlite3 driver opens transactions lazily and only before DML, so SQLAlchemy is told to leave
  the driver in autocommit mode and we emit ``BEGIN`` ourselves (the recipe in SQLAlchemy's SQLite docs).
- Write transactions start with ``BEGIN IMMEDIATE``: they take SQLite's write lock up front and wait for
  it under the busy timeout. A deferred transaction that reads first and writes later can instead fail at
  once with "database is locked" when another connection wrote in between, which busy_timeout cannot cure.
- Each thread gets its own Session per operation; a thread that is already inside a transaction joins it
  (so ``with project.transaction():`` around several repository calls makes them one transaction, and a
  nested write never waits on the lock its own thread holds).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from conpet.core.errors import storage_error
from conpet.store.errors import DatabaseAccessError

BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "conpet_begin"


def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry,
                foreign_keys: bool) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see the module docstring)
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        # FULL syncs the WAL on every commit: a committed annotation survives a crash or power loss.
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    finally:
        cur.close()


def _on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(path: Path, *, foreign_keys: bool = True) -> Engine:
    """An engine whose every connection has WAL, foreign keys, a busy timeout and explicit BEGIN."""
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect",
                 lambda dbapi, rec: _on_connect(dbapi, rec, foreign_keys))
    event.listen(engine, "begin", _on_begin)
    return engine


# SQLite's words for the failures a user can act on -> what to say after the file's name.
_SQLITE_REASONS = (
    ("locked", "is locked by another program or process (try again when it has finished)"),
    ("busy", "is locked by another program or process (try again when it has finished)"),
    ("disk is full", "cannot grow: the disk is full (free some space and try again)"),
    ("readonly", "cannot be written: the file or its folder is read-only"),
    ("unable to open", "cannot be opened (a missing or read-only folder, or no permission)"),
    ("disk i/o error", "cannot be read or written: disk I/O error (a full disk or a failing drive)"),
)


def database_error(path: Path, exc: BaseException) -> DatabaseAccessError:
    """One clear message naming the database file for SQLite's OperationalError (or an OSError)."""
    if isinstance(exc, OSError):
        return DatabaseAccessError(str(storage_error(exc, path)))
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    for words, reason in _SQLITE_REASONS:
        if words in detail.lower():
            return DatabaseAccessError(f"the project database {path} {reason}")
    return DatabaseAccessError(f"the project database {path} cannot be used: {detail}")


@contextmanager
def mapped_errors(path: Path) -> Iterator[None]:
    """SQLite's operational failures (and OSErrors) as DatabaseAccessError naming ``path``."""
    try:
        yield
    except (OperationalError, sqlite3.OperationalError, OSError) as exc:
        raise database_error(path, exc) from exc


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool), but its transactions start with BEGIN IMMEDIATE."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


class Database:
    """Session scopes over one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine = make_engine(path)
        self._reads = sessionmaker(bind=self.engine, expire_on_commit=False, autoflush=True)
        self._writes = sessionmaker(bind=write_engine(self.engine), expire_on_commit=False, autoflush=True)
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Nested use on the same thread joins the outer transaction (inside a savepoint, so a nested call
        that raises undoes only its own writes).
        """
        current: Session | None = getattr(self._local, "write", None)
        if current is not None:
            # a savepoint: if the nested call fails, its partial writes go and the outer one may go on
            with current.begin_nested():
                yield current
            return
        with mapped_errors(self.path), self._writes() as session:
            self._local.write = session
            try:
                with session.begin():
                    yield session
            finally:
                self._local.write = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot (or the thread's open transaction, whose changes it then sees)."""
        current: Session | None = getattr(self._local, "write", None) or getattr(self._local, "read", None)
        if current is not None:
            yield current
            return
        with mapped_errors(self.path), self._reads() as session:
            self._local.read = session
            try:
                yield session  # closing the session rolls the snapshot back: reads never commit
            finally:
                self._local.read = None

    def in_transaction(self) -> bool:
        return getattr(self._local, "write", None) is not None

    def dispose(self) -> None:
        self.engine.dispose()
