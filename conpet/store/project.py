"""A project: one folder holding ``project.sqlite`` (the single source of truth) and ``modules/``, or a
PostgreSQL database (``postgresql://user@host/database``) that a team shares, with a working folder on
each machine (``conpet.store.location``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, func, insert, inspect, select
from sqlalchemy.orm import Session, joinedload

from conpet import __version__
from conpet.data.example import Example, Span, example_id
from conpet.store import schema
from conpet.store.cache import ProjectLogitCache
from conpet.store.db import Database, engine_for, mapped_errors
from conpet.store.errors import NotAProjectError, StoreError
from conpet.store.identity import check_user
from conpet.store.location import DB_NAME, ProjectLocation, locate, sqlite_location
from conpet.store.models import (
    Annotation,
    AnnotationVersion,
    KnowledgeType,
    ProjectInfo,
    Run,
    Sentence,
    Task,
    TypeEdit,
)
from conpet.store.records import ProjectRecord, TypeRecord
from conpet.store.repositories import (
    AnnotationRepository,
    FileRepository,
    LeaseRepository,
    ModuleRepository,
    PredictionRepository,
    RunRepository,
    SentenceRepository,
    TaskRepository,
    TypeRepository,
)
from conpet.store.repositories._common import TypeRef, get_types, type_record
from conpet.store.repositories.runs import mark_dead_runs_interrupted
from conpet.store.repositories.types import _gold_counts

MODULES_DIR = "modules"


class Project:
    """Open with ``Project.open(where)`` / ``Project.create(where, name=...)``, ``where`` a folder or a
    ``postgresql://`` URL; share it freely between threads (every repository call uses its own session).
    Close it when done (or use ``with``)."""

    def __init__(self, where: Path | ProjectLocation, upgrade: schema.UpgradeResult | None = None) -> None:
        self.location = where if isinstance(where, ProjectLocation) else locate(where)
        self.folder = self.location.folder  # a server project's working folder on this machine
        self.db_path = self.location.db_path  # None for a server project
        self.modules_dir = self.folder / MODULES_DIR
        self.upgrade = upgrade  # what opening did to an older schema (backup path and versions)
        self.db = Database(self.location)
        self.types = TypeRepository(self.db)
        self.sentences = SentenceRepository(self.db)
        self.annotations = AnnotationRepository(self.db)
        self.tasks = TaskRepository(self.db)
        self.runs = RunRepository(self.db)
        self.modules = ModuleRepository(self.db, self.folder)
        self.files = FileRepository(self.db, self.folder)  # trained models' folders, kept in the database
        self.predictions = PredictionRepository(self.db)
        self.logit_cache = ProjectLogitCache(self.db)
        self.leases = LeaseRepository(self.db)
        self.interrupted_runs: tuple[int, ...] = ()

    # ----- opening
    @property
    def where(self) -> str:
        """How to name the project to a user: its folder, or its server URL without the password."""
        return self.location.display

    @property
    def is_server(self) -> bool:
        return self.location.is_server

    @property
    def user(self) -> str:
        """Who is working: the author recorded on every annotation, decision, type edit and run this
        project object writes (default: ``conpet.store.identity.default_user()``)."""
        return self.db.user

    @user.setter
    def user(self, name: str) -> None:
        self.db.user = check_user(name)

    @classmethod
    def create(cls, where: str | Path, *, name: str | None = None) -> Project:
        """A new project in the folder ``where`` (created if needed; refused if it already holds a
        project), or in the empty PostgreSQL database a ``postgresql://`` URL names."""
        location = locate(where)
        if location.is_server:
            cls._create_on_server(location, name)
            return cls._opened(location, None)
        folder = Path(where)
        db_path = folder / DB_NAME
        if db_path.exists():
            raise StoreError(f"{folder} already holds a project ({DB_NAME}); open it instead")
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} is a file, not a folder")
        with mapped_errors(db_path):  # a read-only folder or a full disk: one message, no traceback
            cls._create_file(folder, db_path, name)
        return cls._opened(location, None)

    @staticmethod
    def _create_on_server(location: ProjectLocation, name: str | None) -> None:
        """The schema and the project's record in one transaction: a failure leaves the database empty."""
        engine = engine_for(location)
        try:
            with mapped_errors(location), engine.connect() as conn:
                tables = inspect(conn).get_table_names()
        finally:
            engine.dispose()
        if tables:
            held = "already holds a project" if "project_info" in tables else "is not empty"
            raise StoreError(f"the database {location.display} {held} ({len(tables)} tables); "
                             "open it, or create a new database for a new project")

        def record(conn: Connection) -> None:
            conn.execute(insert(ProjectInfo).values(id=1, name=name or str(location.url.database),
                                                    app_version=__version__))

        with mapped_errors(location):
            schema.upgrade(location, then=record)
            (location.folder / MODULES_DIR).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _create_file(folder: Path, db_path: Path, name: str | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MODULES_DIR).mkdir(exist_ok=True)
        tmp = folder / f".{DB_NAME}.creating-{os.getpid()}"
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)
        try:
            schema.upgrade(tmp)
            first = Database(sqlite_location(tmp))
            try:
                with first.transaction() as s:
                    s.add(ProjectInfo(id=1, name=name or folder.resolve().name, app_version=__version__))
                with first.engine.connect() as conn:  # fold the WAL back in before the rename
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                first.dispose()
            for suffix in ("-wal", "-shm"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)
            # appears complete or not at all: a crash mid-creation leaves no half-made project.sqlite
            os.replace(tmp, db_path)
        except BaseException:
            for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                p.unlink(missing_ok=True)
            raise

    @classmethod
    def open(cls, where: str | Path) -> Project:
        """Open an existing project (a folder or a ``postgresql://`` URL). An older schema is upgraded (a
        SQLite file is backed up first); a newer one is refused (SchemaTooNewError); runs left running by
        a dead process are marked 'interrupted'."""
        location = locate(where)
        if location.is_server:
            state = schema.read_state(location)
            if not state.has_tables:
                raise NotAProjectError(f"the database {location.display} holds no ConPET project yet "
                                       "(create one there first, or copy a project to it with `conpet copy`)")
        elif location.db_path is None or not location.db_path.is_file():
            raise NotAProjectError(f"{where} is not a ConPET project (no {DB_NAME} in it)")
        with mapped_errors(location):
            result = schema.ensure_current(location)
            (location.folder / MODULES_DIR).mkdir(parents=True, exist_ok=True)
            changed = result.from_version != result.to_version
            return cls._opened(location, result if changed else None)

    @classmethod
    def exists(cls, where: str | Path | ProjectLocation) -> bool:
        """Whether a project lives at ``where`` (a folder holding project.sqlite, or a database with tables)."""
        location = where if isinstance(where, ProjectLocation) else locate(where)
        if location.is_server:
            return schema.read_state(location).has_tables
        return location.db_path is not None and location.db_path.exists()

    @classmethod
    def open_or_create(cls, where: str | Path, *, name: str | None = None) -> Project:
        if cls.exists(where):
            return cls.open(where)
        return cls.create(where, name=name)

    @classmethod
    def _opened(cls, location: ProjectLocation, upgrade: schema.UpgradeResult | None) -> Project:
        project = cls(location, upgrade)
        try:
            if project.runs.active():  # take the write lock only when there may be something to mark
                with project.db.transaction() as s:
                    project.interrupted_runs = tuple(mark_dead_runs_interrupted(s))
        except BaseException:
            project.close()
            raise
        return project

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- sessions
    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction; repository calls made inside it (on this thread) join it."""
        with self.db.transaction() as s:
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.db.read() as s:
            yield s

    # ----- the project itself
    def info(self) -> ProjectRecord:
        with self.db.read() as s:
            row = s.get(ProjectInfo, 1)
            if row is None:
                raise StoreError(f"{self.where} has no project record")
            return ProjectRecord(name=row.name, folder=self.folder, created_at=row.created_at,
                                 app_version=row.app_version, schema_version=schema.head_version(),
                                 location=self.where)

    def rename(self, name: str) -> ProjectRecord:
        if not name or not name.strip():
            raise StoreError("a project name must not be empty")
        with self.db.transaction() as s:
            row = s.get(ProjectInfo, 1)
            assert row is not None
            row.name = name.strip()
        return self.info()

    def module_folder(self, name: str) -> Path:
        """A fresh folder under modules/ for a module's adapter files (created)."""
        path = self.modules_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def integrity_check(self) -> str:
        """"ok" when the database is sound: SQLite's own check of the file; on PostgreSQL (which checks its
        pages and constraints itself) the store's invariant that every annotation has one current version."""
        if not self.is_server:
            with self.db.engine.connect() as conn:
                rows = conn.exec_driver_sql("PRAGMA integrity_check").fetchall()
            return "\n".join(str(r[0]) for r in rows)
        with self.db.read() as s:
            current = (select(AnnotationVersion.annotation_id, func.count().label("n"))
                       .where(AnnotationVersion.is_current.is_(True))
                       .group_by(AnnotationVersion.annotation_id).subquery())
            bad = s.scalars(select(Annotation.id).outerjoin(current, current.c.annotation_id == Annotation.id)
                            .where(func.coalesce(current.c.n, 0) != 1).order_by(Annotation.id).limit(10)).all()
        return "ok" if not bad else f"annotations without exactly one current version: {list(bad)}"

    # ----- what the trainers need
    def examples_for_training(self, types: Iterable[TypeRef]) -> list[Example]:
        """One Example per current gold annotation of ``types``: the label is the type's name, ``group``
        its group, ``meta`` holds sentence_id / annotation_id / type_id. Ids are content hashes (text,
        spans, label), so the same example has the same id in any project and after a re-import."""
        with self.db.read() as s:
            rows = get_types(s, types, live=False)
            ids = [t.id for t in rows]
            if not ids:
                return []
            q = (
                select(AnnotationVersion, Annotation, Sentence)
                .join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
                .join(Sentence, Sentence.id == Annotation.sentence_id)
                .options(joinedload(AnnotationVersion.type))
                .where(AnnotationVersion.is_current.is_(True), AnnotationVersion.status == "gold",
                       AnnotationVersion.type_id.in_(ids))
                .order_by(AnnotationVersion.type_id, Annotation.id)
            )
            out = []
            for v, a, sent in s.execute(q):
                spans = _spans(v, a.kind)
                label = v.type.name
                out.append(Example(
                    text=sent.text, spans=spans, label=label, kind=a.kind,  # type: ignore[arg-type]
                    id=example_id(sent.text, spans, label), source=sent.source, group=v.type.group_name,
                    meta={"sentence_id": sent.id, "annotation_id": a.id, "type_id": v.type_id},
                ))
            return out

    def pending_types(self, min_examples: int = 1, kind: str | None = None) -> list[TypeRecord]:
        """Live types that no task holds yet and that have at least ``min_examples`` gold annotations
        (the candidates for the next task), by id."""
        with self.db.read() as s:
            counts = _gold_counts(s)
            q = select(KnowledgeType).where(KnowledgeType.task_id.is_(None),
                                            KnowledgeType.deleted_at.is_(None)).order_by(KnowledgeType.id)
            if kind is not None:
                q = q.where(KnowledgeType.kind == kind)
            return [type_record(t) for t in s.scalars(q) if counts.get(t.id, 0) >= min_examples]

    def change_token(self) -> dict[str, object]:
        """A cheap summary that changes whenever anyone changes the project: the newest annotation version,
        type edit and sentence, and the runs' latest update (a view polls it to show teammates' work)."""
        with self.db.read() as s:
            return {
                "annotation_version": int(s.scalar(select(func.max(AnnotationVersion.id))) or 0),
                "type_edit": int(s.scalar(select(func.max(TypeEdit.id))) or 0),
                "sentences": int(s.scalar(select(func.max(Sentence.id))) or 0),
                "run": (int(s.scalar(select(func.count(Run.id))) or 0), s.scalar(select(func.max(Run.updated_at)))),
            }

    def counts(self) -> dict[str, int]:
        """Sizes for a status bar: sentences, gold annotations, types, tasks, runs."""
        with self.db.read() as s:
            def n(q: object) -> int:
                return int(s.scalar(q) or 0)  # type: ignore[call-overload]

            return {
                "sentences": n(select(func.count(Sentence.id))),
                "annotations": n(select(func.count(AnnotationVersion.id)).where(
                    AnnotationVersion.is_current.is_(True), AnnotationVersion.status == "gold")),
                "types": n(select(func.count(KnowledgeType.id)).where(KnowledgeType.deleted_at.is_(None))),
                "tasks": n(select(func.count(Task.id))),
                "runs": n(select(func.count(Run.id))),
            }


def _spans(v: AnnotationVersion, kind: str) -> tuple[Span, ...]:
    if kind == "relation" and v.tail_start is not None and v.tail_end is not None:
        return (Span(v.start, v.end), Span(v.tail_start, v.tail_end))
    return (Span(v.start, v.end),)
