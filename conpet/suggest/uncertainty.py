"""How unsure the model is about a sentence, from the predictions a prediction run stored: the order of
the "next most useful" queue (label first where the model is least sure, as in active learning's
uncertainty sampling).

One prediction's uncertainty is the mean of the signals it carries, each in [0, 1] (1 = unsure):

- ``1 - score``: the probability of its top type is low;
- the selector's normalised entropy, ``H(p) / log(n)`` over ``selector_scores`` (probabilities, renormalised):
  the selector can't tell which expert knows the type (absent with fewer than two experts);
- ``1 - expert_scores["detector"]``: the mention detector was not sure the span is a mention (only on the
  rows a detector proposed).

A sentence's uncertainty is that of its least sure prediction (one doubtful mention is worth a look however
sure the others are); ties go to the sentence with more predictions (more to review), then to the lower id.
A sentence with no prediction in the run scores 0: the model proposes nothing there, so it comes last.

``balanced_order`` is the same queue dealt round-robin over the types the model predicted (each sentence
under the type of its least sure prediction; the type whose most doubtful sentence is more doubtful deals
first): plain uncertainty sampling can spend a whole round on two types the model confuses, while the
router's statistics of the other types learn nothing (``conpet bench --protocol active-learning``).

Pure Python on purpose: the app's queue and any headless tool share it, and it is tested without a model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

DETECTOR_KEY = "detector"


@dataclass(frozen=True)
class Scored:
    """The signals of one prediction, as the store keeps them."""

    sentence_id: int
    score: float
    selector_scores: Sequence[float] | None = None
    expert_scores: Mapping[str, float] = field(default_factory=dict)
    label: str = ""  # the predicted type (``balanced_order`` deals by it)


def _clip(x: float) -> float:
    return 0.0 if not math.isfinite(x) else min(1.0, max(0.0, x))


def selector_entropy(probs: Sequence[float] | None) -> float | None:
    """Normalised entropy in [0, 1] of the selector's scores; None when there is nothing to choose between."""
    if not probs or len(probs) < 2:
        return None
    ps = [max(0.0, p) if math.isfinite(p) else 0.0 for p in probs]
    total = sum(ps)
    if total <= 0:
        return None
    h = -sum(p / total * math.log(p / total) for p in ps if p > 0)
    return _clip(h / math.log(len(ps)))


def prediction_uncertainty(p: Scored) -> float:
    """The mean of the signals ``p`` carries (see the module docstring)."""
    parts = [1.0 - _clip(p.score)]
    entropy = selector_entropy(p.selector_scores)
    if entropy is not None:
        parts.append(entropy)
    if DETECTOR_KEY in p.expert_scores:
        parts.append(1.0 - _clip(float(p.expert_scores[DETECTOR_KEY])))
    return sum(parts) / len(parts)


def sentence_uncertainty(predictions: Iterable[Scored]) -> dict[int, tuple[float, int]]:
    """sentence id -> (its uncertainty, how many predictions it has)."""
    out: dict[int, list[float]] = defaultdict(list)
    for p in predictions:
        out[p.sentence_id].append(prediction_uncertainty(p))
    return {sid: (max(us), len(us)) for sid, us in out.items()}


def most_useful_order(sentence_ids: Iterable[int], predictions: Iterable[Scored]) -> list[int]:
    """``sentence_ids`` from the one the model is least sure about to the one it is surest about."""
    scores = sentence_uncertainty(predictions)
    return sorted(set(sentence_ids), key=lambda sid: (-scores.get(sid, (0.0, 0))[0], -scores.get(sid, (0.0, 0))[1], sid))


def balanced_order(sentence_ids: Iterable[int], predictions: Iterable[Scored]) -> list[int]:
    """``most_useful_order`` dealt round-robin over predicted types (see the module docstring); sentences
    without a prediction come last, as there."""
    preds = list(predictions)
    order = most_useful_order(sentence_ids, preds)
    doubt: dict[int, tuple[float, str]] = {}
    for p in preds:
        u = prediction_uncertainty(p)
        if p.sentence_id not in doubt or u > doubt[p.sentence_id][0]:
            doubt[p.sentence_id] = (u, p.label)
    queues: dict[str, list[int]] = {}
    for sid in order:
        if sid in doubt:
            queues.setdefault(doubt[sid][1], []).append(sid)  # each queue keeps the doubt order
    out: list[int] = []
    while queues:
        for label in list(queues):  # types in the order of their most doubtful sentence
            out.append(queues[label].pop(0))
            if not queues[label]:
                del queues[label]
    return out + [sid for sid in order if sid not in doubt]
