"""Continual-learning metrics (ConPET IV-C): whole accuracy (W), average accuracy (A), the accuracy
matrix (after step i, on task j), forgetting and backward transfer, selector top-1 accuracy.

Metric objects follow update / result / reset. Accuracies are fractions in [0, 1]; the bench prints %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Counter:
    """Correct / total for one thing (a task, the selector)."""

    correct: int = 0
    total: int = 0

    def update(self, correct: int, total: int) -> None:
        self.correct += int(correct)
        self.total += int(total)

    def result(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def reset(self) -> None:
        self.correct = self.total = 0


@dataclass
class AccuracyMatrix:
    """acc[i][j]: accuracy on task j's test set after learning step i (j <= i), with the counts behind it."""

    correct: list[list[int]] = field(default_factory=list)
    total: list[list[int]] = field(default_factory=list)

    def update(self, step: int, per_task: Sequence[tuple[int, int]]) -> None:
        """Record step `step` (0-based): (correct, total) for tasks 0..step."""
        while len(self.correct) <= step:
            self.correct.append([])
            self.total.append([])
        self.correct[step] = [int(c) for c, _ in per_task]
        self.total[step] = [int(t) for _, t in per_task]

    def reset(self) -> None:
        self.correct.clear()
        self.total.clear()

    @property
    def steps(self) -> int:
        return len(self.correct)

    def accuracy(self) -> list[list[float]]:
        return [[c / t if t else float("nan") for c, t in zip(cr, tr, strict=True)]
                for cr, tr in zip(self.correct, self.total, strict=True)]

    def as_array(self) -> np.ndarray:
        """Square array with NaN above the diagonal."""
        n = self.steps
        a = np.full((n, n), np.nan)
        for i, row in enumerate(self.accuracy()):
            a[i, : len(row)] = row
        return a

    def whole(self, step: int) -> float:
        """W: accuracy over all seen test examples after `step`."""
        t = sum(self.total[step])
        return sum(self.correct[step]) / t if t else float("nan")

    def average(self, step: int) -> float:
        """A: mean over seen tasks of each task's accuracy after `step`."""
        return float(np.nanmean(self.accuracy()[step]))

    def whole_curve(self) -> list[float]:
        return [self.whole(i) for i in range(self.steps)]

    def average_curve(self) -> list[float]:
        return [self.average(i) for i in range(self.steps)]

    def result(self) -> dict[str, object]:
        return {"whole": self.whole_curve(), "average": self.average_curve(),
                "matrix": self.accuracy(), "forgetting": forgetting(self.as_array()),
                "bwt": backward_transfer(self.as_array())}


def forgetting(acc: np.ndarray) -> float:
    """Average forgetting after the last step: for each task but the last, the best accuracy it ever
    had before the last step minus its final accuracy (Chaudhry et al. 2018). NaN with one step."""
    n = acc.shape[0]
    if n < 2:
        return float("nan")
    drops = [np.nanmax(acc[j : n - 1, j]) - acc[n - 1, j] for j in range(n - 1)]
    return float(np.mean(drops))


def backward_transfer(acc: np.ndarray) -> float:
    """BWT: mean over tasks but the last of (final accuracy - accuracy right after learning it).
    Negative means forgetting. NaN with one step."""
    n = acc.shape[0]
    if n < 2:
        return float("nan")
    return float(np.mean([acc[n - 1, j] - acc[j, j] for j in range(n - 1)]))


def per_task_counts(task_of: Sequence[int], correct: Sequence[bool], n_tasks: int) -> list[tuple[int, int]]:
    """(correct, total) per task index from per-example task ids and correctness."""
    c = [0] * n_tasks
    t = [0] * n_tasks
    for task, ok in zip(task_of, correct, strict=True):
        t[task] += 1
        c[task] += int(bool(ok))
    return list(zip(c, t, strict=True))


def selector_accuracy(predicted_tasks: Sequence[int], gold_tasks: Sequence[int]) -> float:
    """Top-1 accuracy of the selector's task choice."""
    if not gold_tasks:
        return float("nan")
    return sum(int(p == g) for p, g in zip(predicted_tasks, gold_tasks, strict=True)) / len(gold_tasks)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (NaNs ignored; std 0 for one value)."""
    v = np.asarray([x for x in values if x == x], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
