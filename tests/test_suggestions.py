"""Suggestions on raw text (issue 14, engine): the mention detector and the relatedness gate trained with a
project's model, their proposals stored as predictions, rejected annotations as negatives, the no-relation
threshold, bundles that carry them (and old ones without), `conpet predict BUNDLE` on text-only input and
span-level scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from demo_data import DEMO

from conpet import cli
from conpet.bundle import Bundle, verify_bundle, write_bundle
from conpet.data.example import Span
from conpet.data.jsonl import Entity, Sentence
from conpet.eval.span_metrics import span_metrics
from conpet.methods.base import Prediction
from conpet.project.bundles import export_bundle, project_bundle_info
from conpet.project.model import current_model_folder, read_model_state
from conpet.project.predict import predict_project
from conpet.project.suggesters import detector_sentences, relatedness_pairs
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file
from conpet.suggest.detector import MentionDetector, Proposal
from conpet.suggest.mentions import IGNORE, TAG_B, TAG_O, MentionSentence, sentence_tags, span_scores
from conpet.suggest.relation_candidates import RELATED, RelatednessScorer, RelatednessSettings, pair_example
from conpet.suggest.suggestions import DETECTOR_KEY, RELATED_KEY, SentenceInput, Suggesters, suggest

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}
# enough for the detector to tag the demo's names on a few sentences (as in test_detector.py)
SUGGESTERS = {"detector": {"batch_size": 8, "max_epochs": 12, "learning_rate": 3e-3, "batch_limit": None},
              "relatedness": {"batch_size": 8, "max_epochs": 1, "batch_limit": 2}}
UNLABELLED = ["Maria Lopez moved to Valencia last spring.", "Tickets for the concert in Porto sold out."]


def _demo_lines(n: int, types: set[str]) -> list[str]:
    """The first ``n`` demo sentences with at least one entity of ``types``, those entities only."""
    out = []
    for line in DEMO.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        ents = [e for e in obj["entities"] if e["type"] in types]
        if ents and len(ents) == len(obj["entities"]):
            out.append(json.dumps({"text": obj["text"], "entities": ents, "relations": obj.get("relations", [])}))
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory, minilm) -> Path:
    """A trained project: 16 labelled demo sentences (Person, City), two unlabelled ones, and a
    rejected mention in a sentence with no gold entity."""
    tmp = tmp_path_factory.mktemp("suggest")
    data = tmp / "labelled.jsonl"
    data.write_text("\n".join(_demo_lines(16, {"Person", "City"})) + "\n", encoding="utf-8")
    folder = tmp / "proj"
    with Project.create(folder) as p:
        import_file(p, data)
        for text in UNLABELLED:
            p.sentences.add(text)
        s = p.sentences.add("The weather in spring was mild.")
        p.annotations.add_entity(s.id, 15, 21, "City", status="rejected")
    train_project(folder, backbone=minilm, profile="smoke", overrides=TINY, suggesters=SUGGESTERS)
    return folder


def test_training_saves_registers_and_declares_the_detector(project):
    with Project.open(project) as p:
        folder = current_model_folder(p)
        mods = {m.name: m for m in p.modules.list()}
        run = p.runs.list()[0]
    assert folder is not None and (folder / "detector" / "detector.json").is_file()
    assert mods["mention-detector"].path.startswith(folder.relative_to(project).as_posix())
    assert "relatedness" in mods  # the demo's born_in pairs (Person, City) train the gate
    state, training = read_model_state(folder)
    files = state["extra"]["files"]
    assert "suggestions.json" in files and "detector/module/adapter_model.safetensors" in files
    assert "relatedness/relatedness.json" in files
    assert training["suggesters"]["detector"]["steps"] and "mention detector: step 1" in run.log


def test_prediction_proposes_mentions_on_unlabelled_sentences_only(project, minilm):
    outcome = predict_project(project, backbone_provider=lambda name, device: minilm, device="cpu")
    with Project.open(project) as p:
        recs = p.predictions.for_run(outcome.run_id)
        ids = {p.sentences.by_text(t).id for t in UNLABELLED}
        no_gold = ids | {p.sentences.by_text("The weather in spring was mild.").id}  # a rejection only
        rejected = (p.sentences.by_text("The weather in spring was mild.").id, 15, 21)
    proposed = [r for r in recs if DETECTOR_KEY in r.expert_scores]
    assert {r.sentence_id for r in proposed} & ids  # the unlabelled sentences got suggestions
    assert {r.sentence_id for r in proposed} <= no_gold  # never on a sentence with gold entity labels
    assert rejected not in {(r.sentence_id, r.start, r.end) for r in proposed}  # a rejected span is not proposed
    for r in proposed:
        assert r.kind == "entity" and r.label in {"Person", "City"} and 0 < r.expert_scores[DETECTOR_KEY] <= 1
        assert {"Person", "City"} <= set(r.expert_scores)  # the experts' usual scores
    for r in recs:
        if RELATED_KEY in r.expert_scores:
            assert r.kind == "relation" and r.expert_scores[RELATED_KEY] >= 0.5


def test_rejected_mentions_are_the_detectors_negatives(project, minilm):
    with Project.open(project) as p:
        data = detector_sentences(p)
        rejected_id = p.sentences.by_text("The weather in spring was mild.").id
        folder = current_model_folder(p)
    _, training = read_model_state(folder)
    neg = data[rejected_id]
    assert neg == MentionSentence("The weather in spring was mild.", (), (Span(15, 21),), complete=False)
    assert rejected_id in training["suggesters"]["detector"]["steps"][0]  # it was in the detector's step
    # its tokens: "spring" is O, the rest of the sentence teaches nothing
    offsets = [(0, 0), (0, 3), (4, 11), (12, 14), (15, 21), (22, 25), (26, 30), (30, 31), (0, 0)]
    assert sentence_tags(offsets, neg) == [IGNORE, IGNORE, IGNORE, IGNORE, TAG_O, IGNORE, IGNORE, IGNORE, IGNORE]
    # a labelled sentence stays complete, and a rejection on a gold span is no negative
    both = MentionSentence("Ada met Bob", (Span(0, 3),), (Span(8, 11),))
    assert sentence_tags([(0, 3), (4, 7), (8, 11)], both) == [TAG_B, TAG_O, TAG_O]


def test_relation_pairs_with_no_relation_on_a_hand_made_case(tmp_path):
    text = "Ada Smith works for Acme in Paris ."
    ada, acme, paris = Span(0, 9), Span(20, 24), Span(28, 33)
    with Project.create(tmp_path / "p") as p:
        for name in ("Person", "Company", "City"):
            p.types.add(name, "entity")
        p.types.add("works_for", "relation")
        s = p.sentences.add(text)
        for span, ty in ((ada, "Person"), (acme, "Company"), (paris, "City")):
            p.annotations.add_entity(s.id, span.start, span.end, ty)
        p.annotations.add_relation(s.id, ada, acme, "works_for")
        other = p.sentences.add("Bob Jones visited Rome .")  # entities but no relation labels: not used
        p.annotations.add_entity(other.id, 0, 9, "Person")
        third = p.sentences.add("Carl met Dora .")  # only a rejected relation: no_relation there
        p.annotations.add_relation(third.id, Span(0, 4), Span(9, 13), "works_for", status="rejected")
        pairs = relatedness_pairs(p)
    got = {pid: {(ex.spans, ex.label) for ex in exs} for pid, exs in pairs.items()}
    assert set(got) == {s.id, third.id}
    assert got[s.id] == {((ada, acme), "related"), ((acme, ada), "no_relation"), ((ada, paris), "no_relation"),
                         ((paris, ada), "no_relation"), ((acme, paris), "no_relation"),
                         ((paris, acme), "no_relation")}
    assert got[third.id] == {((Span(0, 4), Span(9, 13)), "no_relation")}


class FixedGate:
    """A relatedness gate with fixed scores (to check the threshold alone)."""

    def __init__(self, scores, threshold):
        self.scores = scores
        self.settings = RelatednessSettings(threshold=threshold)

    def score(self, pairs):
        return [self.scores[ex.spans] for ex in pairs]


def test_only_pairs_at_or_above_the_threshold_are_proposed():
    a, b, c = Span(0, 3), Span(8, 11), Span(15, 19)
    scores = {(a, b): 0.9, (b, a): 0.2, (a, c): 0.5, (c, a): 0.49, (b, c): 0.1, (c, b): 0.7}
    sentence = SentenceInput("Ada met Bob in Rome .", (a, b, c), labelled=True, pairs=frozenset({(c, b)}))
    found = suggest(Suggesters(relatedness=FixedGate(scores, 0.5)), [sentence], {"entity", "relation"})
    # (c, b) is marked already (predicted as such); below 0.5 is no_relation
    assert [(s.example.spans, s.scores[RELATED_KEY]) for s in found] == [((a, b), 0.9), ((a, c), 0.5)]
    assert all(s.example.kind == "relation" and s.example.label == "" for s in found)
    assert suggest(Suggesters(relatedness=FixedGate(scores, 0.5)), [sentence], {"entity"}) == []
    # a sentence with relation labels: its other pairs are no_relation already, none is proposed
    done = SentenceInput(sentence.text, (a, b, c), labelled=True, pairs=frozenset({(c, b)}), relations_labelled=True)
    assert suggest(Suggesters(relatedness=FixedGate(scores, 0.5)), [done], {"entity", "relation"}) == []


def test_the_gate_learns_related_from_unrelated_pairs(minilm, tmp_path):
    text = "Ada Smith works for Acme in Paris ."
    ada, acme, paris = Span(0, 9), Span(20, 24), Span(28, 33)
    pairs = [pair_example(text, ada, acme, True), pair_example(text, acme, ada, False),
             pair_example(text, ada, paris, False), pair_example(text, paris, acme, False)]
    gate = RelatednessScorer(minilm, RelatednessSettings(batch_size=4, max_epochs=25, learning_rate=3e-3))
    try:
        gate.train(pairs)
        scores = gate.score(pairs)
        assert scores[0] > 0.5 > max(scores[1:])
        loaded = RelatednessScorer.load(gate.save(tmp_path / "gate"), minilm)
        assert loaded.score(pairs) == pytest.approx(scores, abs=1e-6) and loaded.settings == gate.settings
        loaded.pet.close()
    finally:
        gate.pet.close()
    assert RELATED == "related"


@pytest.fixture(scope="module")
def bundle_path(project, tmp_path_factory) -> Path:
    return export_bundle(project, tmp_path_factory.mktemp("bundle") / "demo.zip")


def test_bundle_round_trip_carries_the_detector(bundle_path, project, minilm):
    manifest = verify_bundle(bundle_path)
    # 16 labelled sentences are too few to hold some out for a mention threshold: every proposal is kept
    assert manifest["suggesters"] == {"detector": True, "relatedness": True, "relation_threshold": 0.5,
                                      "mention_threshold": 0.0}
    assert "detector/shape.safetensors" in manifest["files"]
    with Project.open(project) as p:
        folder = current_model_folder(p)
    own = MentionDetector.load(folder / "detector", minilm)
    bundle = Bundle.load(bundle_path, minilm)
    try:
        assert bundle.suggesters.detector is not None
        assert bundle.suggesters.detector.propose(UNLABELLED) == own.propose(UNLABELLED)
        (result,) = bundle.predict([{"text": UNLABELLED[0]}])
        spans = [p.span for p in own.propose(UNLABELLED[:1])[0]]
        entities = [m for m in result.mentions if m.kind == "entity"]
        assert [m.spans[0] for m in entities] == spans and all(DETECTOR_KEY in m.expert_scores for m in entities)
        # pairs of the proposed mentions, each at or above the saved threshold
        pairs = [m for m in result.mentions if m.kind == "relation"]
        assert all(set(m.spans) <= set(spans) and m.expert_scores[RELATED_KEY] >= 0.5 for m in pairs)
    finally:
        bundle.close()
        own.pet.close()


def test_an_old_bundle_without_suggesters_still_predicts_given_spans(project, minilm, tmp_path):
    with Project.open(project) as p:
        folder = current_model_folder(p)
        info = project_bundle_info(p, folder)
    old = tmp_path / "model"
    shutil.copytree(folder, old)
    for sub in ("detector", "relatedness", "suggestions.json"):
        shutil.rmtree(old / sub) if (old / sub).is_dir() else (old / sub).unlink()
    state = json.loads((old / "method.json").read_text())
    state["extra"]["files"] = [f for f in state["extra"]["files"] if f == "router.safetensors"]
    (old / "method.json").write_text(json.dumps(state))
    out = write_bundle(old, tmp_path / "old.zip", info)
    bundle = Bundle.load(out, minilm)
    try:
        assert bundle.manifest["suggesters"] is None and bundle.suggesters.detector is None
        bare, marked = bundle.predict([{"text": UNLABELLED[0]},
                                       {"text": UNLABELLED[0], "entities": [{"start": 0, "end": 11}]}])
        assert bare.mentions == [] and [m.text for m in marked.mentions] == ["Maria Lopez"]
    finally:
        bundle.close()


def test_predict_a_txt_file_and_text_only_jsonl(bundle_path, tmp_path, capsys):
    txt = tmp_path / "in.txt"
    txt.write_text("\ufeff" + UNLABELLED[0] + "\r\n\r\n" + UNLABELLED[1] + "\r\n", encoding="utf-8")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in UNLABELLED) + "\n", encoding="utf-8")
    results = {}
    for name, path in (("txt", txt), ("jsonl", jsonl)):
        out = tmp_path / f"{name}.out.jsonl"
        assert cli.main(["predict", str(bundle_path), str(path), "--out", str(out), "--quiet"]) == 0
        results[name] = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    capsys.readouterr()
    assert [r["line"] for r in results["txt"]] == [1, 3] and [r["line"] for r in results["jsonl"]] == [1, 2]
    assert [r["text"] for r in results["txt"]] == UNLABELLED
    assert [r["predictions"] for r in results["txt"]] == [r["predictions"] for r in results["jsonl"]]
    found = [m for r in results["txt"] for m in r["predictions"] if m["kind"] == "entity"]
    assert found and all(m["label"] in {"Person", "City"} and m["mention"] and DETECTOR_KEY in m["expert_scores"]
                         for m in found)


def test_evaluate_reports_span_scores_for_a_bundle_with_a_detector(bundle_path, tmp_path, capsys):
    data = tmp_path / "gold.jsonl"
    data.write_text("\n".join(_demo_lines(20, {"Person", "City"})[16:]) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    assert cli.main(["evaluate", str(bundle_path), str(data), "--json", str(report), "--quiet"]) == 0
    assert "proposed mentions on 4 sentence(s) as raw text" in capsys.readouterr().out
    spans = json.loads(report.read_text())["spans"]
    assert spans["sentences"] == 4 and spans["untyped"]["gold"] == spans["typed"]["gold"] > 0
    assert spans["typed"]["true_positives"] <= spans["untyped"]["true_positives"]


class FakeDetector:
    def __init__(self, found):
        self.found = found

    def propose(self, texts):
        return [self.found.get(t, []) for t in texts]


class FakeBundle:
    """Proposes fixed spans and types them by a fixed table."""

    def __init__(self, found, types):
        self.suggesters = Suggesters(detector=FakeDetector(found))
        self.types = types

    def predict_examples(self, examples, progress=None):
        return [Prediction(ex.id, self.types[(ex.text, ex.spans[0])], 1.0, None, None, {}, {}) for ex in examples]


def test_span_metrics_on_a_hand_computed_case():
    a, b = "Ada met Bob in Rome .", "It rained ."
    gold = [Sentence(a, (Entity(0, 3, "Person"), Entity(8, 11, "Person"), Entity(15, 19, "City"))),
            Sentence(b, ())]
    # proposed: Ada (right span, right type), Bob (right span, wrong type), "in Rome" (wrong span),
    # "rained" in a sentence without gold (a false positive)
    found = {a: [Proposal(0, 3, 0.9), Proposal(8, 11, 0.8), Proposal(12, 19, 0.7)], b: [Proposal(3, 9, 0.6)]}
    types = {(a, Span(0, 3)): "Person", (a, Span(8, 11)): "City", (a, Span(12, 19)): "City",
             (b, Span(3, 9)): "Person"}
    m = span_metrics(FakeBundle(found, types), gold)
    assert m["sentences"] == 2
    assert (m["untyped"]["true_positives"], m["untyped"]["gold"], m["untyped"]["predicted"]) == (2, 3, 4)
    assert m["untyped"]["precision"] == pytest.approx(0.5) and m["untyped"]["recall"] == pytest.approx(2 / 3)
    assert m["untyped"]["f1"] == pytest.approx(4 / 7)
    assert (m["typed"]["true_positives"], m["typed"]["gold"], m["typed"]["predicted"]) == (1, 3, 4)
    assert m["typed"]["f1"] == pytest.approx(2 * 0.25 * (1 / 3) / (0.25 + 1 / 3))
    assert span_metrics(type("NoDetector", (), {"suggesters": Suggesters()})(), gold) is None
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        span_scores([[], []], [[]])


def test_a_project_without_entity_types_or_relation_labels_skips_the_suggesters_with_a_note(tmp_path):
    from conpet.project.suggesters import train_suggesters

    with Project.create(tmp_path / "p") as p:
        p.types.add("works_for", "relation")
        p.sentences.add("Ada works for Acme .")
        step = train_suggesters(p, None, None, {})  # nothing to learn: the backbone is never touched
    assert step.suggesters.detector is None and step.suggesters.relatedness is None and step.state == {}
    assert step.notes == ["mention detector: not trained (the project has no entity types)",
                          "relatedness gate: not trained (no sentence has relation labels yet)"]
