"""The "next most useful" order on a hand-made case: each signal (top score, selector entropy, detector
probability) moves a sentence up the queue, a sentence is as unsure as its least sure prediction, and a
sentence with no prediction comes last."""

from __future__ import annotations

import math

import pytest

from conpet.suggest.uncertainty import Scored, most_useful_order, prediction_uncertainty, selector_entropy


def test_each_signal_and_the_combined_order():
    preds = [
        Scored(1, 0.95),                                              # sure: 0.05
        Scored(2, 0.95, selector_scores=(0.5, 0.5)),                  # the selector can't choose: (0.05 + 1) / 2
        Scored(3, 0.95, expert_scores={"detector": 0.3}),             # doubtful mention: (0.05 + 0.7) / 2
        Scored(4, 0.55),                                              # low top score: 0.45
        Scored(5, 0.99), Scored(5, 0.2),                              # one doubtful prediction is enough: 0.8
        Scored(6, 0.95, selector_scores=(0.98, 0.01, 0.01), expert_scores={"detector": 0.99}),
    ]
    assert prediction_uncertainty(preds[1]) == pytest.approx(0.525)
    assert prediction_uncertainty(preds[2]) == pytest.approx(0.375)
    # 7 has no prediction at all; 8 is not in the queue (labelled already) and must not appear
    order = most_useful_order([1, 2, 3, 4, 5, 6, 7], preds + [Scored(8, 0.0)])
    assert order == [5, 2, 4, 3, 6, 1, 7]


def test_ties_go_to_more_predictions_then_the_lower_id():
    preds = [Scored(3, 0.5), Scored(2, 0.5), Scored(9, 0.5), Scored(9, 0.9)]
    assert most_useful_order([9, 3, 2], preds) == [9, 2, 3]


def test_selector_entropy_edges():
    assert selector_entropy(None) is None and selector_entropy([1.0]) is None
    assert selector_entropy([0.25, 0.25, 0.25, 0.25]) == pytest.approx(1.0)
    assert selector_entropy([1.0, 0.0]) == pytest.approx(0.0)
    assert selector_entropy([2.0, 2.0]) == pytest.approx(1.0)  # renormalised
    assert selector_entropy([math.nan, 1.0]) == pytest.approx(0.0)
    assert prediction_uncertainty(Scored(1, math.nan)) == pytest.approx(1.0)  # no score: unsure
