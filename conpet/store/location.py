"""Where a project lives: a folder holding ``project.sqlite``, or a PostgreSQL database named by its URL.

A project on a server still needs a folder on each machine (the adapter files a training writes, caches):
``local_folder`` derives one from the URL under ``$CONPET_HOME`` (default ``~/.cache/conpet``), the same
folder for the same database whatever password or driver the URL names.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from conpet.store.errors import StoreError

DB_NAME = "project.sqlite"
# How a user may spell a server project; the first is what the store connects with.
DRIVER = "postgresql+psycopg"
SERVER_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def is_server_url(where: str | os.PathLike[str]) -> bool:
    """Whether ``where`` names a PostgreSQL database rather than a folder."""
    return isinstance(where, str) and where.startswith(SERVER_PREFIXES)


@dataclass(frozen=True, slots=True)
class ProjectLocation:
    """A project's database and this machine's folder for it."""

    folder: Path  # the project folder (SQLite) or this machine's working folder for a server project
    url: URL  # what SQLAlchemy connects to

    @property
    def is_server(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @property
    def db_path(self) -> Path | None:
        """The SQLite file; None for a server project."""
        return None if self.is_server else Path(str(self.url.database))

    @property
    def display(self) -> str:
        """How messages name the project: the folder, or the URL without its password."""
        if not self.is_server:
            return str(self.folder)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    @property
    def target(self) -> str:
        """What ``Project.open`` takes to open this project again (another thread, a worker): the folder,
        or the full URL (password included)."""
        if not self.is_server:
            return str(self.folder)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def __str__(self) -> str:
        return self.display


def conpet_home() -> Path:
    return Path(os.environ.get("CONPET_HOME") or Path.home() / ".cache" / "conpet")


def local_folder(url: URL) -> Path:
    """This machine's folder for the server database ``url`` (keyed by host, port, socket and database)."""
    host = url.host or url.query.get("host") or "localhost"
    key = f"{host}|{url.port or ''}|{url.database or ''}|{url.username or ''}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in (url.database or "db"))
    return conpet_home() / "servers" / f"{safe}-{digest}"


def server_url(text: str) -> URL:
    """A ``postgresql://`` URL as SQLAlchemy's URL with the psycopg driver (a bad URL: StoreError)."""
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise StoreError(f"{text!r} is not a database URL ({exc})") from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise StoreError(f"{text!r}: a project server must be PostgreSQL (postgresql://user@host/database)")
    if not url.database:
        raise StoreError(f"{url.render_as_string(hide_password=True)}: the URL names no database "
                         "(postgresql://user@host/DATABASE)")
    return url.set(drivername=DRIVER)


def locate(where: str | os.PathLike[str] | ProjectLocation) -> ProjectLocation:
    """The location a user typed: a ``postgresql://`` URL or a folder path."""
    if isinstance(where, ProjectLocation):
        return where
    if is_server_url(where):
        url = server_url(str(where))
        return ProjectLocation(folder=local_folder(url), url=url)
    folder = Path(where).resolve()
    return ProjectLocation(folder=folder, url=URL.create("sqlite", database=str(folder / DB_NAME)))


def sqlite_location(db_file: Path) -> ProjectLocation:
    """A location for a SQLite file that is not (yet) named project.sqlite (creation, scratch databases)."""
    return ProjectLocation(folder=db_file.parent.resolve(), url=URL.create("sqlite", database=str(db_file)))
