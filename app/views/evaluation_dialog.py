"""The report of "Evaluate on a file…": the same figures as ``conpet evaluate`` (accuracy, macro-F1,
routing and oracle-routing accuracy, per-type precision / recall / F1 / support, the most frequent
confusions, what was left out) and "Save JSON…", which writes the command's ``--json`` report."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import dialogs
from conpet.core.errors import ConpetError
from conpet.core.files import write_text_atomic
from conpet.eval.labelled_file import EvalReport


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _table(headers: list[str], rows: list[list[str]]) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if c:  # numbers line up on the right
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


class EvaluationDialog(QDialog):
    """Shows one ``EvalReport``; ``save_json(path)`` writes it as ``conpet evaluate --json`` does."""

    def __init__(self, parent: QWidget | None, report: EvalReport) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle(f"Evaluation on {Path(report.file).name}")
        self.setMinimumSize(560, 520)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{report.n_examples} example(s) of {report.file} ({report.format}), scored in "
                                f"{report.seconds:.1f} s"))
        layout.addLayout(self._summary())
        rows = [[t.type, _pct(t.precision), _pct(t.recall), _pct(t.f1), str(t.support)] for t in report.per_type]
        self.per_type = _table(["Type", "Precision", "Recall", "F1", "Support"], rows)
        layout.addWidget(self.per_type, 2)
        layout.addWidget(QLabel("Most frequent confusions (gold → predicted):"))
        self.confusions = _table(["Gold → predicted", "Count"], [[f"{g} → {p}", str(n)] for g, p, n in
                                                                   report.confusions])
        layout.addWidget(self.confusions, 1)
        self.left_out = QLabel(self._left_out_text())
        self.left_out.setWordWrap(True)
        self.left_out.setObjectName("hint")
        layout.addWidget(self.left_out)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.save_button = QPushButton("Save JSON…")
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button.clicked.connect(self._ask_save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _summary(self) -> QFormLayout:
        r = self.report
        form = QFormLayout()
        self.figures = {"Accuracy": _pct(r.accuracy), "Macro-F1": _pct(r.macro_f1)}
        if r.routing_accuracy is not None:
            self.figures["Routing accuracy"] = _pct(r.routing_accuracy)
        if r.oracle_routing_accuracy is not None:
            self.figures["Oracle-routing accuracy"] = _pct(r.oracle_routing_accuracy)
        if r.spans is not None:  # the mention detector's proposals on the raw text, exact match
            for key, what in (("typed", "span + type"), ("untyped", "span only")):
                m = r.spans[key]
                self.figures[f"Proposed mentions, {what} (P / R / F1)"] = (
                    f"{_pct(m['precision'])} / {_pct(m['recall'])} / {_pct(m['f1'])}")
        if r.pairs is not None:  # the gate's proposals between the gold mentions, unlabelled pairs included
            m = r.pairs["typed"]
            self.figures["Proposed relations, pair + type (P / R / F1)"] = (
                f"{_pct(m['precision'])} / {_pct(m['recall'])} / {_pct(m['f1'])}")
            self.figures["Relations proposed on pairs the file leaves unlabelled"] = str(r.pairs["unlabelled_proposed"])
        for name, value in self.figures.items():
            form.addRow(f"{name}:", QLabel(f"<b>{value}</b>"))
        return form

    def _left_out_text(self) -> str:
        r = self.report
        parts = []
        if r.not_in_project:
            parts.append("Left out, types the project does not have: "
                         + ", ".join(f"{t} ({n})" for t, n in sorted(r.not_in_project.items())))
        if r.skipped_unknown_types:
            parts.append("Left out, types the model has not learnt: "
                         + ", ".join(f"{t} ({n})" for t, n in sorted(r.skipped_unknown_types.items())))
        if r.skipped_other_kind:
            parts.append(f"Left out, a kind the model does not predict: {r.skipped_other_kind}")
        return "\n".join(parts)

    def _ask_save(self) -> None:
        start = Path(self.report.file).with_suffix(".evaluation.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save the report as JSON", str(start), "JSON (*.json)")
        if path:
            self.save_json(Path(path))

    def save_json(self, path: Path) -> None:
        try:
            write_text_atomic(path, json.dumps(self.report.to_json(), indent=2, ensure_ascii=False) + "\n")
        except (OSError, ConpetError) as exc:
            dialogs.warn(self, "Not saved", f"{path}: {exc}")
            return
        dialogs.saved(self, "Report saved", f"Wrote the evaluation report to\n{path}", path)
