"""An honest ETA: the fraction counts expected work (a step's training batches, validation passes, the
router's feature pass, the test predictions, the saving, from its budget), the ETA comes from the rate of
work measured after a warm-up, and none is given ("estimating…") until enough is timed.

The run is simulated: a fake clock and the events a dynamic-lda step sends (run_stage's batch and
validation events through the method's Reporter, the router's, the predictions'), each costing the time
its work takes. The issue's case: 5 270 training examples, the quick profile's 400 batches, then a
feature pass over all 5 270 and the test predictions, so the stages after the batches are slow for
their fixed share of the old fraction (0.85 * 0.9 for the expert's batches)."""

from __future__ import annotations

import types

import pytest

import conpet.core.protocols as protocols
from conpet.core.config import profile_train
from conpet.core.protocols import ProgressEvent, Reporter, ScaledSink
from conpet.data.tasks import TaskData
from conpet.methods.work_progress import TRAIN_COST, WorkProgress, step_work

SECONDS_PER_UNIT = 0.01  # one example through the backbone without gradients
TRAIN_SLOWER = 1.1  # the true cost of a training example is 10 % above the model's TRAIN_COST
FIRST_BATCH = 20.0  # seconds: the first batch pays for one-off set-up (allocations, lazy loading)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Events:
    def __init__(self, clock: Clock) -> None:
        self.clock, self.events = clock, []

    def report(self, event: ProgressEvent) -> None:
        self.events.append((self.clock(), event))

    def cancel_requested(self) -> bool:
        return False


class Tee:
    def __init__(self, *sinks) -> None:
        self.sinks = sinks

    def report(self, event: ProgressEvent) -> None:
        for s in self.sinks:
            s.report(event)

    def cancel_requested(self) -> bool:
        return False


def _task(n_train: int, n_valid: int, n_test: int) -> TaskData:
    return TaskData(0, ("a", "b"), tuple(range(n_train)), tuple(range(n_valid)), tuple(range(n_test)))


