"""Engine, connection settings and session scopes for one project database.

Why the transaction handling looks like this:
- Python's sqlite3 driver opens transactions lazily and only before DML, so SQLAlchemy is told to leave
  the driver in autocommit mode and we emit ``BEGIN`` ourselves (the recipe in SQLAlchemy's SQLite docs).
- Write transactions start with ``BEGIN IMMEDIATE``: they take SQLite's write lock up front and wait for
  it under the busy timeout. A deferred transaction that reads first and writes later can instead fail at
  once with "database is locked" when another connection wrote in between, which busy_timeout cannot cure.
- On PostgreSQL a write transaction takes a transaction-scoped advisory lock first: writers queue one
  after another as they do on SQLite, so read-then-write steps (next version number, next task index)
  behave the same on both. Reads there run at REPEATABLE READ: one snapshot per read scope, like SQLite's.
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

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from conpet.core.errors import storage_error
from conpet.store.errors import DatabaseAccessError
from conpet.store.identity import default_user
from conpet.store.location import ProjectLocation, sqlite_location

BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "conpet_begin"
# The advisory lock every PostgreSQL write transaction holds (one per database: locks are per database).
WRITE_LOCK_KEY = 0x436F6E504554  # "ConPET"


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


def _on_server_begin(conn: Any) -> None:
    if conn.get_execution_options().get(_BEGIN_OPTION) == "IMMEDIATE":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})


def make_server_engine(location: ProjectLocation) -> Engine:
    """An engine for a PostgreSQL database whose write transactions (``write_engine``) queue on one lock."""
    engine = create_engine(location.url, pool_pre_ping=True)
    event.listen(engine, "begin", _on_server_begin)
    return engine


def engine_for(location: ProjectLocation, *, foreign_keys: bool = True) -> Engine:
    """The engine for a project's database, SQLite file or PostgreSQL server."""
    if location.is_server:
        return make_server_engine(location)
    assert location.db_path is not None
    return make_engine(location.db_path, foreign_keys=foreign_keys)


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


def database_error(path: Path | ProjectLocation, exc: BaseException) -> DatabaseAccessError:
    """One clear message naming the database file (or server) for an OperationalError (or an OSError)."""
    if isinstance(path, ProjectLocation) and path.is_server:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return DatabaseAccessError(f"the project database {path.display} cannot be used: {detail}")
    if isinstance(path, ProjectLocation):
        assert path.db_path is not None
        path = path.db_path
    if isinstance(exc, OSError):
        return DatabaseAccessError(str(storage_error(exc, path)))
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    for words, reason in _SQLITE_REASONS:
        if words in detail.lower():
            return DatabaseAccessError(f"the project database {path} {reason}")
    return DatabaseAccessError(f"the project database {path} cannot be used: {detail}")


@contextmanager
def mapped_errors(path: Path | ProjectLocation) -> Iterator[None]:
    """The database's operational failures (and OSErrors) as DatabaseAccessError naming ``path``."""
    try:
        yield
    except (OperationalError, InterfaceError, sqlite3.OperationalError, OSError) as exc:
        raise database_error(path, exc) from exc


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool), but its transactions start with BEGIN IMMEDIATE."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


class Database:
    """Session scopes over one project database (SQLite file or PostgreSQL); safe to share between threads."""

    def __init__(self, where: Path | ProjectLocation) -> None:
        self.location = where if isinstance(where, ProjectLocation) else sqlite_location(where)
        self.path = self.location.db_path or self.location  # what error messages name
        self.engine = engine_for(self.location)
        reads = self.engine
        if self.location.is_server:  # one snapshot per read scope, as a SQLite read transaction has
            reads = self.engine.execution_options(isolation_level="REPEATABLE READ")
        self._reads = sessionmaker(bind=reads, expire_on_commit=False, autoflush=True)
        self._writes = sessionmaker(bind=write_engine(self.engine), expire_on_commit=False, autoflush=True)
        self._local = threading.local()
        self.user = default_user()  # the author of what this process writes (Project.user)

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

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def in_transaction(self) -> bool:
        return getattr(self._local, "write", None) is not None

    def dispose(self) -> None:
        self.engine.dispose()


def sync_id_sequences(session: Session | Connection, tables: list[str]) -> None:
    """After rows were written with explicit ids (a bulk import, a copy), move PostgreSQL's id sequences
    of ``tables`` past the largest id, so that the next ORM insert does not collide (SQLite needs nothing:
    its next rowid is always the largest plus one)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql":
        return
    for table in tables:
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM \"{table}\"), 0) + 1, false)"))
