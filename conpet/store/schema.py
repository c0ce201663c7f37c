"""Schema versions and migrations, run programmatically (no alembic.ini, nothing read from the cwd).

Revisions in ``conpet/store/migrations/versions`` form one linear chain; schema version N is the N-th
revision. Each revision also writes N into the ``schema_version`` table, which is what a newer database
is recognised by when this code does not know its Alembic revision.

Developers make a new revision with ``python -m conpet.store.schema revision "what changed"`` (it
autogenerates from ``models.py`` against a scratch database at head).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from conpet.store.db import engine_for, make_engine, mapped_errors, write_engine
from conpet.store.errors import NotAProjectError, SchemaTooNewError, StoreError
from conpet.store.location import ProjectLocation, sqlite_location

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def revision_chain() -> list[str]:
    """Revision ids from the first schema version to the newest."""
    script = ScriptDirectory.from_config(alembic_config())
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")]
    return list(reversed(chain))


def head_version() -> int:
    return len(revision_chain())


@dataclass(frozen=True, slots=True)
class DatabaseState:
    revision: str | None  # None: no Alembic record
    version: int | None  # from the schema_version table, when readable
    has_tables: bool


def _location(target: Path | ProjectLocation) -> ProjectLocation:
    return target if isinstance(target, ProjectLocation) else sqlite_location(target)


def read_state(target: Path | ProjectLocation) -> DatabaseState:
    """What schema the database holds (a SQLite file is read with plain sqlite3, touching nothing)."""
    location = _location(target)
    if location.is_server:
        return _read_server_state(location)
    path = location.db_path
    assert path is not None
    try:
        # read-write (though only read): a read-only connection cannot recover the WAL after a crash
        con = sqlite3.connect(str(path), timeout=30)
    except sqlite3.Error as exc:
        raise NotAProjectError(f"{path}: cannot open the project database ({exc})") from exc
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        revision = None
        version = None
        if "alembic_version" in tables:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        if "schema_version" in tables:
            row = con.execute("SELECT version FROM schema_version ORDER BY id LIMIT 1").fetchone()
            version = int(row[0]) if row else None
        return DatabaseState(revision, version, bool(tables))
    except sqlite3.DatabaseError as exc:
        raise NotAProjectError(f"{path}: not a ConPET project database ({exc})") from exc
    finally:
        con.close()


def _read_server_state(location: ProjectLocation) -> DatabaseState:
    engine = engine_for(location)
    try:
        with mapped_errors(location), engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            revision = version = None
            if "alembic_version" in tables:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if "schema_version" in tables:
                row = conn.execute(text("SELECT version FROM schema_version ORDER BY id LIMIT 1")).scalar()
                version = int(row) if row is not None else None
            return DatabaseState(revision, version, bool(tables))
    finally:
        engine.dispose()


def backup_path(path: Path, version: int) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.bak-v{version}-{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak-v{version}-{stamp}-{n}")
        n += 1
    return candidate


def backup(path: Path, target: Path) -> None:
    """A consistent copy made with SQLite's backup API (correct even with a live WAL)."""
    src = sqlite3.connect(str(path), timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def upgrade(target: Path | ProjectLocation, revision: str = "head",
            then: Callable[[Connection], None] | None = None) -> None:
    """Run the migrations on the database up to ``revision`` in one transaction (on SQLite foreign keys
    are off while tables are rebuilt and checked afterwards; PostgreSQL checks them as it goes), then
    ``then(connection)`` inside the same transaction."""
    location = _location(target)
    engine = write_engine(engine_for(location, foreign_keys=False))
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            if not location.is_server:
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise StoreError(f"{location.display}: migration left broken references: {problems[:5]}")
            if then is not None:
                then(conn)
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    from_version: int
    to_version: int
    backup: Path | None


def ensure_current(target: Path | ProjectLocation) -> UpgradeResult:
    """Bring an existing project database to the newest schema.

    Older: back a SQLite file up next to itself as ``project.sqlite.bak-v<N>-<timestamp>``, then upgrade
    (a PostgreSQL database is upgraded in one transaction, which its DDL allows, with no copy).
    Newer than this code: refuse with SchemaTooNewError. Not a project database: NotAProjectError.
    """
    location = _location(target)
    path: Path | str = location.db_path or location.display
    chain = revision_chain()
    state = read_state(location)
    if not state.has_tables or state.revision is None:
        raise NotAProjectError(f"{path}: not a ConPET project database (it has no schema record)")
    if state.revision not in chain:
        newer = f"schema version {state.version}" if state.version else f"schema revision {state.revision!r}"
        raise SchemaTooNewError(
            f"{path} was written by a newer ConPET Studio ({newer}); this version understands schema "
            f"versions up to {len(chain)}. Update ConPET Studio to open this project."
        )
    current = chain.index(state.revision) + 1
    if current == len(chain):
        return UpgradeResult(current, current, None)
    copy = None
    if location.db_path is not None:
        copy = backup_path(location.db_path, current)
        backup(location.db_path, copy)
    try:
        upgrade(location)
    except Exception as exc:  # the upgrade is one transaction: still at version `current`
        kept = f"; a copy is at {copy.name}" if copy is not None else ""
        raise StoreError(
            f"could not upgrade {path} from schema version {current} to {len(chain)}: "
            f"{getattr(exc, 'orig', None) or exc}. The project "
            f"is unchanged{kept}."
        ) from exc
    return UpgradeResult(current, len(chain), copy)


def _make_revision(message: str) -> None:
    """Autogenerate a revision from models.py against a scratch database at head."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scratch.sqlite"
        upgrade(db)
        engine = make_engine(db, foreign_keys=False)
        try:
            with engine.begin() as conn:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.revision(cfg, message=message, autogenerate=True,
                                 rev_id=f"{len(revision_chain()) + 1:04d}")
        finally:
            engine.dispose()


if __name__ == "__main__":  # pragma: no cover - developer tool
    if len(sys.argv) == 3 and sys.argv[1] == "revision":
        _make_revision(sys.argv[2])
    else:
        print('usage: python -m conpet.store.schema revision "message"', file=sys.stderr)
        sys.exit(2)
