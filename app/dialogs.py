"""Modal message boxes in one place, so that tests (and scripts like the responsiveness benchmark) can
replace them: the views call ``dialogs.warn`` / ``inform`` / ``ask`` / ``saved`` through this module, and a
test or a script that must not block swaps those functions (``monkeypatch.setattr``, ``answer_without_asking``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget


def warn(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


def inform(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    return QMessageBox.question(parent, title, text) == QMessageBox.StandardButton.Yes


def reveal(path: str | Path) -> bool:
    """Open the folder holding ``path`` in the desktop's file manager."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def saved_box(parent: QWidget | None, title: str, text: str, path: str | Path) -> QMessageBox:
    """A notice that something was written to ``path``, with a "Show in folder" button."""
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, parent)
    show = box.addButton("Show in folder", QMessageBox.ButtonRole.ActionRole)
    show.clicked.connect(lambda: reveal(path))
    box.setDefaultButton(QMessageBox.StandardButton.Ok)
    return box


def saved(parent: QWidget | None, title: str, text: str, path: str | Path) -> None:
    saved_box(parent, title, text, path).exec()


def answer_without_asking(answer: bool = True) -> None:
    """For scripts that drive the window unattended (screenshots, the responsiveness benchmark): questions
    get ``answer`` and notices are skipped, in this process from now on."""
    global warn, inform, ask, saved

    def skip(*_args: object) -> None:
        return None

    def answered(*_args: object) -> bool:
        return answer

    warn = inform = saved = skip
    ask = answered
