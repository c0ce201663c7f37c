"""What the format readers and writers share: documents of annotations, packing them into ``Sentence``s,
comparing annotations, and writing files atomically.

A ``Document`` is a text with entity mentions (possibly nested or overlapping, as brat, Label Studio and
doccano allow) and relations between mentions. A ``Sentence`` (``conpet.data.jsonl``) may not hold
overlapping entities, so ``pack`` turns one document into one ``Sentence`` or, when its mentions overlap,
several with the same text (the importer merges sentences by text, as it does for the project JSONL).
``unpack`` goes the other way: sentences with the same (source, text) become one document again.

An entity with type ``None`` only serves as a relation argument. Formats that need a type on every
mention (brat, Label Studio, doccano) write it as ``UNTYPED`` and read ``UNTYPED`` back as ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from conpet.data.example import Span
from conpet.data.jsonl import Entity, Relation, Sentence

UNTYPED = "Argument"  # the type written for a relation argument that has no entity type

PathLike = str | os.PathLike[str]


@dataclass
class Document:
    """A text with mentions ``(span, type or None)`` and relations ``(head index, tail index, type)``."""

    text: str
    mentions: list[tuple[Span, str | None]] = field(default_factory=list)
    relations: list[tuple[int, int, str]] = field(default_factory=list)
    id: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict)

    def mention_index(self, span: Span, type_: str | None = None) -> int:
        """Index of the mention with this span (and type, when given), added when absent; an untyped
        look-up matches a typed mention with the same span."""
        for i, (sp, t) in enumerate(self.mentions):
            if sp == span and (type_ is None or t == type_ or t is None):
                if t is None and type_ is not None:
                    self.mentions[i] = (sp, type_)
                return i
        self.mentions.append((span, type_))
        return len(self.mentions) - 1


class _Line:
    """One ``Sentence`` being filled: entities that do not overlap one another."""

    def __init__(self) -> None:
        self.entities: list[Entity] = []
        self.relations: list[Relation] = []

    def slot(self, span: Span, type_: str | None) -> int | None:
        """Index of an entity that this mention can reuse, -1 when the span is free, None on overlap."""
        for i, e in enumerate(self.entities):
            if (e.start, e.end) == (span.start, span.end):
                if type_ is None or e.type is None or e.type == type_:
                    return i
                return None
            if span.overlaps(e.span):
                return None
        return -1

    def put(self, span: Span, type_: str | None) -> int | None:
        i = self.slot(span, type_)
        if i is None:
            return None
        if i == -1:
            self.entities.append(Entity(span.start, span.end, type_))
            return len(self.entities) - 1
        if type_ is not None and self.entities[i].type is None:
            self.entities[i] = Entity(span.start, span.end, type_)
        return i


def pack(doc: Document) -> list[Sentence]:
    """The document as one ``Sentence``, or several with the same text when mentions overlap.

    Raises ``ValueError`` (from ``Sentence``) for a mention outside the text or only whitespace.
    """
    lines = [_Line()]
    for span, type_ in doc.mentions:
        if type_ is None:
            continue  # an untyped mention goes in with its relation, if any uses it
        for line in lines:
            if line.put(span, type_) is not None:
                break
        else:
            lines.append(_Line())
            lines[-1].put(span, type_)
    for h, t, label in doc.relations:
        (hs, ht), (ts, tt) = doc.mentions[h], doc.mentions[t]
        if hs.overlaps(ts):
            raise ValueError(f"a relation's head {hs.start}:{hs.end} and tail {ts.start}:{ts.end} overlap")
        line = next((x for x in lines if x.slot(hs, ht) is not None and x.slot(ts, tt) is not None), None)
        if line is None:
            line = _Line()
            lines.append(line)
        relation = Relation(line.put(hs, ht), line.put(ts, tt), label)
        if relation not in line.relations:
            line.relations.append(relation)
    out = [Sentence(doc.text, tuple(line.entities), tuple(line.relations), id=doc.id, source=doc.source,
                    meta=dict(doc.meta)) for line in lines if line.entities or line.relations]
    if not out:
        out = [Sentence(doc.text, (), (), id=doc.id, source=doc.source, meta=dict(doc.meta))]
    return out


def unpack(sentences: Iterable[Sentence]) -> list[Document]:
    """Sentences with the same (source, text) as one document each, in first-seen order; the same
    mention or relation twice is kept once."""
    docs: dict[tuple[str, str], Document] = {}
    seen_rel: dict[tuple[str, str], set[tuple[int, int, str]]] = {}
    for s in sentences:
        key = (s.source, s.text)
        doc = docs.get(key)
        if doc is None:
            doc = docs[key] = Document(s.text, id=s.id, source=s.source, meta=dict(s.meta))
            seen_rel[key] = set()
        index = [doc.mention_index(e.span, e.type) for e in s.entities]
        for r in s.relations:
            rel = (index[r.head], index[r.tail], r.type)
            if rel not in seen_rel[key]:
                seen_rel[key].add(rel)
                doc.relations.append(rel)
    return list(docs.values())


def annotations(sentences: Iterable[Sentence]) -> set[tuple]:
    """Every annotation as content: ``("entity", text, start, end, type)`` for typed mentions and
    ``("relation", text, head start, head end, tail start, tail end, type)``."""
    out: set[tuple] = set()
    for s in sentences:
        for e in s.entities:
            if e.type is not None:
                out.add(("entity", s.text, e.start, e.end, e.type))
        for r in s.relations:
            h, t = s.entities[r.head], s.entities[r.tail]
            out.add(("relation", s.text, h.start, h.end, t.start, t.end, r.type))
    return out


def mention_annotations(sentences: Iterable[Sentence]) -> set[tuple]:
    """Annotations by mention text rather than offsets (for conversions that re-tokenise the text)."""
    out: set[tuple] = set()
    for s in sentences:
        for e in s.entities:
            if e.type is not None:
                out.add(("entity", s.text[e.start:e.end], e.type))
        for r in s.relations:
            h, t = s.entities[r.head], s.entities[r.tail]
            out.add(("relation", s.text[h.start:h.end], s.text[t.start:t.end], r.type))
    return out


def token_spans(text: str, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` of each white-space separated word, split further at the offsets ``cuts`` (mention
    boundaries), so that every mention starts and ends on a token boundary."""
    import re

    points = sorted(set(cuts))
    out: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", text):
        inner = [c for c in points if m.start() < c < m.end()]
        edges = [m.start(), *inner, m.end()]
        out.extend(zip(edges, edges[1:], strict=False))
    return out


def sentence_list(sentences: Iterable[Sentence]) -> list[Sentence]:
    """The sentences as a list, checking that each is a ``Sentence`` (writers take any iterable)."""
    items = list(sentences)
    for i, s in enumerate(items):
        if not isinstance(s, Sentence):
            raise TypeError(f"item {i} is {type(s).__name__}, not a Sentence")
    return items
