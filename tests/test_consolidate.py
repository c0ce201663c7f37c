"""Consolidation (`PETMethod.consolidate`, dynamic-lda's `consolidate_step`) on tiny real runs (minilm): a new
feature map trained on every stored example replaces the old one and every statistic is recomputed through
it, the experts untouched; a cancelled or failed consolidation leaves the saved model byte-identical; a
consolidated model predicts the same after loading in a fresh process and through a bundle; a new task
learns after it; methods without a feature map to adapt refuse."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_methods import CONFIG, synthetic_tasks

from conpet.bundle import Bundle, BundleInfo, backbone_info, write_bundle
from conpet.core.errors import Cancelled, ConpetError
from conpet.core.protocols import ProgressEvent
from conpet.eval.continual import run_continual
from conpet.methods.dynamic_lda import CONSOLIDATED_MAP
from conpet.methods.registry import load_method, make_method
from conpet.methods.router import batch_statistics
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
    return synthetic_tasks()[:2]


@pytest.fixture(scope="module")
def saved(minilm, tasks, tmp_path_factory) -> Path:
    """A dynamic-lda model that learnt two tasks, saved (each test loads its own copy)."""
    torch.manual_seed(1)
    method = make_method("dynamic-lda", minilm, CONFIG, cache=MemoryLogitCache())
    run_continual(method, tasks, evaluate_each_step=False)
    folder = tmp_path_factory.mktemp("consolidate") / "before"
    method.save(folder)
    method.pet.close()
    return folder


@pytest.fixture(scope="module")
def consolidated(saved, minilm, tasks):
    method = load_method(saved, minilm, cache=MemoryLogitCache())
    torch.manual_seed(2)
    with method.job():
        stats = method.consolidate(tasks)
    yield method, stats
    method.pet.close()


def _digest(folder: Path) -> dict[str, object]:
    """Each file's SHA-256; a safetensors file's by content (safetensors writes its metadata in no fixed order,
    so two saves of the same router differ in bytes)."""
    from safetensors import safe_open

    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix == ".safetensors":
            with safe_open(str(p), framework="np") as f:
                out[str(p.relative_to(folder))] = (f.metadata(), {k: f.get_tensor(k).tobytes() for k in f.keys()})
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class _StopAt:
    """A sink that cancels, or fails, once the step reaches `stage` (after `after` of its reports)."""

    def __init__(self, stage: str, after: int = 0, fail: bool = False) -> None:
        self.stage, self.after, self.fail = stage, after, fail
        self.seen = 0
        self.stop = False

    def report(self, event: ProgressEvent) -> None:
        if event.stage == self.stage:
            self.seen += 1
            if self.seen > self.after:
                if self.fail:
                    raise RuntimeError("disk on fire")
                self.stop = True

    def cancel_requested(self) -> bool:
        return self.stop


def test_consolidation_replaces_the_map_and_recomputes_every_statistic(consolidated, saved, minilm, tasks):
    method, stats = consolidated
    before = load_method(saved, minilm, cache=MemoryLogitCache())
    try:
        assert before.feature_map == "expert_0" and method.feature_map == CONSOLIDATED_MAP
        assert method.logical_modules() == ["expert_0", "expert_1", CONSOLIDATED_MAP]
        assert method.features_id() != before.features_id()
        assert stats.extra["consolidate"] == {"examples": sum(len(t.train) for t in tasks), "types": 4,
                                              "map": CONSOLIDATED_MAP, "replaced": "expert_0"}
        assert [st.name for st in stats.stages] == ["feature-map"] and stats.stages[0].batches > 0
        # the map trained over every learnt type; the experts are the ones the model had
        assert method.pet.n_outputs(method.adapter(CONSOLIDATED_MAP)) == len(method.types)
        for name in ("expert_0", "expert_1"):
            for a, b in zip(method.pet.module_parameters(method.adapter(name)),
                            before.pet.module_parameters(name), strict=True):
                torch.testing.assert_close(a, b)
        # the router's statistics are the batch statistics of every stored example through the new map
        train = [ex for t in tasks for ex in t.train]
        feats, _ = method.features(train)
        types, counts, means, scatter = batch_statistics(method.router_input(feats), [ex.label for ex in train])
        got = method.router
        assert sorted(got.types) == sorted(types)
        for i, t in enumerate(got.types):
            assert got.counts[i] == counts[types.index(t)]
            np.testing.assert_allclose(got.means[i], means[types.index(t)], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(got.scatter, scatter, rtol=1e-6, atol=1e-6)
    finally:
        before.pet.close()


@pytest.mark.parametrize("how", ["cancel", "fail"])
def test_a_cancelled_or_failed_consolidation_leaves_the_model_identical(saved, minilm, tasks, tmp_path, how):
    method = load_method(saved, minilm, cache=MemoryLogitCache())
    try:
        examples = [ex for t in tasks for ex in t.test]
        first = method.predict(examples)
        # cancel in the middle of the map's training; fail after it, as the statistics are being recomputed
        sink = _StopAt("feature-map", after=2) if how == "cancel" else _StopAt("router", fail=True)
        with pytest.raises(Cancelled if how == "cancel" else RuntimeError), method.job():
            method.consolidate(tasks, sink)
        method.save(tmp_path / "after")
        assert _digest(tmp_path / "after") == _digest(saved)
        assert method.map_name is None and method.feature_map == "expert_0"
        assert set(method.pet.module_names) == {"expert_0", "expert_1"}
        again = method.predict(examples)
        assert [p.label for p in again] == [p.label for p in first]
        np.testing.assert_allclose([p.score for p in again], [p.score for p in first], atol=1e-6)
    finally:
        method.pet.close()


def test_a_consolidated_model_predicts_the_same_in_a_fresh_process(consolidated, tasks, tmp_path):
    method, _ = consolidated
    method.save(tmp_path / "model")
    state = json.loads((tmp_path / "model" / "method.json").read_text())
    assert state["modules"] == ["expert_0", "expert_1", CONSOLIDATED_MAP]
    assert state["extra"]["feature_map"] == CONSOLIDATED_MAP
    examples = [ex for t in tasks for ex in t.test]
    (tmp_path / "examples.json").write_text(json.dumps(
        [{"text": ex.text, "start": ex.spans[0].start, "end": ex.spans[0].end, "label": ex.label} for ex in examples]))
    script = f"""
