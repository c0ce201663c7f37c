"""A small non-blocking dialog that follows one worker: message, progress bar, Cancel; it shows the
outcome (an import's counts, or the error) and closes itself when the job succeeds."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QVBoxLayout, QWidget

from app.workers import Worker


class ProgressDialog(QDialog):
    def __init__(self, parent: QWidget | None, title: str, text: str, worker: Worker, *,
                 cancellable: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(440)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.worker = worker
        self.outcome: str | None = None
        layout = QVBoxLayout(self)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.detail = QLabel("")
        self.detail.setObjectName("hint")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        from app.import_dialog import message_box

        self.error_box = message_box()  # a failure's message in full: wraps anywhere, scrolls
        self.error_box.setVisible(False)
        layout.addWidget(self.error_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self._cancel)
        self.buttons.setVisible(cancellable)
        layout.addWidget(self.buttons)
        worker.progress.connect(self._progress)
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        worker.cancelled.connect(self._cancelled)

    @Slot(int, str)
    def _progress(self, value: int, message: str) -> None:
        self.bar.setValue(value)
        self.detail.setText(message)

    def _cancel(self) -> None:
        if self.outcome is None:
            self.worker.cancel()
            self.detail.setText("Cancelling… nothing of this file will be kept.")
        else:
            self.close()

    @Slot(object)
    def _finished(self, _result: object) -> None:
        self.outcome = "finished"
        self.bar.setValue(1000)
        if not self.property("keepOpen"):
            self.accept()

    @Slot(object)
    def import_report(self, report: object) -> None:
        """After an import: say what happened in the status bar of the parent window."""
        parent = self.parentWidget()
        text = (f"Imported {getattr(report, 'added_sentences', 0)} sentence(s) and "
                f"{getattr(report, 'added_annotations', 0)} annotation(s) "
                f"({getattr(report, 'duplicates_skipped', 0)} duplicate(s) skipped, "
                f"{getattr(report, 'types_created', 0)} new type(s)) in {getattr(report, 'seconds', 0):.1f} s.")
        if parent is not None and hasattr(parent, "statusBar"):
            parent.statusBar().showMessage(text, 20000)

    @Slot(str)
    def _failed(self, error: str) -> None:
        self.outcome = "failed"
        self.setProperty("keepOpen", True)
        self.label.setText("It did not work; nothing was changed.")
        self.detail.setText(error)
        self.detail.setVisible(False)  # a label cannot break a long path: the error box shows it
        self.error_box.setPlainText(error)
        self.error_box.setVisible(True)
        self.buttons.setStandardButtons(QDialogButtonBox.StandardButton.Close)
        self.buttons.setVisible(True)
        self.buttons.rejected.connect(self.close)

    @Slot()
    def _cancelled(self) -> None:
        self.outcome = "cancelled"
        self.reject()
