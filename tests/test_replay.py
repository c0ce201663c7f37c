"""Dynamic replay: batch proportions, hierarchical old sampling, limits, validation sample, determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from conpet.methods.replay import (
    ReplaySampler,
    split_batch,
    validation_sample,
    validation_size,
)


def _items(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_split_batch_ratio():
    assert split_batch(8, 1.0, True) == (4, 4)
    assert split_batch(8, 1.0, False) == (8, 0)
    assert split_batch(8, 3.0, True) == (6, 2)
    assert split_batch(2, 100.0, True) == (1, 1)  # always at least one of each


def test_batches_are_half_new_half_old_and_new_data_covered_once_per_epoch():
    new = _items("n", 20)
    old = [_items("a", 30), _items("b", 30)]
    s = ReplaySampler(new, old, batch_size=8, new_old_ratio=1.0, max_epochs=3, seed=1)
    assert s.plan.batches_per_epoch == 5 and len(s) == 15
    epochs = [list(e) for e in s.epochs()]
    assert [len(e) for e in epochs] == [5, 5, 5]
    for epoch in epochs:
        seen = []
        for batch in epoch:
            assert len(batch) == 8
            news = [x for x in batch if x.startswith("n")]
            assert len(news) == 4
            seen.extend(news)
        assert sorted(seen) == sorted(new)  # each new example exactly once per epoch


def test_first_task_has_no_old_data_and_full_new_batches():
    s = ReplaySampler(_items("n", 20), [], batch_size=8, max_epochs=1, seed=0)
    batches = [b for e in s.epochs() for b in e]
    assert s.plan.n_old == 0 and [len(b) for b in batches] == [8, 8, 4]


def test_old_examples_are_drawn_task_first_then_example():
    # A huge old task and a tiny one get the same share: tasks are picked uniformly first.
    old = [_items("big", 5000), _items("small", 5)]
    s = ReplaySampler(_items("n", 400), old, batch_size=8, max_epochs=5, seed=3)
    olds = Counter(x.rstrip("0123456789") for e in s.epochs() for b in e for x in b if not x.startswith("n"))
    total = olds["big"] + olds["small"]
    assert total == 4 * len(s)
    assert abs(olds["small"] / total - 0.5) < 0.05
    # within a task, examples are uniform: every one of the small task's examples shows up
    small = {x for e in s.epochs() for b in e for x in b if x.startswith("small")}
    assert small == set(old[1])


def test_batch_limit_caps_the_step_and_cuts_the_last_epoch():
    s = ReplaySampler(_items("n", 100), [_items("o", 10)], batch_size=8, max_epochs=10, batch_limit=60, seed=0)
    assert s.plan.batches_per_epoch == 25
    sizes = [len(list(e)) for e in s.epochs()]
    assert sizes == [25, 25, 10] and len(s) == 60
    # without a limit: epochs x batches per epoch
    assert len(ReplaySampler(_items("n", 100), batch_size=8, max_epochs=2)) == 26


def test_step_cost_does_not_grow_with_history():
    new = _items("n", 40)
    few = ReplaySampler(new, [_items("a", 40)], batch_size=8, max_epochs=2, seed=0)
    many = ReplaySampler(new, [_items(f"t{i}_", 40) for i in range(9)], batch_size=8, max_epochs=2, seed=0)
    assert len(few) == len(many)


def test_deterministic_for_a_seed():
    def run(seed: int) -> list[list[str]]:
        s = ReplaySampler(_items("n", 30), [_items("a", 10), _items("b", 50)], batch_size=6, max_epochs=2,
                          seed=seed)
        return [b for e in s.epochs() for b in e]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_validation_sample_is_fixed_balanced_and_capped():
    sets = [_items("a", 100), _items("b", 7), _items("c", 100)]
    v1 = validation_sample(sets, 60, seed=1)
    v2 = validation_sample(sets, 60, seed=1)
    assert v1 == v2
    assert [len(v) for v in v1] == [20, 7, 20]
    assert set(v1[0]) <= set(sets[0])
    assert validation_sample(sets, 60, seed=2) != v1
    assert [len(v) for v in validation_sample(sets, 3, seed=1, min_per_task=5)] == [5, 5, 5]


def test_validation_is_a_quarter_of_training_batches():
    assert validation_size(40, 8, 0.25) == 10 * 8
    assert validation_size(1, 8, 0.25) == 8


def test_sampler_needs_new_data():
    with pytest.raises(ValueError):
        ReplaySampler([], [_items("a", 3)])
