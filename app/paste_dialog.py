"""The "Paste text" dialog of the Label view: a text box and how to split it (paragraphs into sentences,
or one sentence per line). Add splits and adds the new sentences in one transaction
(``app.viewmodels.text_input``); the dialog closes with ``result_`` set (how many were added, how many
were already there), or stays open with the problem shown when there is nothing to add."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.viewmodels.project_model import ProjectModel
from app.viewmodels.text_input import AddedText, add_text
from conpet.core.errors import ConpetError

SPLITS = [("auto", "Split paragraphs into sentences"), ("line", "One sentence per line")]


class PasteTextDialog(QDialog):
    def __init__(self, model: ProjectModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.result_: AddedText | None = None
        self.setWindowTitle("Paste text")
        self.setMinimumSize(560, 360)
        self.text = QPlainTextEdit()
        self.text.setObjectName("pasteText")
        self.text.setPlaceholderText("Paste or type text here: one sentence per line, or whole paragraphs.")
        self.split = QComboBox()
        for key, label in SPLITS:
            self.split.addItem(label, key)
        self.problem = QLabel()
        self.problem.setObjectName("hint")
        self.problem.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.addButton("Add sentences", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.split)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)

    def accept(self) -> None:  # noqa: D102 - Qt's slot: add first, close only when that worked
        try:
            self.result_ = add_text(self.model, self.text.toPlainText(), self.split.currentData())
        except ConpetError as exc:
            self.problem.setText(str(exc))
            return
        super().accept()
