"""Scores that mean something for proposed relations: a proposed pair's score is P(related) × P(type |
related); the declared head / tail types hold in bundle prediction as in project prediction; evaluating
on a file scores the pairs the gate proposes, also those the file leaves unlabelled."""

from __future__ import annotations

import pytest
from test_suggestions import FixedGate

from conpet.bundle.runtime import fit_sentence
from conpet.bundle.writer import _merge_tasks
from conpet.data.argument_rules import fit_pair, restricts_any, rule
from conpet.data.example import Example, Span
from conpet.data.jsonl import Entity, Relation, Sentence
from conpet.eval.span_metrics import format_pair_metrics, pair_metrics
from conpet.methods.base import Prediction
from conpet.suggest.suggestions import RELATED_KEY, Suggesters, with_scores

TEXT = "Mateo Silva took aspirin for asthma in Osaka ."
MATEO, ASPIRIN, ASTHMA, OSAKA = Span(0, 11), Span(17, 24), Span(29, 35), Span(39, 44)
RULES = {"treats": rule(["Drug"], ["Disease"]), "born_in": rule(["Person"], ["City"]), "mentions": rule()}


def test_a_proposed_pairs_score_includes_the_gates_probability():
    typed = Prediction("x", "born_in", 1.0, expert_scores={"born_in": 1.0})
    doubted = with_scores(typed, {RELATED_KEY: 0.55})
    assert doubted.score == pytest.approx(0.55) and doubted.expert_scores[RELATED_KEY] == 0.55
    assert doubted.expert_scores["born_in"] == 1.0  # the type's probability given a relation stays
    sure = with_scores(Prediction("y", "born_in", 0.9), {RELATED_KEY: 0.99})
    assert sure.score == pytest.approx(0.891) and sure.score > doubted.score
    mention = with_scores(Prediction("z", "City", 0.8), {"detector": 0.6})
    assert mention.score == 0.8  # a proposed mention keeps its type's score


def test_fit_pair_relabels_or_drops_what_the_rules_refuse():
    p = Prediction("x", "treats", 0.7, expert_scores={"treats": 0.7, "born_in": 0.2, "mentions": 0.1})
    assert fit_pair(p, RULES, "Drug", "Disease") is p
    assert fit_pair(p, RULES, None, None) is p  # untyped arguments are not restricted
    fitted = fit_pair(p, RULES, "Person", "City")  # a Person head: treats refused, born_in best of the rest
    assert fitted.label == "born_in" and fitted.score == pytest.approx(2 / 3)
    only_treats = Prediction("x", "treats", 0.9, expert_scores={"treats": 0.9, RELATED_KEY: 0.8})
    assert fit_pair(only_treats, RULES, "Person", "Disease") is None  # "related" is never a type
    assert restricts_any(RULES) and not restricts_any({"mentions": rule()})


def _ex(kind: str, spans: tuple[Span, ...], label: str = "") -> Example:
    return Example(TEXT, spans, label, kind)


def test_bundle_prediction_keeps_to_the_declared_argument_types():
    mateo, asthma = _ex("entity", (MATEO,)), _ex("entity", (ASTHMA,), "Disease")  # asthma typed by the input
    pair = _ex("relation", (MATEO, ASTHMA))
    preds = [Prediction(mateo.id, "Person", 0.9), Prediction(asthma.id, "Drug", 0.6),
             Prediction(pair.id, "treats", 0.95, expert_scores={"treats": 0.95, "born_in": 0.05})]
    # Mateo is a Person (predicted) and the tail a Disease (given): neither treats nor born_in takes it
    kept = fit_sentence([mateo, asthma, pair], preds, {k: v for k, v in RULES.items() if k != "mentions"})
    assert [ex for ex, _ in kept] == [mateo, asthma]
    assert fit_sentence([mateo, asthma, pair], preds, {"treats": rule()}) == list(zip([mateo, asthma, pair], preds,
                                                                                       strict=True))


def test_the_manifest_keeps_a_relation_types_argument_lists():
    state = {"tasks": [["Drug", "Disease"], ["treats"]]}
    tasks = [{"index": 0, "name": "a", "types": [{"name": "Drug", "kind": "entity"},
                                                 {"name": "Disease", "kind": "entity"}]},
             {"index": 1, "name": "b", "types": [{"name": "treats", "kind": "relation", "head_types": ["Drug"],
                                                  "tail_types": ["Disease"]}]}]
    merged = _merge_tasks(state, tasks, None)
    assert merged[1]["types"][0] == {"name": "treats", "kind": "relation", "description": "",
                                     "head_types": ["Drug"], "tail_types": ["Disease"]}
    assert "head_types" not in merged[0]["types"][0]


class PairBundle:
    """A model with a fixed gate and fixed relation types per pair."""

    def __init__(self, gate_scores, types, rules):
        self.suggesters = Suggesters(relatedness=FixedGate(gate_scores, 0.5))
        self.types, self.rules = types, rules

    def predict_examples(self, examples, progress=None):
        return [Prediction(ex.id, self.types[ex.spans], 0.9, expert_scores={self.types[ex.spans]: 0.9,
                                                                              "born_in": 0.1})
                for ex in examples]

    def argument_rules(self):
        return self.rules


def test_pair_metrics_count_proposals_on_pairs_the_file_leaves_unlabelled():
    ents = (Entity(MATEO.start, MATEO.end, "Person"), Entity(ASPIRIN.start, ASPIRIN.end, "Drug"),
            Entity(ASTHMA.start, ASTHMA.end, "Disease"), Entity(OSAKA.start, OSAKA.end, "City"))
    gold = [Sentence(TEXT, ents, (Relation(1, 2, "treats"),))]
    gate = {(a, b): 0.1 for a in (MATEO, ASPIRIN, ASTHMA, OSAKA) for b in (MATEO, ASPIRIN, ASTHMA, OSAKA)}
    gate.update({(ASPIRIN, ASTHMA): 0.9, (MATEO, OSAKA): 0.6, (MATEO, ASTHMA): 0.7})
    # the labelled pair is right; Mateo -> Osaka (born_in, unlabelled in the file) is a wrong proposal;
    # Mateo -> asthma typed treats is refused by treats' Drug head and falls to born_in, refused too: dropped
    types = {(ASPIRIN, ASTHMA): "treats", (MATEO, OSAKA): "born_in", (MATEO, ASTHMA): "treats"}
    m = pair_metrics(PairBundle(gate, types, RULES), gold)
    assert m["unlabelled_proposed"] == 1
    assert (m["typed"]["true_positives"], m["typed"]["gold"], m["typed"]["predicted"]) == (1, 1, 2)
    assert m["typed"]["precision"] == pytest.approx(0.5) and m["related"]["recall"] == 1.0
    assert "unlabelled: 1" in format_pair_metrics(m)
    no_rules = pair_metrics(PairBundle(gate, types, {}), gold)
    assert no_rules["typed"]["predicted"] == 3  # without the rules the Person -> Disease pair is proposed
    assert pair_metrics(PairBundle(gate, types, RULES), [Sentence(TEXT, ents)]) is None  # no relation labels
