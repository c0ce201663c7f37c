"""Scoring on a labelled file (`conpet evaluate BUNDLE|PROJECT_DIR FILE`; the command is `conpet.cli.evaluate`):
how good a bundle (or a project's current model, through ``conpet.project.evaluate``, which writes nothing to
the project) is on a labelled file of the user's own.

The file is read with any reader of ``conpet.data.formats`` (detected, or ``--format``); every typed entity
and every relation in it is one example, predicted with its gold spans given (typing, as the bundle was
trained). Examples of a kind the bundle does not predict (relations for an entity-only bundle) are left out,
and so are examples whose gold type the bundle never learnt (it cannot name them): both are counted in the
report, by type.

The report (``score``): accuracy; macro-F1 over the gold types present (each type's F1, averaged
unweighted); per type precision, recall, F1 and support (gold count); the most frequent confusions (gold →
predicted, count); and for routed methods (Dynamic ConPET: predictions with selector scores) the routing
accuracy (the first active expert is the gold type's task) and the oracle-routing accuracy (the accuracy
had the selector always chosen the gold task: how much of the error is routing). ``--json OUT`` writes the
report as JSON (atomically); progress goes to stderr (one updating bar on a terminal, lines otherwise).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conpet.core.errors import ConpetError
from conpet.data.example import Example


@dataclass(frozen=True)
class TypeScore:
    type: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvalReport:
    file: str
    format: str
    n_examples: int
    accuracy: float
    macro_f1: float
    per_type: list[TypeScore]
    confusions: list[tuple[str, str, int]]
    routing_accuracy: float | None = None
    oracle_routing_accuracy: float | None = None
    skipped_unknown_types: dict[str, int] = field(default_factory=dict)
    skipped_other_kind: int = 0
    seconds: float = 0.0
    not_in_project: dict[str, int] = field(default_factory=dict)  # PROJECT_DIR: types the project lacks
    spans: dict[str, Any] | None = None  # conpet.eval.span_metrics on the raw text, when the model has a detector
    pairs: dict[str, Any] | None = None  # conpet.eval.span_metrics.pair_metrics, when the model has a gate

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("spans", "pairs"):
            if out[key] is None:
                out.pop(key)
        out["confusions"] = [{"gold": g, "predicted": p, "count": n} for g, p, n in self.confusions]
        return out


def score(gold: Sequence[str], predicted: Sequence[str], *, top_confusions: int = 10) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold types, per-type P/R/F1/support and the top confusions (scikit-learn's
    metrics; a type never predicted has precision 0, and F1 0 where precision and recall are both 0)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ConpetError("nothing to evaluate: no example of a type the model knows")
    types = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=types,
                                                                     zero_division=0)
    per_type = [TypeScore(t, float(p), float(r), float(f), int(n))
                for t, p, r, f, n in zip(types, precision, recall, f1, support, strict=True)]
    labels = sorted(set(gold) | set(predicted))
    confusions = []
    if len(labels) > 1:  # one label: nothing to confuse (and scikit-learn warns)
        matrix = confusion_matrix(gold, predicted, labels=labels)
        confusions = [(labels[i], labels[j], int(matrix[i, j])) for i, j in zip(*matrix.nonzero(), strict=True)
                      if i != j]
    confusions.sort(key=lambda c: (-c[2], c[0], c[1]))
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1.mean()),
        "per_type": per_type,
        "confusions": confusions[:top_confusions],
    }


def routing_accuracy(predictions: Sequence[Any], gold: Sequence[str], task_of: Mapping[str, int]) -> float | None:
    """Share of examples whose first active expert is the gold type's task; None for unrouted methods."""
    if not predictions or any(p.selector_scores is None or not p.active_experts for p in predictions):
        return None
    right = sum(p.active_experts[0] == task_of[g] for p, g in zip(predictions, gold, strict=True))
    return right / len(predictions)


def examples_of(sentences: Sequence[Any], source: str) -> list[Example]:
    """Every typed entity and every relation of the sentences as one example each."""
    from conpet.data._io import IdMaker

    ids = IdMaker()
    out: list[Example] = []
    for s in sentences:
        out.extend(s.examples(source, ids))
    return out


def evaluate_sentences(bundle: Any, sentences: Sequence[Any], path: str | Path, name: str, progress: Any = None,
                       *, oracle: bool = True, started: float | None = None) -> EvalReport:
    """Score ``bundle`` on sentences already read from ``path`` (in format ``name``)."""
    t0 = time.monotonic() if started is None else started
    examples = examples_of(sentences, Path(path).name)
    if not examples:
        raise ConpetError(f"{path}: nothing to evaluate: the file has no labelled entity or relation")
    kinds = bundle.kinds
    known = set(bundle.types)
    usable = [e for e in examples if kinds is None or e.kind in kinds]
    other_kind = len(examples) - len(usable)
    unknown = Counter(e.label for e in usable if e.label not in known)
    usable = [e for e in usable if e.label in known]
    if not usable:
        raise ConpetError(f"{path}: no example of a type the model knows ({len(examples)} examples; the model "
                          f"knows {', '.join(sorted(known)[:8])}{' …' if len(known) > 8 else ''})")
    predictions = bundle.predict_examples(usable, progress)
    gold = [e.label for e in usable]
    scores = score(gold, [p.label for p in predictions])
    method = bundle.method
    task_of = method.task_of_type() if hasattr(method, "task_of_type") else {}
    routed = routing_accuracy(predictions, gold, task_of) if task_of else None
    oracle_acc = None
    if routed is not None and oracle and hasattr(method, "oracle_routing_accuracy"):
        oracle_acc = float(method.oracle_routing_accuracy(usable))
    return EvalReport(str(path), name, len(usable), scores["accuracy"], scores["macro_f1"], scores["per_type"],
                      scores["confusions"], routed, oracle_acc, dict(unknown), other_kind,
                      time.monotonic() - t0)


def format_report(r: EvalReport) -> str:
    lines = [f"evaluated {r.n_examples} examples of {r.file} ({r.format}) in {r.seconds:.1f} s",
             f"  accuracy:   {100 * r.accuracy:6.2f}%", f"  macro-F1:   {100 * r.macro_f1:6.2f}%"]
    if r.routing_accuracy is not None:
        lines.append(f"  routing accuracy:        {100 * r.routing_accuracy:6.2f}%")
    if r.oracle_routing_accuracy is not None:
        lines.append(f"  oracle-routing accuracy: {100 * r.oracle_routing_accuracy:6.2f}%")
    width = max([len("type")] + [len(t.type) for t in r.per_type])
    lines.append(f"  {'type':<{width}}  precision  recall     F1  support")
    for t in r.per_type:
        lines.append(f"  {t.type:<{width}}  {100 * t.precision:8.1f}% {100 * t.recall:6.1f}% "
                     f"{100 * t.f1:5.1f}% {t.support:8d}")
    if r.confusions:
        lines.append("  most frequent confusions (gold -> predicted):")
        lines.extend(f"    {g} -> {p}: {n}" for g, p, n in r.confusions)
    if r.skipped_unknown_types:
        skipped = ", ".join(f"{t} ({n})" for t, n in sorted(r.skipped_unknown_types.items()))
        lines.append(f"  left out, types the model never learnt: {skipped}")
    if r.not_in_project:
        outside = ", ".join(f"{t} ({n})" for t, n in sorted(r.not_in_project.items()))
        lines.append(f"  left out, types the project does not have: {outside}")
    if r.skipped_other_kind:
        lines.append(f"  left out, a kind the model does not predict: {r.skipped_other_kind}")
    return "\n".join(lines)
