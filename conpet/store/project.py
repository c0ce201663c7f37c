"""A project: one folder holding ``project.sqlite`` (the single source of truth) and ``modules/``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from conpet import __version__
from conpet.data.example import Example, Span, example_id
from conpet.store import schema
from conpet.store.cache import ProjectLogitCache
from conpet.store.db import Database, mapped_errors
from conpet.store.errors import NotAProjectError, StoreError
from conpet.store.models import (
    Annotation,
    AnnotationVersion,
    KnowledgeType,
    ProjectInfo,
    Run,
    Sentence,
    Task,
)
from conpet.store.records import ProjectRecord, TypeRecord
from conpet.store.repositories import (
    AnnotationRepository,
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

DB_NAME = "project.sqlite"
MODULES_DIR = "modules"


class Project:
    """Open with ``Project.open(folder)`` / ``Project.create(folder, name=...)``; share it freely between
    threads (every repository call uses its own session). Close it when done (or use ``with``)."""

    def __init__(self, folder: Path, upgrade: schema.UpgradeResult | None = None) -> None:
        self.folder = folder.resolve()
        self.db_path = self.folder / DB_NAME
        self.modules_dir = self.folder / MODULES_DIR
        self.upgrade = upgrade  # what opening did to an older schema (backup path and versions)
        self.db = Database(self.db_path)
        self.types = TypeRepository(self.db)
        self.sentences = SentenceRepository(self.db)
        self.annotations = AnnotationRepository(self.db)
        self.tasks = TaskRepository(self.db)
        self.runs = RunRepository(self.db)
        self.modules = ModuleRepository(self.db, self.folder)
        self.predictions = PredictionRepository(self.db)
        self.logit_cache = ProjectLogitCache(self.db)
        self.leases = LeaseRepository(self.db)
        self.interrupted_runs: tuple[int, ...] = ()

    # ----- opening
    @classmethod
    def create(cls, folder: str | Path, *, name: str | None = None) -> Project:
        """A new project in ``folder`` (created if needed; refused if it already holds a project)."""
        folder = Path(folder)
        db_path = folder / DB_NAME
        if db_path.exists():
            raise StoreError(f"{folder} already holds a project ({DB_NAME}); open it instead")
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} is a file, not a folder")
        with mapped_errors(db_path):  # a read-only folder or a full disk: one message, no traceback
            cls._create_file(folder, db_path, name)
        return cls._opened(folder, None)

    @staticmethod
    def _create_file(folder: Path, db_path: Path, name: str | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MODULES_DIR).mkdir(exist_ok=True)
        tmp = folder / f".{DB_NAME}.creating-{os.getpid()}"
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)
        try:
            schema.upgrade(tmp)
            first = Database(tmp)
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
    def open(cls, folder: str | Path) -> Project:
        """Open an existing project. An older schema is backed up and upgraded; a newer one is refused
        (SchemaTooNewError); runs left running by a dead process are marked 'interrupted'."""
        folder = Path(folder)
        db_path = folder / DB_NAME
        if not db_path.is_file():
            raise NotAProjectError(f"{folder} is not a ConPET project (no {DB_NAME} in it)")
        with mapped_errors(db_path):
            result = schema.ensure_current(db_path)
            (folder / MODULES_DIR).mkdir(exist_ok=True)
            return cls._opened(folder, result if result.backup else None)

    @classmethod
    def open_or_create(cls, folder: str | Path, *, name: str | None = None) -> Project:
        folder = Path(folder)
        if (folder / DB_NAME).exists():
            return cls.open(folder)
        return cls.create(folder, name=name)

    @classmethod
    def _opened(cls, folder: Path, upgrade: schema.UpgradeResult | None) -> Project:
        project = cls(folder, upgrade)
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
                raise StoreError(f"{self.db_path} has no project record")
            return ProjectRecord(name=row.name, folder=self.folder, created_at=row.created_at,
                                 app_version=row.app_version, schema_version=schema.head_version())

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
        """SQLite's own check: "ok" when the file is sound."""
        with self.db.engine.connect() as conn:
            rows = conn.exec_driver_sql("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

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
