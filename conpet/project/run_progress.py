"""The run record's progress sink for every project job (the app's worker sink or the commands' bar,
``conpet.core.progress_bar.TerminalProgress``, sits above it). Sub-jobs map their fractions into the
parent's with ``conpet.core.protocols.ScaledSink``; ``conpet.core.protocols.as_sink`` turns a ``(fraction, message)``
callable into a sink.
"""

from __future__ import annotations

import time
from typing import Any

from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressEvent, ProgressSink


class RunSink:
    """Forwards progress to the caller's sink and, at most once a second, to the run's record (best-effort:
    the result is written in one transaction at the end)."""

    def __init__(self, project: Any, run_id: int, outer: ProgressSink | None, interval: float = 1.0) -> None:
        self.project, self.run_id, self.outer, self.interval = project, run_id, outer, interval
        self._last = 0.0

    def report(self, event: ProgressEvent) -> None:
        if self.outer is not None:
            self.outer.report(event)
        now = time.monotonic()
        if now - self._last >= self.interval or event.fraction >= 1.0:
            self._last = now
            try:
                self.project.runs.update_progress(self.run_id, event.fraction, event.message, stage=event.stage)
            except ConpetError:
                pass

    def cancel_requested(self) -> bool:
        return bool(self.outer is not None and self.outer.cancel_requested())
