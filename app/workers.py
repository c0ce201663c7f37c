"""Background jobs: one worker object per long job, moved to its own QThread.

A job is a plain function ``job(sink) -> result`` (Orange3's ``run(inputs, state)``): it reports through
``sink`` (a :class:`conpet.core.protocols.ProgressSink`) and stops when ``sink.cancel_requested()`` says so,
so the same function runs headless in tests and the CLI. The function opens its own store session (it
gets a project *folder*, never a live session of the GUI thread).

The worker only adapts that function to Qt: signals ``progress(int, str)``, ``event(object)`` (the full
:class:`ProgressEvent`, with stage, ETA and live metrics), ``finished(object)``, ``failed(str)`` and
``cancelled()``. ``cancel()`` only sets a flag. Signals are delivered to slots of objects living on the
GUI thread (queued connections); no lambda running on the worker's thread ever touches a widget.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThread, Signal, Slot

from conpet.core.errors import Cancelled, ConpetError
from conpet.core.protocols import ProgressEvent

Job = Callable[["QtProgressSink"], Any]

_WAIT_SLICE_MS = 50  # shutdown's wait per thread between redraws
_started: list[QThread] = []  # every worker thread this process started (tests check none outlives them)


def running_worker_threads() -> list[str]:
    """Names of worker threads still running (their C++ objects may be gone: those have ended)."""
    alive = []
    for t in list(_started):
        try:
            if t.isRunning():
                alive.append(t.objectName())
                continue
        except RuntimeError:  # deleted: it had finished
            pass
        _started.remove(t)
    return alive


class QtProgressSink:
    """The engine's progress sink: forwards events to the worker's signals (throttled) and holds the
    cancel flag. Lives on the worker's thread; thread-safe for the cancel flag."""

    MIN_INTERVAL_S = 0.05  # at most ~20 progress signals a second: the GUI thread stays free

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._cancel = threading.Event()
        self._last = 0.0
        self.last_event: ProgressEvent | None = None

    def report(self, event: ProgressEvent) -> None:
        previous, self.last_event = self.last_event, event
        now = time.monotonic()
        # Always pass on a change of stage and the end; throttle the rest.
        new_stage = previous is None or previous.stage != event.stage
        if not new_stage and event.fraction < 1.0 and now - self._last < self.MIN_INTERVAL_S:
            return
        self._last = now
        self._worker.progress.emit(int(round(event.fraction * 1000)), event.message)
        self._worker.event.emit(event)

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        self._cancel.set()


class Worker(QObject):
    """Runs ``job(sink)`` on the thread it has been moved to. Progress is in thousandths."""

    progress = Signal(int, str)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    ended = Signal(str, str, object)  # (name, "finished" | "failed" | "cancelled", result / error / None)
    done = Signal()  # after any of finished / failed / cancelled: the host ends the thread

    def __init__(self, job: Job, name: str = "job") -> None:
        super().__init__()
        self.job = job
        self.name = name
        self.sink = QtProgressSink(self)
        self.thread_ident: int | None = None

    def cancel(self) -> None:
        self.sink.request_cancel()

    @property
    def cancel_requested(self) -> bool:
        return self.sink.cancel_requested()

    @Slot()
    def run(self) -> None:
        self.thread_ident = threading.get_ident()
        try:
            result = self.job(self.sink)
        except Cancelled:
            self.cancelled.emit()
            self.ended.emit(self.name, "cancelled", None)
        except ConpetError as exc:
            self.failed.emit(str(exc))
            self.ended.emit(self.name, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is shown to the user, never swallowed
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            text = f"{detail}\n\n{traceback.format_exc(limit=6)}"
            self.failed.emit(text)
            self.ended.emit(self.name, "failed", text)
        else:
            self.finished.emit(result)
            self.ended.emit(self.name, "finished", result)
        finally:
            self.done.emit()


class WorkerHost(QObject):
    """Starts workers on their own QThreads and keeps them alive until they end.

    ``start(worker)`` returns the worker; connect to its signals *before* calling start. On shutdown
    every running worker is asked to cancel and its thread is waited for, so that no thread outlives
    the window (the tests fail when one does).
    """

    activeChanged = Signal(int)
    waiting = Signal(str)  # shutdown's message while it waits for a job that cannot stop at once

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[Worker, QThread] = {}
        self._closing = False

    def start(self, worker: Worker) -> Worker:
        if self._closing:  # a slot run while shutdown waits must not start new work
            worker.cancelled.emit()
            worker.ended.emit(worker.name, "cancelled", None)
            worker.done.emit()
            return worker
        thread = QThread()
        thread.setObjectName(f"conpet-{worker.name}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._running[worker] = thread
        _started.append(thread)
        thread.start()
        self.activeChanged.emit(len(self._running))
        return worker

    @Slot()
    def _on_thread_finished(self) -> None:
        for worker, thread in list(self._running.items()):
            if thread.isFinished():
                del self._running[worker]
                thread.deleteLater()
                worker.deleteLater()
        self.activeChanged.emit(len(self._running))

    def running(self) -> list[Worker]:
        return [w for w, t in self._running.items() if not t.isFinished()]

    def is_busy(self, name: str) -> bool:
        return any(w.name == name for w in self.running())

    def shutdown(self, notice_after_ms: int = 500) -> None:
        """Cancel every running worker and wait until its thread has ended, however long that takes: a
        backbone load or a GGUF conversion cannot stop half-way, and a QThread destroyed while it runs aborts
        the whole process (a conversion is then left half-written). After ``notice_after_ms`` the ``waiting``
        signal says what is still running; the GUI keeps drawing (user input is held back) meanwhile."""
        self._closing = True
        try:
            for worker in list(self._running):
                worker.cancel()
            threads = list(self._running.values())
            for thread in threads:
                thread.quit()
            waited_ms, said = 0, False
            while any(not t.isFinished() for t in threads):
                if not said and waited_ms >= notice_after_ms:
                    names = ", ".join(sorted({w.name for w, t in self._running.items() if not t.isFinished()}))
                    self.waiting.emit(f"Waiting for {names} to finish before closing (it cannot stop half-way)…")
                    said = True
                for t in threads:
                    t.wait(_WAIT_SLICE_MS)
                waited_ms += _WAIT_SLICE_MS
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            self._on_thread_finished()
        finally:
            self._closing = False
