"""Project prediction keeps to the declared head / tail entity types of relation types (applied at
prediction, not learnt)."""

from __future__ import annotations

import json

import pytest
from demo_data import DEMO

from conpet.data.example import Example, Span, example_id
from conpet.methods.base import Prediction
from conpet.project.argument_mask import fit_argument_types
from conpet.project.predict import predict_project
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file

TEXT = "Ada Lovelace works for Acme in Paris."
ADA, ACME, PARIS = Span(0, 12), Span(23, 27), Span(31, 36)


def _pair(head: Span, tail: Span) -> Example:
    return Example(TEXT, (head, tail), "", "relation", id=example_id(TEXT, (head, tail), "", ""),
                   meta={"sentence_id": 1})


def test_refused_labels_give_way_to_the_best_allowed_one_or_to_none(tmp_path):
    with Project.create(tmp_path / "p") as p:
        for name in ("Person", "Company", "City"):
            p.types.add(name, "entity")
        for name in ("works_for", "located_in"):
            p.types.add(name, "relation")
        p.sentences.add(TEXT)
        p.annotations.add_entity(1, ADA.start, ADA.end, "Person")
        p.annotations.add_entity(1, ACME.start, ACME.end, "Company")  # Paris has no gold type
        p.types.set_arguments("works_for", head=["Person"], tail=["Company"])
        p.types.set_arguments("located_in", head=["Company"], tail=["City"])
        ada_acme, acme_paris, paris_ada = _pair(ADA, ACME), _pair(ACME, PARIS), _pair(PARIS, ADA)
        paris = Example(TEXT, (PARIS,), "", "entity", id="paris", meta={"sentence_id": 1})
        preds = [
            Prediction(ada_acme.id, "works_for", 0.9, expert_scores={"works_for": 0.9, "located_in": 0.1}),
            # Acme -> Paris: "works_for" refuses a Company head; located_in is left, renormalised
            Prediction(acme_paris.id, "works_for", 0.6, expert_scores={"works_for": 0.6, "located_in": 0.2,
                                                                        "Person": 0.2}),
            # Paris (predicted City) -> Ada (Person): neither type takes it
            Prediction(paris_ada.id, "located_in", 0.7, expert_scores={"works_for": 0.3, "located_in": 0.7}),
            Prediction("paris", "City", 0.8, expert_scores={"City": 0.8, "Person": 0.2}),
        ]
        out = fit_argument_types(p, [ada_acme, acme_paris, paris_ada, paris], preds)
    by_id = {q.example_id: q for q in out}
    assert by_id[ada_acme.id] is preds[0]
    assert by_id[acme_paris.id].label == "located_in" and by_id[acme_paris.id].score == pytest.approx(1.0)
    assert by_id[acme_paris.id].expert_scores == {"located_in": pytest.approx(1.0)}
    assert paris_ada.id not in by_id
    assert by_id["paris"] is preds[3]


def _relation_file(out, types=("works_for", "located_in"), n=8):
    left = dict.fromkeys(types, n)
    lines = []
    for line in DEMO.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        rels = [r for r in obj["relations"] if left.get(r["type"], 0) > 0]
        for r in rels:
            left[r["type"]] -= 1
        if rels:
            lines.append(json.dumps({"text": obj["text"], "entities": obj["entities"], "relations": rels}))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_project_prediction_proposes_no_relation_the_declared_types_refuse(tmp_path, tiny_bert):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, _relation_file(tmp_path / "rels.jsonl"))
    train_project(folder, backbone=tiny_bert, profile="smoke",
                  overrides={"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2})
    with Project.open(folder) as p:
        p.types.set_arguments("works_for", head=["Person"], tail=["Company"])
        p.types.set_arguments("located_in", head=["Company"], tail=["City"])
        # a pair that neither type takes, kept as a rejected label so that prediction scores it
        sid, ann = next((sid, a) for sid, anns in p.annotations.for_sentences(p.sentences.ids()).items()
                        for a in anns if a.kind == "relation" and a.type_name == "works_for")
        reversed_pair = p.annotations.add_relation(sid, (ann.tail_start, ann.tail_end), (ann.start, ann.end),
                                                   "works_for", status="rejected")
        predict_project(p, backbone_provider=lambda name, device: tiny_bert, device="cpu")
        run = [r for r in p.runs.list() if r.purpose == "predict"][-1]
        got = {(r.sentence_id, r.spans): r.label for r in p.predictions.for_run(run.id) if r.kind == "relation"}
        gold = {(s, a.spans): a.type_name for s, anns in p.annotations.for_sentences(p.sentences.ids()).items()
                for a in anns if a.kind == "relation" and a.status == "gold"}
    assert (sid, reversed_pair.spans) not in got
    assert set(got) == set(gold)
    # the bundle keeps the rules, and bundle prediction holds to them too (issue 25)
    from conpet.bundle import Bundle, read_manifest
    from conpet.project.bundles import export_bundle

    out = export_bundle(folder, tmp_path / "rels.conpet.zip")
    types = {ty["name"]: ty for t in read_manifest(out)["tasks"] for ty in t["types"]}
    assert (types["works_for"]["head_types"], types["works_for"]["tail_types"]) == (["Person"], ["Company"])
    with Project.open(folder) as p:
        text = p.sentences.get(sid).text
        ents = [a for a in p.annotations.for_sentence(sid) if a.kind == "entity" and a.status == "gold"]
    index = {(a.start, a.end): i for i, a in enumerate(ents)}
    head, tail = index[(ann.start, ann.end)], index[(ann.tail_start, ann.tail_end)]
    line = {"text": text, "entities": [{"start": a.start, "end": a.end, "type": a.type_name} for a in ents],
            "relations": [{"head": tail, "tail": head}, {"head": head, "tail": tail}]}  # refused, then allowed
    bundle = Bundle.load(out, tiny_bert)
    try:
        pairs = [m for m in bundle.predict([line])[0].mentions if m.kind == "relation"]
    finally:
        bundle.close()
    assert [(m.spans[0].start, m.label) for m in pairs] == [(ann.start, "works_for")]
