"""Project prediction keeps to the relation types' declared head and tail entity types.

The restriction is applied at prediction, not learnt: the model scores a pair over every relation type as
trained, then a type whose lists refuse the pair's head or tail entity type (the gold mention's type on
that span, else the type this prediction pass gives the span) is taken out. When the top label is
refused, the best allowed type among the routed expert's scores takes its place, with the expert's scores
renormalised over the allowed types; when the expert has no allowed type, the pair gets no prediction.
An argument with no known entity type is not restricted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from conpet.data.example import Example, Span
from conpet.store.records import TypeRecord

SpanKey = tuple[int, Span]  # (sentence id, span)


def fit_argument_types(project: Any, examples: Sequence[Example], preds: Sequence[Any]) -> list[Any]:
    """``preds`` (labels by today's type names) with the relation predictions that the declared
    argument types refuse relabelled or left out (see the module docstring)."""
    types = project.types.list()
    relations = {t.name: t for t in types if t.kind == "relation"}
    if not any(t.head_type_ids or t.tail_type_ids for t in relations.values()):
        return list(preds)
    by_id = {e.id: e for e in examples}
    typed = _entity_types(project, by_id, preds, {t.name: t.id for t in types if t.kind == "entity"})
    out = []
    for p in preds:
        ex = by_id.get(p.example_id)
        if ex is None or ex.kind != "relation":
            out.append(p)
            continue
        sid = int(ex.meta["sentence_id"])
        head, tail = typed.get((sid, ex.spans[0])), typed.get((sid, ex.spans[1]))
        fitted = _fitted(p, relations, head, tail)
        if fitted is not None:
            out.append(fitted)
    return out


def _fits(t: TypeRecord | None, head: int | None, tail: int | None) -> bool:
    return t is not None and t.allows("head", head) and t.allows("tail", tail)


def _fitted(p: Any, relations: dict[str, TypeRecord], head: int | None, tail: int | None) -> Any | None:
    if _fits(relations.get(p.label), head, tail):
        return p
    allowed = {k: v for k, v in p.expert_scores.items() if _fits(relations.get(k), head, tail)}
    total = sum(allowed.values())
    if not allowed or total <= 0:
        return None
    scores = {k: v / total for k, v in allowed.items()}
    label = max(scores, key=scores.__getitem__)
    return dataclasses.replace(p, label=label, score=scores[label], expert_scores=scores)


def _entity_types(project: Any, by_id: dict[str, Example], preds: Sequence[Any],
                  entity_ids: dict[str, int]) -> dict[SpanKey, int]:
    """(sentence, span) -> entity type id: the gold mention's, else this pass's prediction for the span."""
    out: dict[SpanKey, int] = {}
    for p in preds:
        ex = by_id.get(p.example_id)
        if ex is not None and ex.kind == "entity" and p.label in entity_ids:
            out[(int(ex.meta["sentence_id"]), ex.spans[0])] = entity_ids[p.label]
    sentence_ids = sorted({int(e.meta["sentence_id"]) for e in by_id.values() if e.kind == "relation"})
    for chunk in range(0, len(sentence_ids), 500):
        for sid, anns in project.annotations.for_sentences(sentence_ids[chunk:chunk + 500],
                                                           statuses=("gold",)).items():
            for a in anns:
                if a.kind == "entity":
                    out[(sid, a.spans[0])] = a.type_id
    return out
