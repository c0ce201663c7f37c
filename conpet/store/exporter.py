"""Export a project's sentences and gold annotations as the project JSONL (``conpet.data.jsonl``) or, with
``export_file``, in any format of ``conpet.data.formats`` that has a writer.

Importing the export into any project gives the same sentences and the same current gold annotations
(rejected and deleted ones are not exported: the format has no status). A sentence whose relation
arguments overlap one another or a typed mention (JSONL entities on one line may not overlap) is written
as several lines with the same text; the importer merges lines by text. The JSONL starts with a
declaration line for each relation type that restricts its head or tail entity types.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from conpet.data.example import Span
from conpet.data.jsonl import Entity, Relation, RelationTypeArguments, Sentence, write_jsonl
from conpet.store.models import Annotation, AnnotationVersion, KnowledgeType
from conpet.store.models import Sentence as SentenceRow

if TYPE_CHECKING:
    from conpet.store.project import Project

_CHUNK = 2000


class _Line:
    def __init__(self) -> None:
        self.entities: list[Entity] = []
        self.relations: list[Relation] = []
        self.entity_by: list[str | None] = []  # who made each entity (None: a relation's bare argument)
        self.relation_by: list[str] = []

    def slot(self, span: Span) -> int | None:
        """Index of an entity with exactly this span, -1 when the span is free, None when it overlaps."""
        for i, e in enumerate(self.entities):
            if (e.start, e.end) == (span.start, span.end):
                return i
            if span.overlaps(e.span):
                return None
        return -1

    def place(self, head: Span, tail: Span, label: str, by: str = "") -> bool:
        a, b = self.slot(head), self.slot(tail)
        if a is None or b is None:
            return False
        if a == -1:
            self.entities.append(Entity(head.start, head.end, None))
            self.entity_by.append(None)
            a = len(self.entities) - 1
        if b == -1:
            self.entities.append(Entity(tail.start, tail.end, None))
            self.entity_by.append(None)
            b = len(self.entities) - 1
        self.relations.append(Relation(a, b, label))
        self.relation_by.append(by)
        return True

    def meta(self) -> dict:
        """Who made each annotation, in the order of the line's entities and relations (none: no key)."""
        if not any(self.entity_by) and not any(self.relation_by):
            return {}
        return {"by": {"entities": list(self.entity_by), "relations": list(self.relation_by)}}


def sentence_lines(text: str, sid: str, source: str, entities: list[tuple[Span, str]],
                   relations: list[tuple[Span, Span, str]], entity_by: list[str] | None = None,
                   relation_by: list[str] | None = None) -> list[Sentence]:
    """One JSONL sentence, or several when the annotations cannot share one line. ``entity_by`` and
    ``relation_by`` (who made each annotation) go to each line's ``meta["by"]``."""
    lines = [_Line()]
    by_e = entity_by or [""] * len(entities)
    order = sorted(range(len(entities)), key=lambda i: entities[i][0].start)
    lines[0].entities = [Entity(entities[i][0].start, entities[i][0].end, entities[i][1]) for i in order]
    lines[0].entity_by = [by_e[i] or None for i in order]
    for (head, tail, label), by in zip(relations, relation_by or [""] * len(relations), strict=True):
        for line in lines:
            if line.place(head, tail, label, by):
                break
        else:
            line = _Line()
            line.place(head, tail, label, by)
            lines.append(line)
    return [Sentence(text, tuple(line.entities), tuple(line.relations), id=sid, source=source, meta=line.meta())
            for line in lines]


def export_jsonl(project: Project, out_path: str | Path,
                 progress: Callable[[float, str], None] | None = None) -> int:
    """Write every sentence with its current gold annotations to ``out_path`` (atomically); returns
    the number of sentences exported."""
    done, out = project_sentences(project, progress)
    write_jsonl(out_path, out, relation_declarations(project))
    if progress is not None:
        progress(1.0, f"wrote {len(out)} lines")
    return done


def export_file(project: Project, out_path: str | Path, fmt: str = "jsonl",
                progress: Callable[[float, str], None] | None = None, **options) -> int:
    """Write every sentence with its current gold annotations in format ``fmt``; returns the number of
    sentences exported. The writer builds everything before it writes (nothing half-written)."""
    from conpet.data.formats import write_sentences

    if fmt == "jsonl" and not options:  # the project's own format carries the relation type declarations
        return export_jsonl(project, out_path, progress)
    done, out = project_sentences(project, progress)
    write_sentences(out_path, out, fmt, **options)
    if progress is not None:
        progress(1.0, f"wrote {out_path}")
    return done


def relation_declarations(project: Project) -> list[RelationTypeArguments]:
    """One declaration per live relation type that restricts its head or tail (entity type names)."""
    types = project.types.list()
    names = {t.id: t.name for t in types}
    return [RelationTypeArguments(t.name, tuple(sorted(names[i] for i in t.head_type_ids)),
                                  tuple(sorted(names[i] for i in t.tail_type_ids)))
            for t in types if t.kind == "relation" and (t.head_type_ids or t.tail_type_ids)]


def project_sentences(project: Project, progress: Callable[[float, str], None] | None = None
                      ) -> tuple[int, list[Sentence]]:
    """``(sentences read, JSONL sentences)``: every sentence with its current gold annotations."""
    out: list[Sentence] = []
    with project.read() as s:
        names = {t.id: t.name for t in s.scalars(select(KnowledgeType))}
        total = int(s.scalar(select(func.count(SentenceRow.id))) or 0)
        last = 0
        done = 0
        while True:
            rows = s.execute(select(SentenceRow.id, SentenceRow.text, SentenceRow.source)
                             .where(SentenceRow.id > last).order_by(SentenceRow.id).limit(_CHUNK)).all()
            if not rows:
                break
            last = rows[-1][0]
            ids = [r[0] for r in rows]
            ents: dict[int, list[tuple[Span, str]]] = {i: [] for i in ids}
            rels: dict[int, list[tuple[Span, Span, str]]] = {i: [] for i in ids}
            ent_by: dict[int, list[str]] = {i: [] for i in ids}
            rel_by: dict[int, list[str]] = {i: [] for i in ids}
            q = (select(Annotation.sentence_id, Annotation.kind, AnnotationVersion.type_id,
                        AnnotationVersion.start, AnnotationVersion.end, AnnotationVersion.tail_start,
                        AnnotationVersion.tail_end, AnnotationVersion.author)
                 .join(AnnotationVersion, AnnotationVersion.annotation_id == Annotation.id)
                 .where(Annotation.sentence_id.in_(ids), AnnotationVersion.is_current.is_(True),
                        AnnotationVersion.status == "gold")
                 .order_by(Annotation.id))
            for sid, kind, type_id, start, end, ts, te, author in s.execute(q):
                if kind == "entity":
                    ents[sid].append((Span(start, end), names[type_id]))
                    ent_by[sid].append(author)
                else:
                    rels[sid].append((Span(start, end), Span(ts, te), names[type_id]))
                    rel_by[sid].append(author)
            for sid, text, source in rows:
                out.extend(sentence_lines(text, str(sid), source, ents[sid], rels[sid], ent_by[sid], rel_by[sid]))
            done += len(rows)
            if progress is not None and total:
                progress(0.9 * done / total, f"read {done} of {total} sentences")
    return done, out
