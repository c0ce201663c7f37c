"""The import dialog: a file (or a brat folder), its format (detected, or chosen from every format the engine
reads), and a message area that shows a problem in full (it wraps anywhere and scrolls, so a long path or
reason is never cut off).

The format is detected once the path stops changing (a path typed by hand passes through "/" and other
large folders on its way), on a pool thread, so the window never waits for the disk; a result for a path
that has changed since is dropped. Detection itself is bounded (``conpet.data.formats``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal
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


DETECT_DELAY_MS = 400  # typing pauses this long before the path is looked at


class _Detected(QObject):
    done = Signal(str, str, str)  # (path, format name or "", the reason it could not be told)


class _Detection(QRunnable):
    """``detect_format`` of one path on a pool thread."""

    def __init__(self, path: Path, out: _Detected) -> None:
        super().__init__()
        self.path, self.out = path, out

    def run(self) -> None:
        name, why = _detect(self.path)
        try:
            self.out.done.emit(str(self.path), name, why)
        except RuntimeError:  # the dialog closed meanwhile: nobody is waiting for the answer
            pass


def _detect(path: Path) -> tuple[str, str]:
    """(format name, "") or ("", why it cannot be told)."""
    try:
        return detect_format(path), ""
    except (ConpetError, OSError) as exc:
        return "", str(exc)


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
        self._detected: dict[str, tuple[str, str]] = {}  # path -> (format or "", why not)
        self._detector = _Detected(self)
        self._detector.done.connect(self._detection_done)
        self._detect_timer = QTimer(self)
        self._detect_timer.setSingleShot(True)
        self._detect_timer.setInterval(DETECT_DELAY_MS)
        self._detect_timer.timeout.connect(self._update_hint)
        self.path_edit.textChanged.connect(self._path_typed)
        self.format_combo.currentIndexChanged.connect(self._update_hint)

    def set_path(self, path: Path) -> None:
        self.path_edit.setText(str(path))
        self._update_hint()  # chosen, not typed: look at once

    def set_format(self, name: str | None) -> None:
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(name or AUTO)))

    def chosen(self) -> tuple[Path, str | None]:
        return Path(self.path_edit.text().strip()), self.format_combo.currentData() or None

    def options(self) -> dict:
        """The reader's options: for plain text, how to split it into sentences."""
        return {"split": self.split_combo.currentData()} if self._effective_format() == "text" else {}

    def _effective_format(self) -> str | None:
        """The chosen format, else the one detected for the path (None while unknown or not told)."""
        path, fmt = self.chosen()
        if fmt is not None:
            return fmt
        return self._detected.get(str(path), ("", ""))[0] or None

    def detecting(self) -> bool:
        """Whether the path's format is still being looked for."""
        path, fmt = self.chosen()
        return fmt is None and bool(self.path_edit.text().strip()) and str(path) not in self._detected

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
            if self.detecting():  # the button was pressed before the pool answered: look now (bounded)
                self._detected[str(path)] = _detect(path)
                self._update_hint()
            name, why = self._detected[str(path)]
            if not name:
                return f"{why}\nChoose the format above."
        return None

    def _path_typed(self) -> None:
        self.detected.setText("")
        self.show_message("")
        self._detect_timer.start()

    def _update_hint(self) -> None:
        self._detect_timer.stop()
        path, fmt = self.chosen()
        self.show_message("")
        plain = self._effective_format() == "text"
        self.split_label.setVisible(plain)
        self.split_combo.setVisible(plain)
        if fmt is not None or not self.path_edit.text().strip():
            self.detected.setText("")
            return
        if str(path) in self._detected:
            name, _why = self._detected[str(path)]
            self.detected.setText(f"Detected: {FORMATS[name].title} ({name})." if name else
                                  "The format cannot be told from this path; choose it.")
            return
        if not path.exists():
            self.detected.setText("")
            return
        self.detected.setText("Looking at the file…")
        QThreadPool.globalInstance().start(_Detection(path, self._detector))

    def _detection_done(self, path: str, name: str, why: str) -> None:
        self._detected[path] = (name, why)
        if path == str(self.chosen()[0]):
            self._update_hint()

    def accept(self) -> None:  # noqa: D102 - Qt's slot, checked first
        problem = self._problem()
        if problem:
            self.show_message(problem)
            return
        super().accept()
