"""Modal message boxes in one place, so that tests (and scripts like the responsiveness benchmark) can
replace them: set ``dialogs.AUTO_ANSWER`` to answer every question and skip every notice."""

from __future__ import annotations

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
