"""Task sequences and example splits: deterministic, order-independent, in the right proportions."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conpet.core.errors import ConpetError
from conpet.data import (
    Example,
    Span,
    SplitError,
    TaskData,
    build_tasks,
    load_named,
    split_examples,
    split_types_by,
    split_types_explicit,
    split_types_random,
)


def _examples(counts: dict[str, int], group=None) -> list[Example]:
    out = []
    for label, n in counts.items():
        for i in range(n):
            text = f"sentence {i} about {label} here"
            start = text.index(label)
            out.append(
                Example(
                    text=text,
                    spans=(Span(start, start + len(label)),),
                    label=label,
                    kind="entity",
                    group=group(label) if group else None,
                )
            )
    return out


TYPES = [f"type{i:02d}" for i in range(23)]


# ------------------------------------------------------------ split_types_random


def test_random_types_deterministic_and_seed_dependent() -> None:
    a = split_types_random(TYPES, 5, seed=1)
    assert a == split_types_random(list(reversed(TYPES)), 5, seed=1)
    assert a != split_types_random(TYPES, 5, seed=2)
    assert sorted(t for g in a for t in g) == sorted(TYPES)
    assert sorted(len(g) for g in a) == [4, 4, 5, 5, 5]
    assert [len(g) for g in a] == [5, 5, 5, 4, 4]
    assert all(list(g) == sorted(g) for g in a)


def test_random_types_pinned_value() -> None:
    # pins the algorithm (sort, random.Random(seed).shuffle, consecutive chunks): same on any machine
    types = ["a", "b", "c", "d", "e", "f"]
    rng_order = sorted(types)
    random.Random(7).shuffle(rng_order)
    expected = [tuple(sorted(rng_order[0:2])), tuple(sorted(rng_order[2:4])), tuple(sorted(rng_order[4:6]))]
    assert split_types_random(types, 3, seed=7) == expected


@pytest.mark.parametrize(
    ("types", "k", "words"),
    [
        (["a", "b"], 3, "cannot split 2 types into 3"),
        (["a", "b"], 0, "positive"),
        (["a", "a", "b"], 2, "duplicate"),
        ([], 1, "cannot split 0"),
    ],
)
def test_random_types_invalid(types, k, words) -> None:
    with pytest.raises(SplitError, match=words):
        split_types_random(types, k, seed=0)


def test_split_error_is_user_facing_and_value_error() -> None:
    assert issubclass(SplitError, ConpetError) and issubclass(SplitError, ValueError)


# ------------------------------------------------------------ split_types_by / explicit


def test_split_by_group() -> None:
    exs = _examples({"person-actor": 3, "person-other": 3, "art-music": 3}, group=lambda t: t.split("-")[0])
    assert split_types_by(exs) == [("art-music",), ("person-actor", "person-other")]
    by_length = split_types_by(exs, key=lambda e: str(len(e.label)))  # keys "12" < "9"
    assert by_length == [("person-actor", "person-other"), ("art-music",)]


def test_split_by_group_errors() -> None:
    with pytest.raises(SplitError, match="no group"):
        split_types_by(_examples({"a": 2}))
    exs = _examples({"alpha": 2}, group=lambda t: "g1") + _examples({"alpha": 1}, group=lambda t: "g2")
    with pytest.raises(SplitError, match="two groups"):
        split_types_by(exs)
    with pytest.raises(SplitError, match="no examples"):
        split_types_by([])


def test_split_explicit() -> None:
    assert split_types_explicit([["b", "a"], ("c",)]) == [("b", "a"), ("c",)]
    assert split_types_explicit([["a"]], known_types=["a", "b"]) == [("a",)]


@pytest.mark.parametrize(
    ("lists", "words"),
    [
        ([["a"], []], "task 1 has no types"),
        ([["a", "b"], ["c", "a"]], "also in task 0"),
        ([["a", "a"]], "twice in that task"),
        ([], "no tasks"),
        (["ab"], "string"),
        ([["a", ""]], "non-empty"),
    ],
)
def test_split_explicit_invalid(lists, words) -> None:
    with pytest.raises(SplitError, match=words):
        split_types_explicit(lists)


def test_split_explicit_unknown_type() -> None:
    with pytest.raises(SplitError, match="unknown type 'z'"):
        split_types_explicit([["a"], ["z"]], known_types=["a", "b"])


# ------------------------------------------------------------ split_examples


def test_split_examples_proportions() -> None:
    exs = _examples({"a": 100, "b": 10, "c": 37, "d": 3, "e": 2, "f": 1})
    train, valid, test = split_examples(exs, seed=0)

    def count(items, label):
        return sum(e.label == label for e in items)

    assert [count(x, "a") for x in (train, valid, test)] == [80, 10, 10]
    assert [count(x, "b") for x in (train, valid, test)] == [8, 1, 1]
    assert [count(x, "c") for x in (train, valid, test)] == [29, 4, 4]
    assert [count(x, "d") for x in (train, valid, test)] == [1, 1, 1]
    assert [count(x, "e") for x in (train, valid, test)] == [2, 0, 0]
    assert [count(x, "f") for x in (train, valid, test)] == [1, 0, 0]
    ids = [e.id for e in train + valid + test]
    assert len(ids) == len(set(ids)) == len(exs)


def test_split_examples_other_ratios() -> None:
    exs = _examples({"a": 20})
    assert [len(x) for x in split_examples(exs, 0, ratios=(3, 1, 0))] == [15, 5, 0]
    assert [len(x) for x in split_examples(exs, 0, ratios=(1, 1, 2))] == [5, 5, 10]
    for bad in [(8, 1), (0, 1, 1), (8, -1, 1), ("8", 1, 1)]:
        with pytest.raises(SplitError):
            split_examples(exs, 0, ratios=bad)


def test_split_examples_deterministic_and_order_independent() -> None:
    exs = _examples({"a": 50, "b": 31})
    first = split_examples(exs, seed=3)
    shuffled = list(exs)
    random.Random(99).shuffle(shuffled)
    assert split_examples(shuffled, seed=3) == first
    assert split_examples(exs, seed=4) != first
    # a type's split does not depend on which other types are present
    only_a = split_examples([e for e in exs if e.label == "a"], seed=3)
    assert only_a == tuple([e for e in part if e.label == "a"] for part in first)


def test_split_examples_duplicate_ids() -> None:
    (ex,) = _examples({"a": 1})
    with pytest.raises(SplitError, match="duplicate example id"):
        split_examples([ex, ex], seed=0)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(1, 60), min_size=1), st.integers(0, 10**6))
def test_split_examples_property(counts, seed) -> None:
    exs = _examples(counts)
    train, valid, test = split_examples(exs, seed)
    assert sorted(e.id for e in train + valid + test) == sorted(e.id for e in exs)
    for label, n in counts.items():
        nv = sum(e.label == label for e in valid)
        nt = sum(e.label == label for e in test)
        ntr = n - nv - nt
        if n >= 3:
            assert nv >= 1 and nt >= 1 and ntr >= 1
            assert abs(nv - n / 10) <= 1 and abs(nt - n / 10) <= 1
        else:
            assert ntr == n


# ------------------------------------------------------------ build_tasks


def test_build_tasks() -> None:
    exs = _examples({"a": 20, "b": 10, "c": 10, "unused": 5})
    tasks = build_tasks(exs, [["b", "a"], ["c"]], seed=1)
    assert [t.index for t in tasks] == [0, 1]
    assert tasks[0].types == ("b", "a") and tasks[1].types == ("c",)
    assert isinstance(tasks[0], TaskData)
    assert {e.label for e in tasks[0].train + tasks[0].valid + tasks[0].test} == {"a", "b"}
    assert (len(tasks[0].train), len(tasks[0].valid), len(tasks[0].test)) == (24, 3, 3)
    assert all(e.label != "unused" for t in tasks for e in t.train + t.valid + t.test)
    assert build_tasks(list(reversed(exs)), [["b", "a"], ["c"]], seed=1) == tasks
    with pytest.raises(dataclasses.FrozenInstanceError):
        tasks[0].index = 3  # type: ignore[misc]
    with pytest.raises(SplitError, match="no examples for type"):
        build_tasks(exs, [["a"], ["nope"]], seed=1)
    with pytest.raises(SplitError, match="also in task 0"):
        build_tasks(exs, [["a"], ["a"]], seed=1)


def test_dataset_tasks_from_file(fixtures_dir: Path) -> None:
    ds = load_named(fixtures_dir / "data" / "fewnerd_small.txt")
    assert ds.default_tasks("coarse") == [
        ("building-library", "building-other"),
        ("location-GPE",),
        ("person-actor", "person-other"),
    ]
    tasks = ds.tasks(2, seed=0)
    assert sorted(t for task in tasks for t in task.types) == ds.types
    with pytest.raises(ConpetError, match="unknown task split"):
        ds.default_tasks("fine")


@pytest.mark.shared_data
def test_paper_sequences_on_shared_data(shared_data: Path) -> None:
    ds = load_named("fewrel80", shared_data)
    tasks = ds.tasks(seed=0)
    assert len(tasks) == 10 and all(len(t.types) == 8 for t in tasks)
    assert tasks == load_named("fewrel80", shared_data).tasks(seed=0)
    total = sum(len(t.train) + len(t.valid) + len(t.test) for t in tasks)
    assert total == 14409
    n_valid = sum(len(t.valid) for t in tasks)
    assert abs(n_valid - 14409 / 10) < 80
