"""Import a data file into a project: any format of ``conpet.data.formats`` (FewRel, Few-NERD, the project
JSONL, plain text, CoNLL, brat, Label Studio, doccano, TACRED).

All or nothing per file: the file is parsed completely first (a malformed file raises DataFormatError
with file, line and reason, and the database is not touched), then written with bulk inserts in short
transactions of ``_SENTENCES_PER_TRANSACTION`` sentences each (a sentence with all its annotations in one),
so that the app's writes and a training's never wait on the import for more than a few milliseconds. When
the import then fails (a relation its type refuses, a cancel, an error) what it committed is taken back; a
process killed mid-import leaves a prefix of the file's sentences, each complete, and importing the file
again adds the rest (everything already there is skipped as a duplicate). Sentences are matched by content hash; an annotation already there (same
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

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.orm import Session

from conpet.core.errors import DataFormatError, raise_problems
from conpet.data import formats as _formats
from conpet.data.example import Example, Span
from conpet.data.jsonl import RelationTypeArguments
from conpet.store.argument_import import allowed_lists, apply_declarations, sentence_problems
from conpet.store.db import sync_id_sequences
from conpet.store.errors import StoreError
from conpet.store.models import (
    Annotation,
    AnnotationVersion,
    KnowledgeType,
    Prediction,
    RelationArgument,
    Sentence,
    TypeEdit,
    utcnow,
)
from conpet.store.records import ImportReport
from conpet.store.repositories._common import content_hash
from conpet.store.repositories.arguments import allowed_ids, replace_arguments
from conpet.store.repositories.types import add_type

if TYPE_CHECKING:
    from conpet.store.project import Project

FORMATS = tuple(name for name, spec in _formats.FORMATS.items() if spec.read is not None)
Progress = Callable[[float, str], None]
_CHUNK = 500  # keys per IN (...) look-up
# Sentences per write transaction: each holds SQLite's write lock for a few milliseconds, so the app's own
# writes (labelling) and a training's cache writes never wait long beside an import (issue 24).
_SENTENCES_PER_TRANSACTION = 100
_ROWS_PER_TRANSACTION = 2000  # rows deleted per transaction when a failed import is taken back
# A pause after each chunk's commit. SQLite's locks are not fair: a writer waiting in the busy handler polls
# (every 1 to 25 ms in its first 100 ms) and loses to an importer that starts its next chunk at once, again
# and again (measured: waits of seconds). A pause longer than those polls lets the waiting writer in.
_PAUSE_BETWEEN_CHUNKS_S = 0.03
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


@dataclass
class _Written:
    """What an import has committed so far, so that a failure (a refused relation, a cancel, an error) can
    take it back and leave the project as it was."""

    sentences: list[int] = field(default_factory=list)
    annotations: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    created_types: list[int] = field(default_factory=list)
    revived_types: list[int] = field(default_factory=list)
    arguments: list[tuple[int, str, set[int]]] = field(default_factory=list)  # (relation type, role, old ids)


def _merged(parsed: ParsedFile) -> dict[str, ParsedSentence]:
    """The file's sentences by content hash (the same text's annotations joined, in file order); a relation
    whose head and tail overlap refuses the file before anything is written."""
    merged: dict[str, ParsedSentence] = {}
    for ps in parsed.sentences:
        for head, tail, _label in ps.relations:
            if head.overlaps(tail):
                raise DataFormatError(parsed.path, f"{ps.where}: a relation's head and tail overlap "
                                                   f"({head.start}:{head.end} and {tail.start}:{tail.end})")
        h = content_hash(ps.text)
        if h in merged:
            merged[h].entities.extend(ps.entities)
            merged[h].relations.extend(ps.relations)
        else:
            merged[h] = ParsedSentence(ps.text, ps.source, ps.where, list(ps.entities), list(ps.relations))
    return merged


def _write_types(s: Session, parsed: ParsedFile, counts: _Counts, written: _Written,
                 author: str) -> dict[tuple[str, str], int]:
    """The file's types (created, or brought back when deleted) and its relation argument declarations."""
    rows = {(t.kind, t.name): t for t in s.scalars(select(KnowledgeType))}
    type_ids: dict[tuple[str, str], int] = {}
    for key, (description, group) in parsed.types.items():
        t = rows.get(key)
        if t is None or t.deleted_at is not None:
            revived = t is not None
            try:
                t = add_type(s, key[1], key[0], description=description, group=group, author=author)
            except StoreError as exc:
                raise DataFormatError(parsed.path, f"{key[0]} type {key[1]!r}: {exc}") from None
            (written.revived_types if revived else written.created_types).append(t.id)
            counts.types_created += 1
        type_ids[key] = t.id
    for d in parsed.relation_arguments:  # the lists before, to put back when the import fails
        t = s.get(KnowledgeType, type_ids[("relation", d.type)])
        assert t is not None
        written.arguments += [(t.id, role, allowed_ids(t, role)) for role in ("head", "tail")]
    apply_declarations(s, parsed.path, parsed.relation_arguments, type_ids)
    return type_ids


