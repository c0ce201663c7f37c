"""Helpers the repositories share: row → record conversion and type look-up."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from conpet.store.errors import NotFoundError, StoreError
from conpet.store.models import AnnotationVersion, KnowledgeType, Sentence
from conpet.store.records import AnnotationRecord, SentenceRecord, TypeRecord

TypeRef = int | str | TypeRecord
"""A knowledge type by id, by name (unique unless an entity and a relation type share it), or record."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def type_record(t: KnowledgeType) -> TypeRecord:
    return TypeRecord(
        id=t.id, kind=t.kind,  # type: ignore[arg-type]
        name=t.name, description=t.description, colour=t.colour, shortcut=t.shortcut,
        group=t.group_name, task_id=t.task_id, task_index=t.task.index if t.task is not None else None,
        created_at=t.created_at, created_by=t.created_by, edited_by=t.edited_by, edited_at=t.edited_at,
        head_type_ids=tuple(a.entity_type_id for a in t.arguments if a.role == "head"),
        tail_type_ids=tuple(a.entity_type_id for a in t.arguments if a.role == "tail"),
    )


def sentence_record(s: Sentence) -> SentenceRecord:
    return SentenceRecord(id=s.id, text=s.text, source=s.source, content_hash=s.content_hash,
                          created_at=s.created_at)


def annotation_record(v: AnnotationVersion) -> AnnotationRecord:
    a = v.annotation
    return AnnotationRecord(
        id=a.id, version=v.version, sentence_id=a.sentence_id, kind=a.kind,  # type: ignore[arg-type]
        type_id=v.type_id, type_name=v.type.name, start=v.start, end=v.end,
        tail_start=v.tail_start, tail_end=v.tail_end, status=v.status, author=v.author,
        created_at=v.created_at, is_current=v.is_current,
    )


def get_type(s: Session, ref: TypeRef, *, kind: str | None = None, live: bool = True) -> KnowledgeType:
    """The type row for ``ref``; NotFoundError (or StoreError when ambiguous) with a clear message."""
    if isinstance(ref, TypeRecord):
        ref = ref.id
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise StoreError(f"a knowledge type is given by id, name or record, not {ref!r}")
    if isinstance(ref, int):
        t = s.get(KnowledgeType, ref)
        if t is None:
            raise NotFoundError(f"there is no knowledge type with id {ref}")
    else:
        rows = s.scalars(select(KnowledgeType).where(KnowledgeType.name == ref)).all()
        if kind is not None and rows and not any(r.kind == kind for r in rows):
            article = {"entity": "an entity", "relation": "a relation"}
            raise StoreError(f"type {ref!r} is {article.get(rows[0].kind, rows[0].kind)} type, "
                             f"not {article.get(kind, kind)} type")
        if kind is not None:
            rows = [r for r in rows if r.kind == kind]
        if not rows:
            raise NotFoundError(f"unknown type {ref!r}")
        if len(rows) > 1:
            raise StoreError(f"type name {ref!r} is both an entity and a relation type; give its id")
        t = rows[0]
    if live and t.deleted_at is not None:
        raise NotFoundError(f"type {t.name!r} was deleted")
    return t


def get_types(s: Session, refs: Iterable[TypeRef], *, live: bool = True) -> list[KnowledgeType]:
    out: list[KnowledgeType] = []
    seen: set[int] = set()
    for ref in refs:
        t = get_type(s, ref, live=live)
        if t.id not in seen:
            seen.add(t.id)
            out.append(t)
    return out
