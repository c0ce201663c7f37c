"""Predictions per run: final label, score and the routing that produced it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from conpet.data.example import Example
from conpet.store.errors import NotFoundError, StoreError
from conpet.store.models import KnowledgeType, Prediction, Run, Sentence, utcnow
from conpet.store.records import NewPrediction, PredictionRecord

if TYPE_CHECKING:
    from conpet.store.db import Database


def prediction_record(p: Prediction) -> PredictionRecord:
    return PredictionRecord(
        id=p.id, run_id=p.run_id, sentence_id=p.sentence_id, kind=p.kind,  # type: ignore[arg-type]
        start=p.start, end=p.end, tail_start=p.tail_start, tail_end=p.tail_end, type_id=p.type_id,
        label=p.label, score=p.score,
        selector_scores=tuple(p.selector_scores) if p.selector_scores is not None else None,
        active_experts=tuple(p.active_experts) if p.active_experts is not None else None,
        expert_scores=dict(p.expert_scores or {}), module_versions=dict(p.module_versions or {}),
        example_id=p.example_id, created_at=p.created_at,
    )


def _floats(values: Any) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _finite(x: float) -> float:
    """SQLite stores NaN as NULL: NaN and -inf become -1e30 (no confidence), +inf 1e30."""
    x = float(x)
    if math.isfinite(x):
        return x
    return 1e30 if x > 0 else -1e30


class PredictionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_many(self, run_id: int, rows: Iterable[NewPrediction]) -> int:
        """Write a run's predictions in one transaction; returns how many."""
        with self._db.transaction() as s:
            if s.get(Run, run_id) is None:
                raise NotFoundError(f"there is no run with id {run_id}")
            types = {(t.kind, t.name): t.id for t in s.scalars(select(KnowledgeType))}
            lengths: dict[int, int] = {}
            objects = []
            for r in rows:
                if r.sentence_id not in lengths:
                    sent = s.get(Sentence, r.sentence_id)
                    if sent is None:
                        raise NotFoundError(f"there is no sentence with id {r.sentence_id}")
                    lengths[r.sentence_id] = len(sent.text)
                if len(r.spans) not in (1, 2):
                    raise StoreError(f"a prediction has 1 span (entity) or 2 (relation), got {len(r.spans)}")
                for sp in r.spans:
                    if not 0 <= sp.start < sp.end <= lengths[r.sentence_id]:
                        raise StoreError(f"prediction span {sp.start}:{sp.end} is outside sentence "
                                         f"{r.sentence_id}")
                kind = "entity" if len(r.spans) == 1 else "relation"
                objects.append({
                    "run_id": run_id, "sentence_id": r.sentence_id, "kind": kind,
                    "start": r.spans[0].start, "end": r.spans[0].end,
                    "tail_start": r.spans[1].start if kind == "relation" else None,
                    "tail_end": r.spans[1].end if kind == "relation" else None,
                    "type_id": types.get((kind, r.label)), "label": r.label, "score": _finite(r.score),
                    "selector_scores": [_finite(x) for x in r.selector_scores]
                    if r.selector_scores is not None else None,
                    "active_experts": [int(x) for x in r.active_experts] if r.active_experts is not None else None,
                    "expert_scores": {str(k): _finite(v) for k, v in (r.expert_scores or {}).items()},
                    "module_versions": {str(k): int(v) for k, v in (r.module_versions or {}).items()},
                    "example_id": r.example_id,
                })
            if objects:
                now = utcnow()
                s.execute(Prediction.__table__.insert(), [
                    {**o, "created_at": now} for o in objects
                ])
            return len(objects)

    def add_engine_results(self, run_id: int, examples: Sequence[Example], predictions: Sequence[Any]) -> int:
        """Store the engine's ``Prediction`` objects (matched to ``examples`` by example id; each example
        must carry ``meta["sentence_id"]``, as those from ``Project.examples_for_*`` do)."""
        by_id = {e.id: e for e in examples}
        rows = []
        for p in predictions:
            ex = by_id.get(p.example_id)
            if ex is None or "sentence_id" not in ex.meta:
                raise StoreError(f"prediction for example {p.example_id!r} has no matching example "
                                 "with a sentence id")
            rows.append(NewPrediction(
                sentence_id=int(ex.meta["sentence_id"]), spans=ex.spans, label=p.label, score=p.score,
                selector_scores=_floats(getattr(p, "selector_scores", None)),
                active_experts=getattr(p, "active_experts", None),
                expert_scores=dict(getattr(p, "expert_scores", {}) or {}),
                module_versions=dict(getattr(p, "module_versions", {}) or {}),
                example_id=p.example_id,
            ))
        return self.add_many(run_id, rows)

    def get(self, prediction_id: int) -> PredictionRecord:
        with self._db.read() as s:
            p = s.get(Prediction, prediction_id)
            if p is None:
                raise NotFoundError(f"there is no prediction with id {prediction_id}")
            return prediction_record(p)

    def for_sentence(self, sentence_id: int, run_id: int | None = None) -> list[PredictionRecord]:
        """The predictions for a sentence from ``run_id`` (default: the newest run that predicted it)."""
        with self._db.read() as s:
            if run_id is None:
                run_id = s.scalar(select(func.max(Prediction.run_id)).where(Prediction.sentence_id == sentence_id))
                if run_id is None:
                    return []
            q = (select(Prediction).where(Prediction.sentence_id == sentence_id, Prediction.run_id == run_id)
                 .order_by(Prediction.start, Prediction.end, Prediction.id))
            return [prediction_record(p) for p in s.scalars(q)]

    def for_run(self, run_id: int, *, limit: int | None = None, offset: int = 0) -> list[PredictionRecord]:
        with self._db.read() as s:
            q = select(Prediction).where(Prediction.run_id == run_id).order_by(Prediction.id).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return [prediction_record(p) for p in s.scalars(q)]

    def count(self, run_id: int | None = None) -> int:
        with self._db.read() as s:
            q = select(func.count(Prediction.id))
            if run_id is not None:
                q = q.where(Prediction.run_id == run_id)
            return int(s.scalar(q) or 0)


    def signals_for_run(self, run_id: int) -> list[tuple[int, float, list[float] | None, dict[str, float]]]:
        """``(sentence id, score, selector scores, expert scores)`` of each of a run's predictions: what an
        uncertainty order needs, read without building whole records (a large run is read in the GUI)."""
        with self._db.read() as s:
            q = select(Prediction.sentence_id, Prediction.score, Prediction.selector_scores,
                       Prediction.expert_scores).where(Prediction.run_id == run_id)
            return [(sid, score, sel, experts or {}) for sid, score, sel, experts in s.execute(q)]
