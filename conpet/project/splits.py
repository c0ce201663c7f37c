"""Fixed train / valid / test splits of a project's examples.

A project's test examples must never have been trained on, so an example's split is decided the first
time a training step sees it and never changes afterwards: not when annotations are added, not when a
type is renamed or an annotation relabelled, not with another ``--seed``. The key of an example is a hash
of its text and spans only (``split_key``: no label, no type name), and the splits decided so far travel
with the model (``training.json``'s ``"splits"``), so every later step starts from them.

A new example goes, per type, to the split furthest below its share of that type's examples (8:1:1),
taking new examples in the order of their keys (a hash: no seed, no input order). A type's first three
examples go to train, test and valid, so that every type with three examples can be measured; a type
first seen with fewer than three examples trains on all of them (as ``conpet.data.tasks.split_examples``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from conpet.data.example import Example, example_id

SPLITS = ("train", "valid", "test")
RATIOS = (8, 1, 1)
# Who goes first when a type has none of a split yet: train to learn from, test to measure, valid to choose
# the best epoch.
_FIRST = ("train", "test", "valid")


def split_key(example: Example) -> str:
    """The example's identity for splitting: its text and spans, without the label."""
    return example_id(example.text, example.spans, "", "")


def assign_splits(examples: Iterable[Example], fixed: Mapping[str, str]) -> dict[str, str]:
    """``fixed`` (key -> split) extended with a split for every example whose key it does not hold yet."""
    out = dict(fixed)
    new_by_type: dict[str, dict[str, Example]] = defaultdict(dict)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        key = split_key(ex)
        if key in out:
            counts[ex.label][out[key]] += 1
        else:
            new_by_type[ex.label].setdefault(key, ex)
    for label in sorted(new_by_type):
        have = counts[label]
        keys = sorted(new_by_type[label])
        if not have and len(keys) < 3:
            out.update(dict.fromkeys(keys, "train"))
            continue
        for key in keys:
            if key in out:  # the same text and spans under two types: one split for both
                continue
            split = _next_split(have)
            out[key] = split
            have[split] += 1
    return out


def _next_split(have: Mapping[str, int]) -> str:
    for split in _FIRST:
        if have.get(split, 0) == 0:
            return split
    n = sum(have.values()) + 1
    total = sum(RATIOS)
    deficit = {s: r * n / total - have.get(s, 0) for s, r in zip(SPLITS, RATIOS, strict=True)}
    return max(SPLITS, key=lambda s: deficit[s])  # ties: the first in SPLITS order


def split_task(examples: Sequence[Example], splits: Mapping[str, str]
               ) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, valid, test) of ``examples`` by ``splits`` (which must hold every example's key), ordered by
    label, then key: the same lists whatever order the store returned the examples in."""
    parts: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in sorted(examples, key=lambda e: (e.label, split_key(e), e.id)):
        parts[splits[split_key(ex)]].append(ex)
    return parts["train"], parts["valid"], parts["test"]
