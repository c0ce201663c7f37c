"""ACE 2005 relations as JSON lines (the DyGIE++-style ``ace2005.jsonl`` the paper's code reads; ACE is
licensed, so bring your own copy).

One document per line::

    {"doc_key": "CNN_ENG_20030626_193133.8",
     "sentences": [["Ada", "lives", "in", "London", "."], ["She", "works", "for", "Acme", "."]],
     "ner": [[[0, 0, "PER"], [3, 3, "GPE"]], [[5, 5, "PER"], [8, 8, "ORG"]]],
     "relations": [[[0, 0, 3, 3, "PHYS"]], [[5, 5, 8, 8, "ORG-AFF"]]]}

- ``sentences``: the document's sentences as token lists;
- ``relations``: one list per sentence of ``[head start, head end, tail start, tail end, type]``; token
  indices count from the start of the *document* and ends are *inclusive*;
- ``ner`` (optional): one list per sentence of ``[start, end, type]``, indexed the same way; the mentions
  are read as untyped relation arguments unless ``entity_types=True``, which imports their types as well.
- other keys (``doc_key``, ``clusters``, ``events`` …) are allowed; ``doc_key`` becomes the ``source``.

Each sentence becomes one ``Sentence`` (tokens joined by single spaces); ``meta = {"line": n}``. Every
problem raises ``DataFormatError(path, problem, line)`` naming the sentence.

``write_ace`` writes one document per source (its sentences in order), with ``ner`` for typed mentions.
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
    Document,
    PathLike,
    pack,
    sentence_list,
    token_spans,
    unpack,
)
from conpet.data.example import Span
from conpet.data.jsonl import Sentence


def read_ace(path: PathLike, entity_types: bool = False) -> list[Sentence]:
    """Read an ACE 2005 relation JSONL file (see the module docstring)."""
    text = read_text(path)
    default_source = Path(path).name
    out: list[Sentence] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", lineno) from None
        try:
            out.extend(_document(doc, default_source, lineno, entity_types))
        except ValueError as exc:
            raise DataFormatError(path, str(exc), lineno) from None
    if not out:
        raise DataFormatError(path, "no documents in the file")
    return out


def _document(doc: Any, default_source: str, lineno: int, entity_types: bool) -> list[Sentence]:
    if not isinstance(doc, dict) or not isinstance(doc.get("sentences"), list):
        raise ValueError("each line is a document object with 'sentences' and 'relations'")
    sentences = doc["sentences"]
    relations = doc.get("relations", [[] for _ in sentences])
    ner = doc.get("ner", [[] for _ in sentences])
    for key, value in (("relations", relations), ("ner", ner)):
        if not isinstance(value, list) or len(value) != len(sentences):
            raise ValueError(f"'{key}' must hold one list per sentence ({len(sentences)})")
    source = str(doc.get("doc_key") or default_source)
    out: list[Sentence] = []
    offset = 0
    for k, tokens in enumerate(sentences):
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise ValueError(f"sentence {k}: must be a non-empty list of non-empty tokens")
        if not isinstance(ner[k], list) or not isinstance(relations[k], list):
            raise ValueError(f"sentence {k}: its 'ner' and 'relations' entries must be lists")
        tokens = [" ".join(t.split()) for t in tokens]  # white space inside a token: one space
        part = Document(" ".join(tokens), source=source, meta={"line": lineno})
        spans = _SentenceTokens(tokens, offset, k)
        for j, m in enumerate(ner[k]):
            if not (isinstance(m, list) and len(m) == 3 and isinstance(m[2], str) and m[2].strip()):
                raise ValueError(f"sentence {k}, mention {j}: must be [start, end, type]")
            sp = spans.span(m[0], m[1], f"mention {j}")
            if entity_types:
                part.mentions.append((sp, m[2]))
        for j, r in enumerate(relations[k]):
            if not (isinstance(r, list) and len(r) == 5 and isinstance(r[4], str) and r[4].strip()):
                raise ValueError(f"sentence {k}, relation {j}: must be [head start, head end, tail start, "
                                 "tail end, type]")
            head, tail = spans.span(r[0], r[1], f"relation {j} head"), spans.span(r[2], r[3], f"relation {j} tail")
            if head.overlaps(tail):
                raise ValueError(f"sentence {k}, relation {j}: head and tail overlap")
            rel = (part.mention_index(head), part.mention_index(tail), r[4])
            if rel not in part.relations:
                part.relations.append(rel)
        out.extend(pack(part))
        offset += len(tokens)
    return out


class _SentenceTokens:
    """Character spans of document-level, end-inclusive token ranges within one sentence."""

    def __init__(self, tokens: list[str], offset: int, index: int) -> None:
        self.tokens, self.offset, self.index = tokens, offset, index
        self.starts, pos = [], 0
        for t in tokens:
            self.starts.append(pos)
            pos += len(t) + 1

    def span(self, lo: Any, hi: Any, what: str) -> Span:
        first, last = self.offset, self.offset + len(self.tokens) - 1
        if not (is_int(lo) and is_int(hi) and first <= lo <= hi <= last):
            raise ValueError(f"sentence {self.index}, {what}: tokens {lo!r}..{hi!r} are not inside this sentence "
                             f"(document tokens {first}..{last})")
        return Span(self.starts[lo - first], self.starts[hi - first] + len(self.tokens[hi - first]))


def write_ace(path: PathLike, sentences: Iterable[Sentence]) -> int:
    """Write one document line per source (atomically); returns the number of sentences written."""
    by_source: dict[str, list[Document]] = {}
    for doc in unpack(sentence_list(sentences)):
        by_source.setdefault(doc.source or "document", []).append(doc)
    lines, n = [], 0
    for source, docs in by_source.items():
        obj: dict[str, Any] = {"doc_key": source, "sentences": [], "ner": [], "relations": []}
        offset = 0
        for doc in docs:
            cuts = [p for sp, _ in doc.mentions for p in (sp.start, sp.end)]
            spans = token_spans(doc.text, cuts)

            def index(sp: Span, spans=spans, offset=offset) -> tuple[int, int]:
                inside = [i for i, (a, b) in enumerate(spans) if sp.start <= a and b <= sp.end]
                return offset + inside[0], offset + inside[-1]

            obj["sentences"].append([doc.text[a:b] for a, b in spans])
            obj["ner"].append([[*index(sp), t] for sp, t in doc.mentions if t is not None])
            obj["relations"].append([[*index(doc.mentions[h][0]), *index(doc.mentions[t][0]), label]
                                     for h, t, label in doc.relations])
            offset += len(spans)
            n += 1
        lines.append(json.dumps(obj, ensure_ascii=False))
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
    return n
