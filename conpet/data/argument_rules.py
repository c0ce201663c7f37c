"""The relation types' declared head and tail entity types, by name, and how a relation prediction keeps to them.

One rule for a project's prediction (``conpet.project.argument_mask``, rules from the project's types) and
a bundle's (``conpet.bundle.runtime``, rules from its manifest): the model scores a pair over every
relation type as trained, then a type whose lists refuse the pair's head or tail entity type is taken out.
When the top label is refused, the best allowed type among the routed expert's scores takes its place,
with the expert's scores renormalised over the allowed types; when the expert has no allowed type, the
pair gets no prediction. An argument with no known entity type is not restricted, nor is a type with
empty lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArgumentRule:
    """The entity type names a relation type's head and tail may have (empty: any)."""

    head: frozenset[str] = frozenset()
    tail: frozenset[str] = frozenset()

    def allows(self, head: str | None, tail: str | None) -> bool:
        return _allowed(self.head, head) and _allowed(self.tail, tail)

    def to_dict(self) -> dict[str, list[str]]:
        return {"head_types": sorted(self.head), "tail_types": sorted(self.tail)}


def _allowed(names: frozenset[str], entity_type: str | None) -> bool:
    return entity_type is None or not names or entity_type in names


def rule(head: Iterable[str] = (), tail: Iterable[str] = ()) -> ArgumentRule:
    return ArgumentRule(frozenset(head), frozenset(tail))


def restricts_any(rules: Mapping[str, ArgumentRule]) -> bool:
    """Whether any rule restricts anything (a type with empty lists takes any pair)."""
    return any(r.head or r.tail for r in rules.values())


def fit_pair(prediction: Any, rules: Mapping[str, ArgumentRule], head: str | None, tail: str | None) -> Any | None:
    """``prediction`` (an engine ``Prediction`` of a pair whose arguments have the entity types ``head`` and
    ``tail``) kept to ``rules`` (every relation type's name -> its rule): as it is, relabelled to the best
    allowed type, or None (see the module docstring). A label that is no relation type of ``rules`` (a
    suggester's score in ``expert_scores``, a type deleted since) is never chosen."""
    def fits(name: str) -> bool:
        return name in rules and rules[name].allows(head, tail)

    if fits(prediction.label):
        return prediction
    allowed = {k: v for k, v in prediction.expert_scores.items() if fits(k)}
    total = sum(allowed.values())
    if not allowed or total <= 0:
        return None
    scores = {k: v / total for k, v in allowed.items()}
    label = max(scores, key=scores.__getitem__)
    return dataclasses.replace(prediction, label=label, score=scores[label], expert_scores=scores)
