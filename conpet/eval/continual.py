"""The continual loop: learn each task in turn, then evaluate on every seen test set; metrics after
every step; progress (fraction, message, stage, ETA, live metrics) and cancellation through a
`ProgressSink`. The same function runs from the CLI bench, the app's worker thread and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import accumulate
from typing import Any

from conpet.core.errors import Cancelled
from conpet.core.protocols import ProgressSink, ScaledSink
from conpet.data.tasks import TaskData
from conpet.eval.metrics import AccuracyMatrix, peak_rss_mb, per_task_counts, selector_accuracy
from conpet.methods.base import ContinualMethod, Prediction, StepStats

TRAIN_SHARE = 0.85  # of each step's progress; the rest is the evaluation


def step_bounds(n: int, grows: bool = False, start: int = 0) -> list[float]:
    """Where steps `start`..n-1 of a run start and end in its progress fraction (n - start + 1 bounds,
    from 0 to 1): equal shares, or, for methods whose steps train on all history, shares growing with
    the step number (step k weighs k + 1), so that the fraction, and the ETA drawn from it, track the
    time spent."""
    cum = list(accumulate((k + 1 if grows else 1 for k in range(start, n)), initial=0))
    return [c / cum[-1] for c in cum] if cum[-1] else [1.0]


@dataclass
class StepRecord:
    """One continual step: training cost and the metrics after it (accuracies are fractions)."""

    step: int
    types: list[str]
    train_seconds: float  # wall clock
    eval_seconds: float
    whole_acc: float
    avg_acc: float
    task_acc: list[float]
    selector_acc: float | None
    peak_rss_mb: float
    stats: dict[str, Any] = field(default_factory=dict)
    train_cpu_seconds: float = float("nan")  # CPU time of this process: robust to a busy machine
    oracle_routing_acc: float | None = None  # Dynamic ConPET: W if every example went to its gold expert
    routing: dict[str, float] | None = None  # a routed method's diagnostics (`routing_report`), in %


@dataclass
class RunResult:
    method: str
    steps: list[StepRecord] = field(default_factory=list)
    matrix: AccuracyMatrix = field(default_factory=AccuracyMatrix)
    cancelled: bool = False

    @property
    def whole_acc(self) -> list[float]:
        return [s.whole_acc for s in self.steps]

    @property
    def avg_acc(self) -> list[float]:
        return [s.avg_acc for s in self.steps]

    @property
    def seconds_per_step(self) -> list[float]:
        return [s.train_seconds for s in self.steps]

    @property
    def selector_acc(self) -> list[float | None]:
        return [s.selector_acc for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "cancelled": self.cancelled, "steps": [asdict(s) for s in self.steps],
                "matrix": self.matrix.accuracy(), **{k: v for k, v in self.matrix.result().items()
                                                     if k in ("forgetting", "bwt")}}


def evaluate(method: ContinualMethod, tasks: Sequence[TaskData], sink: ProgressSink | None = None
             ) -> tuple[list[tuple[int, int]], float | None, list[Prediction]]:
    """Per-task (correct, total) over the test sets of `tasks`, the selector's top-1 accuracy when the
    method has one, and the predictions."""
    examples = [ex for t in tasks for ex in t.test]
    gold_task = [i for i, t in enumerate(tasks) for _ in t.test]
    preds = method.predict(examples, sink) if examples else []
    correct = [p.label == ex.label for p, ex in zip(preds, examples, strict=True)]
    counts = per_task_counts(gold_task, correct, len(tasks))
    sel = None
    if preds and preds[0].selector_scores is not None:
        chosen = [max(range(len(p.selector_scores)), key=p.selector_scores.__getitem__)  # type: ignore[arg-type]
                  for p in preds]
        sel = selector_accuracy(chosen, gold_task)
    return counts, sel, preds


def run_continual(method: ContinualMethod, tasks: Sequence[TaskData], *, sink: ProgressSink | None = None,
                  evaluate_each_step: bool = True, on_step: Callable[[StepRecord], None] | None = None,
                  raise_on_cancel: bool = True) -> RunResult:
    """Learn `tasks` in order with `method`; after each, evaluate on all seen test sets.

    Cancellation (the sink's `cancel_requested`) is honoured between batches; the method then
    keeps the modules of the last finished task. With `raise_on_cancel` False the partial result
    comes back with `cancelled=True` instead of `Cancelled` being raised.
    """
    result = RunResult(getattr(method, "name", type(method).__name__))
    n = len(tasks)
    t_start = time.monotonic()
    start = getattr(method, "n_tasks", 0)  # a loaded method continues where it stopped
    bounds = step_bounds(n, bool(getattr(method, "step_cost_grows", False)), start)
    try:
        for k in range(start, n):
            lo, hi = bounds[k - start], bounds[k - start + 1]
            mid = lo + (hi - lo) * (TRAIN_SHARE if evaluate_each_step else 1.0)
            prefix = f"task {k + 1}/{n}: "
            step_sink = ScaledSink(sink, lo, mid, t_start, prefix=prefix)
            eval_sink = ScaledSink(sink, mid, hi, t_start, prefix=prefix) if evaluate_each_step else None
            with method.job():  # each example is encoded once in the step's training, validation and test
                record = _step(method, tasks, k, result.matrix, k - start, step_sink, eval_sink)
            result.steps.append(record)
            if sink is not None:
                from conpet.core.protocols import ProgressEvent

                metrics = {"whole_acc": record.whole_acc, "avg_acc": record.avg_acc,
                           "train_seconds": record.train_seconds}
                if record.selector_acc is not None:
                    metrics["selector_acc"] = record.selector_acc
                sink.report(ProgressEvent(hi, f"task {k + 1}/{n} done: W {100 * record.whole_acc:.1f}%, "
                                              f"A {100 * record.avg_acc:.1f}%", "evaluation", None, metrics))
            if on_step is not None:
                on_step(record)
    except Cancelled:
        result.cancelled = True
        if raise_on_cancel:
            raise
    return result


def _step(method: ContinualMethod, tasks: Sequence[TaskData], k: int, matrix: Any, row: int,
          step_sink: ProgressSink | None, eval_sink: ProgressSink | None) -> StepRecord:
    """Learn ``tasks[k]``, then (with an ``eval_sink``) evaluate on the seen test sets into ``matrix[row]``."""
    task = tasks[k]
    t0, c0 = time.monotonic(), time.process_time()
    stats: StepStats = method.learn_task(task, list(tasks[:k]), step_sink)
    train_s, train_cpu = time.monotonic() - t0, time.process_time() - c0
    record = StepRecord(k, list(task.types), train_s, 0.0, float("nan"), float("nan"), [], None,
                        peak_rss_mb(), stats.to_dict(), train_cpu)
    if eval_sink is None:
        return record
    t1 = time.monotonic()
    counts, sel, _ = evaluate(method, tasks[: k + 1], eval_sink)
    matrix.update(row, counts)
    record.eval_seconds = time.monotonic() - t1
    record.whole_acc = matrix.whole(row)
    record.avg_acc = matrix.average(row)
    record.task_acc = matrix.accuracy()[row]
    record.selector_acc = sel
    oracle = getattr(method, "oracle_routing_accuracy", None)
    seen_test = [ex for t in tasks[: k + 1] for ex in t.test]
    if oracle is not None and getattr(method, "use_selector", False):
        record.oracle_routing_acc = oracle(seen_test)
    report = getattr(method, "routing_report", None)
    if report is not None:
        record.routing = report(seen_test)
    record.peak_rss_mb = peak_rss_mb()
    return record
