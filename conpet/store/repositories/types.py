"""Knowledge types: the entity and relation types a user teaches."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from conpet.store.errors import StoreError, TypeInUseError
from conpet.store.models import TYPE_KINDS, Annotation, AnnotationVersion, KnowledgeType, TypeEdit, utcnow
from conpet.store.records import TypeRecord
from conpet.store.repositories._common import TypeRef, get_type, type_record
from conpet.store.repositories.arguments import forget_entity_type, narrowing_problem, replace_arguments

if TYPE_CHECKING:
    from conpet.store.db import Database

# Distinct on light and dark backgrounds; cycled when a type is added without a colour.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#17becf",
)
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_NAME = 200


def _clean_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StoreError("a type name must not be empty")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise StoreError(f"a type name has at most {MAX_NAME} characters (got {len(name)})")
    return name


def _check_colour(colour: str) -> str:
    if not isinstance(colour, str) or not _COLOUR.match(colour):
        raise StoreError(f"colour {colour!r} is not of the form #rrggbb")
    return colour.lower()


class TypeRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ----- reading
    def list(self, kind: str | None = None, *, include_deleted: bool = False) -> list[TypeRecord]:
        with self._db.read() as s:
            q = (select(KnowledgeType).options(selectinload(KnowledgeType.task), selectinload(KnowledgeType.arguments))
                 .order_by(KnowledgeType.id))
            if kind is not None:
                q = q.where(KnowledgeType.kind == kind)
            if not include_deleted:
                q = q.where(KnowledgeType.deleted_at.is_(None))
            return [type_record(t) for t in s.scalars(q)]

    def get(self, ref: TypeRef) -> TypeRecord:
        with self._db.read() as s:
            return type_record(get_type(s, ref, live=False))

    def find(self, name: str, kind: str | None = None) -> TypeRecord | None:
        """The live type called ``name`` (of ``kind``, when given), or None."""
        with self._db.read() as s:
            q = select(KnowledgeType).where(KnowledgeType.name == name, KnowledgeType.deleted_at.is_(None))
            if kind is not None:
                q = q.where(KnowledgeType.kind == kind)
            rows = s.scalars(q).all()
            return type_record(rows[0]) if len(rows) == 1 else None

    def gold_counts(self) -> dict[int, int]:
        """Type id → number of current gold annotations."""
        with self._db.read() as s:
            return _gold_counts(s)

    # ----- writing (each call is one transaction)
    def add(self, name: str, kind: str = "entity", *, description: str = "", colour: str | None = None,
            shortcut: str | None = None, group: str | None = None, author: str | None = None) -> TypeRecord:
        """A new type. Re-adding the name of a deleted type of the same kind brings that type back."""
        with self._db.transaction() as s:
            return type_record(add_type(s, name, kind, description=description, colour=colour,
                                        shortcut=shortcut, group=group, author=author or self._db.user))

    def edits(self, ref: TypeRef) -> list[tuple[str, str, str, datetime]]:
        """Every change to the type, oldest first: (action, detail, author, when)."""
        with self._db.read() as s:
            t = get_type(s, ref, live=False)
            rows = s.execute(select(TypeEdit.action, TypeEdit.detail, TypeEdit.author, TypeEdit.created_at)
                             .where(TypeEdit.type_id == t.id).order_by(TypeEdit.id))
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def rename(self, ref: TypeRef, new_name: str, *, author: str | None = None) -> TypeRecord:
        with self._db.transaction() as s:
            t = get_type(s, ref)
            new_name = _clean_name(new_name)
            if new_name != t.name:
                clash = s.scalar(select(KnowledgeType).where(
                    KnowledgeType.kind == t.kind, KnowledgeType.name == new_name))
                if clash is not None:
                    state = " (a deleted type)" if clash.deleted_at is not None else ""
                    raise StoreError(f"cannot rename {t.name!r}: another {t.kind} type is called "
                                     f"{new_name!r}{state}")
                record_edit(s, t, "rename", f"{t.name} -> {new_name}", author or self._db.user)
                t.name = new_name
            return type_record(t)

    def describe(self, ref: TypeRef, description: str, *, author: str | None = None) -> TypeRecord:
        with self._db.transaction() as s:
            t = get_type(s, ref)
            t.description = description or ""
            record_edit(s, t, "describe", t.description, author or self._db.user)
            return type_record(t)

    def set_colour(self, ref: TypeRef, colour: str, *, author: str | None = None) -> TypeRecord:
        with self._db.transaction() as s:
            t = get_type(s, ref)
            t.colour = _check_colour(colour)
            record_edit(s, t, "colour", t.colour, author or self._db.user)
            return type_record(t)

    def set_shortcut(self, ref: TypeRef, shortcut: str | None, *, author: str | None = None) -> TypeRecord:
        """A keyboard shortcut (e.g. "1" or "Ctrl+P"), unique among live types; None removes it."""
        with self._db.transaction() as s:
            t = get_type(s, ref)
            t.shortcut = _check_shortcut(s, shortcut, exclude=t.id)
            record_edit(s, t, "shortcut", t.shortcut or '', author or self._db.user)
            return type_record(t)

    def set_group(self, ref: TypeRef, group: str | None, *, author: str | None = None) -> TypeRecord:
        with self._db.transaction() as s:
            t = get_type(s, ref)
            t.group_name = group or None
            record_edit(s, t, "group", t.group_name or '', author or self._db.user)
            return type_record(t)

    def set_arguments(self, ref: TypeRef, *, head: Iterable[TypeRef] | None = None,
                      tail: Iterable[TypeRef] | None = None, author: str | None = None) -> TypeRecord:
        """Restrict relation type ``ref``'s head and/or tail to these entity types (empty: any; None:
        unchanged). Refused while gold relations of the type have an argument of another type."""
        with self._db.transaction() as s:
            t = get_type(s, ref, kind="relation")
            for role, refs in (("head", head), ("tail", tail)):
                if refs is None:
                    continue
                entity_types = list({e.id: e for e in (get_type(s, r, kind="entity") for r in refs)}.values())
                narrowing_problem(s, t, role, {e.id for e in entity_types})
                replace_arguments(s, t, role, entity_types)
                record_edit(s, t, "arguments", f"{role}: {', '.join(sorted(e.name for e in entity_types)) or 'any'}",
                            author or self._db.user)
            return type_record(t)

    def delete(self, ref: TypeRef, *, author: str | None = None) -> None:
        """Delete a type that no task uses. Its current annotations get a 'deleted' version (history
        stays); the type is only marked deleted, so old versions and predictions keep their label."""
        with self._db.transaction() as s:
            t = get_type(s, ref)
            if t.task_id is not None:
                raise TypeInUseError(
                    f"cannot delete {t.kind} type {t.name!r}: task {t.task.index if t.task else t.task_id} "
                    "uses it, and the modules trained for that task predict it. Rename it instead, or "
                    "start a new project without it."
                )
            now = utcnow()
            author = author or self._db.user
            record_edit(s, t, "delete", "", author)
            current = s.scalars(
                select(AnnotationVersion).where(AnnotationVersion.is_current.is_(True),
                                                AnnotationVersion.type_id == t.id,
                                                AnnotationVersion.status != "deleted")
            ).all()
            for v in current:
                v.is_current = False
                s.flush()
                s.add(AnnotationVersion(
                    annotation_id=v.annotation_id, version=v.version + 1, is_current=True, type_id=v.type_id,
                    start=v.start, end=v.end, tail_start=v.tail_start, tail_end=v.tail_end,
                    status="deleted", author=author, created_at=now,
                ))
            t.deleted_at = now
            t.shortcut = None
            if t.kind == "entity":
                forget_entity_type(s, t.id)


def _check_shortcut(s: Session, shortcut: str | None, *, exclude: int | None = None) -> str | None:
    if shortcut is None or shortcut == "":
        return None
    if not isinstance(shortcut, str) or len(shortcut) > 32 or not shortcut.strip():
        raise StoreError(f"shortcut {shortcut!r} is not a key sequence (1 to 32 characters)")
    q = select(KnowledgeType).where(KnowledgeType.shortcut == shortcut, KnowledgeType.deleted_at.is_(None))
    if exclude is not None:
        q = q.where(KnowledgeType.id != exclude)
    other = s.scalar(q)
    if other is not None:
        raise StoreError(f"shortcut {shortcut!r} is already used by type {other.name!r}")
    return shortcut


def record_edit(s: Session, t: KnowledgeType, action: str, detail: str, author: str) -> None:
    """Who changed the type, and how: the type's ``edited_by`` and a row of ``type_edits``."""
    t.edited_by, t.edited_at = author, utcnow()
    if action == "add" and not t.created_by:
        t.created_by = author
    s.flush()  # a new type has its id before the log row names it
    s.add(TypeEdit(type_id=t.id, action=action, detail=detail, author=author))


