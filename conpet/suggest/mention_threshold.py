"""The mention detector's confidence threshold: which proposals are worth a reviewer's key press.

A proposal's score is the detector's mean tag probability over the span's tokens (``Proposal.score``).
The threshold is chosen on sentences the detector did not train on (its validation sentences,
``conpet.project.suggesters``): every candidate threshold (each proposal's own score) keeps the proposals
at or above it, and the one with the best span-only exact-match F-beta wins; on a tie the higher one
(fewer proposals for the same F-beta).

Why F0.5 (beta = 0.5, precision weighed twice as much as recall) by default: every proposal costs the
reviewer a key and a look, and a wrong one also costs trust in the rest, while a mention the detector
leaves out is not lost (its sentence is still there to label, and the Next most useful queue brings it up).
F1 was tried first: on Few-NERD it hardly filtered (1.01 and 1.33 proposals per gold mention against 1.16
and 1.34 with none dropped; docs/results/mention-threshold), which is not "only proposals worth reviewing".
Span-only, because typing is the experts' job, not the detector's. Torch-free.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conpet.suggest.mentions import SpanScores

DEFAULT_BETA = 0.5
CRITERION = "span-only exact-match F-beta on the detector's validation sentences"

Scored = tuple[Hashable, float]  # a proposed item (a span, a (span, type) pair) and its score


def f_beta(scores: SpanScores, beta: float = DEFAULT_BETA) -> float:
    """The F-beta of exact-match counts (0 where undefined)."""
    p, r = scores.precision, scores.recall
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0


def scores_at(gold: Sequence[Iterable[Hashable]], proposed: Sequence[Sequence[Scored]],
              threshold: float) -> SpanScores:
    """Exact-match counts of the proposals scored at or above ``threshold``."""
    if len(gold) != len(proposed):
        raise ValueError(f"{len(gold)} gold sentences but {len(proposed)} proposed")
    tp = n_gold = n_pred = 0
    for g, ps in zip(gold, proposed, strict=True):
        gs = set(g)
        kept = {item for item, score in ps if score >= threshold}
        tp += len(gs & kept)
        n_gold += len(gs)
        n_pred += len(kept)
    return SpanScores(tp, n_gold, n_pred)


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """The chosen threshold, what it scores on the validation sentences, and what keeping every
    proposal scored there."""

    threshold: float
    beta: float
    sentences: int
    chosen: SpanScores
    every_proposal: SpanScores

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "beta": self.beta, "criterion": CRITERION,
                "validation_sentences": self.sentences, "chosen": self.chosen.to_dict(),
                "every_proposal": self.every_proposal.to_dict()}

    def describe(self) -> str:
        c, a = self.chosen, self.every_proposal
        return (f"threshold {self.threshold:.3f} chosen on {self.sentences} validation sentence(s) "
                f"(span F1 {100 * c.f1:.1f}: P {100 * c.precision:.1f}, R {100 * c.recall:.1f}, "
                f"{c.n_predicted} of {a.n_predicted} proposals kept; every proposal: F1 {100 * a.f1:.1f})")


def choose_threshold(gold: Sequence[Iterable[Hashable]], proposed: Sequence[Sequence[Scored]],
                     beta: float = DEFAULT_BETA) -> ThresholdChoice | None:
    """The threshold with the best F-beta (see the module docstring); None when the sentences have no gold
    mention or no proposal (nothing to choose from)."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if len(gold) != len(proposed):
        raise ValueError(f"{len(gold)} gold sentences but {len(proposed)} proposed")
    golds = [set(g) for g in gold]
    n_gold = sum(map(len, golds))
    # each proposal once per sentence, with its best score, marked right or wrong
    flat: list[tuple[float, bool]] = []
    for g, ps in zip(golds, proposed, strict=True):
        best: dict[Hashable, float] = {}
        for item, score in ps:
            best[item] = max(score, best.get(item, score))
        flat += [(score, item in g) for item, score in best.items()]
    if not n_gold or not flat:
        return None
    flat.sort(key=lambda x: -x[0])
    best_t, best_f, best_counts = flat[0][0], -1.0, SpanScores(0, n_gold, 0)
    tp = 0
    for i, (score, right) in enumerate(flat):
        tp += right
        if i + 1 < len(flat) and flat[i + 1][0] == score:
            continue  # a threshold keeps every proposal of its score
        counts = SpanScores(tp, n_gold, i + 1)
        f = f_beta(counts, beta)
        if f > best_f:  # strict: on a tie the earlier, higher threshold stays
            best_t, best_f, best_counts = score, f, counts
    every = SpanScores(tp, n_gold, len(flat))
    return ThresholdChoice(float(best_t), beta, len(golds), best_counts, every)
