"""The scores `conpet evaluate` and the span benches report are scikit-learn's, and equal what the definitions
give (within float rounding): per-type precision / recall / F1 with 0 where undefined, macro-F1 over the gold
types, the most frequent confusions, and exact-match span precision / recall / F1."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from conpet.eval.labelled_file import score
from conpet.suggest.mentions import SpanScores, span_scores


def _by_definition(gold, predicted):
    support, said = Counter(gold), Counter(predicted)
    hits = Counter(g for g, p in zip(gold, predicted, strict=True) if g == p)
    out = {}
    for t in sorted(support):
        p = hits[t] / said[t] if said[t] else 0.0
        r = hits[t] / support[t]
        out[t] = (p, r, 2 * p * r / (p + r) if p + r else 0.0, support[t])
    return out


@pytest.mark.parametrize("seed", range(20))
def test_per_type_scores_macro_f1_and_confusions_match_their_definitions(seed):
    rng = random.Random(seed)
    labels = [f"T{i}" for i in range(rng.randint(1, 7))]
    gold = [rng.choice(labels) for _ in range(rng.randint(1, 50))]
    predicted = [g if rng.random() < 0.6 else rng.choice([*labels, "Unseen"]) for g in gold]
    s = score(gold, predicted, top_confusions=100)
    want = _by_definition(gold, predicted)
    assert {t.type: (t.precision, t.recall, t.f1, t.support) for t in s["per_type"]} == {
        t: (pytest.approx(p, abs=1e-12), pytest.approx(r, abs=1e-12), pytest.approx(f, abs=1e-12), n)
        for t, (p, r, f, n) in want.items()}
    assert s["macro_f1"] == pytest.approx(sum(v[2] for v in want.values()) / len(want), abs=1e-12)
    assert s["accuracy"] == sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    assert s["confusions"] == sorted(((g, p, n) for (g, p), n in pairs.items()), key=lambda c: (-c[2], c[0], c[1]))


def test_one_label_everywhere_has_no_confusions():
    s = score(["A", "A"], ["A", "A"])
    assert (s["accuracy"], s["macro_f1"], s["confusions"]) == (1.0, 1.0, [])


@pytest.mark.parametrize(("tp", "gold", "said"), [(0, 0, 0), (0, 3, 0), (0, 0, 4), (2, 2, 2), (3, 7, 5), (1, 9, 1)])
def test_span_scores_match_their_definitions(tp, gold, said):
    s = SpanScores(tp, gold, said)
    p, r = (tp / said if said else 0.0), (tp / gold if gold else 0.0)
    assert (s.precision, s.recall) == (p, r)
    assert s.f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0, abs=1e-12)
    assert s.to_dict() == {"precision": s.precision, "recall": s.recall, "f1": s.f1, "true_positives": tp,
                           "gold": gold, "predicted": said}


def test_span_scores_count_exact_matches_per_sentence():
    s = span_scores([[(0, 5), (6, 9)], []], [[(0, 5), (6, 8)], [(1, 2)]])
    assert (s.true_positives, s.n_gold, s.n_predicted) == (1, 2, 3)
