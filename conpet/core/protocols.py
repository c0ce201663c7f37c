"""Small protocols the trainers depend on, so that the same code runs from the CLI, the app,
a benchmark and a unit test (the trainers never import SQLAlchemy or Qt)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from conpet.core.errors import Cancelled

CacheKey = tuple[str, str, int]  # (example id, module id, module version)


@runtime_checkable
class LogitCache(Protocol):
    """(example input key, module id, module version) -> logits of a *frozen* module. The input key
    (`Example.input_key`: kind, text, spans; no label) lets training and prediction share entries.

    Look-ups are batched: one call per batch, never one per example.
    """

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, np.ndarray]: ...

    def put_many(self, items: Mapping[CacheKey, np.ndarray]) -> None: ...


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    fraction: float  # 0..1 over the whole job
    message: str
    stage: str = ""  # e.g. "selector", "expert", "evaluation"
    eta_seconds: float | None = None
    metrics: Mapping[str, float] | None = None  # live loss / accuracy


class ProgressSink(Protocol):
    def report(self, event: ProgressEvent) -> None: ...

    def cancel_requested(self) -> bool: ...


class NullProgress:
    """Reports nowhere, never cancels."""

    def report(self, event: ProgressEvent) -> None:
        pass

    def cancel_requested(self) -> bool:
        return False


class EtaEstimator:
    """Every ETA of the engine: seconds left from the rate of the work done so far. ``update(done, worked)``
    takes the units done (what the fraction shows) and the units actually worked (done minus work skipped,
    which must not count as work done fast); the rate is measured from ``started`` (a ``clock`` time), or,
    without one, from when ``warmup`` of the work is done (the first batches pay for one-off set-up). No ETA
    (None) until ``measure`` of the work has been timed over at least ``reports`` updates."""

    def __init__(self, total: float = 1.0, clock: Callable[[], float] | None = None, *,
                 started: float | None = None, warmup: float = 0.0, measure: float = 1e-6,
                 reports: int = 0) -> None:
        self.total = max(total, 1e-9)
        self.clock = clock  # None: time.monotonic, looked up at each update
        self.warmup, self.measure, self.reports = warmup, measure, reports
        self._start: tuple[float, float] | None = None if started is None else (started, 0.0)
        self._reports = 0  # updates since the start

    def update(self, done: float, worked: float | None = None, expected: float | None = None,
               now: float | None = None) -> float | None:
        """``worked``: ``done`` when None. ``expected``: the units the job should take in all (below ``total``
        where early stopping should skip some); the warm-up and the timed work are shares of it. ``now``: the
        time of the update (default: the clock's)."""
        if now is None:
            now = self.clock() if self.clock is not None else time.monotonic()
        worked = done if worked is None else worked
        total = self.total if expected is None else expected
        if self._start is None:
            if worked >= self.warmup * total:
                self._start = (now, worked)
            return None
        t0, w0 = self._start
        self._reports += 1
        if worked - w0 < self.measure * total or self._reports < self.reports or now <= t0:
            return None
        rate = (worked - w0) / (now - t0)
        return max(total - done, 0.0) / rate


class Reporter:
    """Helper the trainers use: computes ETA from elapsed time and raises Cancelled when asked."""

    def __init__(self, sink: ProgressSink | None) -> None:
        self.sink = sink or NullProgress()
        self.t0 = time.monotonic()
        self._eta = EtaEstimator(started=self.t0)

    def __call__(self, fraction: float, message: str, stage: str = "",
                 metrics: Mapping[str, float] | None = None) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        self.sink.report(ProgressEvent(fraction, message, stage, self._eta.update(fraction), metrics))

    def check_cancel(self) -> None:
        if self.sink.cancel_requested():
            raise Cancelled("cancelled by the user")


class ScaledSink:
    """Maps a sub-job's progress fraction into [lo, hi] of the parent job, keeping the parent's ETA
    (computed from the parent's start), and forwards cancel requests."""

    def __init__(self, parent: ProgressSink | None, lo: float, hi: float, t0: float | None = None,
                 prefix: str = "") -> None:
        self.parent = parent
        self.lo, self.hi = lo, hi
        self.t0 = time.monotonic() if t0 is None else t0
        self.prefix = prefix
        self._eta = EtaEstimator(started=self.t0)

    def report(self, event: ProgressEvent) -> None:
        if self.parent is None:
            return
        f = self.lo + (self.hi - self.lo) * min(max(event.fraction, 0.0), 1.0)
        self.parent.report(ProgressEvent(f, self.prefix + event.message, event.stage, self._eta.update(f),
                                         event.metrics))

    def cancel_requested(self) -> bool:
        return bool(self.parent is not None and self.parent.cancel_requested())


ProgressLike = ProgressSink | Callable[[float, str], Any] | None


class _CallableSink:
    def __init__(self, fn: Callable[[float, str], Any]) -> None:
        self.fn = fn

    def report(self, event: ProgressEvent) -> None:
        self.fn(event.fraction, event.message)

    def cancel_requested(self) -> bool:
        return False


def as_sink(progress: ProgressLike) -> ProgressSink | None:
    """A ``ProgressSink`` for a sink, a ``(fraction, message)`` callable or None."""
    if progress is None or hasattr(progress, "report"):
        return progress  # type: ignore[return-value]
    return _CallableSink(progress)  # type: ignore[arg-type]
