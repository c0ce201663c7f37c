"""The baselines' K-Means episodic memory and the replay-frequency arithmetic (no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conpet.data.example import Example, Span
from conpet.methods.memory import (
    EpisodicMemory,
    conpet_batches,
    default_memory_per_type,
    kmeans_select,
    memory_replay_plan,
)
from conpet.methods.replay import ReplaySampler


def _clustered(n_types: int = 3, clusters: int = 4, per_cluster: int = 5, seed: int = 0):
    """Per type, `clusters` tight, well separated blobs of `per_cluster` points."""
    rng = np.random.default_rng(seed)
    feats, labels, blob = [], [], []
    for t in range(n_types):
        for c in range(clusters):
            centre = rng.normal(size=6) * 20
            for _ in range(per_cluster):
                feats.append(centre + rng.normal(size=6) * 0.1)
                labels.append(f"type{t}")
                blob.append((t, c))
    return np.array(feats), labels, blob


def _examples(labels):
    return [Example(f"sentence {i} about x", (Span(0, 8),), lab, "entity") for i, lab in enumerate(labels)]


def test_default_memory_per_type_follows_table_iii_and_scales_with_the_cap():
    assert default_memory_per_type("fewrel80") == 50
    assert default_memory_per_type("fewnerd") == 100
    assert default_memory_per_type("/data/tacred_train.json") == 20
    assert default_memory_per_type("ace2005") == 20
    # same share of a type's training data as in the paper (FewRel: 50 of 560)
    assert default_memory_per_type("fewrel80", 40) == round(40 * 50 / 560) == 4
    assert default_memory_per_type("fewrel16", 16) == 1
    assert default_memory_per_type("fewrel80", 100_000) == 50  # never more than Table III
    assert default_memory_per_type("fewnerd", 10) == 1  # at least one


def test_kmeans_memory_size_per_type():
    feats, labels, _ = _clustered(n_types=3, clusters=4, per_cluster=5)
    # a fourth type with only 2 examples keeps both
    feats = np.vstack([feats, np.full((1, 6), 1.0), np.full((1, 6), 2.0)])
    labels = labels + ["small", "small"]
    idx = kmeans_select(feats, labels, 4, seed=1)
    counts = {lab: sum(1 for i in idx if labels[i] == lab) for lab in set(labels)}
    assert counts == {"type0": 4, "type1": 4, "type2": 4, "small": 2}
    assert len(set(idx)) == len(idx)


def test_kmeans_memory_takes_the_example_nearest_each_centroid():
    feats, labels, blob = _clustered(n_types=2, clusters=4, per_cluster=6)
    idx = kmeans_select(feats, labels, 4, seed=3)
    # one example from every blob of every type (the centroids sit on the blobs)
    assert sorted(blob[i] for i in idx) == [(t, c) for t in range(2) for c in range(4)]
    for i in idx:
        rows = [j for j in range(len(labels)) if blob[j] == blob[i]]
        centre = feats[rows].mean(axis=0)
        nearest = min(rows, key=lambda j: np.linalg.norm(feats[j] - centre))
        assert i == nearest


def test_kmeans_memory_is_deterministic_for_a_seed():
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(60, 5))
    labels = [f"t{i % 3}" for i in range(60)]
    a = kmeans_select(feats, labels, 5, seed=11)
    b = kmeans_select(feats.copy(), list(labels), 5, seed=11)
    assert a == b
    assert len(a) == 15


def test_kmeans_memory_rejects_bad_input():
    with pytest.raises(ValueError):
        kmeans_select(np.zeros((3, 2)), ["a", "b"], 1, seed=0)
    with pytest.raises(ValueError):
        kmeans_select(np.zeros((2, 2)), ["a", "b"], 0, seed=0)


def test_episodic_memory_stores_representations_and_round_trips(tmp_path):
    feats, labels, _ = _clustered(n_types=2, clusters=3, per_cluster=4)
    exs = _examples(labels)
    mem = EpisodicMemory(3)
    chosen = mem.add_task(exs, feats, seed=0)
    assert len(chosen) == len(mem) == 6
    assert mem.task_examples() == [chosen]
    np.testing.assert_allclose(mem.stored(chosen), feats[[exs.index(e) for e in chosen]], rtol=1e-6)
    snapshot = mem.copy()
    mem.add_task(exs[:2], feats[:2] + 1, seed=0)
    assert len(mem.tasks) == 2 and len(snapshot.tasks) == 1
    mem.save(tmp_path / "m")
    back = EpisodicMemory.load(tmp_path / "m")
    assert back.per_type == 3
    assert [[e.id for e in t] for t in back.tasks] == [[e.id for e in t] for t in mem.tasks]
    np.testing.assert_allclose(back.stored(back.examples()), mem.stored(mem.examples()))


def test_replay_frequency_arithmetic_by_hand():
    # 320 new examples, 32 memorised, batch 8 at 1:1 (4 new + 4 memorised), 2 epochs, no binding limit
    p = memory_replay_plan(320, 32, batch_size=8, new_old_ratio=1.0, max_epochs=2, batch_limit=None)
    assert (p.n_new, p.n_old) == (4, 4)
    assert p.conpet_batches == p.batches == 2 * 320 // 4 == 160
    assert p.memory_draws == 640
    assert p.replays_per_example == 20.0
    # the batch number limit binds: ConPET trains 100 batches, so does the baseline
    p = memory_replay_plan(320, 32, batch_size=8, new_old_ratio=1.0, max_epochs=2, batch_limit=100)
    assert p.batches == p.conpet_batches == 100 and p.memory_draws == 400 and p.replays_per_example == 12.5
    # 3:1 -> 6 new + 2 memorised per batch; ceil(320 / 6) = 54 batches an epoch
    p = memory_replay_plan(320, 10, batch_size=8, new_old_ratio=3.0, max_epochs=2, batch_limit=None)
    assert (p.n_new, p.n_old, p.batches, p.memory_draws) == (6, 2, 108, 216)
    assert p.replays_per_example == pytest.approx(21.6)
    # first task: nothing to replay, whole batches of new data
    p = memory_replay_plan(320, 0, batch_size=8, new_old_ratio=1.0, max_epochs=2, batch_limit=None)
    assert (p.n_new, p.n_old, p.batches, p.memory_draws, p.replays_per_example) == (8, 0, 80, 0, 0.0)
    with pytest.raises(ValueError):
        memory_replay_plan(0, 3, batch_size=8, new_old_ratio=1.0, max_epochs=1, batch_limit=None)


@pytest.mark.parametrize("n,limit,ratio,epochs", [(320, None, 1.0, 2), (321, 50, 1.0, 10), (17, None, 0.5, 3),
                                                  (1000, 4000, 1.0, 10), (5, 1, 2.0, 4)])
def test_replay_plan_matches_the_engines_sampler(n, limit, ratio, epochs):
    """The baseline never trains fewer batches than ConPET's dynamic replay on the same task."""
    new = list(range(n))
    old = [list(range(100, 140)), list(range(200, 260))]
    sampler = ReplaySampler(new, old, batch_size=8, new_old_ratio=ratio, batch_limit=limit, max_epochs=epochs)
    plan = memory_replay_plan(n, 12, batch_size=8, new_old_ratio=ratio, max_epochs=epochs, batch_limit=limit)
    assert plan.conpet_batches == len(sampler) == conpet_batches(
        n, has_old=True, batch_size=8, new_old_ratio=ratio, max_epochs=epochs, batch_limit=limit)
    assert plan.batches >= len(sampler)
    assert plan.memory_draws == plan.batches * sampler.plan.n_old
    assert math.isclose(plan.replays_per_example, plan.memory_draws / 12)