def add_type(s: Session, name: str, kind: str, *, description: str = "", colour: str | None = None,
             shortcut: str | None = None, group: str | None = None, author: str = "") -> KnowledgeType:
    name = _clean_name(name)
    if kind not in TYPE_KINDS:
        raise StoreError(f"a type's kind is 'entity' or 'relation', not {kind!r}")
    existing = s.scalar(select(KnowledgeType).where(KnowledgeType.kind == kind, KnowledgeType.name == name))
    if existing is not None and existing.deleted_at is None:
        raise StoreError(f"there is already {'an' if kind[:1] in 'aeiou' else 'a'} {kind} type called {name!r}")
    shortcut = _check_shortcut(s, shortcut, exclude=existing.id if existing else None)
    if colour is None:
        n = s.scalar(select(func.count()).select_from(KnowledgeType)) or 0
        colour = PALETTE[n % len(PALETTE)]
    colour = _check_colour(colour)
    if existing is not None:  # bring a deleted type back; its old annotations stay deleted
        existing.deleted_at = None
        existing.description = description or existing.description
        existing.colour = colour
        existing.shortcut = shortcut
        existing.group_name = group if group is not None else existing.group_name
        record_edit(s, existing, "restore", "", author)
        return existing
    t = KnowledgeType(kind=kind, name=name, description=description or "", colour=colour,
                      shortcut=shortcut, group_name=group or None, created_by=author)
    s.add(t)
    record_edit(s, t, "add", kind, author)
    return t


def _gold_counts(s: Session) -> dict[int, int]:
    rows = s.execute(
        select(AnnotationVersion.type_id, func.count())
        .join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
        .where(AnnotationVersion.is_current.is_(True), AnnotationVersion.status == "gold")
        .group_by(AnnotationVersion.type_id)
    ).all()
    return {int(tid): int(n) for tid, n in rows}