def _sentence_states(s: Session, hashes: list[str]) -> dict[str, _SentenceState]:
    """The sentences of ``hashes`` already in the project, with their live gold and rejected annotations."""
    states: dict[str, _SentenceState] = {}
    for sid, h in s.execute(select(Sentence.id, Sentence.content_hash).where(Sentence.content_hash.in_(hashes))):
        states[h] = _SentenceState(sid)
    by_id = {st.id: st for st in states.values()}
    if not by_id:
        return states
    q = (select(Annotation.sentence_id, Annotation.kind, AnnotationVersion)
         .join(AnnotationVersion, AnnotationVersion.annotation_id == Annotation.id)
         .where(Annotation.sentence_id.in_(list(by_id)), AnnotationVersion.is_current.is_(True),
                AnnotationVersion.status.in_(("gold", "rejected"))))
    for sid, kind, v in s.execute(q):
        st = by_id[sid]
        spans = ((Span(v.start, v.end),) if kind == "entity"
                 else (Span(v.start, v.end), Span(v.tail_start, v.tail_end)))
        st.live[(kind, spans, v.type_id)] = v.status
        if kind == "entity" and v.status == "gold":
            st.gold_entities.append(spans[0])
    return states


def _write_chunk(s: Session, merged: dict[str, ParsedSentence], hashes: list[str],
                 type_ids: dict[tuple[str, str], int], author: str, counts: _Counts,
                 written: _Written) -> list[tuple[int | None, str]]:
    """One short transaction's work: ``hashes``' sentences and their annotations (duplicates and conflicts
    skipped, against the project as it is now); returns the relation argument problems they leave."""
    now = utcnow()
    states = _sentence_states(s, hashes)
    # ids after the newest row: the transaction holds the write lock, so no other writer takes them
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

    for h in hashes:
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
            add(st, "relation", (head, tail), type_ids[("relation", label)])
    for model, rows_ in ((Sentence, new_sentences), (Annotation, new_annotations), (AnnotationVersion, new_versions)):
        if rows_:
            s.execute(insert(model), rows_)
    sync_id_sequences(s, ["sentences", "annotations", "annotation_versions"])  # the ids above were explicit
    written.sentences += [r["id"] for r in new_sentences]
    written.annotations += [r["id"] for r in new_annotations]
    written.versions += [r["id"] for r in new_versions]
    return _argument_problems(s, {h: merged[h] for h in hashes}, states)


