"""What a consolidation says it will cost (conpet.project.consolidation.plan_consolidation and the work plan
conpet.methods.work_progress.consolidate_work), from counts alone: pure functions, no model."""

from __future__ import annotations

import math

from conpet.core.config import TrainConfig
from conpet.core.protocols import ProgressEvent
from conpet.data.example import Example, Span
from conpet.data.tasks import TaskData
from conpet.methods.work_progress import (
    TRAIN_COST,
    WorkProgress,
    consolidate_work,
    refresh_work,
    step_work,
    training_units,
)
from conpet.project.consolidation import cannot_consolidate, plan_consolidation


def _examples(label: str, n: int) -> tuple[Example, ...]:
    return tuple(Example(f"{label} example number {i}", (Span(0, len(label)),), label, "entity") for i in range(n))


def _tasks(k: int, train: int = 40) -> list[TaskData]:
    """k tasks of two types, `train` training, 5 validation and 5 test examples per type."""
    out = []
    for i in range(k):
        types = (f"a{i}", f"b{i}")
        out.append(TaskData(i, types, sum((_examples(t, train) for t in types), ()),
                            sum((_examples(t, 5) for t in types), ()), sum((_examples(t, 5) for t in types), ())))
    return out


CONFIG = TrainConfig(batch_size=8, max_epochs=2, batch_limit=400)


def test_the_work_plan_trains_the_map_on_every_stored_example_then_recomputes_the_router():
    datas = _tasks(3)
    seen = 3 * 2 * 40
    segments = {s.name: s for s in consolidate_work(CONFIG, datas)}
    assert list(segments) == ["feature-map", "router", "evaluation", "saving"]
    fm = segments["feature-map"]
    assert fm.batches_per_epoch == math.ceil(seen / 8) and fm.batches == 2 * math.ceil(seen / 8)
    assert fm.batch_units == TRAIN_COST * 8
    assert segments["router"].units == seen
    assert segments["evaluation"].total > 3 * 2 * 5  # every test example's features anew
    # the batch limit caps the map's stage as it caps an expert's
    capped = {s.name: s for s in consolidate_work(CONFIG.replace(batch_limit=10), datas)}
    assert capped["feature-map"].batches == 10


def test_the_plan_says_the_cost_against_the_last_step_and_in_seconds_at_its_speed():
    datas = _tasks(4)
    plan = plan_consolidation("dynamic-lda", CONFIG, datas, last_step_seconds=30.0)
    last = training_units(step_work("dynamic-lda", CONFIG, datas[-1], datas))
    assert plan.examples == 320 and plan.types == 8 and plan.tasks == 4 and plan.batches == 80
    assert plan.ratio is not None and plan.ratio == training_units(consolidate_work(CONFIG, datas)) / last
    assert plan.ratio > 3  # four tasks' data against the last task's alone
    assert plan.seconds is not None and abs(plan.seconds - 30.0 * plan.ratio) < 1e-9
    text = "\n".join(plan.lines)
    assert "320 stored training examples of every learnt type" in text and "80 batches" in text
    assert f"about {plan.ratio:.1f} times the last task's step" in text
    unknown = plan_consolidation("dynamic-lda", CONFIG, datas)  # no step timed: no seconds said
    assert unknown.seconds is None and "at the speed" not in "\n".join(unknown.lines)


def test_what_cannot_be_consolidated():
    assert "no trained model" in cannot_consolidate("dynamic-lda", {}, 0)
    assert "no consolidation step" in cannot_consolidate("static", {}, 2)
    assert "no consolidation step" in cannot_consolidate("lda-frozen", {}, 2)
    assert "frozen backbone" in cannot_consolidate("dynamic-lda", {"router_features": "frozen"}, 2)
    assert cannot_consolidate("dynamic-lda", {"router_features": "first-task"}, 2) == ""
    assert cannot_consolidate("lda-adapted", CONFIG.replace(router_features="first-task"), 1) == ""


class _Events:
    def __init__(self) -> None:
        self.fractions: list[float] = []

    def report(self, event: ProgressEvent) -> None:
        self.fractions.append(event.fraction)

    def cancel_requested(self) -> bool:
        return False


def test_a_refresh_before_the_consolidation_leaves_the_consolidation_its_share_of_the_bar():
    """The refresh's end ("done") finishes its own segments only: the consolidation's map stage still moves
    the bar batch by batch."""
    datas = _tasks(2)
    segments = refresh_work("dynamic-lda", CONFIG, datas, [0], 3, final=False) + consolidate_work(CONFIG, datas)
    events = _Events()
    sink = WorkProgress(events, segments).training_sink()
    sink.report(ProgressEvent(0.5, "r", "expert", None, {"batch": 5, "batches": 10, "epoch": 1}))
    sink.report(ProgressEvent(0.9, "r", "router"))
    sink.report(ProgressEvent(1.0, "refreshed", "done"))
    after_refresh = events.fractions[-1]
    fm = next(s for s in segments if s.name == "feature-map")
    for b in (5, 10, 15):
        sink.report(ProgressEvent(0.1, "m", "feature-map", None, {"batch": b, "batches": fm.batches, "epoch": 1}))
    assert after_refresh < events.fractions[-3] < events.fractions[-2] < events.fractions[-1] < 1.0
    sink.report(ProgressEvent(1.0, "consolidated", "done"))
    share = training_units(segments) / sum(s.total for s in segments)
    assert abs(events.fractions[-1] - share) < 1e-9
