"""Dynamic ConPET routed by statistics (conpet.methods.dynamic_lda) on tiny real runs: the
router x expert combination, one feature pass per prediction batch, cached features keyed by the feature
map's version, save/load in a fresh process and through a bundle, and the training-free rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_methods import CONFIG, synthetic_tasks

from conpet.bundle import Bundle, BundleInfo, backbone_info, write_bundle
from conpet.eval.continual import run_continual
from conpet.methods.base import length_order
from conpet.methods.dynamic_lda import combine_scores
from conpet.methods.registry import load_method, make_method
from conpet.model.logit_cache import MemoryLogitCache

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tasks():
    return synthetic_tasks()


def _train_lda(backbone, tasks):
    torch.manual_seed(1)
    method = make_method("dynamic-lda", backbone, CONFIG.replace(top_t=2), cache=MemoryLogitCache())
    return method, run_continual(method, tasks)


@pytest.fixture(scope="module")
def learnt(minilm, tasks):
    """The model whose accuracy and routing are checked: trained on minilm (random features learn little)."""
    return _train_lda(minilm, tasks)


@pytest.fixture(scope="module")
def trained(tiny_bert, tasks):
    """The same training on the tiny BERT, for the tests of what the method does rather than how well."""
    return _train_lda(tiny_bert, tasks)


def test_combine_scores_by_hand():
    # two tasks: types (a, b) and (c,); example 0 routed to both, example 1 to task 1 only
    log_post = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
    expert = {0: np.log(np.array([[0.9, 0.1]])), 1: np.log(np.array([[1.0], [1.0]]))}
    combined, own = combine_scores(log_post, [2, 1], [[0, 1], [1]], expert, weight=2.0)
    want0 = [np.log(0.5) + 2 * np.log(0.9), np.log(0.3) + 2 * np.log(0.1), np.log(0.2)]
    np.testing.assert_allclose(combined[0], want0)
    assert combined[1, 0] == -np.inf and combined[1, 1] == -np.inf
    np.testing.assert_allclose(combined[1, 2], np.log(0.8))
    np.testing.assert_allclose(own[0], [[0.9, 0.1]])
    # with no experts the router alone scores its active tasks
    alone, own_alone = combine_scores(log_post, [2, 1], [[0], [1]], None, weight=1.0)
    np.testing.assert_allclose(alone[0, :2], log_post[0, :2])
    np.testing.assert_allclose(own_alone[0], [[0.5 / 0.8, 0.3 / 0.8]])


def test_learns_three_tasks_and_routes_with_statistics(learnt, tasks):
    method, result = learnt
    assert result.steps[-1].whole_acc > 0.8, result.whole_acc
    assert result.steps[-1].selector_acc > 0.8
    routing = result.steps[-1].routing
    assert routing["route_top1"] <= routing["route_top2"] <= routing["route_top3"] == 100.0
    assert method.router.types == [t for task in tasks for t in task.types]
    preds = method.predict(tasks[0].test[:4])
    for p in preds:
        assert len(p.selector_scores) == 3 and math.isclose(sum(p.selector_scores), 1.0, rel_tol=1e-6)
        assert len(p.active_experts) == 2
        assert set(p.expert_scores) <= {t for task in tasks for t in task.types}


def test_a_step_leaves_old_statistics_and_experts_unchanged(tiny_bert, tasks):
    method = make_method("dynamic-lda", tiny_bert, CONFIG, cache=MemoryLogitCache())
    run_continual(method, tasks[:2])
    means = method.router.means.copy()
    scatter = method.router.scatter.copy()
    expert1 = [p.detach().clone() for p in method.pet.module_parameters("expert_1")]
    run_continual(method, tasks)
    np.testing.assert_array_equal(method.router.means[: len(means)], means)
    added = method.router.scatter - scatter  # only the new types' scatter: positive semi-definite
    assert np.linalg.eigvalsh(added).min() > -1e-6
    for old, now in zip(expert1, method.pet.module_parameters("expert_1"), strict=True):
        assert torch.equal(old, now)


def test_one_feature_pass_per_prediction_batch(trained, tasks):
    method, _ = trained
    examples = [ex for t in tasks for ex in t.test]
    saved_cache, saved_bs = method.cache, method.config
    method.cache = None  # every pass goes through the backbone
    method.config = method.config.replace(eval_batch_size=16)
    try:
        f0 = method.backbone_forwards
        preds = method.predict(examples)
        passes = method.backbone_forwards - f0
    finally:
        method.cache, method.config = saved_cache, saved_bs
    by_id = {p.example_id: p for p in preds}
    order = length_order(examples)
    batches = [[examples[i] for i in order[s : s + 16]] for s in range(0, len(order), 16)]
    # one feature pass per batch; then one pass per distinct active expert, except expert 0, whose logits
    # come from the feature pass (the first task's module is the feature map)
    expected = sum(1 + len({j for ex in b for j in by_id[ex.id].active_experts} - {0}) for b in batches)
    assert passes == expected


def test_cached_features_are_keyed_by_the_feature_maps_version(trained, tasks):
    method, _ = trained
    examples = list(tasks[1].test[:6])
    cache = MemoryLogitCache()
    saved = method.cache
    method.cache = cache
    try:
        first, _ = method.features(examples)
        f0 = method.backbone_forwards
        again, _ = method.features(examples)
        assert method.backbone_forwards == f0  # all hits
        np.testing.assert_array_equal(first, again)
        method.versions["expert_0"] += 1  # the feature map changed: its old features must never be read
        try:
            method.features(examples)
            assert method.backbone_forwards == f0 + 1
            versions = {k[2] for k in cache.items() if k[1] == method.features_id()}
            assert versions == {method.versions["expert_0"] - 1, method.versions["expert_0"]}
        finally:
            method.versions["expert_0"] -= 1
        method.config = method.config.replace(router_features="frozen")  # another map: other keys
        try:
            f1 = method.backbone_forwards
            method.features(examples)
            assert method.backbone_forwards == f1 + 1
        finally:
            method.config = method.config.replace(router_features="first-task")
    finally:
        method.cache = saved


def test_save_and_load_give_identical_routing_in_a_fresh_process(trained, tasks, tiny_bert_dir, tmp_path):
    method, _ = trained
    method.save(tmp_path / "model")
    assert (tmp_path / "model" / "router.safetensors").is_file()
    info = json.loads((tmp_path / "model" / "expert_0" / "module.json").read_text())
    assert info["representation"] == "markers"
    examples = [ex for t in tasks for ex in t.test]
    (tmp_path / "examples.json").write_text(json.dumps(
        [{"text": ex.text, "start": ex.spans[0].start, "end": ex.spans[0].end, "label": ex.label} for ex in examples]))
    script = f"""
