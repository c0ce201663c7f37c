"""Dynamic ConPET with a type-level selector (our variant, not in the paper): the selector is trained
on the types themselves instead of task ids, its head growing by each new task's types, and a task's
routing score is the log-sum-exp of its types' scores (the softmax over tasks is then the probability
mass of each task's types). Everything else is Dynamic ConPET: dimension expansion, replay, the batch
limit, one expert per task initialised from the selector, top-t routing with teacher forcing.

Why: with a small budget a selector that only ever sees task ids must learn an arbitrary grouping of
types, which is harder than the types themselves; the type labels carry more signal for the same
batches. `dynamic --set selector_labels=type` is the same model."""

from __future__ import annotations

from typing import Any

from conpet.methods.dynamic import DynamicConPET
from conpet.methods.registry import register_method


@register_method("dynamic-typesel", aliases=("dynamic-type-selector", "typesel"))
class DynamicTypeSelector(DynamicConPET):
    name = "dynamic-typesel"
    description = ("Dynamic ConPET whose trained selector learns the types themselves (a task scores the "
                   "log-sum-exp of its types)")
    # the selector and the experts read the markers: measured better than [MASK] alone (README, issue 12)
    default_representation = "markers"
    selector_labels = "type"
    in_projects = True

    def __init__(self, backbone: Any, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(backbone, config.replace(selector_labels=self.selector_labels), *args, **kwargs)