def _undo(project: Project, written: _Written) -> None:
    """Take back what a failed import committed, newest rows first, in short transactions."""
    ours = set(written.versions)
    for chunk in _chunks(written.annotations, _ROWS_PER_TRANSACTION):
        with project.transaction() as s:
            # an annotation someone edited meanwhile (a version not ours) stays, with its history
            edited = set(s.scalars(select(AnnotationVersion.annotation_id).where(
                AnnotationVersion.annotation_id.in_(chunk), AnnotationVersion.id.not_in(ours))))
            gone = [a for a in chunk if a not in edited]
            s.execute(delete(AnnotationVersion).where(AnnotationVersion.annotation_id.in_(gone)))
            s.execute(delete(Annotation).where(Annotation.id.in_(gone)))
    for chunk in _chunks(written.sentences, _ROWS_PER_TRANSACTION):
        with project.transaction() as s:  # a sentence someone labelled (or a run predicted) meanwhile stays
            s.execute(delete(Sentence).where(
                Sentence.id.in_(chunk), ~exists().where(Annotation.sentence_id == Sentence.id),
                ~exists().where(Prediction.sentence_id == Sentence.id)))
    with project.transaction() as s:
        for type_id, role, ids in written.arguments:
            t = s.get(KnowledgeType, type_id)
            if t is not None:
                replace_arguments(s, t, role, [e for e in (s.get(KnowledgeType, i) for i in sorted(ids)) if e])
        s.flush()
        for type_id in written.revived_types:
            t = s.get(KnowledgeType, type_id)
            if t is not None:
                t.deleted_at = utcnow()
        if written.created_types:
            s.execute(delete(RelationArgument).where(RelationArgument.entity_type_id.in_(written.created_types)))
            s.execute(delete(RelationArgument).where(RelationArgument.relation_type_id.in_(written.created_types)))
            # the import's own record of having made them goes with them (who made a type: conpet.store.models)
            s.execute(delete(TypeEdit).where(TypeEdit.type_id.in_(written.created_types)))
            s.execute(delete(KnowledgeType).where(KnowledgeType.id.in_(written.created_types)))


def _argument_problems(s: Session, merged: dict[str, ParsedSentence],
                       states: dict[str, _SentenceState]) -> list[tuple[int | None, str]]:
    """Each relation of these sentences that falls outside its type's head / tail lists (line, problem)."""
    allowed = allowed_lists(s)
    if not allowed:
        return []
    names = {t.id: t.name for t in s.scalars(select(KnowledgeType))}
    problems: list[tuple[int | None, str]] = []
    for h, ps in merged.items():
        for problem in sentence_problems(allowed, states[h].live, ps.text, names):
            line = int(ps.where[5:]) if ps.where.startswith("line ") and ps.where[5:].isdigit() else None
            problems.append((line, problem if line is not None else f"{ps.where}: {problem}"))
    return problems


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
    merged = _merged(parsed)
    counts, written = _Counts(), _Written()
    author = author or f"{project.user} (import {path.name})"
    try:
        with project.transaction() as s:
            type_ids = _write_types(s, parsed, counts, written, author)
        hashes = list(merged)
        problems: list[tuple[int | None, str]] = []
        for i in range(0, len(hashes), _SENTENCES_PER_TRANSACTION):
            # one short transaction per chunk: the write lock is held for milliseconds, not the whole file
            with project.transaction() as s:
                problems += _write_chunk(s, merged, hashes[i:i + _SENTENCES_PER_TRANSACTION], type_ids, author,
                                         counts, written)
            time.sleep(_PAUSE_BETWEEN_CHUNKS_S)
            if progress is not None:
                done = min(i + _SENTENCES_PER_TRANSACTION, len(hashes))
                progress(_PARSE_SHARE + (1 - _PARSE_SHARE) * done / max(len(hashes), 1),
                         f"written {done} of {len(hashes)} sentences")
        raise_problems(path, problems)
        if progress is not None:
            progress(1.0, "committing")  # a callback that raises here still cancels the import
    except BaseException:
        _undo(project, written)
        raise
    return ImportReport(
        path=str(path), format=parsed.format, added_sentences=counts.added_sentences,
        added_annotations=counts.added_annotations, duplicates_skipped=counts.duplicates,
        types_created=counts.types_created, seconds=time.monotonic() - t0,
        conflicts_skipped=counts.conflicts, sentences_in_file=len(parsed.sentences),
    )