import json, sys
from conpet.model.backbones import load_backbone
from conpet.data.example import Example, Span
from conpet.methods.registry import load_method
m = load_method({str(tmp_path / 'model')!r}, load_backbone({str(tiny_bert_dir)!r}, device='cpu'))
rows = json.load(open({str(tmp_path / 'examples.json')!r}))
exs = [Example(r['text'], (Span(r['start'], r['end']),), r['label'], 'entity', source='synthetic') for r in rows]
print(json.dumps([[p.label, p.score, p.active_experts, p.selector_scores] for p in m.predict(exs)]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    here = method.predict(examples)
    assert [f[0] for f in fresh] == [p.label for p in here]
    assert [f[2] for f in fresh] == [p.active_experts for p in here]
    np.testing.assert_allclose([f[1] for f in fresh], [p.score for p in here], atol=1e-5)
    np.testing.assert_allclose([f[3] for f in fresh], [p.selector_scores for p in here], atol=1e-5)


def test_a_bundle_carries_the_router(trained, tasks, tiny_bert, tmp_path):
    method, _ = trained
    tasks_info = [{"index": t.index, "name": f"t{t.index}", "types": [{"name": n, "kind": "entity"} for n in t.types]}
                  for t in tasks]
    path = write_bundle(method, tmp_path / "lda.zip", BundleInfo(backbone=backbone_info(tiny_bert), tasks=tasks_info))
    bundle = Bundle.load(path, tiny_bert)
    try:
        assert "router.safetensors" in bundle.manifest["files"]
        assert bundle.manifest["method_files"] == ["router.safetensors"]
        examples = [ex for t in tasks for ex in t.test]
        assert [p.label for p in bundle.predict_examples(examples)] == [p.label for p in method.predict(examples)]
    finally:
        bundle.close()


def test_features_read_the_middle_and_last_layer_in_one_pass(trained, tasks, tiny_bert):
    method, _ = trained
    assert method.config.router_layers == "last+middle" and method.feature_dim == 6 * tiny_bert.hidden_size
    examples = list(tasks[0].test[:5])
    batch = method.encode(examples)
    pet, h = method.pet, tiny_bert.hidden_size
    f0 = method.backbone_forwards
    saved = method.cache
    method.cache = None
    try:
        feats, side = method.features(examples)
    finally:
        method.cache = saved
    assert method.backbone_forwards == f0 + 1 and feats.shape == (5, 6 * h)
    last = pet.hidden(batch, "expert_0", "markers").numpy()
    np.testing.assert_allclose(feats[:, 3 * h :], last, atol=1e-5)  # the final layer's states come last
    with torch.no_grad(), pet._shared.lock:
        pet._shared.activate(pet._adapter("expert_0"))
        out = pet._shared.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                output_hidden_states=True)
    n_layers = len(out.hidden_states) - 1
    from conpet.model.modules import read_representation

    middle = read_representation(out.hidden_states[n_layers // 2], batch, "markers").numpy()
    np.testing.assert_allclose(feats[:, : 3 * h], middle, atol=1e-5)
    assert not np.allclose(feats[:, : 3 * h], feats[:, 3 * h :])
    # expert 0's logits from the same wide pass are its own (its head reads the last layer's markers)
    np.testing.assert_allclose(np.stack([side[i] for i in range(5)]),
                               method.module_logits("expert_0", examples).numpy(), atol=1e-4)


def test_layer_choice_keys_the_cache_and_old_models_read_the_last_layer(trained, tasks, tiny_bert, tmp_path):
    method, _ = trained
    wide_id = method.features_id()
    method.config = method.config.replace(router_layers="last")
    try:
        assert method.features_id() != wide_id and method.feature_dim == 3 * tiny_bert.hidden_size
    finally:
        method.config = method.config.replace(router_layers="last+middle")
    # a model saved before the setting existed was trained on the last layer alone and must stay so
    old = make_method("dynamic-lda", tiny_bert, CONFIG.replace(router_layers="last"), cache=MemoryLogitCache())
    torch.manual_seed(1)
    run_continual(old, tasks[:1], evaluate_each_step=False)
    old.save(tmp_path / "old")
    state_file = tmp_path / "old" / "method.json"
    state = json.loads(state_file.read_text())
    del state["config"]["router_layers"]
    state_file.write_text(json.dumps(state))
    loaded = load_method(tmp_path / "old", tiny_bert)
    assert loaded.config.router_layers == "last" and loaded.feature_dim == 3 * tiny_bert.hidden_size
    examples = list(tasks[0].test)
    assert [p.label for p in loaded.predict(examples)] == [p.label for p in old.predict(examples)]


def test_loading_without_router_file_is_refused(trained, tmp_path, tiny_bert):
    method, _ = trained
    method.save(tmp_path / "model")
    (tmp_path / "model" / "router.safetensors").unlink()
    with pytest.raises(Exception, match="router"):
        load_method(tmp_path / "model", tiny_bert)


@pytest.mark.parametrize("name", ["lda-frozen", "lda-adapted"])
def test_training_free_rows(minilm, tasks, name):
    torch.manual_seed(1)
    method = make_method(name, minilm, CONFIG, cache=MemoryLogitCache())
    result = run_continual(method, tasks)
    modules = method.logical_modules()
    assert modules == ([] if name == "lda-frozen" else ["expert_0"])
    trained_batches = [sum(st["batches"] for st in s.stats["stages"]) for s in result.steps]
    assert trained_batches[1:] == [0, 0]  # nothing trains after the first step
    assert (trained_batches[0] == 0) == (name == "lda-frozen")
    assert result.steps[-1].whole_acc > 0.5


def test_conpet_methods_lists_every_method_and_marks_the_default(capsys):
    from conpet.cli.main import main
    from conpet.methods.registry import method_names
    from conpet.project.training import DEFAULT_METHOD

    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == method_names()
    marked = [ln for ln in lines if "(default)" in ln]
    assert len(marked) == 1 and marked[0].startswith(f"{DEFAULT_METHOD} (default)")
    descriptions = [ln.split("  ", 1)[1].strip() for ln in lines]
    assert all(descriptions) and len(set(descriptions)) == len(descriptions)  # each its own line
    from conpet.methods.registry import method_class

    for ln, name in zip(lines, method_names(), strict=True):  # what each does with new labels of learnt types
        assert f"new labels of learnt types ({method_class(name).new_labels})" in ln


def test_calibration_picks_t_and_w_on_validation_data_and_is_saved(tiny_bert, tasks, tmp_path):
    torch.manual_seed(1)
    method = make_method("dynamic-lda", tiny_bert, CONFIG.replace(router_calibrate=True), cache=MemoryLogitCache())
    result = run_continual(method, tasks)
    chosen = method.chosen
    assert chosen["top_t"] in (1, 2, 3) and chosen["weight"] in (0.0, 1.0, 3.0, 10.0, 30.0)
    assert result.steps[-1].stats["extra"]["calibration"] == chosen
    # the choice is the best of the grid on the validation data (ties to the smaller t, then w)
    valid = [list(t.valid) for t in tasks]
    best = method.calibrate(valid)
    assert best == chosen
    index = method.type_index()

    def avg(t, w):
        accs = []
        for vs in valid:
            sb = method.score_batch(vs, top_t=t, weight=w)
            accs.append(np.mean([np.argmax(sb.combined[i]) == index[ex.label] for i, ex in enumerate(vs)]))
        return float(np.mean(accs))

    assert all(avg(t, w) <= chosen["valid_acc"] + 1e-9 for t in (1, 2, 3) for w in (0.0, 1.0, 3.0, 10.0, 30.0))
    assert result.steps[-1].routing["t"] == chosen["top_t"] and result.steps[-1].routing["w"] == chosen["weight"]
    method.save(tmp_path / "m")
    again = load_method(tmp_path / "m", tiny_bert)
    assert again.chosen == chosen and again.top_t == chosen["top_t"] and again.weight == chosen["weight"]


def test_a_second_prediction_is_all_cache_hits(trained, tasks):
    method, _ = trained
    examples = [ex for t in tasks for ex in t.test]
    saved = method.cache
    method.cache = MemoryLogitCache()
    try:
        first = method.predict(examples)
        f0 = method.backbone_forwards
        again = method.predict(examples)
        assert method.backbone_forwards == f0  # features and every expert's logits (expert 0's too) cached
        assert [p.label for p in again] == [p.label for p in first]
    finally:
        method.cache = saved


def test_combine_scores_adds_each_tasks_vote_to_all_its_types():
    log_post = np.log(np.array([[0.5, 0.3, 0.2]]))
    expert = {0: np.log(np.array([[0.9, 0.1]])), 1: np.log(np.array([[1.0]]))}
    votes = {0: np.array([-2.0]), 1: np.array([1.5])}
    combined, _ = combine_scores(log_post, [2, 1], [[0, 1]], expert, weight=1.0, votes=votes)
    want = [np.log(0.5) + np.log(0.9) - 2.0, np.log(0.3) + np.log(0.1) - 2.0, np.log(0.2) + 1.5]
    np.testing.assert_allclose(combined[0], want)
    assert int(np.argmax(combined[0])) == 2  # the votes moved the example to task 1


def test_router_energy_standardises_each_experts_energy_and_is_saved(tiny_bert, tasks, tmp_path):
    torch.manual_seed(1)
    method = make_method("dynamic-lda", tiny_bert, CONFIG.replace(top_t=2, router_energy=1.0), cache=MemoryLogitCache())
    run_continual(method, tasks, evaluate_each_step=False)
    assert sorted(method.energy) == list(range(len(tasks)))
    # on its own task's validation data an expert's standardised energy averages 0 with spread 1
    for k, task in enumerate(tasks):
        mean, std = method.energy[k]
        own = method.module_logits(method.expert(k), list(task.valid)).numpy().astype(np.float64)
        e = np.log(np.exp(own - own.max(1, keepdims=True)).sum(1)) + own.max(1)
        np.testing.assert_allclose([e.mean(), e.std()], [mean, std], rtol=1e-4)
    chunk = list(tasks[0].test[:4])
    with_votes = method.score_batch(chunk).combined
    method.energy, saved = {}, method.energy  # no statistics: no votes
    plain = method.score_batch(chunk).combined
    method.energy = saved
    assert not np.allclose(with_votes[np.isfinite(with_votes)], plain[np.isfinite(plain)])
    method.save(tmp_path / "m")
    again = load_method(tmp_path / "m", tiny_bert)
    assert again.energy == method.energy
    np.testing.assert_allclose(again.score_batch(chunk).combined, with_votes, rtol=1e-5)


def test_a_re_adapted_feature_map_replaces_the_old_one_and_recomputes_every_statistic(tiny_bert, tasks, tmp_path):
    n_types = [len(t.types) for t in tasks]
    limit = n_types[0] + n_types[1]  # re-adapted at steps 1 and 2, frozen from step 3 on
    torch.manual_seed(1)
    method = make_method("dynamic-lda", tiny_bert, CONFIG.replace(router_readapt_types=limit), cache=MemoryLogitCache())
    run_continual(method, tasks[:2], evaluate_each_step=False)
    assert method.map_name == "feature_map_2"
    assert method.pet.n_outputs("feature_map_2") == limit  # trained on every learnt type
    assert not method.has_module("feature_map_1")  # the step's new map replaced the old one
    from conpet.methods.router import batch_statistics

    train = [ex for t in tasks[:2] for ex in t.train]
    feats, _ = method.features(train)
    types, counts, means, scatter = batch_statistics(method.router_input(feats), [ex.label for ex in train])
    assert method.router.types == types
    np.testing.assert_allclose(method.router.means, means, atol=1e-9)
    np.testing.assert_allclose(method.router.scatter, scatter, atol=1e-6)
    map_weights = [p.detach().clone() for p in method.pet.module_parameters("feature_map_2")]
    run_continual(method, tasks, evaluate_each_step=False)  # step 3 is past the limit: the map stays
    assert method.map_name == "feature_map_2" and len(method.router.types) == sum(n_types)
    for old, now in zip(map_weights, method.pet.module_parameters("feature_map_2"), strict=True):
        assert torch.equal(old, now)
    assert set(method.logical_modules()) == {"expert_0", "expert_1", "expert_2", "feature_map_2"}
    method.save(tmp_path / "model")
    loaded = load_method(tmp_path / "model", tiny_bert)
    examples = [ex for t in tasks for ex in t.test]
    here, there = method.predict(examples), loaded.predict(examples)
    assert loaded.map_name == "feature_map_2"
    assert [p.label for p in there] == [p.label for p in here]
    np.testing.assert_allclose([p.score for p in there], [p.score for p in here], atol=1e-5)
