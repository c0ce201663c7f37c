"""Progress on a terminal: the one bar every command uses (train, predict, evaluate, import-data,
export-data, export, import-bundle, bench, detect-bench).

On a terminal (``stream.isatty()``) it is a single line redrawn in place with ``\\r``: the bar, the
percentage, the message, live loss/accuracy and an ETA. Anywhere else (CI, a log file, a pipe) it writes
whole lines, one each time the fraction passes the next ``line_step`` (10 % by default), when the stage
changes, once at 100 % and for every *milestone* event (the bench's "task k/n done" lines). Both modes
thin the events by the progress fraction, never by the clock, so the same events always give the same
output (the tests rely on it); the clock only feeds the ETA when the event brings none.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from conpet.core.protocols import EtaEstimator, ProgressEvent

TTY_STEP = 0.001  # a redraw per 0.1 %: cheap, and smooth for long jobs
LINE_STEP = 0.1  # a log line per 10 %
MIN_FRACTION_FOR_ETA = 0.01  # below it an ETA is mostly noise


class TerminalProgress:
    """Implements ``ProgressSink`` (and the ``(fraction, message)`` callable form); ``request_cancel``
    makes ``cancel_requested`` true (Ctrl-C, see ``cancel_on_sigint``). ``quiet`` shows nothing."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 28, label: str = "", quiet: bool = False,
                 line_step: float = LINE_STEP, milestone: Callable[[ProgressEvent], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic, own_eta: bool = True) -> None:
        self.stream = stream or sys.stderr
        # False: the job measures its own ETA (``conpet.methods.work_progress``) and sends none while it cannot yet;
        # the bar then says so instead of making one up from elapsed time
        self.own_eta = own_eta
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.label = label
        self.quiet = quiet
        self.step = TTY_STEP if self.tty else line_step
        self.milestone = milestone
        self.clock = clock
        self._cancel = threading.Event()
        self._t0: float | None = None
        self._eta: EtaEstimator | None = None  # from the first report on
        self._bucket = -1  # the last shown fraction, in steps
        self._stage: str | None = None
        self._finished = False
        self._drawn = False  # a bar is on the line (TTY): the next plain line starts on a new one

    # --- ProgressSink ---
    def report(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
            self._eta = EtaEstimator(clock=self.clock, started=now, measure=MIN_FRACTION_FOR_ETA)
        if self.milestone is not None and self.milestone(event):
            self._line(self.render(event, now))
            return
        f = _clamp(event.fraction)
        bucket = int(f / self.step + 1e-9)
        if not self._wanted(bucket, event.stage, f):
            return
        self._bucket, self._stage, self._finished = bucket, event.stage, f >= 1.0
        text = self.render(event, now)
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + text[: cols - 1].ljust(cols - 1))
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _wanted(self, bucket: int, stage: str, f: float) -> bool:
        if stage != self._stage:
            return True
        if f >= 1.0:
            return not self._finished
        return bucket > self._bucket

    def __call__(self, fraction: float, message: str) -> None:
        """The ``(fraction, message)`` form of progress (the store's importer and exporter)."""
        self.report(ProgressEvent(fraction, message, ""))

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        self._cancel.set()

    # --- drawing ---
    def render(self, event: ProgressEvent, now: float | None = None) -> str:
        f = _clamp(event.fraction)
        filled = int(f * self.width + 1e-9)  # full only at 100 %
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
        eta = self.eta(event, now)
        if eta is not None and f < 1.0:
            parts.append(f"ETA {format_seconds(eta)}")
        elif not self.own_eta and event.stage and 0.0 < f < 1.0:
            parts.append("ETA estimating…")
        return " ".join(parts)

    def eta(self, event: ProgressEvent, now: float | None = None) -> float | None:
        """The event's own ETA, else one from this bar's clock (since its first report)."""
        if event.eta_seconds is not None or not self.own_eta:
            return event.eta_seconds
        if self._eta is None or now is None:
            return None  # nothing measured yet: no ETA rather than a made-up one
        return self._eta.update(_clamp(event.fraction), now=now)

    def write_line(self, text: str) -> None:
        """A line of its own (a result, a warning) that the bar does not overwrite."""
        self._line(text)

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(("\n" if self._drawn else "") + text + "\n")
        self._drawn = False
        self.stream.flush()

    def close(self) -> None:
        if self._drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = False


def _clamp(f: float) -> float:
    return min(max(float(f), 0.0), 1.0)


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
