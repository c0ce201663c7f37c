"""Project prediction keeps to the relation types' declared head and tail entity types
(``conpet.data.argument_rules``: the rule, shared with bundle prediction).

The restriction is applied at prediction, not learnt. A pair's head (tail) entity type is the gold
mention's type on that span, else the type this prediction pass gives the span.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conpet.data.argument_rules import ArgumentRule, fit_pair, restricts_any, rule
from conpet.data.example import Example, Span

SpanKey = tuple[int, Span]  # (sentence id, span)


def project_rules(project: Any) -> dict[str, ArgumentRule]:
    """Every relation type of the project (today's names) -> the entity type names its head and tail take."""
    types = project.types.list()
    names = {t.id: t.name for t in types if t.kind == "entity"}
    return {t.name: rule((names[i] for i in t.head_type_ids if i in names),
                         (names[i] for i in t.tail_type_ids if i in names))
            for t in types if t.kind == "relation"}


def fit_argument_types(project: Any, examples: Sequence[Example], preds: Sequence[Any]) -> list[Any]:
    """``preds`` (labels by today's type names) with the relation predictions that the declared
    argument types refuse relabelled or left out."""
    rules = project_rules(project)
    if not restricts_any(rules):
        return list(preds)
    by_id = {e.id: e for e in examples}
    typed = _entity_types(project, by_id, preds)
    out = []
    for p in preds:
        ex = by_id.get(p.example_id)
        if ex is None or ex.kind != "relation":
            out.append(p)
            continue
        sid = int(ex.meta["sentence_id"])
        fitted = fit_pair(p, rules, typed.get((sid, ex.spans[0])), typed.get((sid, ex.spans[1])))
        if fitted is not None:
            out.append(fitted)
    return out


def _entity_types(project: Any, by_id: dict[str, Example], preds: Sequence[Any]) -> dict[SpanKey, str]:
    """(sentence, span) -> entity type name: the gold mention's, else this pass's prediction for the span."""
    out: dict[SpanKey, str] = {}
    for p in preds:
        ex = by_id.get(p.example_id)
        if ex is not None and ex.kind == "entity":
            out[(int(ex.meta["sentence_id"]), ex.spans[0])] = p.label
    sentence_ids = sorted({int(e.meta["sentence_id"]) for e in by_id.values() if e.kind == "relation"})
    for chunk in range(0, len(sentence_ids), 500):
        for sid, anns in project.annotations.for_sentences(sentence_ids[chunk:chunk + 500],
                                                           statuses=("gold",)).items():
            for a in anns:
                if a.kind == "entity":
                    out[(sid, a.spans[0])] = a.type_name
    return out
