"""`conpet evaluate BUNDLE FILE`: how good a bundle is on a labelled file of the user's own.

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

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conpet.data.example import Example
from conpet.errors import ConpetError


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

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["confusions"] = [{"gold": g, "predicted": p, "count": n} for g, p, n in self.confusions]
        return out


def score(gold: Sequence[str], predicted: Sequence[str], *, top_confusions: int = 10) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold types, per-type P/R/F1/support and the top confusions."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ConpetError("nothing to evaluate: no example of a type the model knows")
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    support = Counter(gold)
    predicted_count = Counter(predicted)
    hits = Counter(g for g, p in zip(gold, predicted, strict=True) if g == p)
    per_type = []
    for t in sorted(support):
        precision = hits[t] / predicted_count[t] if predicted_count[t] else 0.0
        recall = hits[t] / support[t]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_type.append(TypeScore(t, precision, recall, f1, support[t]))
    confusions = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return {
        "accuracy": correct / len(gold),
        "macro_f1": sum(s.f1 for s in per_type) / len(per_type),
        "per_type": per_type,
        "confusions": [(g, p, n) for (g, p), n in sorted(confusions.items(), key=lambda x: (-x[1], x[0]))
                       [:top_confusions]],
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


def evaluate_bundle(bundle: Any, path: str | Path, fmt: str | None = None, options: dict | None = None,
                    progress: Any = None, *, oracle: bool = True) -> EvalReport:
    """Score ``bundle`` on the labelled file ``path`` (see the module docstring)."""
    from conpet.data.formats import read_sentences

    t0 = time.monotonic()
    name, sentences = read_sentences(path, fmt, **(options or {}))
    return evaluate_sentences(bundle, sentences, path, name, progress, oracle=oracle, started=t0)


def evaluate_sentences(bundle: Any, sentences: Sequence[Any], path: str | Path, name: str, progress: Any = None,
                       *, oracle: bool = True, started: float | None = None) -> EvalReport:
    """Score ``bundle`` on sentences already read from ``path`` (in format ``name``)."""
    t0 = time.monotonic() if started is None else started
    examples = examples_of(sentences, Path(path).name)
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
    if r.skipped_other_kind:
        lines.append(f"  left out, a kind the model does not predict: {r.skipped_other_kind}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a bundle on a labelled data file (accuracy, macro-F1, per type, routing)",
        description="Predict every gold mention and relation of a labelled file (any import format) with a "
                    "bundle and report accuracy, macro-F1, per-type precision/recall/F1 and support, the most "
                    "frequent confusions and, for routed methods, routing and oracle-routing accuracy.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", default=None, help="the file's format (default: detected)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a reader option")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the report as JSON")
    p.add_argument("--backbone", default=None, metavar="NAME|PATH")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle-routing pass (one more pass)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from conpet.bundle import Bundle
    from conpet.data.documents import write_text_atomic
    from conpet.data.formats import read_sentences
    from conpet.project.progress import TerminalProgress
    from conpet.span_metrics import format_span_metrics, span_metrics
    from conpet.store.cli import parse_options

    t0 = time.monotonic()
    name, sentences = read_sentences(args.file, args.format, **parse_options(args.option))  # before the model
    bar = TerminalProgress(label="evaluate ", quiet=args.quiet)
    try:
        bundle = Bundle.load(args.bundle, args.backbone, device=args.device)
        report = evaluate_sentences(bundle, sentences, args.file, name, bar, oracle=not args.no_oracle,
                                    started=t0)
        spans = span_metrics(bundle, sentences, bar)  # None unless the bundle has a mention detector
    finally:
        bar.close()
    print(format_report(report))
    if spans is not None:
        print(format_span_metrics(spans))
    if args.json:
        out = report.to_json() if spans is None else {**report.to_json(), "spans": spans}
        write_text_atomic(args.json, json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"report written to {args.json}", file=sys.stderr)
    return 0
