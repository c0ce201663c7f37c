"""Sentences: the texts a user annotates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from conpet.store.errors import NotFoundError, StoreError
from conpet.store.models import Annotation, AnnotationVersion, Prediction, Sentence
from conpet.store.records import SentenceRecord
from conpet.store.repositories._common import TypeRef, content_hash, get_type, sentence_record

if TYPE_CHECKING:
    from conpet.store.db import Database

SENTENCE_STATUSES = ("annotated", "unannotated", "predicted", "rejected")
"""annotated: has a current gold annotation; unannotated: has none; predicted: has predictions but no
gold annotation yet (waiting for review); rejected: has a rejected annotation."""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _gold_of(sentence_id_col: Any, type_id: int | None = None, status: str = "gold") -> Any:
    q = (
        select(AnnotationVersion.id)
        .join(Annotation, Annotation.id == AnnotationVersion.annotation_id)
        .where(Annotation.sentence_id == sentence_id_col, AnnotationVersion.is_current.is_(True),
               AnnotationVersion.status == status)
    )
    if type_id is not None:
        q = q.where(AnnotationVersion.type_id == type_id)
    return exists(q)


class SentenceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, text: str, source: str = "") -> SentenceRecord:
        """Add a sentence; a sentence with the same text is not added twice (its record is returned)."""
        with self._db.transaction() as s:
            return sentence_record(add_sentence(s, text, source)[0])

    def add_many(self, texts: list[str], source: str = "") -> list[tuple[int, bool]]:
        """Add many sentences in one transaction: ``(id, created)`` per text, in order; a text already in
        the project (or earlier in ``texts``) is not added again and gives the existing id."""
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise StoreError("a sentence must not be empty")
        hashes = [content_hash(t) for t in texts]
        with self._db.transaction() as s:
            known: dict[str, int] = {}
            unique = list(dict.fromkeys(hashes))
            for i in range(0, len(unique), 500):  # SQLite limits the parameters of one query
                chunk = unique[i:i + 500]
                rows = s.execute(select(Sentence.content_hash, Sentence.id).where(Sentence.content_hash.in_(chunk)))
                known.update((h, i) for h, i in rows)
            new: dict[str, Sentence] = {}
            for text, h in zip(texts, hashes, strict=True):
                if h not in known and h not in new:
                    new[h] = Sentence(text=text, source=source or "", content_hash=h)
            s.add_all(new.values())
            s.flush()  # once: the ids of all new rows
            out: list[tuple[int, bool]] = []
            for h in hashes:
                if h in new:
                    out.append((new.pop(h).id, True))
                    known[h] = out[-1][0]
                else:
                    out.append((known[h], False))
            return out

    def get(self, sentence_id: int) -> SentenceRecord:
        with self._db.read() as s:
            row = s.get(Sentence, sentence_id)
            if row is None:
                raise NotFoundError(f"there is no sentence with id {sentence_id}")
            return sentence_record(row)

    def get_many(self, sentence_ids: list[int]) -> dict[int, SentenceRecord]:
        with self._db.read() as s:
            rows = s.scalars(select(Sentence).where(Sentence.id.in_(sentence_ids))).all()
            return {r.id: sentence_record(r) for r in rows}

    def by_text(self, text: str) -> SentenceRecord | None:
        with self._db.read() as s:
            row = s.scalar(select(Sentence).where(Sentence.content_hash == content_hash(text)))
            return sentence_record(row) if row is not None else None

    def search(self, text: str | None = None, *, type: TypeRef | None = None, status: str | None = None,
               source: str | None = None, limit: int | None = 100, offset: int = 0) -> list[SentenceRecord]:
        """Sentences whose text contains ``text`` (case-insensitive for ASCII), that have a current gold
        annotation of ``type``, and/or are in ``status`` (one of SENTENCE_STATUSES); in id order."""
        with self._db.read() as s:
            q = self._filtered(s, select(Sentence), text, type, status, source).order_by(Sentence.id)
            if offset:
                q = q.offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return [sentence_record(r) for r in s.scalars(q)]

    def count(self, text: str | None = None, *, type: TypeRef | None = None, status: str | None = None,
              source: str | None = None) -> int:
        with self._db.read() as s:
            q = self._filtered(s, select(func.count(Sentence.id)), text, type, status, source)
            return int(s.scalar(q) or 0)

    def ids(self, text: str | None = None, *, type: TypeRef | None = None, status: str | None = None,
            source: str | None = None) -> list[int]:
        """All matching ids (cheap, for list models that page through a large project)."""
        with self._db.read() as s:
            q = self._filtered(s, select(Sentence.id), text, type, status, source).order_by(Sentence.id)
            return list(s.scalars(q))

    def ids_with_current(self, statuses: tuple[str, ...] = ("gold",)) -> set[int]:
        """Ids of the sentences with a current annotation in one of ``statuses``: one scan of the current
        versions (cheaper than a status filter, which tests every sentence)."""
        with self._db.read() as s:
            q = (select(Annotation.sentence_id).distinct()
                 .join(AnnotationVersion, Annotation.id == AnnotationVersion.annotation_id)
                 .where(AnnotationVersion.is_current.is_(True), AnnotationVersion.status.in_(statuses)))
            return set(s.scalars(q))

    @staticmethod
    def _filtered(s: Session, q: Select[Any], text: str | None, type: TypeRef | None, status: str | None,
                  source: str | None) -> Select[Any]:
        if text:
            q = q.where(Sentence.text.ilike(f"%{_escape_like(text)}%", escape="\\"))
        if source is not None:
            q = q.where(Sentence.source == source)
        if type is not None:
            q = q.where(_gold_of(Sentence.id, get_type(s, type, live=False).id))
        if status is not None:
            if status == "annotated":
                q = q.where(_gold_of(Sentence.id))
            elif status == "unannotated":
                q = q.where(~_gold_of(Sentence.id))
            elif status == "predicted":
                q = q.where(exists(select(Prediction.id).where(Prediction.sentence_id == Sentence.id)),
                            ~_gold_of(Sentence.id))
            elif status == "rejected":
                q = q.where(_gold_of(Sentence.id, status="rejected"))
            else:
                raise StoreError(f"sentence status is one of {', '.join(SENTENCE_STATUSES)}, not {status!r}")
        return q


def add_sentence(s: Session, text: str, source: str = "") -> tuple[Sentence, bool]:
    """(row, created): the existing row when a sentence with the same text is already there."""
    if not isinstance(text, str) or not text.strip():
        raise StoreError("a sentence must not be empty")
    h = content_hash(text)
    row = s.scalar(select(Sentence).where(Sentence.content_hash == h))
    if row is not None:
        return row, False
    row = Sentence(text=text, source=source or "", content_hash=h)
    s.add(row)
    s.flush()
    return row, True
