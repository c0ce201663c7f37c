"""doccano JSONL: one document per line, as doccano exports sequence labelling (with relations).

Each non-blank line is a JSON object with ``text`` and either

- ``entities``: ``[{"id": 1, "label": "Person", "start_offset": 0, "end_offset": 12}, ...]`` and
  ``relations``: ``[{"id": 1, "from_id": 1, "to_id": 2, "type": "born in"}, ...]`` (entity ids are
  unique within the line; ``from_id`` is the head, ``to_id`` the tail), or
- ``label`` (older doccano; also ``labels``): ``[[0, 12, "Person"], ...]`` with no relations.

A mention labelled ``Argument`` is a relation argument with no entity type. Other keys (``id``,
``Comments``, ``meta`` …) are allowed; ``id`` becomes the sentence id. Offsets are character offsets
(end exclusive). ``source`` is the file name, ``meta = {"line": n}``. Every problem raises
``DataFormatError(path, problem, line)``.

``write_doccano`` writes the ``entities`` / ``relations`` form, numbering entity and relation ids from 1
in each line; reading it back gives the same annotations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import is_int, read_text
from conpet.data.documents import (
    UNTYPED,
    Document,
    PathLike,
    pack,
    sentence_list,
    unpack,
)
from conpet.data.example import Span
from conpet.data.jsonl import Sentence


def read_doccano(path: PathLike) -> list[Sentence]:
    """Read a doccano JSONL export (see the module docstring)."""
    text = read_text(path)
    source = Path(path).name
    out: list[Sentence] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", lineno) from None
        try:
            out.extend(pack(_document(obj, source, lineno)))
        except ValueError as exc:
            raise DataFormatError(path, str(exc), lineno) from None
    if not out:
        raise DataFormatError(path, "no lines in the file")
    return out


def _document(obj: Any, source: str, lineno: int) -> Document:
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object with 'text'")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    sid = obj.get("id")
    doc = Document(text, id="" if sid is None else str(sid), source=source, meta={"line": lineno})
    if "entities" in obj:
        _entities_and_relations(doc, obj)
    else:
        labels = obj.get("label", obj.get("labels")) or []
        if not isinstance(labels, list):
            raise ValueError("'label' must be a list of [start, end, type]")
        for k, item in enumerate(labels):
            if not (isinstance(item, list) and len(item) == 3):
                raise ValueError(f"label {k} must be [start, end, type]")
            _mention(doc, item[0], item[1], item[2], f"label {k}")
    return doc


def _entities_and_relations(doc: Document, obj: dict) -> None:
    entities, relations = obj.get("entities") or [], obj.get("relations") or []
    if not isinstance(entities, list) or not isinstance(relations, list):
        raise ValueError("'entities' and 'relations' must be lists")
    by_id: dict[Any, int] = {}
    for k, e in enumerate(entities):
        if not isinstance(e, dict):
            raise ValueError(f"entity {k} must be an object with id, label, start_offset, end_offset")
        if "id" in e and (not isinstance(e["id"], (int, str)) or isinstance(e["id"], bool)):
            raise ValueError(f"entity {k}: id must be a number or a string, got {e['id']!r}")
        if e.get("id") in by_id:
            raise ValueError(f"entity {k}: id {e.get('id')!r} is used twice")
        index = _mention(doc, e.get("start_offset"), e.get("end_offset"), e.get("label"), f"entity {k}")
        if "id" in e:
            by_id[e["id"]] = index
    for k, r in enumerate(relations):
        if not isinstance(r, dict):
            raise ValueError(f"relation {k} must be an object with from_id, to_id, type")
        for key in ("from_id", "to_id"):
            if not isinstance(r.get(key), (int, str)) or r.get(key) not in by_id:
                raise ValueError(f"relation {k}: {key} {r.get(key)!r} is not an entity id of this line")
        label = r.get("type", r.get("label"))
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"relation {k}: 'type' must be a non-empty string")
        rel = (by_id[r["from_id"]], by_id[r["to_id"]], label)
        if rel[0] == rel[1]:
            raise ValueError(f"relation {k}: from_id and to_id are the same entity")
        if rel not in doc.relations:
            doc.relations.append(rel)


def _mention(doc: Document, start: Any, end: Any, label: Any, what: str) -> int:
    if not (is_int(start) and is_int(end)):
        raise ValueError(f"{what}: offsets must be integers, got {start!r}, {end!r}")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{what}: the label must be a non-empty string, got {label!r}")
    if not 0 <= start < end <= len(doc.text) or not doc.text[start:end].strip():
        raise ValueError(f"{what}: span {start}:{end} is empty or outside the text (length {len(doc.text)})")
    span = Span(start, end)
    if label == UNTYPED:
        return doc.mention_index(span)
    doc.mentions.append((span, label))
    return len(doc.mentions) - 1


def write_doccano(path: PathLike, sentences: Iterable[Sentence]) -> int:
    """Write doccano JSONL (atomically); returns the number of lines."""
    lines = []
    for n, doc in enumerate(unpack(sentence_list(sentences)), start=1):
        obj = {
            "id": n,
            "text": doc.text,
            "entities": [{"id": k + 1, "label": t or UNTYPED, "start_offset": sp.start, "end_offset": sp.end}
                         for k, (sp, t) in enumerate(doc.mentions)],
            "relations": [{"id": j + 1, "from_id": h + 1, "to_id": t + 1, "type": label}
                          for j, (h, t, label) in enumerate(doc.relations)],
        }
        lines.append(json.dumps(obj, ensure_ascii=False))
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
    return len(lines)
