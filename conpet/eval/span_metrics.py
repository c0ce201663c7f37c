"""Span-level scores of a bundle's mention proposals (``conpet evaluate BUNDLE FILE`` with a bundle that has a
mention detector): the file's sentences are read as raw text (their gold spans are not given to the
model), the detector proposes mentions, the entity experts type them, and the proposals are compared with
the file's gold entities by exact match: ``typed`` (span and type both right) and ``untyped`` (the span
alone, type-agnostic). Every sentence counts, also one without gold entities (where any proposal is a
false positive). Gold entities without a type count for ``untyped`` only.

``pair_metrics`` scores a model's relatedness gate the same way: the file's gold mentions are given, every
ordered pair of them the gate lets through is typed by the relation experts (kept to the declared head and
tail types), and the proposals are compared with the file's gold relations: a proposal on a pair the file
leaves unlabelled is a false positive, so relation precision counts the wrong relations a user would be
offered, not only the labelled pairs' types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conpet.data.argument_rules import fit_pair, restricts_any
from conpet.data.example import Span
from conpet.suggest.mentions import span_scores

Triple = tuple[Span, Span, str]  # (head, tail, relation type)


def proposed_mentions(bundle: Any, texts: Sequence[str], progress: Any = None) -> list[list[tuple[Span, str]]]:
    """Per text, the (span, type) of every mention the bundle proposes on it as raw text."""
    return [[(span, label) for span, label, _ in props] for props in scored_mentions(bundle, texts, progress)]


def scored_mentions(bundle: Any, texts: Sequence[str], progress: Any = None
                    ) -> list[list[tuple[Span, str, float]]]:
    """Per text, the (span, type, detector score) of every mention the bundle proposes on it as raw text
    (those at or above its detector's threshold)."""
    from conpet.suggest.suggestions import DETECTOR_KEY, SentenceInput, suggest

    found = suggest(bundle.suggesters, [SentenceInput(t) for t in texts], {"entity"})
    preds = bundle.predict_examples([s.example for s in found], progress) if found else []
    out: list[list[tuple[Span, str, float]]] = [[] for _ in texts]
    for sug, pred in zip(found, preds, strict=True):
        out[sug.sentence].append((sug.example.spans[0], pred.label, sug.scores[DETECTOR_KEY]))
    return out


def span_metrics(bundle: Any, sentences: Sequence[Any], progress: Any = None) -> dict[str, Any] | None:
    """``{"sentences", "typed", "untyped"}`` (each ``SpanScores.to_dict``) for a bundle with a detector and
    sentences with ``text`` and ``entities`` (``conpet.data.jsonl.Sentence``); None without a detector."""
    if bundle.suggesters.detector is None:
        return None
    proposed = proposed_mentions(bundle, [s.text for s in sentences], progress)
    gold_typed = [[(Span(e.start, e.end), e.type) for e in s.entities if e.type] for s in sentences]
    gold_spans = [[Span(e.start, e.end) for e in s.entities] for s in sentences]
    typed = span_scores(gold_typed, proposed)
    untyped = span_scores(gold_spans, [[span for span, _ in p] for p in proposed])
    return {"sentences": len(sentences), "typed": typed.to_dict(), "untyped": untyped.to_dict()}


def format_span_metrics(metrics: dict[str, Any]) -> str:
    lines = [f"  proposed mentions on {metrics['sentences']} sentence(s) as raw text (exact match):"]
    for key, what in (("typed", "span + type"), ("untyped", "span only")):
        m = metrics[key]
        lines.append(f"    {what:<12} precision {100 * m['precision']:5.1f}%  recall {100 * m['recall']:5.1f}%  "
                     f"F1 {100 * m['f1']:5.1f}%  ({m['true_positives']} of {m['gold']} gold, "
                     f"{m['predicted']} proposed)")
    return "\n".join(lines)


def proposed_pairs(bundle: Any, sentences: Sequence[Any], progress: Any = None) -> list[list[Triple]]:
    """Per sentence, the (head, tail, type) of every pair of its gold mentions that the gate proposes,
    typed by the relation experts and kept to the declared argument types."""
    from conpet.suggest.suggestions import SentenceInput, suggest

    inputs = [SentenceInput(s.text, tuple(dict.fromkeys(Span(e.start, e.end) for e in s.entities)), labelled=True)
              for s in sentences]
    found = suggest(bundle.suggesters, inputs, {"relation"})
    preds = bundle.predict_examples([f.example for f in found], progress) if found else []
    rules = bundle.argument_rules()
    restricted = restricts_any(rules)
    out: list[list[Triple]] = [[] for _ in sentences]
    for sug, pred in zip(found, preds, strict=True):
        types = {Span(e.start, e.end): e.type for e in sentences[sug.sentence].entities}
        head, tail = sug.example.spans
        fitted = fit_pair(pred, rules, types.get(head), types.get(tail)) if restricted else pred
        if fitted is not None:
            out[sug.sentence].append((head, tail, fitted.label))
    return out


def pair_metrics(bundle: Any, sentences: Sequence[Any], progress: Any = None) -> dict[str, Any] | None:
    """``{"sentences", "typed", "related", "unlabelled_proposed"}`` for a model with a relatedness gate and
    a file with relations (None otherwise): ``typed`` compares (head, tail, type), ``related`` the pairs
    alone; ``unlabelled_proposed`` counts the proposals on pairs the file leaves without a relation."""
    if bundle.suggesters.relatedness is None or not any(s.relations for s in sentences):
        return None
    proposed = proposed_pairs(bundle, sentences, progress)
    gold = [[(Span(s.entities[r.head].start, s.entities[r.head].end),
              Span(s.entities[r.tail].start, s.entities[r.tail].end), r.type) for r in s.relations]
            for s in sentences]
    typed = span_scores(gold, proposed)
    related = span_scores([[(h, t) for h, t, _ in g] for g in gold], [[(h, t) for h, t, _ in p] for p in proposed])
    unlabelled = sum(len({(h, t) for h, t, _ in p} - {(h, t) for h, t, _ in g}) for g, p in zip(gold, proposed,
                                                                                                  strict=True))
    return {"sentences": len(sentences), "typed": typed.to_dict(), "related": related.to_dict(),
            "unlabelled_proposed": unlabelled}


def format_pair_metrics(metrics: dict[str, Any]) -> str:
    lines = [f"  proposed relations between the gold mentions of {metrics['sentences']} sentence(s) (exact match):"]
    for key, what in (("typed", "pair + type"), ("related", "pair only")):
        m = metrics[key]
        lines.append(f"    {what:<12} precision {100 * m['precision']:5.1f}%  recall {100 * m['recall']:5.1f}%  "
                     f"F1 {100 * m['f1']:5.1f}%  ({m['true_positives']} of {m['gold']} gold, "
                     f"{m['predicted']} proposed)")
    lines.append(f"    proposed on pairs the file leaves unlabelled: {metrics['unlabelled_proposed']}")
    return "\n".join(lines)
