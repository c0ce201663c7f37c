"""Annotations with their history: an edit or a deletion adds a version and never overwrites one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from conpet.data.example import Span
from conpet.store.errors import InvalidAnnotationError, NotFoundError, StaleSentenceError, StoreError
from conpet.store.models import Annotation, AnnotationVersion, KnowledgeType, Prediction, Sentence, utcnow
from conpet.store.records import AnnotationRecord
from conpet.store.repositories._common import TypeRef, annotation_record, get_type
from conpet.store.repositories.arguments import mention_problem, relation_problem

if TYPE_CHECKING:
    from conpet.store.db import Database

LIVE_STATUSES = ("gold", "rejected")
SpanLike = Span | tuple[int, int]


def _span(value: SpanLike, what: str) -> Span:
    if isinstance(value, Span):
        return value
    try:
        start, end = value
        return Span(int(start), int(end))
    except (TypeError, ValueError) as exc:
        raise InvalidAnnotationError(f"{what} must be a (start, end) pair, not {value!r}") from exc


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _quote(text: str, span: Span) -> str:
    piece = text[span.start:span.end]
    return repr(piece if len(piece) <= 40 else piece[:37] + "...")


def _current_q():
    return (
        select(AnnotationVersion)
        .join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
        .options(joinedload(AnnotationVersion.annotation), joinedload(AnnotationVersion.type))
        .where(AnnotationVersion.is_current.is_(True))
    )


def validate(s: Session, sentence: Sentence, kind: str, spans: Sequence[Span], type_: KnowledgeType,
             status: str, *, exclude_annotation: int | None = None) -> None:
    """Raise InvalidAnnotationError unless the annotation fits its sentence."""
    n = len(sentence.text)
    if type_.kind != kind:
        raise InvalidAnnotationError(f"type {type_.name!r} is {_a(type_.kind)} type, not {_a(kind)} type")
    if status not in LIVE_STATUSES:
        raise InvalidAnnotationError(f"an annotation's status is 'gold' or 'rejected', not {status!r}")
    for label, sp in zip(("mention" if kind == "entity" else "head", "tail"), spans, strict=False):
        if sp.start >= sp.end:
            raise InvalidAnnotationError(f"the {label} span {sp.start}:{sp.end} is empty")
        if sp.start < 0 or sp.end > n:
            raise InvalidAnnotationError(
                f"the {label} span {sp.start}:{sp.end} is outside sentence {sentence.id} (length {n})")
        if not sentence.text[sp.start:sp.end].strip():
            raise InvalidAnnotationError(f"the {label} span {sp.start}:{sp.end} holds only white space")
    if kind == "relation" and spans[0].overlaps(spans[1]):
        raise InvalidAnnotationError(
            f"a relation's head {_quote(sentence.text, spans[0])} and tail {_quote(sentence.text, spans[1])} "
            "must be different, non-overlapping spans")
    if status != "gold":
        return
    if kind == "relation":
        q = _current_q().where(Annotation.sentence_id == sentence.id, Annotation.kind == "relation",
                               AnnotationVersion.status == "gold", AnnotationVersion.type_id == type_.id,
                               AnnotationVersion.start == spans[0].start, AnnotationVersion.end == spans[0].end,
                               AnnotationVersion.tail_start == spans[1].start,
                               AnnotationVersion.tail_end == spans[1].end)
        if exclude_annotation is not None:
            q = q.where(Annotation.id != exclude_annotation)
        if s.scalars(q).first() is not None:
            raise InvalidAnnotationError(
                f"sentence {sentence.id} already has this {type_.name!r} relation between "
                f"{_quote(sentence.text, spans[0])} and {_quote(sentence.text, spans[1])}")
        relation_problem(s, sentence.id, sentence.text, type_, spans)
        return
    mention = spans[0]
    q = _current_q().where(Annotation.sentence_id == sentence.id, Annotation.kind == "entity",
                           AnnotationVersion.status == "gold",
                           AnnotationVersion.start < mention.end, AnnotationVersion.end > mention.start)
    if exclude_annotation is not None:
        q = q.where(Annotation.id != exclude_annotation)
    other = s.scalars(q).first()
    if other is not None:
        o = Span(other.start, other.end)
        raise InvalidAnnotationError(
            f"the mention {_quote(sentence.text, mention)} ({mention.start}:{mention.end}) overlaps the "
            f"{other.type.name!r} mention {_quote(sentence.text, o)} ({o.start}:{o.end}) in sentence "
            f"{sentence.id}; edit or delete that one first"
        )
    mention_problem(s, sentence.id, sentence.text, mention, type_, exclude_annotation=exclude_annotation)


def add_annotation(s: Session, sentence_id: int, kind: str, spans: Sequence[Span], type_ref: TypeRef, *,
                   status: str = "gold", author: str = "user") -> AnnotationVersion:
    sentence = s.get(Sentence, sentence_id)
    if sentence is None:
        raise NotFoundError(f"there is no sentence with id {sentence_id}")
    type_ = get_type(s, type_ref, kind=kind)
    validate(s, sentence, kind, spans, type_, status)
    a = Annotation(sentence_id=sentence_id, kind=kind)
    s.add(a)
    s.flush()
    v = AnnotationVersion(
        annotation_id=a.id, version=1, is_current=True, type_id=type_.id,
        start=spans[0].start, end=spans[0].end,
        tail_start=spans[1].start if kind == "relation" else None,
        tail_end=spans[1].end if kind == "relation" else None,
        status=status, author=author, created_at=a.created_at,
    )
    v.annotation = a
    v.type = type_
    s.add(v)
    s.flush()
    return v


def _current_version(s: Session, annotation_id: int) -> AnnotationVersion:
    v = s.scalars(_current_q().where(AnnotationVersion.annotation_id == annotation_id)).first()
    if v is None:
        raise NotFoundError(f"there is no annotation with id {annotation_id}")
    return v


def new_version(s: Session, old: AnnotationVersion, *, type_: KnowledgeType | None = None,
                spans: Sequence[Span] | None = None, status: str | None = None,
                author: str = "user") -> AnnotationVersion:
    """Retire ``old`` and add its successor (the only place where a version row changes: its flag)."""
    s.execute(update(AnnotationVersion).where(AnnotationVersion.id == old.id).values(is_current=False))
    old.is_current = False
    spans = list(spans) if spans is not None else list(_version_spans(old, old.annotation.kind))
    is_rel = old.annotation.kind == "relation"
    v = AnnotationVersion(
        annotation_id=old.annotation_id, version=old.version + 1, is_current=True,
        type_id=(type_ or old.type).id, start=spans[0].start, end=spans[0].end,
        tail_start=spans[1].start if is_rel else None, tail_end=spans[1].end if is_rel else None,
        status=status or old.status, author=author, created_at=utcnow(),
    )
    v.annotation = old.annotation
    v.type = type_ or old.type
    s.add(v)
    s.flush()
    return v


def _version_spans(v: AnnotationVersion, kind: str) -> tuple[Span, ...]:
    if kind == "relation" and v.tail_start is not None and v.tail_end is not None:
        return (Span(v.start, v.end), Span(v.tail_start, v.tail_end))
    return (Span(v.start, v.end),)


def sentence_revision(s: Session, sentence_id: int) -> int:
    """The newest annotation version id of the sentence: versions only ever get added, with growing ids."""
    q = (select(func.max(AnnotationVersion.id))
         .join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
         .where(Annotation.sentence_id == sentence_id))
    return int(s.scalar(q) or 0)


def check_fresh(s: Session, sentence_id: int, expected: int | None) -> None:
    """Refuse a write to a sentence changed since the writer read revision ``expected`` (None: no check).
    Runs inside the write transaction, which holds the database's write lock, so the check and the write
    cannot be split by another writer."""
    if expected is None:
        return
    now = sentence_revision(s, sentence_id)
    if now == int(expected):
        return
    latest = s.get(AnnotationVersion, now)
    who = latest.author if latest is not None else "someone"
    when = f" at {latest.created_at:%H:%M:%S}" if latest is not None else ""
    raise StaleSentenceError(
        f"sentence {sentence_id} was changed by {who}{when} since you loaded it: your change was not saved; "
        "the sentence has been reloaded, check it and try again",
        sentence_id=sentence_id, author=who, revision=now)


class AnnotationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ----- reading
    def get(self, annotation_id: int) -> AnnotationRecord:
        """The current version (status 'deleted' when the annotation was deleted)."""
        with self._db.read() as s:
            return annotation_record(_current_version(s, annotation_id))

    def history(self, annotation_id: int) -> list[AnnotationRecord]:
        """Every version, oldest first."""
        with self._db.read() as s:
            rows = s.scalars(
                select(AnnotationVersion)
                .options(joinedload(AnnotationVersion.annotation), joinedload(AnnotationVersion.type))
                .where(AnnotationVersion.annotation_id == annotation_id)
                .order_by(AnnotationVersion.version)
            ).all()
            if not rows:
                raise NotFoundError(f"there is no annotation with id {annotation_id}")
            return [annotation_record(v) for v in rows]

    def for_sentence(self, sentence_id: int, *, statuses: Sequence[str] = LIVE_STATUSES) -> list[AnnotationRecord]:
        """Current annotations of a sentence (gold and rejected by default), by position."""
        with self._db.read() as s:
            q = (_current_q().where(Annotation.sentence_id == sentence_id,
                                    AnnotationVersion.status.in_(list(statuses)))
                 .order_by(AnnotationVersion.start, AnnotationVersion.end, Annotation.id))
            return [annotation_record(v) for v in s.scalars(q)]

    def for_sentences(self, sentence_ids: Sequence[int], *,
                      statuses: Sequence[str] = LIVE_STATUSES) -> dict[int, list[AnnotationRecord]]:
        with self._db.read() as s:
            out: dict[int, list[AnnotationRecord]] = {i: [] for i in sentence_ids}
            q = (_current_q().where(Annotation.sentence_id.in_(list(sentence_ids)),
                                    AnnotationVersion.status.in_(list(statuses)))
                 .order_by(AnnotationVersion.start, AnnotationVersion.end, Annotation.id))
            for v in s.scalars(q):
                out.setdefault(v.annotation.sentence_id, []).append(annotation_record(v))
            return out

    def count(self, *, type: TypeRef | None = None, status: str = "gold") -> int:
        with self._db.read() as s:
            q = select(func.count(AnnotationVersion.id)).where(AnnotationVersion.is_current.is_(True),
                                                               AnnotationVersion.status == status)
            if type is not None:
                q = q.where(AnnotationVersion.type_id == get_type(s, type, live=False).id)
            return int(s.scalar(q) or 0)

    def revision(self, sentence_id: int) -> int:
        """The sentence's revision: grows with every change to its annotations (0: never annotated). An
        editor passes the revision it showed as ``expected`` to a write, which is refused
        (StaleSentenceError, naming who changed it) when someone changed the sentence since."""
        with self._db.read() as s:
            return sentence_revision(s, sentence_id)

    def revisions(self, sentence_ids: list[int]) -> dict[int, int]:
        """Each sentence's revision (one query; sentences without annotations: 0)."""
        with self._db.read() as s:
            out = dict.fromkeys(sentence_ids, 0)
            for i in range(0, len(sentence_ids), 10_000):
                q = (select(Annotation.sentence_id, func.max(AnnotationVersion.id))
                     .join(AnnotationVersion, AnnotationVersion.annotation_id == Annotation.id)
                     .where(Annotation.sentence_id.in_(sentence_ids[i:i + 10_000]))
                     .group_by(Annotation.sentence_id))
                out.update({sid: int(rev) for sid, rev in s.execute(q)})
            return out

    def changed_since(self, version_id: int) -> dict[int, int]:
        """The sentences with an annotation version newer than ``version_id``, with their revision now."""
        with self._db.read() as s:
            q = (select(Annotation.sentence_id, func.max(AnnotationVersion.id))
                 .join(AnnotationVersion, AnnotationVersion.annotation_id == Annotation.id)
                 .where(AnnotationVersion.id > int(version_id)).group_by(Annotation.sentence_id))
            return {int(sid): int(rev) for sid, rev in s.execute(q)}

    # ----- writing (each call is one transaction)
    def add_entity(self, sentence_id: int, start: int, end: int, type: TypeRef, *, status: str = "gold",
                   author: str | None = None, expected: int | None = None) -> AnnotationRecord:
        """Mark ``text[start:end]`` as a mention of ``type``. Refused (InvalidAnnotationError) when the
        span is empty or out of range, overlaps another gold mention, or the type is unknown."""
        with self._db.transaction() as s:
            check_fresh(s, sentence_id, expected)
            return annotation_record(add_annotation(s, sentence_id, "entity", [Span(start, end)], type,
                                                    status=status, author=author or self._db.user))

    def add_relation(self, sentence_id: int, head: SpanLike, tail: SpanLike, type: TypeRef, *,
                     status: str = "gold", author: str | None = None,
                     expected: int | None = None) -> AnnotationRecord:
        with self._db.transaction() as s:
            check_fresh(s, sentence_id, expected)
            spans = [_span(head, "head"), _span(tail, "tail")]
            return annotation_record(add_annotation(s, sentence_id, "relation", spans, type,
                                                    status=status, author=author or self._db.user))

    def edit(self, annotation_id: int, *, type: TypeRef | None = None, span: SpanLike | None = None,
             head: SpanLike | None = None, tail: SpanLike | None = None, status: str | None = None,
             author: str | None = None, expected: int | None = None) -> AnnotationRecord:
        """A new version with the changes given (``span`` for an entity; ``head``/``tail`` for a relation)."""
        with self._db.transaction() as s:
            old = _current_version(s, annotation_id)
            check_fresh(s, old.annotation.sentence_id, expected)
            if old.status == "deleted":
                raise StoreError(f"annotation {annotation_id} was deleted; add a new one instead")
            kind = old.annotation.kind
            spans = list(_version_spans(old, kind))
            if kind == "entity":
                if head is not None or tail is not None:
                    raise InvalidAnnotationError("an entity annotation has a span, not a head and a tail")
                if span is not None:
                    spans = [_span(span, "span")]
            else:
                if span is not None:
                    raise InvalidAnnotationError("a relation annotation has a head and a tail, not a span")
                if head is not None:
                    spans[0] = _span(head, "head")
                if tail is not None:
                    spans[1] = _span(tail, "tail")
            type_ = get_type(s, type, kind=kind) if type is not None else old.type
            new_status = status or old.status
            if (type_.id, tuple(spans), new_status) == (old.type_id, _version_spans(old, kind), old.status):
                return annotation_record(old)  # nothing changed: no new version
            validate(s, s.get(Sentence, old.annotation.sentence_id), kind, spans, type_, new_status,
                     exclude_annotation=annotation_id)
            v = new_version(s, old, type_=type_, spans=spans, status=new_status,
                            author=author or self._db.user)
            return annotation_record(v)

    def delete(self, annotation_id: int, *, author: str | None = None,
               expected: int | None = None) -> AnnotationRecord:
        """Mark the annotation deleted (a new version with status 'deleted'); earlier versions stay."""
        with self._db.transaction() as s:
            old = _current_version(s, annotation_id)
            check_fresh(s, old.annotation.sentence_id, expected)
            if old.status == "deleted":
                return annotation_record(old)
            return annotation_record(new_version(s, old, status="deleted", author=author or self._db.user))

    def restore(self, annotation_id: int, *, author: str | None = None,
                expected: int | None = None) -> AnnotationRecord:
        """Undo a deletion: a new version with the content and status of the last one before it."""
        with self._db.transaction() as s:
            old = _current_version(s, annotation_id)
            check_fresh(s, old.annotation.sentence_id, expected)
            if old.status != "deleted":
                return annotation_record(old)
            before = s.scalars(
                select(AnnotationVersion).where(AnnotationVersion.annotation_id == annotation_id,
                                                AnnotationVersion.status != "deleted")
                .order_by(AnnotationVersion.version.desc())
            ).first()
            status = before.status if before is not None else "gold"
            kind = old.annotation.kind
            spans = _version_spans(old, kind)
            validate(s, s.get(Sentence, old.annotation.sentence_id), kind, spans, old.type, status,
                     exclude_annotation=annotation_id)
            return annotation_record(new_version(s, old, status=status, author=author or self._db.user))

    def accept_prediction(self, prediction_id: int, *, author: str | None = None,
                          expected: int | None = None) -> AnnotationRecord:
        """Make a prediction gold. A current annotation on exactly the same span(s) gets a new version
        with the predicted type; otherwise a new gold annotation is added (overlaps are refused)."""
        return self._from_prediction(prediction_id, "gold", author or self._db.user, expected)

    def reject_prediction(self, prediction_id: int, *, author: str | None = None,
                          expected: int | None = None) -> AnnotationRecord:
        """Record that the predicted type is wrong for this span: a 'rejected' annotation."""
        return self._from_prediction(prediction_id, "rejected", author or self._db.user, expected)

    def _from_prediction(self, prediction_id: int, status: str, author: str,
                         expected: int | None = None) -> AnnotationRecord:
        with self._db.transaction() as s:
            p = s.get(Prediction, prediction_id)
            if p is None:
                raise NotFoundError(f"there is no prediction with id {prediction_id}")
            check_fresh(s, p.sentence_id, expected)
            type_ref: TypeRef = p.type_id if p.type_id is not None else p.label
            type_ = get_type(s, type_ref, kind=p.kind)
            spans = [Span(p.start, p.end)]
            if p.kind == "relation":
                if p.tail_start is None or p.tail_end is None:
                    raise StoreError(f"prediction {prediction_id} is a relation without a tail span")
                spans.append(Span(p.tail_start, p.tail_end))
            q = _current_q().where(Annotation.sentence_id == p.sentence_id, Annotation.kind == p.kind,
                                   AnnotationVersion.status.in_(LIVE_STATUSES),
                                   AnnotationVersion.start == p.start, AnnotationVersion.end == p.end)
            if p.kind == "relation":
                q = q.where(AnnotationVersion.tail_start == p.tail_start,
                            AnnotationVersion.tail_end == p.tail_end)
            same_span = list(s.scalars(q))
            if status == "gold":
                # a gold annotation on this span is retyped; a rejection of this very type is overturned
                candidates = [v for v in same_span if v.status == "gold"]
                candidates += [v for v in same_span if v.status == "rejected" and v.type_id == type_.id]
            else:
                candidates = [v for v in same_span if v.type_id == type_.id]
                candidates.sort(key=lambda v: v.status != "rejected")
            if candidates:
                old = candidates[0]
                if old.type_id == type_.id and old.status == status:
                    return annotation_record(old)
                validate(s, s.get(Sentence, p.sentence_id), p.kind, spans, type_, status,
                         exclude_annotation=old.annotation_id)
                return annotation_record(new_version(s, old, type_=type_, status=status, author=author))
            return annotation_record(add_annotation(s, p.sentence_id, p.kind, spans, type_.id,
                                                    status=status, author=author))
