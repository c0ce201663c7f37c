"""Ablation "w/o selector" (CONPET.md, Table VII): Dynamic ConPET with every expert active for every
example (t = k), so no selector is trained or consulted. The new expert starts fresh (there is no
selector to copy) and, since it is active on old examples too, replayed examples train it to stay low
on other tasks' inputs. Prediction costs one pass per expert (frozen experts' logits are cached)."""

from __future__ import annotations

from conpet.methods.dynamic import DynamicConPET
from conpet.methods.registry import register_method


@register_method("dynamic-nosel", aliases=("nosel", "dynamic-no-selector", "wo-selector", "w/o-selector"))
class DynamicNoSelector(DynamicConPET):
    name = "dynamic-nosel"
    description = "Dynamic ConPET without the selector (every expert active on every input; an ablation)"
    use_selector = False
    new_labels = "none"
    new_labels_text = ("never learns labels added to learnt types: with no selector, nothing replays them, and old "
                       "experts never retrain")
