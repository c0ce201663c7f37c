"""TACRED and Re-TACRED JSON (relation classification; the two share one layout).

The file is a JSON list of examples::

    {"id": "e7798fb926b9403cfcd2", "docid": "APW_ENG_20101103.0539", "relation": "per:title",
     "token": ["At", "the", "same", "time", ",", "Chief", "Financial", "Officer", "Douglas", "Flint", ...],
     "subj_start": 8, "subj_end": 9, "obj_start": 5, "obj_end": 7,
     "subj_type": "PERSON", "obj_type": "TITLE", "stanford_pos": [...], ...}

``subj_*`` is the head, ``obj_*`` the tail; token indices are 0-based and *inclusive*. Each example becomes
one sentence (the tokens joined by single spaces, the bracket tokens ``-LRB-`` ``-RRB-`` ``-LSB-`` ``-RSB-``
``-LCB-`` ``-RCB-`` written as ``( ) [ ] { }``) with two mentions and one relation. ``no_relation`` is
TACRED's label for a pair with none of the relations: ``no_relation="keep"`` (the default) keeps those
examples as the type ``no_relation`` (the benchmark scores them as a class); ``"drop"`` keeps the sentence
but not the pair. The mentions are untyped; ``subj_type`` / ``obj_type`` go to ``meta`` (with ``id`` and
``docid``), or become entity types with ``entity_types=True``. ``source`` is the file name. Other keys
(``stanford_*``) are ignored. Every problem raises ``DataFormatError(path, problem, line)`` naming the
example.

``write_tacred`` writes one example per relation (a sentence with several relations gives several
examples; a sentence with none gives nothing): tokens are the text's words split at mention boundaries,
``subj_type`` / ``obj_type`` come from ``meta``, else the mention's entity type, else ``"MISC"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import is_int, read_json
from conpet.data.documents import PathLike, sentence_list, token_spans
from conpet.data.jsonl import Entity, Relation, Sentence

NO_RELATION = "no_relation"
NO_RELATION_MODES = ("keep", "drop")
_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


def read_tacred(path: PathLike, no_relation: str = "keep", entity_types: bool = False) -> list[Sentence]:
    """Read a TACRED / Re-TACRED JSON file (see the module docstring)."""
    if no_relation not in NO_RELATION_MODES:
        raise DataFormatError(path, f"no_relation must be one of {', '.join(NO_RELATION_MODES)}")
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, "expected a JSON list of TACRED examples", 1)
    source = Path(path).name
    out: list[Sentence] = []
    for n, item in enumerate(data):
        try:
            out.append(_sentence(item, source, no_relation, entity_types))
        except ValueError as exc:
            eid = item.get("id") if isinstance(item, dict) else None
            name = f"example {n}" + (f" (id {eid})" if eid else "")
            raise DataFormatError(path, f"{name}: {exc}") from None
    if not out:
        raise DataFormatError(path, "no examples in the file")
    return out


def _sentence(item: Any, source: str, no_relation: str, entity_types: bool) -> Sentence:
    if not isinstance(item, dict):
        raise ValueError("an example is an object with token, relation, subj_start … obj_end")
    for key in ("token", "relation", "subj_start", "subj_end", "obj_start", "obj_end"):
        if key not in item:
            raise ValueError(f"missing key {key!r}")
    tokens = item["token"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
        raise ValueError("'token' must be a non-empty list of non-empty strings")
    words = [_BRACKETS.get(t, " ".join(t.split())) for t in tokens]  # white space inside a token: one space
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    spans = []
    for role in ("subj", "obj"):
        lo, hi = item[f"{role}_start"], item[f"{role}_end"]
        if not (is_int(lo) and is_int(hi) and 0 <= lo <= hi < len(words)):
            raise ValueError(f"{role}_start..{role}_end must be token indices with start <= end < "
                             f"{len(words)}, got {lo!r}..{hi!r}")
        spans.append((starts[lo], starts[hi] + len(words[hi])))
    if spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]:
        raise ValueError("the subject and object tokens overlap")
    relation = item["relation"]
    if not isinstance(relation, str) or not relation.strip():
        raise ValueError("'relation' must be a non-empty string")
    meta = {k: item[k] for k in ("id", "docid", "subj_type", "obj_type") if isinstance(item.get(k), str)}
    types = [item.get("subj_type"), item.get("obj_type")] if entity_types else [None, None]
    types = [t if isinstance(t, str) and t.strip() else None for t in types]
    entities = (Entity(*spans[0], types[0]), Entity(*spans[1], types[1]))
    relations = () if relation == NO_RELATION and no_relation == "drop" else (Relation(0, 1, relation),)
    if not relations and not entity_types:
        entities = ()
    return Sentence(" ".join(words), entities, relations, id=str(item.get("id") or ""), source=source, meta=meta)


def write_tacred(path: PathLike, sentences: Iterable[Sentence]) -> int:
    """Write one TACRED example per relation (atomically); returns the number of examples."""
    examples: list[dict] = []
    for s in sentence_list(sentences):
        for k, r in enumerate(s.relations):
            examples.append(_example(s, r, k, len(examples)))
    write_text_atomic(path, "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in examples) + "\n]\n")
    return len(examples)


def _example(s: Sentence, r: Relation, k: int, n: int) -> dict:
    head, tail = s.entities[r.head], s.entities[r.tail]
    spans = token_spans(s.text, (head.start, head.end, tail.start, tail.end))

    def index(e: Entity) -> tuple[int, int]:
        inside = [i for i, (a, b) in enumerate(spans) if e.start <= a and b <= e.end]
        return inside[0], inside[-1]

    (hs, he), (ts, te) = index(head), index(tail)
    own_id = s.meta.get("id") if len(s.relations) == 1 else None
    return {
        "id": own_id or (f"{s.id}-{k}" if s.id else f"conpet-{n}"),
        "docid": s.meta.get("docid", s.source),
        "relation": r.type,
        "token": [s.text[a:b] for a, b in spans],
        "subj_start": hs, "subj_end": he, "obj_start": ts, "obj_end": te,
        "subj_type": s.meta.get("subj_type") or head.type or "MISC",
        "obj_type": s.meta.get("obj_type") or tail.type or "MISC",
    }
