"""Training on all labelled data (``conpet train --all-data``): no held-out test split for the new task,
and a k-fold cross-validated estimate of its accuracy instead.

Design: the model the user keeps learns the new task from all of its examples. Its accuracy is estimated
by k extra trainings of the new task only (the old tasks' modules are loaded as they are, never retrained):
fold i trains on the other k - 1 folds, the same way, and predicts fold i with the whole model (routing
included). Every new example is predicted once, by a model that never saw it, so the estimate covers all N
examples; it is slightly pessimistic (each fold's model learns from (k - 1) / k of them). The folds are
dealt per type in the order of the examples' content keys (``conpet.project.splits.split_key``): no seed,
no input order, and every fold holds about 1 / k of each type.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conpet.core.errors import ConpetError
from conpet.project.splits import split_key

DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class CrossValidation:
    folds: int
    examples: int
    correct: int
    fold_correct: list[int] = field(default_factory=list)
    fold_examples: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.examples if self.examples else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "examples": self.examples, "correct": self.correct,
                "accuracy": self.accuracy, "fold_correct": list(self.fold_correct),
                "fold_examples": list(self.fold_examples)}


def check_folds(examples: Sequence[Any], folds: int) -> None:
    """Refuses a fold count below 2 and a type with fewer than 2 examples (one fold would train without it)."""
    if folds < 2:
        raise ConpetError(f"--folds must be at least 2, not {folds}")
    counts: dict[str, int] = defaultdict(int)
    for ex in examples:
        counts[ex.label] += 1
    short = sorted(t for t, n in counts.items() if n < 2)
    if short:
        raise ConpetError(f"--all-data cross-validates the new task: type(s) {short} need at least 2 labelled "
                          "examples (label more, or train without --all-data)")


def assign_folds(examples: Sequence[Any], folds: int) -> list[int]:
    """The fold of each example: per type, dealt round-robin in the order of the examples' keys."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_type[ex.label].append(i)
    out = [0] * len(examples)
    offset = 0
    for label in sorted(by_type):
        rows = sorted(by_type[label], key=lambda i: (split_key(examples[i]), examples[i].id))
        for j, i in enumerate(rows):
            out[i] = (offset + j) % folds
        offset += len(rows)  # the next type starts where this one stopped: folds stay balanced overall
    return out


def cross_validate(examples: Sequence[Any], folds: int,
                   train_and_predict: Callable[[int, list[Any], list[Any]], list[str]]) -> CrossValidation:
    """``train_and_predict(i, train, held_out)`` trains fold i's model and returns its labels for
    ``held_out``; the counts of right ones, per fold and in all."""
    fold_of = assign_folds(examples, folds)
    fold_correct, fold_examples = [], []
    for i in range(folds):
        train = [ex for ex, f in zip(examples, fold_of, strict=True) if f != i]
        held = [ex for ex, f in zip(examples, fold_of, strict=True) if f == i]
        labels = train_and_predict(i, train, held) if held else []
        fold_correct.append(sum(int(lab == ex.label) for lab, ex in zip(labels, held, strict=True)))
        fold_examples.append(len(held))
    return CrossValidation(folds, len(examples), sum(fold_correct), fold_correct, fold_examples)


def cv_text(cv: dict[str, Any] | None) -> str:
    """``84.2% (cross-validated, 5 folds, 755 examples)``."""
    if not cv or not cv.get("examples"):
        return ""
    return (f"{100 * cv['correct'] / cv['examples']:.1f}% (cross-validated, {cv['folds']} folds, "
            f"{cv['examples']} examples)")