import json, torch
torch.set_num_threads(1)
from conpet.model.backbones import load_backbone
from conpet.data.example import Example, Span
from conpet.methods.registry import load_method
m = load_method({str(tmp_path / 'model')!r}, load_backbone('minilm', device='cpu'))
rows = json.load(open({str(tmp_path / 'examples.json')!r}))
exs = [Example(r['text'], (Span(r['start'], r['end']),), r['label'], 'entity', source='synthetic') for r in rows]
print(json.dumps([[p.label, p.score, p.selector_scores] for p in m.predict(exs)]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    here = method.predict(examples)
    assert [f[0] for f in fresh] == [p.label for p in here]
    np.testing.assert_allclose([f[1] for f in fresh], [p.score for p in here], atol=1e-5)
    np.testing.assert_allclose([f[2] for f in fresh], [p.selector_scores for p in here], atol=1e-5)


def test_a_bundle_of_a_consolidated_model_predicts_the_same(consolidated, tasks, minilm, tmp_path):
    method, _ = consolidated
    info = [{"index": t.index, "name": f"t{t.index}", "types": [{"name": n, "kind": "entity"} for n in t.types]}
            for t in tasks]
    path = write_bundle(method, tmp_path / "consolidated.zip", BundleInfo(backbone=backbone_info(minilm), tasks=info))
    bundle = Bundle.load(path, minilm)
    try:
        assert any(f.startswith(f"{CONSOLIDATED_MAP}/") for f in bundle.manifest["files"])
        examples = [ex for t in tasks for ex in t.test]
        got, want = bundle.predict_examples(examples), method.predict(examples)
        assert [p.label for p in got] == [p.label for p in want]
        np.testing.assert_allclose([p.score for p in got], [p.score for p in want], atol=1e-5)
    finally:
        bundle.close()


def test_a_new_task_and_a_second_consolidation_after_one(consolidated, minilm, tasks, tmp_path):
    method, _ = consolidated
    method.save(tmp_path / "copy")
    m = load_method(tmp_path / "copy", minilm, cache=MemoryLogitCache())
    try:
        third = synthetic_tasks()[2]
        result = run_continual(m, [*tasks, third])  # the new expert starts from the consolidated map
        assert m.n_tasks == 3 and m.feature_map == CONSOLIDATED_MAP and result.steps[0].whole_acc > 0
        first_version = m.versions[CONSOLIDATED_MAP]
        with m.job():
            m.consolidate([*tasks, third])
        assert m.versions[CONSOLIDATED_MAP] > first_version
        assert set(m.pet.module_names) == {"expert_0", "expert_1", "expert_2", m.adapter(CONSOLIDATED_MAP)}
    finally:
        m.pet.close()


def test_what_cannot_be_consolidated_says_why(saved, minilm, tasks):
    m = load_method(saved, minilm, cache=MemoryLogitCache())
    try:
        with pytest.raises(ConpetError, match="2 learnt task"):
            m.consolidate(tasks[:1])
        changed = [replace(tasks[0], train=tasks[0].train[1:]), tasks[1]]
        with pytest.raises(ConpetError, match="refresh the model first"):
            m.consolidate(changed)
    finally:
        m.pet.close()
    frozen = make_method("lda-frozen", minilm, CONFIG, cache=MemoryLogitCache())
    with pytest.raises(ConpetError, match="no consolidation step"):
        frozen.consolidate(tasks)
    static = make_method("static", minilm, CONFIG)
    with pytest.raises(ConpetError, match="no consolidation step"):
        static.consolidate(tasks)
