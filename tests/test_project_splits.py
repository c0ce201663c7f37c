"""conpet.project.splits: an example's split depends on its text and spans only and, once decided, never
changes; every type with three examples can be measured."""

from __future__ import annotations

from dataclasses import replace

from conpet.data.example import Example, Span
from conpet.project.splits import assign_splits, split_key, split_task


def person(i: int, label: str = "Person") -> Example:
    text = f"Person number {i} wrote a letter."
    return Example(text, (Span(0, 15 + len(str(i))),), label, "entity")


def test_a_split_ignores_the_label_and_the_input_order():
    exs = [person(i) for i in range(20)]
    splits = assign_splits(exs, {})
    assert assign_splits(list(reversed(exs)), {}) == splits
    renamed = [replace(ex, label="Human", id="") for ex in exs]
    assert {split_key(ex) for ex in renamed} == set(splits)
    train, valid, test = split_task(exs, splits)
    assert (len(train), len(valid), len(test)) == (16, 2, 2)


def test_splits_once_decided_stay_and_new_examples_fill_the_shares():
    first = assign_splits([person(i) for i in range(10)], {})
    later = assign_splits([person(i) for i in range(30)], first)
    assert all(later[k] == v for k, v in first.items())
    counts = {s: list(later.values()).count(s) for s in ("train", "valid", "test")}
    assert counts == {"train": 24, "valid": 3, "test": 3}


def test_small_types():
    assert set(assign_splits([person(0), person(1)], {}).values()) == {"train"}
    assert sorted(assign_splits([person(i) for i in range(3)], {}).values()) == ["test", "train", "valid"]
    two = assign_splits([person(0), person(1)], {})
    assert sorted(assign_splits([person(i) for i in range(3)], two).values()) == ["test", "train", "train"]
