"""Plain frozen records that repositories return: never live ORM objects, so the GUI thread and the
workers never share a session. Times are aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from conpet.data.example import Span

Kind = Literal["entity", "relation"]


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    name: str
    folder: Path
    created_at: datetime
    app_version: str
    schema_version: int
    location: str = ""  # the folder, or the server URL without its password


@dataclass(frozen=True, slots=True)
class TypeRecord:
    id: int
    kind: Kind
    name: str
    description: str
    colour: str
    shortcut: str | None
    group: str | None
    task_id: int | None  # the task that introduced the type (None while no task holds it)
    task_index: int | None
    created_at: datetime
    # a relation type's allowed head / tail entity types (ids; empty: any entity type)
    head_type_ids: tuple[int, ...] = ()
    tail_type_ids: tuple[int, ...] = ()
    created_by: str = ""  # who added the type ("" before schema version 4)
    edited_by: str = ""  # who changed it last
    edited_at: datetime | None = None

    def allows(self, role: str, entity_type_id: int | None) -> bool:
        """Whether an argument of this entity type may be the relation's ``role`` ("head" or "tail");
        an argument with no entity label (None) is not restricted."""
        allowed = self.head_type_ids if role == "head" else self.tail_type_ids
        return entity_type_id is None or not allowed or entity_type_id in allowed


@dataclass(frozen=True, slots=True)
class SentenceRecord:
    id: int
    text: str
    source: str
    content_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AnnotationRecord:
    """One version of an annotation. ``id`` is the annotation's identity (stable across edits);
    ``version`` counts from 1; ``status`` is "gold", "rejected" or, for a deletion, "deleted"."""

    id: int
    version: int
    sentence_id: int
    kind: Kind
    type_id: int
    type_name: str
    start: int
    end: int
    tail_start: int | None
    tail_end: int | None
    status: str
    author: str
    created_at: datetime
    is_current: bool = True

    @property
    def spans(self) -> tuple[Span, ...]:
        """(mention,) for an entity, (head, tail) for a relation."""
        if self.kind == "entity" or self.tail_start is None or self.tail_end is None:
            return (Span(self.start, self.end),)
        return (Span(self.start, self.end), Span(self.tail_start, self.tail_end))


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    index: int
    name: str
    frozen: bool
    type_ids: tuple[int, ...]
    type_names: tuple[str, ...]
    created_at: datetime
    frozen_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    purpose: str
    method: str
    task_id: int | None
    status: str  # queued | running | finished | failed | cancelled | interrupted
    progress: float  # 0..1
    message: str
    stage: str
    config: dict[str, Any] = field(hash=False, compare=False)
    backbone: str = ""
    backbone_sha256: str | None = None
    metrics: tuple[dict[str, Any], ...] = field(default=(), hash=False, compare=False)
    log: str = ""
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    started_by: str = ""  # who started the run ("" before schema version 4)

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass(frozen=True, slots=True)
class ModuleRecord:
    id: int
    name: str
    kind: str  # selector | expert | static
    task_index: int | None
    path: str  # adapter folder relative to the project folder (use Project.module_folder for the full path)
    version: int
    sha256: str
    parameter_count: int
    run_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    id: int
    run_id: int
    sentence_id: int
    kind: Kind
    start: int
    end: int
    tail_start: int | None
    tail_end: int | None
    type_id: int | None
    label: str
    score: float
    selector_scores: tuple[float, ...] | None
    active_experts: tuple[int, ...] | None
    expert_scores: dict[str, float] = field(hash=False, compare=False)
    module_versions: dict[str, int] = field(hash=False, compare=False)
    example_id: str = ""
    created_at: datetime | None = None

    @property
    def spans(self) -> tuple[Span, ...]:
        if self.kind == "entity" or self.tail_start is None or self.tail_end is None:
            return (Span(self.start, self.end),)
        return (Span(self.start, self.end), Span(self.tail_start, self.tail_end))


@dataclass(frozen=True, slots=True)
class NewPrediction:
    """Input to ``PredictionRepository.add_many``."""

    sentence_id: int
    spans: tuple[Span, ...]
    label: str
    score: float
    selector_scores: tuple[float, ...] | list[float] | None = None
    active_experts: tuple[int, ...] | list[int] | None = None
    expert_scores: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    module_versions: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    example_id: str = ""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What ``import_file`` did.

    ``duplicates_skipped``: annotations already in the project (or repeated in the file), plus
    annotation-less sentences that were already there. ``conflicts_skipped``: entity annotations left
    out because they overlap a gold mention already in the project or earlier in the file (real data
    sets repeat sentences with different tags; the first one wins), or contradict a rejection."""

    path: str
    format: str
    added_sentences: int
    added_annotations: int
    duplicates_skipped: int
    types_created: int
    seconds: float
    conflicts_skipped: int = 0
    sentences_in_file: int = 0


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A held lease: who (token, process, host) does what since when, renewed until ``expires_at``."""

    name: str
    holder: str
    purpose: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """E.g. "a training (process 4242 on host lab-3, since 03:40:12 UTC)"."""
        what = {"train": "a training", "predict": "a prediction", "import": "a bundle import",
                "refresh": "a refresh", "housekeeping": "a clean-up of unused model folders"}.get(self.purpose, self.purpose)
        return f"{what} (process {self.pid} on host {self.host}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC)"
