"""Shared fixtures and helpers of the app tests (imported by the other test_app_* modules).

Every app test fails when it leaves a worker thread running (``no_leftover_threads``, autouse where
imported). Projects are real SQLite files in tmp folders; message boxes answer themselves."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app import dialogs
from app.jobs import DEMO_JSONL
from app.workers import running_worker_threads


@pytest.fixture(autouse=True)
def no_leftover_threads(qapp):
    """Fail a test that leaves a worker QThread (or a Python thread it started) running."""
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 15
    while True:
        qt_threads = running_worker_threads()
        py_threads = [t.name for t in threading.enumerate()
                      if t.ident not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]
        if not qt_threads and not py_threads:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"threads left running after the test: {qt_threads + py_threads}")
        QApplication.processEvents()
        time.sleep(0.05)


class ShownDialogs(list):
    """(kind, title, text) of every message the app would have shown; questions get ``answer``."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = True


@pytest.fixture(autouse=True)
def quiet_dialogs(monkeypatch):
    """Questions are answered (Yes unless the test sets ``quiet_dialogs.answer``), notices recorded instead of
    shown: the app's message-box functions are replaced for the test."""
    shown = ShownDialogs()

    def recorder(kind):
        return lambda _parent, title, text, *_rest: shown.append((kind, title, text))

    def ask(_parent, title, text):
        shown.append(("question", title, text))
        return shown.answer

    for name, kind in (("warn", "warning"), ("inform", "information"), ("saved", "saved")):
        monkeypatch.setattr(dialogs, name, recorder(kind))
    monkeypatch.setattr(dialogs, "ask", ask)
    yield shown


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """A private CONPET_HOME and settings file."""
    home = tmp_path / "home"
    monkeypatch.setenv("CONPET_HOME", str(home))
    from app.settings import AppSettings

    return AppSettings(tmp_path / "settings.ini"), home


def small_jsonl(path: Path, types: tuple[str, ...] = ("Person", "City", "Drug"), per_type: int = 10,
                relations: tuple[str, ...] = ()) -> Path:
    """Lines of the demo with only ``types`` (and ``relations``) kept, until each has ``per_type``."""
    counts = {t: 0 for t in (*types, *relations)}
    out = []
    for line in DEMO_JSONL.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        keep = [i for i, e in enumerate(d["entities"]) if e["type"] in types]
        new_index = {old: new for new, old in enumerate(keep)}
        ents = [d["entities"][i] for i in keep]
        rels = [{"head": new_index[r["head"]], "tail": new_index[r["tail"]], "type": r["type"]}
                for r in d["relations"] if r["type"] in relations and r["head"] in new_index and r["tail"] in new_index]
        useful = [e["type"] for e in ents if counts[e["type"]] < per_type] + \
                 [r["type"] for r in rels if counts[r["type"]] < per_type]
        if not useful:
            continue
        for e in ents:
            counts[e["type"]] += 1
        for r in rels:
            counts[r["type"]] += 1
        out.append(json.dumps({"text": d["text"], "entities": ents, "relations": rels}))
        if all(n >= per_type for n in counts.values()):
            break
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def make_project(folder: Path, **kw) -> Path:
    """A project holding ``small_jsonl``'s sentences."""
    from conpet.store import Project
    from conpet.store.importer import import_file

    data = small_jsonl(folder.parent / f"{folder.name}.jsonl", **kw)
    with Project.create(folder) as p:
        import_file(p, data, "jsonl")
        for i, t in enumerate(p.types.list()):
            p.types.set_shortcut(t.id, str(i + 1))
    return folder


def char_point(editor, position: int, *, before: bool = False) -> QPoint:
    """A viewport point on the boundary before character ``position`` (vertical middle of the line)."""
    r = editor.position_rect(position)
    return QPoint(r.left() + (0 if before else 1), r.center().y())


def drag_select(editor, start: int, end: int) -> None:
    """Select text[start:end] with a real mouse drag on the editor's viewport."""
    vp = editor.viewport()
    p0, p1 = char_point(editor, start), char_point(editor, end)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for frac in (0.3, 0.7, 1.0):
        p = QPoint(int(p0.x() + (p1.x() - p0.x()) * frac), p1.y())
        ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(p), QPointF(vp.mapToGlobal(p)), Qt.MouseButton.NoButton,
                         Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)


def click_at(editor, position: int) -> None:
    vp = editor.viewport()
    p = char_point(editor, position)
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)


def wait_until(qtbot, condition, timeout_ms: int = 60_000) -> None:
    qtbot.waitUntil(condition, timeout=timeout_ms)
