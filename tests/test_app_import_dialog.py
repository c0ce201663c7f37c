# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The import dialog: a format chooser with every format the engine reads, detection shown, and problems
shown in full (a text area that wraps anywhere), never cut off; an import failure shows the whole message."""

from __future__ import annotations

from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import QPlainTextEdit
from test_app_helpers import app_env, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.import_dialog import ImportDialog, readable_formats
from app.main_window import MainWindow
from app.views.progress_dialog import ProgressDialog


def test_the_chooser_lists_every_readable_format_and_shows_detection(qtbot, tmp_path):
    d = ImportDialog(None, tmp_path)
    qtbot.addWidget(d)
    names = [d.format_combo.itemData(i) for i in range(d.format_combo.count())]
    assert names[0] == "" and set(names[1:]) >= {"text", "conll", "brat", "labelstudio", "doccano", "tacred"}
    assert len(names) - 1 == len(readable_formats())
    f = tmp_path / "notes.txt"
    f.write_text("A sentence to label.\n", encoding="utf-8")
    d.set_path(f)
    qtbot.waitUntil(lambda: "Plain text" in d.detected.text(), timeout=5000)  # found on a pool thread
    d.accept()
    assert d.result() == ImportDialog.DialogCode.Accepted and d.chosen() == (f, None)


def test_a_format_that_cannot_be_detected_is_explained_in_full_and_can_be_chosen(qtbot, tmp_path):
    folder = tmp_path / ("a-very-long-folder-name-without-any-spaces-" * 4)
    folder.mkdir()
    f = folder / "notes.dat"
    f.write_text("some words\n", encoding="utf-8")
    d = ImportDialog(None, tmp_path)
    qtbot.addWidget(d)
    d.resize(400, 300)
    d.show()
    d.set_path(f)
    d.accept()
    assert d.result() != ImportDialog.DialogCode.Accepted and d.isVisible()
    shown = d.message.toPlainText()
    assert str(f) in shown and "cannot tell the file's format" in shown and "Choose the format" in shown
    assert d.message.isVisible() and d.message.wordWrapMode() == QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere
    assert d.message.lineWrapMode() == QPlainTextEdit.LineWrapMode.WidgetWidth
    d.set_format("text")
    assert not d.message.isVisible()
    d.accept()
    assert d.result() == ImportDialog.DialogCode.Accepted and d.chosen() == (f, "text")


def test_an_import_failure_shows_the_whole_message(qtbot, app_env, tmp_path):
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    w.create_project(tmp_path / "empty")
    folder = tmp_path / ("long-folder-name-" * 8)
    folder.mkdir()
    bad = folder / "bad.conll"
    bad.write_text("Ada B-PER\nLovelace\n", encoding="utf-8")
    w.import_file(bad, "conll")
    with qtbot.waitSignal(w.controller.jobEnded, timeout=60_000) as ended:
        pass
    assert ended.args[:2] == ["import", "failed"]
    dialog = [d for d in w.findChildren(ProgressDialog) if d.outcome == "failed"][-1]
    text = dialog.error_box.toPlainText()
    assert f"{bad}:2" in text and "expected a token and a tag" in text
    assert dialog.error_box.isVisible()


def test_a_typed_path_is_looked_at_once_typing_pauses_and_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    import threading

    import app.import_dialog as dialog_module

    seen = []

    def detect(path):
        seen.append((str(path), threading.current_thread() is threading.main_thread()))
        return "text"

    monkeypatch.setattr(dialog_module, "detect_format", detect)
    f = tmp_path / "notes.txt"
    f.write_text("A sentence.\n", encoding="utf-8")
    d = ImportDialog(None, tmp_path)
    qtbot.addWidget(d)
    for i in range(1, len(str(f)) + 1):  # typed key by key: "/", "/t", "/tm", ... each an existing folder
        d.path_edit.setText(str(f)[:i])
    assert seen == [] and d.detected.text() == ""  # nothing looked at while typing
    qtbot.waitUntil(lambda: "Plain text" in d.detected.text(), timeout=5000)
    assert seen == [(str(f), False)]  # once, for the final path, not on the GUI thread


def test_detecting_a_huge_folder_is_bounded_and_says_so(tmp_path, monkeypatch):
    import pytest

    from conpet.core.errors import DataFormatError
    from conpet.data import formats

    monkeypatch.setattr(formats, "FOLDER_SCAN_LIMIT", 5)
    for i in range(3):
        sub = tmp_path / f"d{i}"
        sub.mkdir()
        for j in range(4):
            (sub / f"f{j}.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataFormatError, match="too large to search"):
        formats.detect_format(tmp_path)
    (tmp_path / "d0" / "doc.ann").write_text("", encoding="utf-8")
    assert formats.detect_format(tmp_path / "d0") == "brat"