def simulate(monkeypatch, new_old: bool = False):
    """Both progress stacks over one simulated step: (old events, new events, seconds in all)."""
    clock = Clock()
    monkeypatch.setattr(protocols, "time", types.SimpleNamespace(monotonic=clock))
    cfg = profile_train("quick", data="project")
    new = _task(5270, 660, 660)
    segments = step_work("dynamic-lda", cfg, new, [new])
    expert = segments[0]
    old_events, new_events = Events(clock), Events(clock)
    work = WorkProgress(new_events, segments, clock=clock)
    old_train = ScaledSink(old_events, 0.0, 0.85, t0=0.0)  # the old conpet.project.training shares
    old_eval = ScaledSink(old_events, 0.85, 0.97, t0=0.0)
    # learn_task: run_stage's batches (an event every 5) and its validation, then the router's pass
    rep = Reporter(Tee(old_train, work.training_sink()))
    per_epoch = 659
    for b in range(1, expert.batches + 1):
        clock.t += FIRST_BATCH if b == 1 else expert.batch_units * SECONDS_PER_UNIT * TRAIN_SLOWER
        if b % 5 == 0 or b == expert.batches:
            rep(0.9 * b / expert.batches, f"expert: batch {b}", "expert",
                {"batch": b, "batches": expert.batches, "epoch": 1 + (b - 1) // per_epoch})
    clock.t += expert.valid_units * SECONDS_PER_UNIT
    rep(0.9, "expert: epoch 1 validation 0.9", "expert", {"valid_acc": 0.9, "epoch": 1})
    rep(0.9, "router: statistics of the new types", "router")
    clock.t += len(new.train) * SECONDS_PER_UNIT
    rep(1.0, "task 1 learnt", "done")
    # the test predictions (features + the routed expert), 32 a batch
    ev = Tee(old_eval, work.segment_sink("evaluation"))
    n = len(new.test)
    for i in range(0, n, 32):
        clock.t += min(32, n - i) * SECONDS_PER_UNIT
        ev.report(ProgressEvent(min(i + 32, n) / n, "predicted", "evaluation"))
    clock.t += segments[-1].total * SECONDS_PER_UNIT
    work.finish("saving", "model saved")
    return old_events.events, new_events.events, clock.t


def test_eta_when_the_old_bar_said_59_percent_is_within_15_percent_of_the_truth(monkeypatch):
    old, new, total = simulate(monkeypatch)
    i = next(i for i, (_, e) in enumerate(old) if e.fraction >= 0.59)
    t, e_old = old[i]
    assert new[i][0] == t  # both stacks saw the same event
    left = total - t
    assert abs(new[i][1].eta_seconds - left) <= 0.15 * left
    assert e_old.eta_seconds < 0.7 * left  # the old ETA: far too short (the 1 min 10 s at 59 %)


def test_first_eta_comes_after_the_warm_up_and_is_close(monkeypatch):
    old, new, total = simulate(monkeypatch)
    assert new[0][1].eta_seconds is None  # "estimating…" while nothing is measured
    t, first = next((t, e) for t, e in new if e.eta_seconds is not None)
    assert abs(first.eta_seconds - (total - t)) <= 0.2 * (total - t)
    t_old, first_old = next((t, e) for t, e in old if e.eta_seconds is not None)
    assert first_old.eta_seconds > 2 * (total - t_old)  # elapsed / fraction at the first tick: far too long


def test_the_fraction_is_proportional_to_the_work(monkeypatch):
    _, new, total = simulate(monkeypatch)
    fractions = [e.fraction for _, e in new]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # after the expert's batches, the fraction is the share of the time spent (the old shares said 0.765)
    t, e = next((t, e) for t, e in new if e.stage == "router")
    share = (t - FIRST_BATCH) / (total - FIRST_BATCH)  # of the time spent on work (not the one-off set-up)
    assert abs(e.fraction - share) < 0.05 and share < 0.6


def test_skipped_work_moves_the_fraction_but_not_the_rate():
    """A stage that stops early (patience) jumps the fraction to the next stage; the rate stays that of
    the work really done."""
    clock = Clock()
    segs = step_work("dynamic-lda", profile_train("converge", data="project"),
                     _task(200, 30, 30), [_task(200, 30, 30)])
    events = Events(clock)
    work = WorkProgress(events, segs, clock=clock)
    sink = work.training_sink()
    expert = segs[0]
    per_epoch = expert.batches // 30
    for b in range(1, 4 * per_epoch + 1):  # 4 of 30 epochs, then early stopping
        clock.t += expert.batch_units * SECONDS_PER_UNIT
        sink.report(ProgressEvent(0.0, "b", "expert", None, {"batch": b, "batches": expert.batches, "epoch": 1}))
    before = events.events[-1][1]
    sink.report(ProgressEvent(0.9, "router", "router"))
    after = events.events[-1][1]
    assert after.fraction > before.fraction + 0.5
    left = sum(s.total for s in segs[1:])
    assert after.eta_seconds == pytest.approx(left * SECONDS_PER_UNIT, rel=0.01)
    assert TRAIN_COST > 1


def test_a_single_module_method_s_train_stage_moves_the_fraction():
    """Static ConPET's stage is called "train" in its events, "training" in its plan."""
    clock = Clock()
    segs = step_work("static", profile_train("quick", data="project", dynamic=False), _task(80, 10, 10),
                     [_task(80, 10, 10)])
    assert segs[0].name == "training"
    events = Events(clock)
    sink = WorkProgress(events, segs, clock=clock).training_sink()
    for b in (5, 10):
        clock.t += 1.0
        sink.report(ProgressEvent(0.0, "b", "train", None, {"batch": b, "batches": segs[0].batches, "epoch": 1}))
    assert 0 < events.events[0][1].fraction < events.events[1][1].fraction


def test_under_early_stopping_the_eta_expects_the_soonest_stop():
    """converge: 30 epochs planned, patience 3. After epochs 1, 2 and 3 with no rise, the stage should stop
    after epoch 4: the ETA counts one more epoch, not 27 (the bar still counts the plan)."""
    clock = Clock()
    task = _task(200, 30, 30)
    segs = step_work("dynamic-lda", profile_train("converge", data="project"), task, [task])
    expert = segs[0]
    assert expert.patience == 3 and expert.epochs == 30
    events = Events(clock)
    sink = WorkProgress(events, segs, clock=clock).training_sink()
    per_epoch = expert.batches_per_epoch
    for epoch in (1, 2, 3):
        for b in range((epoch - 1) * per_epoch + 1, epoch * per_epoch + 1):
            clock.t += expert.batch_units * SECONDS_PER_UNIT
            if b % 5 == 0 or b == epoch * per_epoch:
                sink.report(ProgressEvent(0.0, "b", "expert", None,
                                          {"batch": b, "batches": expert.batches, "epoch": epoch}))
        clock.t += expert.valid_units * SECONDS_PER_UNIT
        sink.report(ProgressEvent(0.0, "v", "expert", None, {"valid_acc": 0.9, "epoch": epoch}))
    event = events.events[-1][1]
    left = (per_epoch * expert.batch_units + expert.valid_units) + sum(s.total for s in segs[1:])
    assert event.eta_seconds == pytest.approx(left * SECONDS_PER_UNIT, rel=0.02)
    assert event.fraction < 0.15  # 3 of 30 planned epochs
    # the warm-up and the timed work are shares of the work expected, not of 30 epochs: an ETA in epoch 1
    first = next(e for _, e in events.events if e.eta_seconds is not None)
    assert first.metrics["batch"] < per_epoch
