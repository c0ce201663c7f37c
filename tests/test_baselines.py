"""The paper's baselines, adapted methods and ablations (issue 4): the alignment layer, CRL's losses and
prototypes, Limitless's sampler, and a tiny run of every new method through the runner."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from conpet.methods.crl import (
    class_prototypes,
    distillation_loss,
    prototype_scores,
    supervised_contrastive_loss,
)
from conpet.methods.ea_emr import fit_alignment
from conpet.methods.limitless import FullHistorySampler
from conpet.methods.registry import TABLE_IV_METHODS, canonical_name, expand_methods, method_class

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo" / "demo.jsonl"

# --- EA-EMR: the alignment layer ------------------------------------------------------------------


def test_alignment_layer_reduces_drift_on_a_toy_case():
    """Stored representations Y; after 'training', the same examples come out as a linear distortion
    of Y plus noise. The fitted layer maps current representations back onto stored ones, also for
    examples it was not fitted on."""
    rng = np.random.default_rng(0)
    d = 8
    y = rng.normal(size=(80, d))
    drift = np.eye(d) + 0.5 * rng.normal(size=(d, d))
    x = y @ drift.T + 0.3 + 0.01 * rng.normal(size=(80, d))
    w, b = fit_alignment(x[:60], y[:60], np.eye(d), np.zeros(d), ridge=1e-3)
    before = np.linalg.norm(x[60:] - y[60:], axis=1).mean()
    after = np.linalg.norm(x[60:] @ w.T + b - y[60:], axis=1).mean()
    assert after < 0.1 * before


def test_alignment_stays_at_the_prior_where_the_memory_says_nothing():
    rng = np.random.default_rng(1)
    d = 6
    prior_w, prior_b = np.eye(d) * 2.0, np.full(d, 0.5)
    # the memory only spans the first two dimensions
    x = np.zeros((30, d))
    x[:, :2] = rng.normal(size=(30, 2))
    y = x @ prior_w.T + prior_b
    y[:, :2] += 1.0  # drift along what the memory covers
    w, b = fit_alignment(x, y, prior_w, prior_b, ridge=1e-3)
    np.testing.assert_allclose(w[:, 2:], prior_w[:, 2:], atol=1e-6)  # unseen directions untouched
    # a huge ridge keeps the prior everywhere
    w2, b2 = fit_alignment(x, y, prior_w, prior_b, ridge=1e9)
    np.testing.assert_allclose(w2, prior_w, atol=1e-4)
    np.testing.assert_allclose(b2, prior_b, atol=1e-4)


# --- CRL: losses and prototypes, hand-computed -----------------------------------------------------


def test_supervised_contrastive_loss_by_hand():
    # z1 = z2 = e1 (label a), z3 = e2 (label b), tau = 1:
    # anchor 1: positive 2 (sim 1), others {2: 1, 3: 0} -> -(1 - log(e + 1)); anchor 2 the same;
    # anchor 3 has no positive and is skipped.
    f = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # normalised inside
    labels = torch.tensor([0, 0, 1])
    loss = supervised_contrastive_loss(f, labels, temperature=1.0)
    assert float(loss) == pytest.approx(math.log(math.e + 1) - 1, abs=1e-6)
    # tau = 0.5: sims double -> log(e^2 + 1) - 2
    loss = supervised_contrastive_loss(f, labels, temperature=0.5)
    assert float(loss) == pytest.approx(math.log(math.e**2 + 1) - 2, abs=1e-6)


def test_supervised_contrastive_loss_uses_the_bank_and_handles_no_positive():
    f = torch.tensor([[1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0])
    zero = supervised_contrastive_loss(f, labels, temperature=1.0)
    assert float(zero.detach()) == 0.0 and zero.requires_grad
    # bank: e1 (a) is a positive, e2 (b) a negative -> log(e + 1) - 1 again
    bank = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    loss = supervised_contrastive_loss(f, labels, temperature=1.0, bank_features=bank,
                                       bank_labels=torch.tensor([0, 1]))
    assert float(loss.detach()) == pytest.approx(math.log(math.e + 1) - 1, abs=1e-6)
    loss.backward()
    assert f.grad is not None


def test_distillation_loss_by_hand():
    teacher = torch.tensor([[0.0, 0.0]])  # uniform
    student = torch.tensor([[math.log(3.0), 0.0]])  # (3/4, 1/4)
    # KL(u || s) = 1/2 log((1/2)/(3/4)) + 1/2 log((1/2)/(1/4)) = 1/2 log(4/3)
    assert float(distillation_loss(student, teacher, temperature=1.0)) == pytest.approx(0.5 * math.log(4 / 3))
    # T = 2: s = softmax([log 3 / 2, 0]) = (r, 1) / (r + 1), r = sqrt 3; times T^2 = 4
    r = math.sqrt(3.0)
    kl = 0.5 * math.log(0.5 * (r + 1) / r) + 0.5 * math.log(0.5 * (r + 1))
    assert float(distillation_loss(student, teacher, temperature=2.0)) == pytest.approx(4 * kl)
    same = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    assert float(distillation_loss(same, same)) == pytest.approx(0.0, abs=1e-7)


def test_prototype_prediction():
    feats = np.array([[1.0, 0.1], [3.0, -0.3], [0.0, 2.0], [0.2, 1.0]])
    protos = class_prototypes(feats, ["a", "a", "b", "b"], ["a", "b", "c"])
    np.testing.assert_allclose(protos[0], [1.0, 0.0], atol=1e-6)  # mean of normalised rows, normalised
    assert np.allclose(protos[2], 0.0)  # a type without examples
    np.testing.assert_allclose(np.linalg.norm(protos[:2], axis=1), 1.0, rtol=1e-6)
    q = np.array([[10.0, 1.0], [0.5, 4.0], [-1.0, 0.2]])
    s = prototype_scores(q, protos)
    assert s.shape == (3, 3)
    assert list(s.argmax(axis=1)) == [0, 1, 1]
    assert s[0, 0] == pytest.approx(10 / math.sqrt(101), abs=1e-6)  # cosine, independent of scale


# --- Limitless's sampler -----------------------------------------------------------------------------


def test_limitless_epochs_cover_all_history_and_grow_with_it():
    new = [f"n{i}" for i in range(10)]
    small = FullHistorySampler(new, [[f"a{i}" for i in range(10)]], batch_size=8, max_epochs=2, seed=1)
    big = FullHistorySampler(new, [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(30)]],
                             batch_size=8, max_epochs=2, seed=1)
    assert small.plan.batches_per_epoch == 3  # max(ceil(10 / 4), ceil(10 / 4))
    assert big.plan.batches_per_epoch == 10  # ceil(40 / 4): the old data decides
    assert len(big) == 20
    for epoch in big.epochs():
        batches = list(epoch)
        old = [x for b in batches for x in b[4:]]
        assert sorted(old) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(30)])
        assert all(len(b) == 8 and all(x.startswith("n") for x in b[:4]) for b in batches)
    first = FullHistorySampler(new, [], batch_size=8, max_epochs=3, seed=1)
    assert len(first) == 3 * 2  # no history: passes over the new data in whole batches
    again = FullHistorySampler(new, [[f"a{i}" for i in range(10)]], batch_size=8, max_epochs=2, seed=1)
    assert [list(e) for e in small.epochs()] == [list(e) for e in again.epochs()]


# --- names ----------------------------------------------------------------------------------------------


def test_method_names_and_aliases():
    assert expand_methods("all") == list(TABLE_IV_METHODS)
    assert set(TABLE_IV_METHODS) >= {"emr", "ea-emr", "crl", "emr*", "ea-emr*", "crl*", "dynamic",
                                       "dynamic-nosel", "limitless", "sequential", "joint", "full-ft"}
    assert canonical_name("emr-star") == "emr*"
    assert canonical_name("EA-EMR-star") == "ea-emr*"
    assert canonical_name("crl-star") == "crl*"
    assert canonical_name("static") == "static"  # the engine's name still works
    assert expand_methods("dynamic, all ,emr") == ["dynamic"] + [m for m in TABLE_IV_METHODS if m != "dynamic"]
    for name in TABLE_IV_METHODS:
        assert method_class(name).name == name


# --- tiny end-to-end runs (two tasks, two batches a stage; each method runs once per module) ---------------


def _tiny_tasks(per_type: int = 6):
    from conpet.data.jsonl import read_jsonl
    from conpet.data.tasks import TaskData, split_examples

    by = defaultdict(list)
    for ex in read_jsonl(DEMO):
        by[ex.label].append(ex)
    out = []
    for k, types in enumerate((("City", "Person"), ("Company", "Drug"))):
        exs = [e for t in types for e in by[t][:per_type]]
        tr, va, te = split_examples(exs, 1)
        out.append(TaskData(k, types, tr, va, te))
    return out


def _config(**kw):
    from conpet.core.config import TrainConfig

    base = dict(lr=1e-3, batch_limit=2, max_epochs=1, min_valid_per_task=2, eval_batch_size=16, memory_per_type=2)
    return TrainConfig(**{**base, **kw})


def _conpet_batches(task, has_old=True):
    from conpet.methods.memory import conpet_batches

    c = _config()
    return conpet_batches(len(task.train), has_old=has_old, batch_size=c.batch_size,
                          new_old_ratio=c.new_old_ratio, max_epochs=c.max_epochs, batch_limit=c.batch_limit)


@pytest.fixture(scope="module")
def tasks():
    return _tiny_tasks()


@pytest.fixture(scope="module")
def runs(tiny_bert, tasks):
    """name -> (method, RunResult), trained on first use; modules removed at the end."""
    from conpet.eval.continual import run_continual
    from conpet.methods.registry import make_method
    from conpet.model.logit_cache import MemoryLogitCache

    done: dict = {}

    def get(name, **kw):
        if name not in done:
            torch.manual_seed(0)
            method = make_method(name, tiny_bert, _config(**kw), cache=MemoryLogitCache())
            result = run_continual(method, tasks)
            assert result.method == name and len(result.steps) == len(tasks)
            for s in result.steps:
                assert 0.0 <= s.whole_acc <= 1.0 and 0.0 <= s.avg_acc <= 1.0
            done[name] = (method, result)
        return done[name]

    yield get
    for method, _ in done.values():
        method.pet.close()


@pytest.mark.parametrize("name", ["emr", "ea-emr", "crl"])
def test_pet_only_baselines_replay_only_their_memory(name, runs, tasks):
    method, result = runs(name)
    assert len(method.memory.tasks) == len(tasks)
    for t, mem in zip(tasks, method.memory.tasks, strict=True):
        ids = {ex.id for ex in t.train}
        assert all(ex.id in ids for ex in mem)
        for typ in t.types:
            assert sum(ex.label == typ for ex in mem) == min(2, sum(ex.label == typ for ex in t.train))
    new, old = method.new_and_old(tasks[1], [tasks[0]])
    assert new == list(tasks[1].train) and old == [method.memory.tasks[0]]
    rp = result.steps[1].stats["extra"]["replay"]
    assert rp["batches"] == rp["conpet_batches"] == _conpet_batches(tasks[1])  # never fewer than ConPET's
    assert rp["memory_draws"] == rp["batches"] * 4
    assert rp["memory_examples"] == len(method.memory.tasks[0]) == 4


@pytest.mark.parametrize("name", ["emr*", "ea-emr*", "crl*"])
def test_static_versions_replay_all_history(name, runs, tasks):
    method, result = runs(name)
    new, old = method.new_and_old(tasks[1], [tasks[0]])
    assert old == [list(tasks[0].train)]
    assert [s.stats["stages"][0]["batches"] for s in result.steps] == [
        _conpet_batches(t, has_old=t.index > 0) for t in tasks]


def test_ea_emr_applies_its_alignment_and_saves_it(runs, tasks, tiny_bert, tmp_path):
    from conpet.methods.registry import load_method

    method, result = runs("ea-emr")
    for s in result.steps:
        al = s.stats["extra"]["alignment"]
        assert al["drift_after"] <= al["drift_before"] + 1e-6
    assert not torch.allclose(method.align.weight, torch.eye(tiny_bert.hidden_size))
    test = [ex for t in tasks for ex in t.test + t.valid]
    preds = method.predict(test)
    with torch.no_grad():  # the prediction is head(A(h)), by hand from the raw hidden states
        by_hand = method.head(method.align(method.hidden_states(test, grad=False))).argmax(-1).tolist()
    assert [p.label for p in preds] == [method.types[j] for j in by_hand]
    method.save(tmp_path / "ea")
    back = load_method(tmp_path / "ea", tiny_bert)
    try:
        assert torch.allclose(back.align.weight, method.align.weight)
        assert len(back.memory) == len(method.memory)
        assert [p.label for p in back.predict(test)] == [p.label for p in preds]
    finally:
        back.pet.close()


def test_crl_predicts_by_nearest_prototype(runs, tasks, tiny_bert, tmp_path):
    from conpet.methods.registry import load_method

    method, _ = runs("crl")
    assert method.prototypes is not None and method.prototypes.shape == (4, tiny_bert.hidden_size)
    assert not method.has_module(method.TEACHER)  # the teacher lives only while a step trains
    test = [ex for t in tasks for ex in t.test + t.valid]
    preds = method.predict(test)
    mem = method.memory.examples()
    protos = class_prototypes(method.representations(mem), [e.label for e in mem], method.types)
    by_hand = prototype_scores(method.representations(test), protos).argmax(axis=1)
    assert [p.label for p in preds] == [method.types[j] for j in by_hand]
    method.save(tmp_path / "crl")
    back = load_method(tmp_path / "crl", tiny_bert)
    try:
        np.testing.assert_allclose(back.prototypes, method.prototypes)
        assert [p.label for p in back.predict(test)] == [p.label for p in preds]
    finally:
        back.pet.close()


def test_crl_teacher_is_a_frozen_copy_of_the_previous_steps_module(runs, tasks):
    method, _ = runs("crl")
    n = method.pet.n_outputs(method.current)
    method.prepare_step(tasks[1], [tasks[0]])  # what the next step does before the head grows
    try:
        sample = list(tasks[0].test)
        with torch.no_grad():
            torch.testing.assert_close(method.module_logits(method.TEACHER, sample),
                                       method.module_logits(method.current, sample))
        assert method.pet.n_outputs(method.TEACHER) == n
        assert method.is_frozen(method.TEACHER)
    finally:
        method.remove_module(method.TEACHER)
        method._teacher_types = 0


def test_limitless_trains_on_all_history_without_a_limit(runs, tasks):
    _, result = runs("limitless", batch_limit=1)
    n0, n1 = len(tasks[0].train), len(tasks[1].train)
    assert result.steps[0].stats["stages"][-1]["batches"] == math.ceil(n0 / 8)
    assert result.steps[1].stats["stages"][-1]["batches"] == max(math.ceil(n1 / 4), math.ceil(n0 / 4)) > 1
    assert result.selector_acc[-1] is not None


def test_dynamic_without_selector_activates_every_expert(runs, tasks):
    method, result = runs("dynamic-nosel")
    assert not method.has_module(method.SELECTOR)
    preds = method.predict(list(tasks[0].test))
    assert all(p.active_experts == [0, 1] and p.selector_scores is None for p in preds)
    assert result.selector_acc == [None, None]


def test_full_fine_tuning_trains_its_own_copy_of_the_backbone(tiny_bert, tasks):
    from conpet.eval.continual import run_continual
    from conpet.methods.registry import make_method

    shared = {n: p.detach().clone() for n, p in tiny_bert.model.named_parameters() if "lora_" not in n}
    torch.manual_seed(0)
    method = make_method("full-ft", tiny_bert, _config(batch_limit=1))
    try:
        run_continual(method, tasks)
        own = method.pet.model
        assert own is not tiny_bert.model
        changed = [n for n, p in own.named_parameters() if n in shared and not torch.equal(p.detach(), shared[n])]
        assert changed  # the backbone's weights train ...
        for n, p in tiny_bert.model.named_parameters():  # ... in the method's own copy only
            if n in shared:
                assert torch.equal(p.detach(), shared[n]), n
        # every weight of the backbone trains (with the head), not a LoRA-sized part of it
        assert method.pet.parameter_count(method.current) > sum(p.numel() for p in own.parameters())
    finally:
        method.pet.close()
