"""Small protocols the trainers depend on, so that the same code runs from the CLI, the app,
a benchmark and a unit test (the trainers never import SQLAlchemy or Qt)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from conpet.errors import Cancelled

CacheKey = tuple[str, str, int]  # (example id, module id, module version)


@runtime_checkable
class LogitCache(Protocol):
    """(example id, module id, module version) -> logits of a *frozen* module.

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


class Reporter:
    """Helper the trainers use: computes ETA from elapsed time and raises Cancelled when asked."""

    def __init__(self, sink: ProgressSink | None) -> None:
        self.sink = sink or NullProgress()
        self.t0 = time.monotonic()

    def __call__(self, fraction: float, message: str, stage: str = "",
                 metrics: Mapping[str, float] | None = None) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.monotonic() - self.t0
        eta = elapsed * (1 - fraction) / fraction if fraction > 1e-6 else None
        self.sink.report(ProgressEvent(fraction, message, stage, eta, metrics))

    def check_cancel(self) -> None:
        if self.sink.cancel_requested():
            raise Cancelled("cancelled by the user")
