"""A relation type's allowed head and tail entity types, and the checks that keep gold labels within them.

A relation's head (tail) has the entity type of the current gold entity mention on exactly its span; an
argument with no entity label there is not restricted (imported relation data often has untyped
arguments). The rule holds at every write that could break it: adding or editing a relation, typing or
retyping a mention that a relation uses, and narrowing a relation type's lists (refused while gold
relations fall outside them). Deleting an entity type removes it from every list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from conpet.data.example import Span
from conpet.store.errors import InvalidAnnotationError, StoreError
from conpet.store.models import ARGUMENT_ROLES, Annotation, AnnotationVersion, KnowledgeType, RelationArgument

_SHOWN = 3  # offending relations named in a refusal


def allowed_ids(t: KnowledgeType, role: str) -> set[int]:
    return {a.entity_type_id for a in t.arguments if a.role == role}


def names_of(s: Session, ids: Iterable[int]) -> str:
    """ "Person or City" (sorted), for messages."""
    names = sorted(t.name for t in s.scalars(select(KnowledgeType).where(KnowledgeType.id.in_(list(ids)))))
    return " or ".join(names) if names else "any type"


def replace_arguments(s: Session, t: KnowledgeType, role: str, entity_types: Sequence[KnowledgeType]) -> None:
    """Make ``entity_types`` the allowed ``role`` types of relation type ``t`` (empty: any)."""
    if role not in ARGUMENT_ROLES:
        raise StoreError(f"a relation argument is the 'head' or the 'tail', not {role!r}")
    if t.kind != "relation":
        raise StoreError(f"only a relation type restricts its head and tail; {t.name!r} is an entity type")
    for e in entity_types:
        if e.kind != "entity":
            raise StoreError(f"a relation's {role} is an entity, and {e.name!r} is a relation type")
        if e.deleted_at is not None:
            raise StoreError(f"entity type {e.name!r} was deleted")
    ids = {e.id for e in entity_types}
    t.arguments[:] = [a for a in t.arguments if a.role != role or a.entity_type_id in ids]
    have = allowed_ids(t, role)
    t.arguments.extend(RelationArgument(relation_type_id=t.id, role=role, entity_type_id=i)
                       for i in sorted(ids - have))
    s.flush()


def forget_entity_type(s: Session, entity_type_id: int) -> None:
    """A deleted entity type leaves every relation type's lists."""
    rows = s.scalars(select(RelationArgument).where(RelationArgument.entity_type_id == entity_type_id)).all()
    for r in rows:
        s.delete(r)
    s.flush()
    for relation_id in {r.relation_type_id for r in rows}:
        relation = s.get(KnowledgeType, relation_id)
        if relation is not None:
            s.expire(relation, ["arguments"])  # its loaded list still holds the deleted rows


def entity_type_at(s: Session, sentence_id: int, span: Span, *, exclude: int | None = None) -> KnowledgeType | None:
    """The type of the current gold entity mention on exactly ``span`` (None: no typed mention there)."""
    q = (select(AnnotationVersion).join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
         .options(joinedload(AnnotationVersion.type))
         .where(Annotation.sentence_id == sentence_id, Annotation.kind == "entity",
                AnnotationVersion.is_current.is_(True), AnnotationVersion.status == "gold",
                AnnotationVersion.start == span.start, AnnotationVersion.end == span.end))
    if exclude is not None:
        q = q.where(Annotation.id != exclude)
    v = s.scalars(q).first()
    return v.type if v is not None else None


def _refusal(text: str, relation: KnowledgeType, role: str, span: Span, entity: KnowledgeType,
             allowed: set[int], s: Session) -> str:
    return (f"{relation.name!r} takes a {role} of type {names_of(s, allowed)}, and the {role} "
            f"{text[span.start:span.end]!r} is {entity.name!r}")


def relation_problem(s: Session, sentence_id: int, text: str, relation: KnowledgeType,
                     spans: Sequence[Span]) -> None:
    """Refuse (InvalidAnnotationError) a gold relation whose head or tail mention has a type ``relation``
    does not allow."""
    for role, span in zip(ARGUMENT_ROLES, spans, strict=False):
        allowed = allowed_ids(relation, role)
        if not allowed:
            continue
        entity = entity_type_at(s, sentence_id, span)
        if entity is not None and entity.id not in allowed:
            raise InvalidAnnotationError(_refusal(text, relation, role, span, entity, allowed, s)
                                         + "; mark another pair, or allow that type in the Types view")


def mention_problem(s: Session, sentence_id: int, text: str, span: Span, entity: KnowledgeType, *,
                    exclude_annotation: int | None = None) -> None:
    """Refuse (InvalidAnnotationError) typing the mention on ``span`` as ``entity`` when a gold relation
    that uses the span as its head or tail does not allow that type."""
    if entity_type_at(s, sentence_id, span, exclude=exclude_annotation) is not None:
        return  # another gold mention types this span (the overlap check refuses this one anyway)
    q = (select(AnnotationVersion).join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
         .options(joinedload(AnnotationVersion.type).selectinload(KnowledgeType.arguments))
         .where(Annotation.sentence_id == sentence_id, Annotation.kind == "relation",
                AnnotationVersion.is_current.is_(True), AnnotationVersion.status == "gold"))
    for v in s.scalars(q):
        for role, (start, end) in (("head", (v.start, v.end)), ("tail", (v.tail_start, v.tail_end))):
            allowed = allowed_ids(v.type, role)
            if (start, end) == (span.start, span.end) and allowed and entity.id not in allowed:
                raise InvalidAnnotationError(
                    f"the mention {text[span.start:span.end]!r} is the {role} of a {v.type.name!r} relation, "
                    f"which takes a {role} of type {names_of(s, allowed)}, not {entity.name!r}; delete the "
                    "relation first, or allow the type in the Types view")


def narrowing_problem(s: Session, relation: KnowledgeType, role: str, allowed: set[int]) -> None:
    """Refuse (StoreError) lists that gold relations of this type already fall outside of."""
    if not allowed:
        return
    q = (select(AnnotationVersion).join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
         .options(joinedload(AnnotationVersion.annotation))
         .where(AnnotationVersion.type_id == relation.id, AnnotationVersion.is_current.is_(True),
                AnnotationVersion.status == "gold").order_by(Annotation.sentence_id))
    bad: list[str] = []
    for v in s.scalars(q):
        span = Span(v.start, v.end) if role == "head" else Span(v.tail_start or 0, v.tail_end or 0)
        entity = entity_type_at(s, v.annotation.sentence_id, span)
        if entity is not None and entity.id not in allowed:
            bad.append(f"sentence {v.annotation.sentence_id} ({entity.name!r})")
    if bad:
        more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise StoreError(
            f"cannot restrict the {role} of {relation.name!r} to {names_of(s, allowed)}: {len(bad)} gold "
            f"relation(s) have a {role} of another type: {', '.join(bad[:_SHOWN])}{more}. Relabel or delete "
            "them first, or allow those types too")
