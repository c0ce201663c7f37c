"""Modal message boxes in one place, so that tests (and scripts like the responsiveness benchmark) can
replace them: set ``dialogs.AUTO_ANSWER`` to answer every question and skip every notice."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

AUTO_ANSWER: bool | None = None  # None: ask the user; True / False: answer questions so, show nothing
shown: list[tuple[str, str, str]] = []  # (kind, title, text) of every message, for tests


def warn(parent: QWidget | None, title: str, text: str) -> None:
    shown.append(("warning", title, text))
    if AUTO_ANSWER is None:
        QMessageBox.warning(parent, title, text)


def inform(parent: QWidget | None, title: str, text: str) -> None:
    shown.append(("information", title, text))
    if AUTO_ANSWER is None:
        QMessageBox.information(parent, title, text)


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    shown.append(("question", title, text))
    if AUTO_ANSWER is not None:
        return AUTO_ANSWER
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
    shown.append(("saved", title, text))
    if AUTO_ANSWER is None:
        saved_box(parent, title, text, path).exec()
