"""Continual methods on tiny real runs (minilm, short synthetic sentences, three tasks of two types).

Covers teacher forcing, the alpha-filled concatenation, head and selector growth, frozen experts,
ConPET beating sequential tuning, the logit cache's hit path (counted backbone passes) and stale
versions, cancellation mid-task, per-module prediction scores, and save/load.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conpet.core.config import TrainConfig
from conpet.core.errors import Cancelled
from conpet.core.protocols import ProgressEvent
from conpet.data.example import Example, Span
from conpet.data.tasks import TaskData
from conpet.eval.continual import run_continual
from conpet.methods.base import TrainingHook
from conpet.methods.registry import load_method, make_method, method_names
from conpet.model.logit_cache import MemoryLogitCache, SqliteLogitCache

pytestmark = pytest.mark.slow

VOCAB = {
    "city": ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Vienna", "Cairo", "Lima", "Oslo", "Dublin", "Prague"],
    "fruit": ["apple", "banana", "cherry", "mango", "peach", "pear", "plum", "grape", "lemon", "melon", "kiwi", "orange"],
    "color": ["red", "blue", "green", "yellow", "purple", "pink", "brown", "black", "white", "grey", "violet", "cyan"],
    "animal": ["dog", "cat", "horse", "tiger", "lion", "wolf", "bear", "rabbit", "mouse", "eagle", "shark", "goat"],
    "instrument": ["piano", "violin", "guitar", "drum", "flute", "cello", "trumpet", "harp", "banjo", "organ", "oboe",
                   "tuba"],
    "sport": ["football", "tennis", "golf", "hockey", "rugby", "cricket", "boxing", "rowing", "skiing", "cycling",
              "judo", "polo"],
}
TEMPLATES = ["I often think about {m} these days.", "She mentioned {m} during the meeting.",
             "We talked about {m} for an hour."]
GROUPS = (("city", "fruit"), ("color", "animal"), ("instrument", "sport"))
CONFIG = TrainConfig(lr=3e-3, batch_limit=40, max_epochs=2, seed=1, eval_batch_size=64)


def _example(label: str, mention: str, template: str) -> Example:
    text = template.format(m=mention)
    s = text.index(mention)
    return Example(text, (Span(s, s + len(mention)),), label, "entity", source="synthetic")


def synthetic_tasks() -> list[TaskData]:
    """Per type: 8 words for training, 1 for validation, 3 for test (each in three sentences)."""
    out = []
    for i, group in enumerate(GROUPS):
        train, valid, test = [], [], []
        for label in group:
            for j, word in enumerate(VOCAB[label]):
                for template in TEMPLATES:
                    (test if j >= 9 else valid if j == 8 else train).append(_example(label, word, template))
        out.append(TaskData(i, group, train, valid, test))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # much faster than 2 threads on a busy 2-core machine
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tasks() -> list[TaskData]:
    return synthetic_tasks()


class Recorder(TrainingHook):
    """Captures the selector head when its stage starts (just grown) and every module after each step."""

    def __init__(self) -> None:
        self.grown: list[torch.Tensor] = []
        self.after: list[dict[str, list[torch.Tensor]]] = []

    def extra_parameters(self, method, stage):
        if stage.module == "selector":
            self.grown.append(method.pet.heads["selector"].weight.detach().clone())
        return []

    def after_step(self, method, task, history, stats):
        self.after.append({n: [p.detach().clone() for p in method.pet.module_parameters(n)]
                           for n in method.pet.module_names})


class Events:
    def __init__(self, cancel_when=None) -> None:
        self.events: list[ProgressEvent] = []
        self.cancel_when = cancel_when

    def report(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def cancel_requested(self) -> bool:
        return bool(self.cancel_when and self.events and self.cancel_when(self.events[-1]))


@pytest.fixture(scope="module")
def trained(minilm, tasks):
    """Dynamic, static and sequential, each run over the three tasks once."""
    out = {}
    for name in ("dynamic", "static", "sequential"):
        torch.manual_seed(0)
        method = make_method(name, minilm, CONFIG, cache=MemoryLogitCache())
        rec = Recorder()
        method.hooks.append(rec)
        events = Events()
        result = run_continual(method, tasks, sink=events)
        out[name] = (method, result, rec, events)
    return out


def test_registry_names():
    assert {"dynamic", "static", "sequential", "joint"} <= set(method_names())
    from conpet.methods.registry import canonical_name

    assert canonical_name("Static-ConPET") == "static"


def test_conpet_beats_sequential_tuning(trained):
    seq = trained["sequential"][1].avg_acc[-1]
    for name in ("dynamic", "static"):
        res = trained[name][1]
        assert len(res.steps) == 3 and res.matrix.steps == 3
        assert res.avg_acc[-1] > seq + 0.2, (name, res.avg_acc, seq)
    assert trained["sequential"][1].matrix.result()["forgetting"] > 0.3


def test_selector_grows_by_dimension_expansion(trained):
    method, result, rec, _ = trained["dynamic"]
    pet = method.pet
    assert pet.n_outputs("selector") == 3
    assert [pet.n_outputs(f"expert_{j}") for j in range(3)] == [2, 2, 2]
    # at steps 2 and 3 the selector's head had just grown by one row, the old rows kept exactly
    assert [g.shape[0] for g in rec.grown] == [2, 3]
    for step, grown in ((0, rec.grown[0]), (1, rec.grown[1])):
        before = rec.after[step]["selector"][-2]  # head weight after the previous step
        assert torch.equal(grown[: before.shape[0]], before)
    assert method.versions["selector"] == 3 and method.versions["expert_0"] == 1
    assert result.selector_acc[-1] is not None and result.steps[0].selector_acc == 1.0
    # with t = 1 a correct prediction needs the gold expert routed: oracle routing bounds W
    assert all(s.oracle_routing_acc >= s.whole_acc for s in result.steps)


def test_old_experts_stay_frozen(trained):
    _, _, rec, _ = trained["dynamic"]
    for j in range(2):
        first = rec.after[j][f"expert_{j}"]
        last = rec.after[2][f"expert_{j}"]
        assert all(torch.equal(a, b) for a, b in zip(first, last, strict=True))


def test_static_head_covers_all_seen_types(trained):
    method = trained["static"][0]
    assert method.pet.n_outputs("main") == 6 and method.types == [t for g in GROUPS for t in g]


def test_teacher_forcing_puts_the_gold_expert_in(trained, tasks):
    method = trained["dynamic"][0]
    batch = [tasks[2].test[0], tasks[0].test[0]]
    sel = torch.tensor([[5.0, 1.0, 0.0], [5.0, 1.0, 0.0]])  # the selector prefers task 0 for both
    active, _ = method.route(batch, sel=sel)
    assert active == [[0], [0]]
    forced, _ = method.route(batch, gold_tasks=[2, 0], sel=sel)
    assert forced == [[2], [0]]
    old = method.config
    try:
        method.config = old.replace(top_t=2)
        forced2, _ = method.route(batch, gold_tasks=[2, 0], sel=sel)
        assert forced2 == [[0, 2], [0, 1]]  # last of the top-t replaced by the gold task when missing
        free, _ = method.route(batch, sel=sel)
        assert free == [[0, 1], [0, 1]]
    finally:
        method.config = old


def test_concatenation_fills_inactive_experts_with_alpha(trained, tasks):
    method = trained["dynamic"][0]
    batch = [tasks[0].test[0], tasks[1].test[0]]
    out = method.concat_logits(batch, [[0], [1, 2]])
    assert out.shape == (2, 6)
    alpha = method.config.alpha
    assert torch.all(out[0, 2:] == alpha) and torch.all(out[1, :2] == alpha)
    e0 = method.module_logits("expert_0", batch[:1])
    e12 = torch.cat([method.module_logits("expert_1", batch[1:]), method.module_logits("expert_2", batch[1:])], 1)
    torch.testing.assert_close(out[0, :2], e0[0])
    torch.testing.assert_close(out[1, 2:], e12[0])


def test_prediction_exposes_per_module_scores(trained, tasks):
    method = trained["dynamic"][0]
    preds = method.predict([ex for t in tasks for ex in t.test[:2]])
    for p in preds:
        assert len(p.selector_scores) == 3 and abs(sum(p.selector_scores) - 1) < 1e-6
        assert len(p.active_experts) == 1
        owner = method.task_of_type()[p.label]
        assert set(p.expert_scores) == set(GROUPS[owner])
        assert 0 < p.score <= 1
        assert f"{method.uid}/selector" in p.module_versions
    static = trained["static"][0].predict(tasks[0].test[:1])[0]
    assert static.selector_scores is None and len(static.expert_scores) == 6


def test_cache_hits_skip_the_backbone_and_stale_versions_miss(trained, tasks):
    method = trained["dynamic"][0]
    examples = [ex for t in tasks for ex in t.test]  # 54 examples, one prediction batch of 64
    saved = method.cache
    method.cache = MemoryLogitCache()
    try:
        f0 = method.backbone_forwards
        first = method.predict(examples)
        passes = method.backbone_forwards - f0
        n_experts = len({p.routed_expert for p in first})
        assert passes == 1 + n_experts  # one selector pass, one per routed expert: not per example
        f1 = method.backbone_forwards
        again = method.predict(examples)
        assert method.backbone_forwards == f1  # every module hit: no backbone forward at all
        assert [p.label for p in again] == [p.label for p in first]
        np.testing.assert_allclose([p.score for p in again], [p.score for p in first], rtol=1e-5)
        # a new selector version (as after training) never hits: only the selector runs again
        method.versions["selector"] += 1
        f2 = method.backbone_forwards
        method.predict(examples)
        assert method.backbone_forwards - f2 == 1
    finally:
        method.versions["selector"] -= 1
        method.cache = saved


def test_sqlite_cache_serves_a_method(trained, tasks, tmp_path):
    method = trained["static"][0]
    examples = list(tasks[1].test)
    saved = method.cache
    method.cache = SqliteLogitCache(tmp_path / "logits.sqlite")
    try:
        first = method.predict(examples)
        f0 = method.backbone_forwards
        again = method.predict(examples)
        assert method.backbone_forwards == f0 and [p.label for p in again] == [p.label for p in first]
    finally:
        method.cache.close()
        method.cache = saved


def test_progress_reports_stages_eta_and_live_metrics(trained):
    events = trained["dynamic"][3].events
    stages = {e.stage for e in events}
    assert {"selector", "expert", "evaluation"} <= stages
    assert any(e.metrics and "loss" in e.metrics for e in events)
    assert any(e.eta_seconds is not None for e in events)
    fractions = [e.fraction for e in events]
    assert fractions[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in fractions)


def test_save_and_load_give_the_same_predictions(trained, tasks, minilm, tmp_path):
    method = trained["dynamic"][0]
    examples = [ex for t in tasks for ex in t.test[:4]]
    method.save(tmp_path / "dyn")
    assert (tmp_path / "dyn" / "method.json").is_file() and (tmp_path / "dyn" / "expert_2").is_dir()
    loaded = load_method(tmp_path / "dyn", minilm)
    try:
        assert loaded.task_types == method.task_types and loaded.versions == method.versions
        a, b = method.predict(examples), loaded.predict(examples)
        assert [p.label for p in a] == [p.label for p in b]
        np.testing.assert_allclose([p.selector_scores for p in a], [p.selector_scores for p in b], atol=1e-5)
    finally:
        loaded.pet.close()


@pytest.mark.parametrize(("name", "when"), [("dynamic", "batch"), ("dynamic", "validated"), ("static", "batch")])
def test_cancel_mid_task_keeps_the_last_finished_task(tiny_bert, tasks, name, when):
    torch.manual_seed(0)
    config = CONFIG.replace(batch_limit=6, max_epochs=1)
    method = make_method(name, tiny_bert, config, cache=MemoryLogitCache())
    try:
        method.learn_task(tasks[0], [])
        probe = list(tasks[0].test[:6])
        before = method.predict(probe)
        modules = set(method.pet.module_names)
        params = {n: [p.detach().clone() for p in method.pet.module_parameters(n)] for n in modules}
        stage = "expert" if name == "dynamic" else "train"
        if when == "batch":  # in the middle of the last stage
            sink = Events(cancel_when=lambda e: e.stage == stage and (e.metrics or {}).get("batch", 0) >= 5)
        else:  # after the expert's validation, which ran (and cached) the newly trained selector
            sink = Events(cancel_when=lambda e: e.stage == stage and "valid_acc" in (e.metrics or {}))
        with pytest.raises(Cancelled):
            method.learn_task(tasks[1], tasks[:1], sink)
        assert method.n_tasks == 1 and set(method.pet.module_names) == modules
        for n in modules:
            now = method.pet.module_parameters(n)
            assert [p.shape for p in now] == [p.shape for p in params[n]]
            assert all(torch.equal(a, b) for a, b in zip(now, params[n], strict=True))
        after = method.predict(probe)
        assert [p.label for p in after] == [p.label for p in before]
        # the runner reports a cancelled run without raising when asked, and a later run goes on
        # (with another seed, so that a reused version number would serve other weights' logits)
        method.config = config.replace(seed=7)
        result = run_continual(method, tasks[:2], sink=Events(cancel_when=lambda e: e.stage == stage),
                               raise_on_cancel=False)
        assert result.cancelled and method.n_tasks == 1
        method.learn_task(tasks[1], tasks[:1])
        assert method.n_tasks == 2
        # versions used by the cancelled steps are never reused: cached logits match fresh ones
        examples = [ex for t in tasks[:2] for ex in (*t.valid, *t.test)]
        cached = method.predict(examples)
        method.cache = None
        fresh = method.predict(examples)
        np.testing.assert_allclose([p.score for p in cached], [p.score for p in fresh], rtol=1e-4)
    finally:
        method.pet.close()


def test_dynamic_typesel_is_dynamic_with_a_type_level_selector(tiny_bert):
    m = make_method("typesel", tiny_bert, CONFIG)
    try:
        assert m.name == "dynamic-typesel" and m.type_level_selector and m.config.selector_labels == "type"
    finally:
        m.pet.close()


def test_type_level_selector_scores_tasks_by_their_types(minilm, tasks, tmp_path):
    """selector_labels="type": the selector's head grows by each task's types (trained from the first
    step), a task's routing score is the log-sum-exp of its types' scores, and the model saves and
    loads with it."""
    torch.manual_seed(0)
    method = make_method("dynamic", minilm, CONFIG.replace(selector_labels="type"), cache=MemoryLogitCache())
    try:
        result = run_continual(method, tasks[:2])
        assert method.pet.n_outputs("selector") == 4  # 2 + 2 types, not 2 tasks
        assert [s["name"] for s in result.steps[0].stats["stages"]] == ["selector", "expert"]
        examples = [ex for t in tasks[:2] for ex in t.test[:3]]
        raw = method.module_logits("selector", examples)
        scores = method.selector_logits(examples)
        assert scores.shape == (len(examples), 2)
        type_p = torch.softmax(raw, -1)
        task_p = torch.softmax(scores, -1)
        torch.testing.assert_close(task_p, torch.stack([type_p[:, :2].sum(-1), type_p[:, 2:].sum(-1)], -1))
        preds = method.predict(examples)
        np.testing.assert_allclose([p.selector_scores for p in preds], task_p.numpy(), atol=1e-5)
        # routing learnt from the types: on these easy words it routes the test examples well
        assert result.selector_acc[-1] >= 0.75, result.selector_acc
        method.save(tmp_path / "m")
        loaded = load_method(tmp_path / "m", minilm)
        try:
            assert loaded.config.selector_labels == "type"
            assert [p.label for p in loaded.predict(examples)] == [p.label for p in preds]
        finally:
            loaded.pet.close()
    finally:
        method.pet.close()
