"""Sentences typed or pasted in the Label view (a mixin of ``AnnotateView``): the "Add a sentence" field
and the "Paste text…" button; both split and add through ``app.viewmodels.text_input``."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton

from app.paste_dialog import PasteTextDialog
from app.viewmodels.text_input import add_text
from conpet.core.errors import ConpetError


class TextEntryActions:
    def _text_entry_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.add_sentence_edit = QLineEdit()
        self.add_sentence_edit.setObjectName("addSentence")
        self.add_sentence_edit.setPlaceholderText("Add a sentence: type it and press Enter")
        self.paste_button = QPushButton("Paste text…")
        self.paste_button.setToolTip("Paste several sentences or paragraphs: they are split into sentences")
        row.addWidget(self.add_sentence_edit, 1)
        row.addWidget(self.paste_button)
        self.add_sentence_edit.returnPressed.connect(self.add_typed_sentence)
        self.paste_button.clicked.connect(self.paste_text)
        return row

    def add_typed_sentence(self) -> int | None:
        """The "Add a sentence" field: add its text (as one sentence) and go to it."""
        try:
            added = add_text(self.model, self.add_sentence_edit.text(), split="line", source="typed")
        except ConpetError as exc:
            self.show_message("error", str(exc).replace("the box", "the field"))
            return None
        self.add_sentence_edit.clear()
        self.select_sentence(added.ids[0])
        self.show_message("ok", added.summary() if added.added else "That sentence is already in the project: "
                          "here it is.")
        return added.ids[0]

    def paste_text(self) -> None:
        dialog = PasteTextDialog(self.model, self)
        if dialog.exec() and dialog.result_ is not None:
            if dialog.result_.ids:
                self.select_sentence(dialog.result_.ids[0])
            self.show_message("ok", dialog.result_.summary())
