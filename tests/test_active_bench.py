"""The active-learning study's plumbing (`conpet bench --protocol active-learning`, issue 23 item 8) on a tiny
real run (minilm, synthetic task): both arms start from the same model, label disjoint pool examples each
round, refresh, and the queue arm takes the top of the Next most useful order."""

from __future__ import annotations

import json

import pytest
import torch
from test_methods import CONFIG, synthetic_tasks

from conpet.bench.active import ACTIVE_JSON, choose, queue_order, run_active_learning, split_pool
from conpet.core.config import ExperimentConfig
from conpet.methods.registry import make_method
from conpet.model.logit_cache import MemoryLogitCache
from conpet.suggest.uncertainty import Scored, balanced_order, most_useful_order, prediction_uncertainty

pytestmark = pytest.mark.slow
TINY = CONFIG.replace(batch_limit=2, max_epochs=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_the_pool_is_task_one_beyond_the_start():
    task = synthetic_tasks()[0]
    first, pool = split_pool(task, 2)
    assert len(first.train) == 2 * len(task.types) and len(pool) == len(task.train) - len(first.train)
    assert not {ex.id for ex in first.train} & {ex.id for ex in pool}
    assert first.test == task.test


def test_both_arms_label_disjoint_examples_and_refresh_each_round(minilm, tmp_path, capsys):
    tasks = synthetic_tasks()
    exp = ExperimentConfig(profile="custom", data="synthetic", train=TINY)
    table = run_active_learning(["dynamic-lda"], [(1, exp, tasks)], minilm, tmp_path, start=2, batch=4, rounds=2,
                                command="test", arms=("queue", "random"))
    doc = json.loads((tmp_path / ACTIVE_JSON).read_text())
    (rec,) = doc["records"]
    queue, rand = rec["arms"]["queue"], rec["arms"]["random"]
    assert queue[0]["W"] == rand[0]["W"]  # the same saved model before any round
    for rows in (queue, rand):
        assert [r["labelled"] for r in rows] == [2 * len(tasks[0].types) + 4 * k for k in range(3)]
        assert all(r["refresh"]["added"] == 4 for r in rows[1:])
        assert all(0 <= r["chosen_wrong"] <= 4 for r in rows[1:])
    assert "queue " in table and "random" in table and doc["table"] == table


def test_the_queue_takes_the_most_doubtful_pool_examples(minilm):
    task = synthetic_tasks()[0]
    first, pool = split_pool(task, 2)
    torch.manual_seed(1)
    method = make_method("dynamic-lda", minilm, TINY, cache=MemoryLogitCache())
    try:
        from conpet.eval.continual import run_continual

        run_continual(method, [first], evaluate_each_step=False)
        order, preds = queue_order(method, pool)
        doubt = [prediction_uncertainty(Scored(i, p.score, p.selector_scores, p.expert_scores))
                 for i, p in enumerate(preds)]
        assert sorted(order) == list(range(len(pool)))
        assert [doubt[i] for i in order] == sorted(doubt, reverse=True)
        chosen, wrong = choose("queue", method, pool, 5, seed=1, round_=1)
        assert [ex.id for ex in chosen] == [pool[i].id for i in order[:5]]
        assert wrong == sum(preds[i].label != pool[i].label for i in order[:5])
        again, _ = choose("random", method, pool, 5, seed=1, round_=1)
        assert [ex.id for ex in again] == [ex.id for ex in choose("random", method, pool, 5, 1, 1)[0]]
        with pytest.raises(ValueError, match="unknown arm"):
            choose("oracle", method, pool, 5, 1, 1)
    finally:
        method._pet.close()


def test_the_balanced_queue_deals_the_doubt_order_over_predicted_types():
    preds = [Scored(1, 0.1, label="A"), Scored(2, 0.2, label="A"), Scored(3, 0.3, label="A"),
             Scored(4, 0.5, label="B"), Scored(5, 0.9, label="C"), Scored(6, 0.6, label="B")]
    assert most_useful_order(range(1, 8), preds) == [1, 2, 3, 4, 6, 5, 7]
    # A (doubt .9) deals first, then B (.5), then C (.1); 7 has no prediction: last
    assert balanced_order(range(1, 8), preds) == [1, 4, 5, 2, 6, 3, 7]
