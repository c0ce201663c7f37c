"""Import a data file into a project: any format of ``conpet.data.formats`` (FewRel, Few-NERD, the project
JSONL, plain text, CoNLL, brat, Label Studio, doccano, TACRED).

All or nothing per file: the file is parsed completely first (a malformed file raises DataFormatError
with file, line and reason, and the database is not touched), then everything is written in one
transaction with bulk inserts. Sentences are matched by content hash; an annotation already there (same
sentence, kind, span(s) and type) is skipped as a duplicate. Entity mentions that overlap a gold mention
already in the project, or one earlier in the file, are skipped and counted as conflicts (Few-NERD repeats
some sentences with different tags).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from conpet.core.errors import DataFormatError, raise_problems
from conpet.data import formats as _formats
from conpet.data.example import Example, Span
from conpet.data.jsonl import RelationTypeArguments
from conpet.store.argument_import import allowed_lists, apply_declarations, sentence_problems
from conpet.store.db import sync_id_sequences
from conpet.store.errors import StoreError
from conpet.store.models import Annotation, AnnotationVersion, KnowledgeType, Sentence, utcnow
from conpet.store.records import ImportReport
from conpet.store.repositories._common import content_hash
from conpet.store.repositories.types import add_type

if TYPE_CHECKING:
    from conpet.store.project import Project

FORMATS = tuple(name for name, spec in _formats.FORMATS.items() if spec.read is not None)
Progress = Callable[[float, str], None]
_CHUNK = 500  # keys per IN (...) look-up
_PARSE_SHARE = 0.3  # of the progress bar


@dataclass
class ParsedSentence:
    text: str
    source: str
    where: str  # for messages: "line 12", "sentence 5"
    entities: list[tuple[Span, str]] = field(default_factory=list)
    relations: list[tuple[Span, Span, str]] = field(default_factory=list)


@dataclass
class ParsedFile:
    path: Path
    format: str
    sentences: list[ParsedSentence]
    # (kind, name) -> (description, group), in first-seen order
    types: dict[tuple[str, str], tuple[str, str | None]]
    # the project JSONL's relation type declarations (allowed head / tail entity types)
    relation_arguments: list[RelationTypeArguments] = field(default_factory=list)


# ----------------------------------------------------------------------------------- parsing


def detect_format(path: Path) -> str:
    """Guess the format from the name and the content (``conpet.data.formats.detect_format``)."""
    return _formats.detect_format(path)


def parse_file(path: str | Path, fmt: str | None = None, options: dict | None = None) -> ParsedFile:
    """Read and check the whole file (no database access). Raises DataFormatError.

    ``options`` are the reader's keyword options (e.g. ``{"tag_column": 3}`` for CoNLL).
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "file not found")
    if path.is_dir() and fmt not in (None, "brat"):
        raise DataFormatError(path, "is a folder; only brat standoff is read from a folder")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataFormatError(path, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "jsonl" and not options:
        return _parse_jsonl(path)
    if fmt in ("fewrel", "fewnerd") and not options:
        if fmt == "fewrel":
            from conpet.data.fewrel import read_fewrel

            pid2name = path.with_name("pid2name.json")
            examples = read_fewrel(path, pid2name if pid2name.is_file() and pid2name != path else None)
        else:
            from conpet.data.fewnerd import read_fewnerd

            examples = read_fewnerd(path)
        return _from_examples(path, fmt, examples)  # keeps FewRel descriptions and Few-NERD groups
    _, sentences = _formats.read_sentences(path, fmt, **(options or {}))
    return _from_sentences(path, fmt, sentences)


def _parsed_sentence(s: Any, source: str, where: str,
                     types: dict[tuple[str, str], tuple[str, str | None]]) -> ParsedSentence:
    """One read Sentence as the importer's record; its typed mentions' and relations' types join ``types``."""
    ps = ParsedSentence(s.text, source, where)
    for e in s.entities:
        if e.type is not None:
            ps.entities.append((e.span, e.type))
            types.setdefault(("entity", e.type), ("", None))
    for r in s.relations:
        ps.relations.append((s.entities[r.head].span, s.entities[r.tail].span, r.type))
        types.setdefault(("relation", r.type), ("", None))
    return ps


def _from_sentences(path: Path, fmt: str, sentences: Iterable) -> ParsedFile:
    out: list[ParsedSentence] = []
    types: dict[tuple[str, str], tuple[str, str | None]] = {}
    for i, s in enumerate(sentences):
        where = s.meta.get("line")
        where = f"line {where}" if where else f"sentence {i + 1}"
        out.append(_parsed_sentence(s, s.source or path.name, where, types))
    if not out:
        raise DataFormatError(path, "no sentences in the file")
    return ParsedFile(path, fmt, out, types)


def _from_examples(path: Path, fmt: str, examples: Iterable[Example]) -> ParsedFile:
    by_text: dict[str, ParsedSentence] = {}
    types: dict[tuple[str, str], tuple[str, str | None]] = {}
    for ex in examples:
        ps = by_text.get(ex.text)
        if ps is None:
            where = (f"sentence {ex.meta['sentence'] + 1}" if "sentence" in ex.meta
                     else f"the sentence {ex.text[:50]!r}")
            ps = by_text[ex.text] = ParsedSentence(ex.text, ex.source or path.name, where)
        if ex.kind == "entity":
            ps.entities.append((ex.spans[0], ex.label))
        else:
            ps.relations.append((ex.spans[0], ex.spans[1], ex.label))
        key = (ex.kind, ex.label)
        if key not in types:
            description = ""
            type_id = ex.meta.get("type_id")
            if ex.meta.get("description"):
                description = str(ex.meta["description"])
            if type_id and type_id != ex.label:
                description = f"{description} (Wikidata {type_id})".strip()
            types[key] = (description, ex.group)
    return ParsedFile(path, fmt, list(by_text.values()), types)


def _parse_jsonl(path: Path) -> ParsedFile:
    from conpet.data.jsonl import read_jsonl_document

    numbered, declarations = read_jsonl_document(path)
    out: list[ParsedSentence] = []
    types: dict[tuple[str, str], tuple[str, str | None]] = {}
    for lineno, s in numbered:
        out.append(_parsed_sentence(s, s.source or path.name, f"line {lineno}", types))
    for d in declarations:  # a declared type exists after the import even when no line uses it
        types.setdefault(("relation", d.type), ("", None))
        for name in (*d.head_types, *d.tail_types):
            types.setdefault(("entity", name), ("", None))
    return ParsedFile(path, "jsonl", out, types, declarations)


# ----------------------------------------------------------------------------------- writing


@dataclass
class _Counts:
    added_sentences: int = 0
    added_annotations: int = 0
    duplicates: int = 0
    conflicts: int = 0
    types_created: int = 0


@dataclass
class _SentenceState:
    id: int
    gold_entities: list[Span] = field(default_factory=list)
    # (kind, spans, type id) -> status of the current live annotation
    live: dict[tuple[str, tuple[Span, ...], int], str] = field(default_factory=dict)


def _chunks(items: list, n: int = _CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _write(s: Session, parsed: ParsedFile, author: str, progress: Progress | None) -> _Counts:
    counts = _Counts()
    now = utcnow()
    path = parsed.path

    # types
    rows = {(t.kind, t.name): t for t in s.scalars(select(KnowledgeType))}
    type_ids: dict[tuple[str, str], int] = {}
    for key, (description, group) in parsed.types.items():
        t = rows.get(key)
        if t is None or t.deleted_at is not None:
            try:
                t = add_type(s, key[1], key[0], description=description, group=group, author=author)
            except StoreError as exc:
                raise DataFormatError(path, f"{key[0]} type {key[1]!r}: {exc}") from None
            counts.types_created += 1
        type_ids[key] = t.id
    apply_declarations(s, path, parsed.relation_arguments, type_ids)

    # merge sentences with the same text (in file order) and find those already in the project
    merged: dict[str, ParsedSentence] = {}
    for ps in parsed.sentences:
        h = content_hash(ps.text)
        if h in merged:
            merged[h].entities.extend(ps.entities)
            merged[h].relations.extend(ps.relations)
        else:
            merged[h] = ParsedSentence(ps.text, ps.source, ps.where, list(ps.entities), list(ps.relations))
    hashes = list(merged)
    states: dict[str, _SentenceState] = {}
    for chunk in _chunks(hashes):
        for sid, h in s.execute(select(Sentence.id, Sentence.content_hash).where(Sentence.content_hash.in_(chunk))):
            states[h] = _SentenceState(sid)
    by_id = {st.id: st for st in states.values()}
    ids = list(by_id)
    for chunk in _chunks(ids):
        q = (select(Annotation.sentence_id, Annotation.kind, AnnotationVersion)
             .join(AnnotationVersion, AnnotationVersion.annotation_id == Annotation.id)
             .where(Annotation.sentence_id.in_(chunk), AnnotationVersion.is_current.is_(True),
                    AnnotationVersion.status.in_(("gold", "rejected"))))
        for sid, kind, v in s.execute(q):
            st = by_id[sid]
            spans = ((Span(v.start, v.end),) if kind == "entity"
                     else (Span(v.start, v.end), Span(v.tail_start, v.tail_end)))
            st.live[(kind, spans, v.type_id)] = v.status
            if kind == "entity" and v.status == "gold":
                st.gold_entities.append(spans[0])

    next_sentence = int(s.scalar(select(func.max(Sentence.id))) or 0) + 1
    next_annotation = int(s.scalar(select(func.max(Annotation.id))) or 0) + 1
    next_version = int(s.scalar(select(func.max(AnnotationVersion.id))) or 0) + 1
    new_sentences: list[dict] = []
    new_annotations: list[dict] = []
    new_versions: list[dict] = []

    def add(st: _SentenceState, kind: str, spans: tuple[Span, ...], type_id: int) -> None:
        nonlocal next_annotation, next_version
        key = (kind, spans, type_id)
        status = st.live.get(key)
        if status == "gold":
            counts.duplicates += 1
            return
        if status == "rejected":
            counts.conflicts += 1
            return
        if kind == "entity":
            if any(spans[0].overlaps(g) for g in st.gold_entities):
                counts.conflicts += 1
                return
            st.gold_entities.append(spans[0])
        st.live[key] = "gold"
        new_annotations.append({"id": next_annotation, "sentence_id": st.id, "kind": kind, "created_at": now})
        new_versions.append({
            "id": next_version, "annotation_id": next_annotation, "version": 1, "is_current": True,
            "type_id": type_id, "start": spans[0].start, "end": spans[0].end,
            "tail_start": spans[1].start if kind == "relation" else None,
            "tail_end": spans[1].end if kind == "relation" else None,
            "status": "gold", "author": author, "created_at": now,
        })
        next_annotation += 1
        next_version += 1
        counts.added_annotations += 1

    total = len(hashes)
    for i, h in enumerate(hashes):
        ps = merged[h]
        st = states.get(h)
        if st is None:
            st = states[h] = _SentenceState(next_sentence)
            new_sentences.append({"id": next_sentence, "text": ps.text, "source": ps.source[:500],
                                  "content_hash": h, "created_at": now})
            next_sentence += 1
            counts.added_sentences += 1
        elif not ps.entities and not ps.relations:
            counts.duplicates += 1
        for span, label in ps.entities:
            add(st, "entity", (span,), type_ids[("entity", label)])
        for head, tail, label in ps.relations:
            if head.overlaps(tail):
                raise DataFormatError(path, f"{ps.where}: a relation's head and tail overlap "
                                            f"({head.start}:{head.end} and {tail.start}:{tail.end})")
            add(st, "relation", (head, tail), type_ids[("relation", label)])
        if progress is not None and (i + 1) % 2000 == 0:
            progress(_PARSE_SHARE + (1 - _PARSE_SHARE) * 0.5 * (i + 1) / total, f"checked {i + 1} of {total}")
    _check_arguments(s, path, merged, states)

    steps = [(Sentence, new_sentences), (Annotation, new_annotations), (AnnotationVersion, new_versions)]
    n_rows = max(1, sum(len(r) for _, r in steps))
    done = 0
    for model, rows_ in steps:
        for chunk in _chunks(rows_, 5000):
            s.execute(insert(model), chunk)
            done += len(chunk)
            if progress is not None:
                progress(_PARSE_SHARE + (1 - _PARSE_SHARE) * (0.5 + 0.5 * done / n_rows),
                         f"writing ({done} of {n_rows} rows)")
    sync_id_sequences(s, [model.__tablename__ for model, _ in steps])  # the ids above were explicit
    return counts


def _check_arguments(s: Session, path: Path, merged: dict[str, ParsedSentence],
                     states: dict[str, _SentenceState]) -> None:
    """Refuse the file when a relation of its sentences falls outside its type's head / tail lists."""
    allowed = allowed_lists(s)
    if not allowed:
        return
    names = {t.id: t.name for t in s.scalars(select(KnowledgeType))}
    problems: list[tuple[int | None, str]] = []
    for h, ps in merged.items():
        for problem in sentence_problems(allowed, states[h].live, ps.text, names):
            line = int(ps.where[5:]) if ps.where.startswith("line ") and ps.where[5:].isdigit() else None
            problems.append((line, problem if line is not None else f"{ps.where}: {problem}"))
    raise_problems(path, problems)


def import_file(project: Project, path: str | Path, format: str | None = None,
                progress: Progress | None = None, *, author: str | None = None,
                options: dict | None = None) -> ImportReport:
    """Import one file into ``project`` (see the module docstring); returns what was added and skipped.

    ``progress(fraction, message)`` is called from this thread as the work advances; it may raise (e.g.
    ``Cancelled``) to stop the import, which then rolls back and leaves the project unchanged.
    """
    t0 = time.monotonic()
    path = Path(path)
    if progress is not None:
        progress(0.0, f"reading {path.name}")
    parsed = parse_file(path, format, options)
    if progress is not None:
        progress(_PARSE_SHARE, f"read {len(parsed.sentences)} sentences from {path.name}")
    with project.transaction() as s:
        counts = _write(s, parsed, author or f"{project.user} (import {path.name})", progress)
        if progress is not None:
            progress(1.0, "committing")  # still inside: a callback that raises here cancels the import
    return ImportReport(
        path=str(path), format=parsed.format, added_sentences=counts.added_sentences,
        added_annotations=counts.added_annotations, duplicates_skipped=counts.duplicates,
        types_created=counts.types_created, seconds=time.monotonic() - t0,
        conflicts_skipped=counts.conflicts, sentences_in_file=len(parsed.sentences),
    )
