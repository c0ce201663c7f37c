"""The continual loop's progress shares: equal for ConPET's flat-cost steps, growing with the step for
methods that train on all history (joint retraining, Limitless), so the ETA does not undershoot."""

from __future__ import annotations

import pytest

from conpet.core.protocols import ProgressEvent
from conpet.data.tasks import TaskData
from conpet.eval.continual import run_continual, step_bounds
from conpet.methods.base import ContinualMethod, StepStats
from conpet.methods.registry import method_class


def test_step_bounds_equal_and_growing():
    assert step_bounds(4) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert step_bounds(4, grows=True) == pytest.approx([0.0, 0.1, 0.3, 0.6, 1.0])  # weights 1, 2, 3, 4
    # a run that continues at step 2 of 4: its own progress goes from 0 to 1 over steps 2 and 3 (weights 3, 4)
    assert step_bounds(4, grows=True, start=2) == pytest.approx([0.0, 3 / 7, 1.0])
    assert step_bounds(3, start=3) == [1.0]


@pytest.mark.parametrize("name,grows", [("joint", True), ("limitless", True), ("dynamic", False),
                                        ("dynamic-typesel", False), ("static", False), ("emr", False)])
def test_which_methods_steps_grow(name, grows):
    assert method_class(name).step_cost_grows is grows


class _Sink:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def report(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def cancel_requested(self) -> bool:
        return False


class _Growing(ContinualMethod):
    name = "toy-growing"
    step_cost_grows = True

    def __init__(self) -> None:
        self.n_tasks = 0

    def learn_task(self, task, history, sink=None):
        if sink is not None:
            sink.report(ProgressEvent(0.5, "half", "train"))
        self.n_tasks += 1
        return StepStats(task.index)


def test_run_reports_growing_shares_for_growing_methods():
    tasks = [TaskData(i, (f"t{i}",), (), (), ()) for i in range(4)]
    sink = _Sink()
    run_continual(_Growing(), tasks, sink=sink, evaluate_each_step=False)
    done = [e.fraction for e in sink.events if "done" in e.message]
    halves = [e.fraction for e in sink.events if e.message.endswith("half")]
    assert done == pytest.approx([0.1, 0.3, 0.6, 1.0])
    assert halves == pytest.approx([0.05, 0.2, 0.45, 0.8])
