"""Refresh steps (conpet.methods.refresh, dynamic-lda's `refresh`) on tiny real runs (minilm): the router's
statistics after merge and downdate equal the batch statistics of the current labels; an expert whose data
changed enough retrains as a new version while the old one stays until the step commits; expert 0 (the
feature map) refreshed keeps its old weights as the map; a cancelled refresh leaves the model identical."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_methods import CONFIG, synthetic_tasks

from conpet.core.errors import Cancelled, ConpetError
from conpet.data.tasks import TaskData
from conpet.eval.continual import run_continual
from conpet.methods.refresh import changes_text, label_changes
from conpet.methods.registry import make_method, method_class
from conpet.methods.router import batch_statistics
from conpet.model.logit_cache import MemoryLogitCache

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _first_tasks() -> list[TaskData]:
    """The synthetic tasks with half of each type's training examples held back for later."""
    out = []
    for t in synthetic_tasks()[:2]:
        kept = [ex for i, ex in enumerate(t.train) if i % 2 == 0]
        out.append(replace(t, train=tuple(kept)))
    return out


def _grown(tasks: list[TaskData]) -> list[TaskData]:
    """What a user did since: every held-back example labelled (added), two labels removed, one example of
    the first type corrected to the second (removed from one type, added to the other)."""
    full = synthetic_tasks()[:2]
    t0 = list(full[0].train)
    a, b = full[0].types[0], full[0].types[1]
    of_a = [ex for ex in t0 if ex.label == a]
    gone = {of_a[0].id, of_a[2].id}
    corrected = of_a[4]
    t0 = [ex for ex in t0 if ex.id not in gone and ex.id != corrected.id]
    from conpet.data.example import example_id

    t0.append(replace(corrected, label=b, id=example_id(corrected.text, corrected.spans, b)))
    return [replace(full[0], train=tuple(t0)), full[1]]


def _train(minilm, **settings) -> object:
    torch.manual_seed(1)
    method = make_method("dynamic-lda", minilm, CONFIG.replace(**settings), cache=MemoryLogitCache())
    run_continual(method, _first_tasks(), evaluate_each_step=False)
    return method


def _batch_statistics(method, tasks):
    train = [ex for t in tasks for ex in t.train]
    feats, _ = method.features(train)
    return batch_statistics(method.router_input(feats), [ex.label for ex in train])


def _weights(method, name):
    return [p.detach().clone() for p in method.pet.module_parameters(method.adapter(name))]


def test_label_changes_count_added_removed_and_relabelled():
    tasks = _first_tasks()
    learnt = {t: [ex.input_key for ex in task.train if ex.label == t] for task in tasks for t in task.types}
    assert all(c.changed == 0 for c in label_changes(tasks, learnt))
    changes = label_changes(_grown(tasks), learnt)
    held_back = sum(len(t.train) for t in synthetic_tasks()[:2]) - sum(len(t.train) for t in tasks)
    assert sum(len(c.added) for c in changes) == held_back + 1  # the corrected one joins type b
    assert [len(c.removed) for c in changes] == [3, 0]  # two removed, one corrected away (all learnt)
    assert "added" in changes_text(changes) and "task(s) 1, 2" in changes_text(changes)


