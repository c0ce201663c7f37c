"""`conpet evaluate`: the scores themselves (hand-checked), and the command on a tiny trained bundle."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from conpet.cli.main import main as conpet_main
from conpet.eval.labelled_file import routing_accuracy, score

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "resources" / "demo" / "demo.jsonl"


def test_score_by_hand():
    gold = ["A", "A", "A", "B", "B", "C"]
    pred = ["A", "A", "B", "B", "A", "A"]
    s = score(gold, pred)
    assert s["accuracy"] == pytest.approx(3 / 6)
    per = {t.type: t for t in s["per_type"]}
    # A: 2 hits of 4 predicted, 3 gold; B: 1 of 2, 2 gold; C: 0 of 0, 1 gold
    assert (per["A"].precision, per["A"].recall, per["A"].support) == (pytest.approx(0.5), pytest.approx(2 / 3), 3)
    assert per["A"].f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert (per["B"].precision, per["B"].recall, per["C"].f1) == (0.5, 0.5, 0.0)
    assert s["macro_f1"] == pytest.approx((per["A"].f1 + 0.5 + 0.0) / 3)
    assert s["confusions"] == [("A", "B", 1), ("B", "A", 1), ("C", "A", 1)]


@dataclass
class _P:
    label: str
    selector_scores: list | None
    active_experts: list | None


def test_routing_accuracy_only_for_routed_predictions():
    task_of = {"A": 0, "B": 1}
    routed = [_P("A", [0.9, 0.1], [0, 1]), _P("A", [0.6, 0.4], [0, 1]), _P("B", [0.2, 0.8], [1, 0])]
    assert routing_accuracy(routed, ["A", "B", "B"], task_of) == pytest.approx(2 / 3)
    assert routing_accuracy([_P("A", None, [0, 1])], ["A"], task_of) is None


@pytest.fixture(scope="module")
def tiny_bundle(tiny_bert, tmp_path_factory):
    """A Dynamic ConPET bundle that learnt Person/City then Company/Drug from a few demo sentences."""
    import torch

    from conpet.bundle import BundleInfo, backbone_info, write_bundle
    from conpet.core.config import TrainConfig
    from conpet.data.jsonl import read_jsonl
    from conpet.data.tasks import TaskData, split_examples
    from conpet.methods.registry import make_method

    torch.manual_seed(0)
    by = defaultdict(list)
    for ex in read_jsonl(DEMO):
        by[ex.label].append(ex)
    tasks = []
    for k, types in enumerate((("Person", "City"), ("Company", "Drug"))):
        tr, va, te = split_examples([e for t in types for e in by[t][:6]], 1)
        tasks.append(TaskData(k, types, tr, va, te))
    method = make_method("dynamic", tiny_bert, TrainConfig(lr=1e-3, batch_limit=2, max_epochs=1, min_valid_per_task=2,
                                                         eval_batch_size=8))
    for k, t in enumerate(tasks):
        method.learn_task(t, tasks[:k])
    info = BundleInfo(backbone=backbone_info(tiny_bert), tasks=[
        {"index": k, "name": f"task {k}", "types": [{"name": n, "kind": "entity", "description": ""} for n in t.types]}
        for k, t in enumerate(tasks)], metrics=[], data={"tasks": []})
    return write_bundle(method, tmp_path_factory.mktemp("eval") / "model", info), method


def test_evaluate_command_on_a_doccano_file(tiny_bundle, tmp_path, capsys):
    from conpet.data.doccano import write_doccano
    from conpet.data.jsonl import read_jsonl_sentences
    from conpet.eval.labelled_file import examples_of

    folder, method = tiny_bundle
    wanted = {"Person", "City", "Company", "Drug", "Disease"}  # Disease: a type the model never learnt
    sentences = [s for s in read_jsonl_sentences(DEMO) if any(e.type in wanted for e in s.entities)][:40]
    data = tmp_path / "mine.jsonl"
    write_doccano(data, sentences)
    out = tmp_path / "report.json"
    assert conpet_main(["evaluate", str(folder), str(data), "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["format"] == "doccano" and "accuracy:" in printed and "macro-F1:" in printed
    # the same numbers as the method's own predictions over the same examples
    examples = [e for e in examples_of(sentences, data.name) if e.label in {"Person", "City", "Company", "Drug"}]
    predicted = method.predict(examples)
    want = sum(p.label == e.label for p, e in zip(predicted, examples, strict=True)) / len(examples)
    assert report["n_examples"] == len(examples) and report["accuracy"] == pytest.approx(want)
    support = {t["type"]: t["support"] for t in report["per_type"]}
    assert sum(support.values()) == len(examples) and set(support) <= {"Person", "City", "Company", "Drug"}
    assert 0.0 <= report["routing_accuracy"] <= 1.0 and 0.0 <= report["oracle_routing_accuracy"] <= 1.0
    assert report["oracle_routing_accuracy"] == pytest.approx(method.oracle_routing_accuracy(examples))
    skipped = sum(1 for s in sentences for e in s.entities if e.type and e.type not in support
                  and e.type not in {"Person", "City", "Company", "Drug"})
    assert sum(report["skipped_unknown_types"].values()) == skipped
    assert "most frequent confusions" in printed or report["accuracy"] == 1.0


def test_evaluate_refuses_a_bad_file_before_loading_the_model(tmp_path, capsys):
    bad = tmp_path / "bad.conll"
    bad.write_text("Ada B-PER\nLovelace\n", encoding="utf-8")
    assert conpet_main(["evaluate", str(tmp_path / "no-such-bundle"), str(bad), "--quiet"]) == 1
    assert f"{bad}:2: expected a token and a tag" in capsys.readouterr().err
