# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Issue 24 (9): quitting while a job that cannot stop at once runs (a backbone load, a GGUF conversion)
waits for it with a visible message; it never aborts the process nor leaves the job's thread running."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from app.workers import Worker, WorkerHost, running_worker_threads

ROOT = Path(__file__).resolve().parent.parent


def test_shutdown_waits_for_a_job_that_ignores_cancel_and_says_so(qtbot):
    host = WorkerHost()
    started, release = threading.Event(), threading.Event()
    ended: list[str] = []

    def loading_a_backbone(sink):
        started.set()
        release.wait(5)  # like a backbone load: no cancel check until it is done
        return "loaded"

    worker = Worker(loading_a_backbone, name="backbone-load")
    worker.ended.connect(lambda name, how, _result: ended.append(how))
    host.start(worker)
    assert started.wait(5)
    messages: list[str] = []

    def said(text: str) -> None:
        messages.append(text)
        release.set()  # the job finishes once the user has been told

    host.waiting.connect(said)
    host.shutdown(200)
    assert messages and "backbone-load" in messages[0]
    assert running_worker_threads() == []
    assert host.running() == []
    assert ended == ["finished"]
    refused: list[str] = []
    late = Worker(lambda sink: "never", name="late")
    late.ended.connect(lambda name, how, _result: refused.append(how))
    host.start(late)  # after shutdown the host works again (the next project)
    qtbot.waitUntil(lambda: refused == ["finished"], timeout=5000)
    host.shutdown()


def test_quitting_during_a_long_job_never_aborts_the_process(tmp_path):
    """The old shutdown gave up after its wait and the QThread was destroyed while running: Qt aborts."""
    script = textwrap.dedent("""
        import os, sys, threading, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication
        from app.workers import Worker, WorkerHost
        app = QApplication([])
        host = WorkerHost()
        started = threading.Event()
        def slow(sink):
            started.set()
            time.sleep(1.5)
            return "done"
        host.start(Worker(slow, name="gguf-conversion"))
        started.wait(5)
        host.shutdown(100)
        del host
        print("clean exit", flush=True)
    """)
    # the old signature took the wait in ms: 100 ms is far shorter than the job
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "clean exit" in proc.stdout
    assert "Destroyed while thread" not in proc.stderr