def test_a_router_refresh_equals_the_batch_statistics_and_trains_no_new_task(minilm):
    method = _train(minilm, refresh_share=None)  # the router alone follows new labels
    experts = {n: _weights(method, n) for n in ("expert_0", "expert_1")}
    versions = dict(method.versions)
    tasks = _grown(_first_tasks())
    f0 = method.backbone_examples
    seen = {k for keys in method.learnt_examples.values() for k in keys}
    stats = method.refresh(tasks)
    assert method.n_tasks == 2 and stats.stages == []  # nothing trained: no new task, no expert
    assert stats.extra["refresh"]["router"] == "updated"
    # one feature pass per added example whose input the model never saw, nothing else: removed ones, and the
    # corrected one (the same input under another type), come from the cache, which is keyed by the input
    new_inputs = [ex for t in tasks for ex in t.train if ex.input_key not in seen]
    assert stats.extra["refresh"]["added"] == len(new_inputs) + 1  # the corrected one is added to type b
    assert method.backbone_examples - f0 == len(new_inputs)
    types, counts, means, scatter = _batch_statistics(method, tasks)
    order = [method.router.types.index(t) for t in types]
    np.testing.assert_allclose(method.router.counts[order], counts)
    np.testing.assert_allclose(method.router.means[order], means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(method.router.scatter, scatter, rtol=1e-8, atol=1e-7)
    assert method.versions == versions
    for n, ws in experts.items():
        assert all(torch.equal(a, b) for a, b in zip(ws, _weights(method, n), strict=True))
    assert all(c.changed == 0 for c in method.label_changes(tasks))  # learnt now


def test_recomputing_the_map_gives_the_batch_statistics_through_the_new_expert_1(minilm):
    method = _train(minilm, refresh_share=None, refresh_map="recompute")
    tasks = _grown(_first_tasks())
    fid, fver = method.features_id(), method.feature_version()
    stats = method.refresh(tasks, retrain=[0])
    assert stats.extra["refresh"]["experts"] == [1] and stats.extra["refresh"]["router"] == "rebuilt"
    assert method.feature_map == "expert_0" and method.features_id() == fid and method.feature_version() > fver
    types, counts, means, scatter = _batch_statistics(method, tasks)  # through the new expert 1
    order = [method.router.types.index(t) for t in types]
    np.testing.assert_allclose(method.router.counts[order], counts)
    np.testing.assert_allclose(method.router.means[order], means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(method.router.scatter, scatter, rtol=1e-8, atol=1e-7)
    method.pet.close()


def test_an_expert_that_changed_enough_retrains_as_a_new_version_and_expert_0_stays_the_map(minilm, tmp_path):
    method = _train(minilm, refresh_share=0.3, refresh_map="keep")
    tasks = _grown(_first_tasks())
    fid, fver = method.features_id(), method.feature_version()
    old0 = _weights(method, "expert_0")
    versions = dict(method.versions)
    stats = method.refresh(tasks)
    assert stats.extra["refresh"]["experts"] == [1, 2]  # both tasks changed by more than 30 %
    assert method.versions["expert_0"] > versions["expert_0"] and method.versions["expert_1"] > versions["expert_1"]
    # expert 0's old weights are the feature map now: statistics and cached features stay valid
    assert method.feature_map == "feature_map" and (method.features_id(), method.feature_version()) == (fid, fver)
    assert all(torch.equal(a, b) for a, b in zip(old0, _weights(method, "feature_map"), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(old0, _weights(method, "expert_0"), strict=True))
    assert set(method.pet.module_names) == {method.adapter(n) for n in method.logical_modules()}
    types, counts, means, _ = _batch_statistics(method, tasks)
    order = [method.router.types.index(t) for t in types]
    np.testing.assert_allclose(method.router.means[order], means, rtol=1e-9, atol=1e-9)
    tests = [ex for t in tasks for ex in t.test]
    want = [p.label for p in method.predict(tests)]
    method.save(tmp_path / "m")
    again = method_class("dynamic-lda").load(tmp_path / "m", minilm, cache=MemoryLogitCache())
    try:
        assert [p.label for p in again.predict(tests)] == want
        assert again.feature_map == "feature_map" and again.features_id() == fid
    finally:
        again.pet.close()
        method.pet.close()


class CancelAfter:
    """A sink that asks to stop after `n` progress reports."""

    def __init__(self, n: int) -> None:
        self.n = n

    def report(self, event) -> None:
        self.n -= 1

    def cancel_requested(self) -> bool:
        return self.n <= 0


def _folder_digest(folder: Path) -> dict[str, object]:
    """Each file's SHA-256; the router's by content (safetensors writes its metadata in no fixed order)."""
    from safetensors import safe_open

    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        if p.name == "router.safetensors":
            with safe_open(str(p), framework="np") as f:
                out[p.name] = (f.metadata(), {k: f.get_tensor(k).tobytes() for k in f.keys()})
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_a_refresh_cancelled_midway_leaves_the_model_identical(minilm, tmp_path):
    method = _train(minilm, refresh_share=0.0)
    method.save(tmp_path / "before")
    tasks = _grown(_first_tasks())
    with pytest.raises(Cancelled):
        method.refresh(tasks, CancelAfter(4), retrain=[0, 1])  # stops inside the second expert's training
    method.save(tmp_path / "after")
    assert _folder_digest(tmp_path / "before") == _folder_digest(tmp_path / "after")
    assert set(method.pet.module_names) == {"expert_0", "expert_1"}
    assert any(c.changed for c in method.label_changes(tasks))  # still to learn
    method.pet.close()


def test_methods_without_a_refresh_step_say_what_they_do(minilm):
    static = make_method("static", minilm, CONFIG)
    assert static.new_labels == "replay"
    with pytest.raises(ConpetError, match="next new task"):
        static.refresh([])
    assert method_class("sequential").new_labels == "none"
    assert method_class("emr").new_labels == "none" and method_class("crl*").new_labels == "replay"
