"""The project's own JSONL format: one annotated sentence per line, character offsets.

Each non-blank line is one JSON object::

    {"text": "Ada Lovelace was born in London.",
     "entities": [{"start": 0, "end": 12, "type": "person"},
                  {"start": 25, "end": 31, "type": null}],
     "relations": [{"head": 0, "tail": 1, "type": "place of birth"}],
     "id": "s1", "source": "notes.txt"}

- ``text`` (required): the sentence, a non-empty string.
- ``entities`` (optional, default ``[]``): character spans ``text[start:end]`` (end exclusive) with
  ``0 <= start < end <= len(text)``, not only whitespace, and not overlapping one another. ``type`` is
  the entity type, or ``null`` (or absent) for an entity that only serves as a relation argument.
- ``relations`` (optional, default ``[]``): ``head`` and ``tail`` are 0-based indices into this line's
  ``entities`` (different from each other), ``type`` the relation type (a non-empty string). The same
  (head, tail, type) may not appear twice.
- ``id``, ``source`` (optional strings): the sentence's own id and where it came from. ``meta``
  (optional object) is carried through unchanged.
- Any other key is an error (so that a misspelt ``"entites"`` does not silently drop annotations).
- A line may instead declare a relation type's allowed argument types (the exporter writes these first):
  ``{"relation_type": "place of birth", "head_types": ["person"], "tail_types": ["city"]}``; an empty or
  absent list means any entity type. At most one such line per relation type. Files without them (every
  file written before they existed) read as before.
- The file is UTF-8 (a BOM is accepted); blank lines are skipped; an empty file is an error.

``read_jsonl_sentences`` returns ``Sentence`` objects (what the project store imports and exports);
``read_jsonl`` turns them into ``Example``s: one entity example per typed entity and one relation example
per relation. Their ``source`` is the sentence's ``source`` or else the file name; their ``id`` hashes
(text, spans, type, source), with an occurrence number for exact duplicates within the file;
``meta = {"sentence_id": ..., "line": n}``.

``write_jsonl`` writes sentences atomically (a temporary file in the same folder, then ``os.replace``), so a
crash leaves either the old file or the new one. Reading what was written gives equal ``Sentence``s.
Every read problem raises ``DataFormatError(path, problem, line)``; readers return everything or raise. Bad
lines are collected first and raised together (``DataErrors``, a ``DataFormatError`` listing each file:line).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.core.errors import DataFormatError, raise_problems
from conpet.core.files import atomic_text_file
from conpet.data._io import IdMaker, is_int, read_text
from conpet.data.example import Example, Span

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity mention ``text[start:end]``; ``type`` is None for a relation-argument-only entity."""

    start: int
    end: int
    type: str | None = None

    def __post_init__(self) -> None:
        if not (is_int(self.start) and is_int(self.end)):
            raise ValueError(f"entity start/end must be integers, got {self.start!r}, {self.end!r}")
        if self.type is not None and (not isinstance(self.type, str) or not self.type.strip()):
            raise ValueError(f"entity type must be a non-empty string or null, got {self.type!r}")

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation between ``entities[head]`` and ``entities[tail]`` of the same sentence."""

    head: int
    tail: int
    type: str

    def __post_init__(self) -> None:
        if not (is_int(self.head) and is_int(self.tail)):
            raise ValueError(f"relation head/tail must be integers, got {self.head!r}, {self.tail!r}")
        if not isinstance(self.type, str) or not self.type.strip():
            raise ValueError(f"relation type must be a non-empty string, got {self.type!r}")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One annotated sentence; validated on construction (``ValueError`` names the problem)."""

    text: str
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    id: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "relations", tuple(self.relations))
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError("'text' must be a non-empty string")
        if not isinstance(self.id, str) or not isinstance(self.source, str):
            raise ValueError("'id' and 'source' must be strings")
        n = len(self.text)
        for i, e in enumerate(self.entities):
            if not isinstance(e, Entity):
                raise ValueError(f"entity {i} is not an Entity")
            if not 0 <= e.start < e.end <= n:
                raise ValueError(
                    f"entity {i}: span {e.start}:{e.end} is out of range or empty (text length {n}; "
                    "need 0 <= start < end <= length)"
                )
            if not self.text[e.start : e.end].strip():
                raise ValueError(f"entity {i}: the mention {self.text[e.start : e.end]!r} is only whitespace")
        order = sorted(
            range(len(self.entities)), key=lambda i: (self.entities[i].start, self.entities[i].end)
        )
        for a, b in zip(order, order[1:], strict=False):
            if self.entities[a].span.overlaps(self.entities[b].span):
                ea, eb = self.entities[a], self.entities[b]
                raise ValueError(f"entities {a} ({ea.start}:{ea.end}) and {b} ({eb.start}:{eb.end}) overlap")
        seen: set[tuple[int, int, str]] = set()
        for j, r in enumerate(self.relations):
            if not isinstance(r, Relation):
                raise ValueError(f"relation {j} is not a Relation")
            for role, k in (("head", r.head), ("tail", r.tail)):
                if not 0 <= k < len(self.entities):
                    raise ValueError(
                        f"relation {j}: {role} {k} is not an entity index (this line has "
                        f"{len(self.entities)} entities)"
                    )
            if r.head == r.tail:
                raise ValueError(f"relation {j}: head and tail are the same entity ({r.head})")
            key = (r.head, r.tail, r.type)
            if key in seen:
                raise ValueError(f"relation {j}: duplicate of an earlier relation {key}")
            seen.add(key)

    def mention(self, index: int) -> str:
        e = self.entities[index]
        return self.text[e.start : e.end]

    def to_json(self) -> dict[str, Any]:
        """The line object (keys in the documented order; empty id/source/meta left out)."""
        obj: dict[str, Any] = {
            "text": self.text,
            "entities": [{"start": e.start, "end": e.end, "type": e.type} for e in self.entities],
            "relations": [{"head": r.head, "tail": r.tail, "type": r.type} for r in self.relations],
        }
        if self.id:
            obj["id"] = self.id
        if self.source:
            obj["source"] = self.source
        if self.meta:
            obj["meta"] = self.meta
        return obj

    def examples(self, default_source: str = "", ids: IdMaker | None = None) -> list[Example]:
        """One entity example per typed entity, then one relation example per relation."""
        ids = ids or IdMaker()
        source = self.source or default_source
        out: list[Example] = []
        for e in self.entities:
            if e.type is None:
                continue
            spans = (e.span,)
            out.append(
                Example(
                    text=self.text,
                    spans=spans,
                    label=e.type,
                    kind="entity",
                    id=ids.make(self.text, spans, e.type, source),
                    source=source,
                    meta={"sentence_id": self.id},
                )
            )
        for r in self.relations:
            spans = (self.entities[r.head].span, self.entities[r.tail].span)
            out.append(
                Example(
                    text=self.text,
                    spans=spans,
                    label=r.type,
                    kind="relation",
                    id=ids.make(self.text, spans, r.type, source),
                    source=source,
                    meta={"sentence_id": self.id},
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class RelationTypeArguments:
    """A declaration line: relation type ``type`` takes heads of ``head_types`` and tails of
    ``tail_types`` (entity type names; empty: any)."""

    type: str
    head_types: tuple[str, ...] = ()
    tail_types: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"relation_type": self.type, "head_types": list(self.head_types),
                "tail_types": list(self.tail_types)}


_DECLARATION_KEYS = {"relation_type", "head_types", "tail_types"}


def declaration_from_json(obj: dict) -> RelationTypeArguments:
    """Build a declaration from a line object with a ``relation_type`` key; ``ValueError`` names what is wrong."""
    unknown = sorted(set(obj) - _DECLARATION_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in a relation type declaration; allowed: "
                         f"{sorted(_DECLARATION_KEYS)}")
    name = obj["relation_type"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"'relation_type' must be a non-empty string, got {name!r}")
    lists = []
    for key in ("head_types", "tail_types"):
        value = obj.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError(f"{key!r} must be a list of entity type names, got {value!r}")
        lists.append(tuple(dict.fromkeys(value)))
    return RelationTypeArguments(name, lists[0], lists[1])


_LINE_KEYS = {"text", "entities", "relations", "id", "source", "meta"}
_ENTITY_KEYS = {"start", "end", "type"}
_RELATION_KEYS = {"head", "tail", "type"}


def sentence_from_json(obj: Any) -> Sentence:
    """Build a ``Sentence`` from one parsed line object; ``ValueError`` names what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"each line must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _LINE_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(_LINE_KEYS)}")
    if "text" not in obj:
        raise ValueError("missing key 'text'")
    text = obj["text"]
    if not isinstance(text, str):
        raise ValueError(f"'text' must be a string, got {type(text).__name__}")
    ents_raw = obj.get("entities", [])
    rels_raw = obj.get("relations", [])
    if not isinstance(ents_raw, list):
        raise ValueError("'entities' must be a list")
    if not isinstance(rels_raw, list):
        raise ValueError("'relations' must be a list")
    entities = []
    for i, e in enumerate(ents_raw):
        if not isinstance(e, dict):
            raise ValueError(f"entity {i} must be an object with start, end, type")
        for key in ("start", "end"):
            if key not in e:
                raise ValueError(f"entity {i}: missing key {key!r}")
        bad = sorted(set(e) - _ENTITY_KEYS)
        if bad:
            raise ValueError(f"entity {i}: unknown key(s) {bad}")
        try:
            entities.append(Entity(e["start"], e["end"], e.get("type")))
        except ValueError as exc:
            raise ValueError(f"entity {i}: {exc}") from None
    relations = []
    for j, r in enumerate(rels_raw):
        if not isinstance(r, dict):
            raise ValueError(f"relation {j} must be an object with head, tail, type")
        for key in ("head", "tail", "type"):
            if key not in r:
                raise ValueError(f"relation {j}: missing key {key!r}")
        bad = sorted(set(r) - _RELATION_KEYS)
        if bad:
            raise ValueError(f"relation {j}: unknown key(s) {bad}")
        try:
            relations.append(Relation(r["head"], r["tail"], r["type"]))
        except ValueError as exc:
            raise ValueError(f"relation {j}: {exc}") from None
    sid = obj.get("id") or ""
    source = obj.get("source") or ""
    if not isinstance(sid, str):
        raise ValueError("'id' must be a string")
    if not isinstance(source, str):
        raise ValueError("'source' must be a string")
    meta = obj.get("meta")
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise ValueError("'meta' must be an object")
    return Sentence(text, tuple(entities), tuple(relations), sid, source, meta)


def read_jsonl_sentences(path: PathLike) -> list[Sentence]:
    """Read every sentence of a JSONL file (see the module docstring); all or nothing."""
    return [s for _, s in _read_numbered(path)]


def read_jsonl_document(path: PathLike) -> tuple[list[tuple[int, Sentence]], list[RelationTypeArguments]]:
    """``([(line number, sentence)], relation type declarations)`` of a JSONL file; all or nothing."""
    declarations: list[RelationTypeArguments] = []
    sentences = _read_numbered(path, declarations)
    return sentences, declarations


def _read_numbered(path: PathLike, declarations: list[RelationTypeArguments] | None = None
                   ) -> list[tuple[int, Sentence]]:
    """Numbered sentences; declaration lines go to ``declarations`` (skipped when it is None)."""
    text = read_text(path)
    out: list[tuple[int, Sentence]] = []
    declared: set[str] = set()
    problems: list[tuple[int | None, str]] = []  # every bad line, reported together
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except RecursionError:
            problems.append((lineno, "invalid JSON: nested too deeply"))
            continue
        try:
            if isinstance(obj, dict) and "relation_type" in obj and "text" not in obj:
                d = declaration_from_json(obj)
                if d.type in declared:
                    raise ValueError(f"relation type {d.type!r} is declared twice")
                declared.add(d.type)
                if declarations is not None:
                    declarations.append(d)
                continue
            out.append((lineno, sentence_from_json(obj)))
        except ValueError as exc:
            problems.append((lineno, str(exc)))
    raise_problems(path, problems)
    if not out:
        raise DataFormatError(path, "no sentences in the file")
    return out


def read_jsonl(path: PathLike) -> list[Example]:
    """Read a JSONL file into examples: one per typed entity, one per relation."""
    default_source = Path(path).name
    ids = IdMaker()
    out: list[Example] = []
    for lineno, s in _read_numbered(path):
        try:
            for ex in s.examples(default_source, ids):
                ex.meta["line"] = lineno
                out.append(ex)
        except ValueError as exc:  # Example's own checks; Sentence already validated, so unexpected
            raise DataFormatError(path, str(exc), lineno) from None
    if not out:
        raise DataFormatError(path, "no typed entities or relations in the file (nothing to learn from)")
    return out


def write_jsonl(path: PathLike, sentences: Iterable[Sentence],
                relation_types: Iterable[RelationTypeArguments] = ()) -> int:
    """Write sentences as JSONL atomically (temp file + ``os.replace``), after a declaration line per
    relation type in ``relation_types``; returns how many sentences were written."""
    target = Path(path)
    items = list(sentences)
    declarations = list(relation_types)
    for i, s in enumerate(items):
        if not isinstance(s, Sentence):
            raise TypeError(f"item {i} is {type(s).__name__}, not a Sentence")
    with atomic_text_file(target) as fh:
        for d in declarations:
            fh.write(json.dumps(d.to_json(), ensure_ascii=False))
            fh.write("\n")
        for s in items:
            fh.write(json.dumps(s.to_json(), ensure_ascii=False))
            fh.write("\n")
    return len(items)
