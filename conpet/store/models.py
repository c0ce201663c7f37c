"""The project database schema: SQLAlchemy 2 typed ORM models.

These classes are private to ``conpet.store``: repositories turn rows into frozen records
(``conpet.store.records``) before anything leaves a session. The schema is created and changed only by
the Alembic migrations in ``conpet/store/migrations``; a test checks that the migrations produce exactly
these models.

Times are stored as naive UTC (in SQLite and PostgreSQL alike) and read back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Every value a column may hold, as the code spells it; the database stores these strings.
TYPE_KINDS = ("entity", "relation")
ANNOTATION_STATUSES = ("gold", "rejected", "deleted")
RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
MODULE_KINDS = ("selector", "expert", "static")
ARGUMENT_ROLES = ("head", "tail")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; SQLite holds the naive UTC value."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


# Stable constraint names, so that Alembic's batch mode can find and change them on SQLite.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ProjectInfo(Base):
    """One row: the project's name and when it was made."""

    __tablename__ = "project_info"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    app_version: Mapped[str] = mapped_column(String(40))


class SchemaVersion(Base):
    """One row: the schema version the migrations last brought this database to (1, 2, ...)."""

    __tablename__ = "schema_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Task(Base):
    """A step of continual learning: an ordered, disjoint set of knowledge types."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    index: Mapped[int] = mapped_column(Integer, unique=True)  # 1, 2, ... in learning order
    name: Mapped[str] = mapped_column(String(200), default="")
    frozen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    frozen_at: Mapped[datetime | None] = mapped_column(default=None)

    types: Mapped[list[KnowledgeType]] = relationship(back_populates="task", order_by="KnowledgeType.id")


class KnowledgeType(Base):
    """An entity type or relation type the user teaches. Deleting only marks it (annotations keep it)."""

    __tablename__ = "knowledge_types"
    __table_args__ = (
        UniqueConstraint("kind", "name"),
        CheckConstraint(_one_of("kind", TYPE_KINDS), name="kind"),
        Index(
            "uq_knowledge_types_live_shortcut",
            "shortcut",
            unique=True,
            sqlite_where=text("shortcut IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=text("shortcut IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # TYPE_KINDS
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    colour: Mapped[str] = mapped_column(String(16))
    shortcut: Mapped[str | None] = mapped_column(String(32), default=None)
    group_name: Mapped[str | None] = mapped_column(String(200), default=None)  # e.g. Few-NERD coarse type
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # who made the type and who changed it last (schema version 5; every change is in type_edits)
    created_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    edited_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    edited_at: Mapped[datetime | None] = mapped_column(default=None)

    task: Mapped[Task | None] = relationship(back_populates="types")
    # a relation type's allowed head and tail entity types (none for a role: any type)
    arguments: Mapped[list[RelationArgument]] = relationship(
        foreign_keys="RelationArgument.relation_type_id", order_by="RelationArgument.entity_type_id",
        cascade="all, delete-orphan")


class RelationArgument(Base):
    """One entity type a relation type allows as its head (or its tail). Schema version 3."""

    __tablename__ = "relation_arguments"
    __table_args__ = (CheckConstraint(_one_of("role", ARGUMENT_ROLES), name="role"),)

    relation_type_id: Mapped[int] = mapped_column(ForeignKey("knowledge_types.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)  # ARGUMENT_ROLES
    entity_type_id: Mapped[int] = mapped_column(ForeignKey("knowledge_types.id"), primary_key=True, index=True)


class Sentence(Base):
    """A piece of text to annotate; ``content_hash`` (SHA-256 of the text) makes re-imports idempotent."""

    __tablename__ = "sentences"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(500), default="")
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Annotation(Base):
    """The identity of one annotation (an entity mention or a relation); its content lives in versions."""

    __tablename__ = "annotations"
    __table_args__ = (CheckConstraint(_one_of("kind", TYPE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sentence_id: Mapped[int] = mapped_column(ForeignKey("sentences.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # TYPE_KINDS
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[AnnotationVersion]] = relationship(
        back_populates="annotation", order_by="AnnotationVersion.version"
    )


class AnnotationVersion(Base):
    """One version of an annotation. An edit or a deletion adds a version; none is ever overwritten
    except for the ``is_current`` flag, which exactly one version per annotation carries."""

    __tablename__ = "annotation_versions"
    __table_args__ = (
        UniqueConstraint("annotation_id", "version"),
        Index(
            "uq_annotation_versions_current",
            "annotation_id",
            unique=True,
            sqlite_where=text("is_current = 1"),
            postgresql_where=text("is_current"),
        ),
        Index("ix_annotation_versions_current_type", "is_current", "type_id"),
        CheckConstraint(_one_of("status", ANNOTATION_STATUSES), name="status"),
        CheckConstraint('0 <= start AND start < "end"', name="span"),
        CheckConstraint('tail_start IS NULL OR (0 <= tail_start AND tail_start < tail_end)', name="tail"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id"))
    version: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(default=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("knowledge_types.id"))
    # Entity: the mention is [start, end). Relation: head is [start, end), tail [tail_start, tail_end).
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    tail_start: Mapped[int | None] = mapped_column(Integer, default=None)
    tail_end: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16))  # ANNOTATION_STATUSES
    author: Mapped[str] = mapped_column(String(200), default="user")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    annotation: Mapped[Annotation] = relationship(back_populates="versions")
    type: Mapped[KnowledgeType] = relationship()


class Run(Base):
    """A training (or prediction) run, written by its worker thread while the app reads."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), default="train")  # train | predict | evaluate | ...
    method: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), default=None)
    status: Mapped[str] = mapped_column(String(16), index=True)  # RUN_STATUSES
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str] = mapped_column(String(64), default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    backbone: Mapped[str] = mapped_column(String(500), default="")
    backbone_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    metrics: Mapped[list[Any]] = mapped_column(default=list)  # one dict per logged step
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Which process owns a running run, so that a later open can tell a dead owner from a live one.
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    pid_started: Mapped[str | None] = mapped_column(String(40), default=None)
    started_by: Mapped[str] = mapped_column(String(200), default="", server_default="")  # who (version 5)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Module(Base):
    """A trained PET module (selector, expert or static) whose adapter files live in the project folder."""

    __tablename__ = "modules"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(_one_of("kind", MODULE_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))  # the module id used in cache keys, e.g. "expert-3"
    kind: Mapped[str] = mapped_column(String(16))  # MODULE_KINDS
    task_index: Mapped[int | None] = mapped_column(Integer, default=None)
    path: Mapped[str] = mapped_column(String(1000))  # adapter folder, relative to the project folder
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    parameter_count: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """What a run predicted for one mention (entity) or pair (relation) of a sentence, and why."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_sentence_run", "sentence_id", "run_id"),
        CheckConstraint(_one_of("kind", TYPE_KINDS), name="kind"),
        CheckConstraint('0 <= start AND start < "end"', name="span"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    sentence_id: Mapped[int] = mapped_column(ForeignKey("sentences.id"))
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    tail_start: Mapped[int | None] = mapped_column(Integer, default=None)
    tail_end: Mapped[int | None] = mapped_column(Integer, default=None)
    type_id: Mapped[int | None] = mapped_column(ForeignKey("knowledge_types.id"), default=None)
    label: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    selector_scores: Mapped[list[Any] | None] = mapped_column(default=None)
    active_experts: Mapped[list[Any] | None] = mapped_column(default=None)
    expert_scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    module_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    example_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LogitCacheEntry(Base):
    """Logits of a frozen module for one example, float32 little-endian bytes."""

    __tablename__ = "logit_cache"
    __table_args__ = ({"sqlite_with_rowid": False},)

    example_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    module_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    module_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    logits: Mapped[bytes] = mapped_column(LargeBinary)


class Lease(Base):
    """Who holds a project's lease on model-changing work (training, a prediction that writes, a bundle
    import): one row per lease name while held. Schema version 4 (the lease). A holder renews ``expires_at`` by its
    heartbeat; a row whose holder died (same host: its process is gone) or whose expiry passed (another
    host) may be taken over. Plain rows and compare-and-set updates: the same on SQLite and PostgreSQL."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. "model"
    holder: Mapped[str] = mapped_column(String(64))  # a random token per acquisition
    purpose: Mapped[str] = mapped_column(String(32))  # train | predict | import | refresh
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[str | None] = mapped_column(String(40), default=None)
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Blob(Base):
    """File contents addressed by their SHA-256 (each distinct content once). Schema version 5."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredFile(Base):
    """One file of a folder the project keeps in its database (a trained model's folder: adapters, router
    statistics, suggesters), so that any machine with the database can rebuild the folder. Version 5."""

    __tablename__ = "stored_files"

    folder: Mapped[str] = mapped_column(String(500), primary_key=True)  # relative to the project folder
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)  # relative to ``folder``
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TypeEdit(Base):
    """One change to a knowledge type, and who made it (schema version 5)."""

    __tablename__ = "type_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("knowledge_types.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # add, rename, describe, colour, shortcut, group, ...
    detail: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
