"""Continual metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np

from conpet.eval.metrics import (
    AccuracyMatrix,
    backward_transfer,
    forgetting,
    mean_std,
    per_task_counts,
    selector_accuracy,
)


def _matrix() -> AccuracyMatrix:
    m = AccuracyMatrix()
    m.update(0, [(9, 10)])
    m.update(1, [(6, 10), (18, 20)])
    m.update(2, [(3, 10), (10, 20), (40, 40)])
    return m


def test_whole_and_average_accuracy():
    m = _matrix()
    assert m.whole(0) == 0.9
    assert m.whole(1) == 24 / 30
    assert m.average(1) == (0.6 + 0.9) / 2
    assert math.isclose(m.whole(2), 53 / 70)
    assert math.isclose(m.average(2), (0.3 + 0.5 + 1.0) / 3)
    assert m.average_curve()[0] == 0.9


def test_matrix_layout():
    a = _matrix().as_array()
    assert a.shape == (3, 3)
    assert np.isnan(a[0, 1]) and np.isnan(a[1, 2])
    assert a[2, 0] == 0.3


def test_forgetting_and_bwt():
    a = _matrix().as_array()
    # task 0: best before last 0.9, final 0.3 -> 0.6; task 1: best 0.9, final 0.5 -> 0.4
    assert math.isclose(forgetting(a), 0.5)
    # bwt: (0.3 - 0.9 + 0.5 - 0.9) / 2
    assert math.isclose(backward_transfer(a), -0.5)
    assert math.isnan(forgetting(a[:1, :1]))
    r = _matrix().result()
    assert math.isclose(r["forgetting"], 0.5) and len(r["matrix"]) == 3


def test_counts_selector_accuracy_and_mean_std():
    assert per_task_counts([0, 0, 1, 2], [True, False, True, True], 3) == [(1, 2), (1, 1), (1, 1)]
    assert selector_accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)


def test_reset():
    m = _matrix()
    m.reset()
    assert m.steps == 0
