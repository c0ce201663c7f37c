"""Entity and relation types never share a label space: in a model that learnt both kinds, every method
scores an entity example over entity types only and a relation pair over relation types only, in training
and in prediction (issue 13, defect 3)."""

from __future__ import annotations

import pytest
from demo_data import DEMO

from conpet.core.config import TrainConfig
from conpet.core.errors import ConpetError
from conpet.data.jsonl import read_jsonl
from conpet.data.tasks import TaskData, split_examples
from conpet.methods.base import MASKED_LOGIT
from conpet.methods.registry import load_method, make_method, method_names
from conpet.model.logit_cache import MemoryLogitCache

# Two tasks, each holding an entity type and a relation type: the worst case for a shared label space.
TASK_TYPES = (("Person", "works_for"), ("City", "born_in"))
KINDS = {"Person": "entity", "City": "entity", "works_for": "relation", "born_in": "relation"}
CONFIG = TrainConfig(lr=3e-3, batch_limit=3, max_epochs=1, seed=1, eval_batch_size=64, min_valid_per_task=2,
                     memory_per_type=2)


@pytest.fixture(scope="module")
def tasks() -> list[TaskData]:
    left = dict.fromkeys(KINDS, 9)
    chosen = []
    for ex in read_jsonl(DEMO):
        if left.get(ex.label, 0) > 0:
            left[ex.label] -= 1
            chosen.append(ex)
    out = []
    for k, types in enumerate(TASK_TYPES):
        train, valid, test = split_examples([ex for ex in chosen if ex.label in types], seed=1)
        out.append(TaskData(k, types, train, valid, test))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", method_names())
def test_every_method_scores_an_example_only_over_types_of_its_kind(name, tiny_bert, tasks, tmp_path):
    method = make_method(name, tiny_bert, CONFIG, cache=MemoryLogitCache())
    for k, task in enumerate(tasks):
        method.learn_task(task, tasks[:k])
    examples = [ex for t in tasks for ex in (*t.train, *t.test)]
    assert {ex.kind for ex in examples} == {"entity", "relation"}
    method.save(tmp_path / "model")
    restored = load_method(tmp_path / "model", tiny_bert, cache=MemoryLogitCache())
    for m in (method, restored):
        for ex, p in zip(examples, m.predict(examples), strict=True):
            assert KINDS[p.label] == ex.kind, f"{name}: a {ex.kind} example predicted as {p.label!r}"
            other = sum(v for t, v in p.expert_scores.items() if KINDS[t] != ex.kind)
            assert other < 1e-6, f"{name}: {other:.3f} of a {ex.kind} example's score on the other kind"
            assert p.expert_scores and {KINDS[t] for t in p.expert_scores} == {ex.kind}


def test_training_logits_mask_the_other_kind(tiny_bert, tasks):
    method = make_method("static", tiny_bert, CONFIG, cache=MemoryLogitCache())
    method.learn_task(tasks[0], [])
    batch = [*tasks[0].train]
    logits = method.module_logits(method.current, batch, grad=True)  # what the loss sees
    for ex, row in zip(batch, logits.detach().tolist(), strict=True):
        for t, v in zip(method.types, row, strict=True):
            assert (v == MASKED_LOGIT) == (KINDS[t] != ex.kind)


def test_an_example_of_a_kind_the_model_never_learnt_is_refused(tiny_bert, tasks):
    entity_only = TaskData(0, ("Person", "City"), [ex for t in tasks for ex in t.train if ex.kind == "entity"],
                           [], [])
    method = make_method("static", tiny_bert, CONFIG.replace(replay=False), cache=MemoryLogitCache())
    method.learn_task(entity_only, [])
    pair = next(ex for t in tasks for ex in t.test if ex.kind == "relation")
    with pytest.raises(ConpetError, match="learnt no relation types"):
        method.predict([pair])
