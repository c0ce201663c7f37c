"""The progress sinks of project jobs: a terminal bar for the commands, the run record's sink for every
job (the app's worker sink or the bar sits above it). Sub-jobs map their fractions into the
parent's with ``conpet.protocols.ScaledSink``; ``conpet.protocols.as_sink`` turns a ``(fraction, message)``
callable into a sink.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from conpet.errors import ConpetError
from conpet.protocols import ProgressEvent, ProgressSink


class TerminalProgress:
    """A progress bar on a terminal stream (stderr): redrawn in place on a TTY, else one line now and
    then. Implements ``ProgressSink``; ``request_cancel`` makes ``cancel_requested`` true."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 28, label: str = "",
                 min_interval: float = 0.2, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.label = label
        self.min_interval = min_interval if self.tty else 10.0
        self.quiet = quiet
        self._cancel = threading.Event()
        self._last = 0.0
        self._last_frac = -1.0
        self._last_stage = ""
        self._drawn = False

    def report(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        f = min(max(event.fraction, 0.0), 1.0)
        stage_changed = event.stage != self._last_stage
        if not (f >= 1.0 or stage_changed or now - self._last >= self.min_interval
                or (not self.tty and f - self._last_frac >= 0.1)):
            return
        self._last, self._last_frac, self._last_stage = now, f, event.stage
        line = self.render(event)
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: cols - 1].ljust(cols - 1))
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, fraction: float, message: str) -> None:
        """The ``(fraction, message)`` form of progress (the store's importer and exporter)."""
        self.report(ProgressEvent(fraction, message, ""))

    def render(self, event: ProgressEvent) -> str:
        f = min(max(event.fraction, 0.0), 1.0)
        filled = int(round(f * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"{self.label}[{bar}] {100 * f:5.1f}%"]
        if event.stage and event.stage not in event.message:
            parts.append(f"{event.stage}:")
        parts.append(event.message)
        m = event.metrics or {}
        if isinstance(m.get("loss"), float) and m["loss"] == m["loss"]:
            parts.append(f"loss {m['loss']:.3f}")
        if isinstance(m.get("acc"), float):
            parts.append(f"acc {100 * m['acc']:.0f}%")
        if event.eta_seconds is not None and f < 1.0:
            parts.append(f"ETA {format_seconds(event.eta_seconds)}")
        elif event.stage and 0.0 < f < 1.0:  # a job's ETA waits for a measured rate of work
            parts.append("ETA estimating…")
        return " ".join(parts)

    def close(self) -> None:
        if self._drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        self._cancel.set()


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@contextmanager
def cancel_on_sigint(sink: TerminalProgress) -> Iterator[None]:
    """First Ctrl-C asks the job to stop after the current batch; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if sink.cancel_requested():
            raise KeyboardInterrupt
        sink.request_cancel()
        sink.stream.write("\nconpet: stopping after this batch (Ctrl-C again to abort at once)\n")
        sink.stream.flush()

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


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
