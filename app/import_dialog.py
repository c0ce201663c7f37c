"""The import dialog: a file (or a brat folder), its format (detected, or chosen from every format the engine
reads), and a message area that shows a problem in full (it wraps anywhere and scrolls, so a long path or
reason is never cut off)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from conpet.core.errors import ConpetError
from conpet.data.formats import FORMATS, detect_format

AUTO = ""  # the combo's data for "detect from the file"
FILE_FILTER = ("Data files (*.jsonl *.json *.txt *.conll *.bio *.iob *.bioes *.tsv *.ann);;"
               "All files (*)")


def message_box(parent: QWidget | None = None) -> QPlainTextEdit:
    """A read-only text area for an error: wraps at word boundaries or anywhere, scrolls when long."""
    box = QPlainTextEdit(parent)
    box.setReadOnly(True)
    box.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    box.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    box.setMaximumHeight(120)
    box.setObjectName("errorText")
    return box


def readable_formats() -> list[tuple[str, str]]:
    """``(name, title)`` of every format the importer reads, in the registry's order."""
    return [(name, spec.title) for name, spec in FORMATS.items() if spec.read is not None]


class ImportDialog(QDialog):
    """Asks for a file and a format; ``chosen()`` gives ``(path, format or None)`` after it is accepted.
    ``title`` and ``action`` (the OK button's text) let "Evaluate on a file…" ask the same way."""

    def __init__(self, parent: QWidget | None = None, start_folder: Path | None = None, *,
                 title: str = "Import data", action: str = "Import") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(520)
        self.start_folder = start_folder or Path.home()
        self.verb = action.lower()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("a data file, or a folder of brat .txt/.ann files")
        browse = QPushButton("File…")
        browse.clicked.connect(self._browse_file)
        folder = QPushButton("Folder…")
        folder.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        row.addWidget(folder)
        self.format_combo = QComboBox()
        self.format_combo.addItem("Detect from the file", AUTO)
        for name, title in readable_formats():
            self.format_combo.addItem(f"{title} ({name})", name)
        self.split_combo = QComboBox()  # plain text only: how its lines become sentences
        self.split_combo.addItem("One sentence per line; paragraphs split into sentences", "auto")
        self.split_combo.addItem("Every line as one sentence, as it is", "line")
        self.split_label = QLabel("Sentences:")
        self.detected = QLabel("")
        self.detected.setObjectName("hint")
        self.detected.setWordWrap(True)
        self.message = message_box()
        self.message.setVisible(False)
        form = QFormLayout()
        form.addRow("File:", row)
        form.addRow("Format:", self.format_combo)
        form.addRow(self.split_label, self.split_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.detected)
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(action)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.split_label.setVisible(False)
        self.split_combo.setVisible(False)
        self.path_edit.textChanged.connect(self._update_hint)
        self.format_combo.currentIndexChanged.connect(self._update_hint)

    def set_path(self, path: Path) -> None:
        self.path_edit.setText(str(path))

    def set_format(self, name: str | None) -> None:
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(name or AUTO)))

    def chosen(self) -> tuple[Path, str | None]:
        return Path(self.path_edit.text().strip()), self.format_combo.currentData() or None

    def options(self) -> dict:
        """The reader's options: for plain text, how to split it into sentences."""
        return {"split": self.split_combo.currentData()} if self._effective_format() == "text" else {}

    def _effective_format(self) -> str | None:
        path, fmt = self.chosen()
        if fmt is not None or not self.path_edit.text().strip() or not path.exists():
            return fmt
        try:
            return detect_format(path)
        except ConpetError:
            return None

    def show_message(self, text: str) -> None:
        self.message.setPlainText(text)
        self.message.setVisible(bool(text))

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.windowTitle(), str(self.start_folder), FILE_FILTER)
        if path:
            self.set_path(Path(path))

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder of brat documents", str(self.start_folder))
        if path:
            self.set_path(Path(path))

    def _problem(self) -> str | None:
        """What stops the import before it starts (no file, a format that cannot be detected), or None."""
        path, fmt = self.chosen()
        if not self.path_edit.text().strip():
            return f"Choose a file (or a brat folder) to {self.verb}."
        if not path.exists():
            return f"{path}: file not found"
        if fmt is None:
            try:
                detect_format(path)
            except ConpetError as exc:
                return f"{exc}\nChoose the format above."
        return None

    def _update_hint(self) -> None:
        path, fmt = self.chosen()
        self.show_message("")
        plain = self._effective_format() == "text"
        self.split_label.setVisible(plain)
        self.split_combo.setVisible(plain)
        if fmt is not None or not self.path_edit.text().strip() or not path.exists():
            self.detected.setText("")
            return
        try:
            name = detect_format(path)
        except ConpetError:
            self.detected.setText("The format cannot be told from this file; choose it.")
            return
        self.detected.setText(f"Detected: {FORMATS[name].title} ({name}).")

    def accept(self) -> None:  # noqa: D102 - Qt's slot, checked first
        problem = self._problem()
        if problem:
            self.show_message(problem)
            return
        super().accept()
