"""Runs and curves: every training and prediction run with its status; the project's continual history as
whole and average accuracy per step, the accuracy matrix (after step i, on task j), and the selected
run's loss curve, message and error."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.viewmodels.project_model import ProjectModel
from app.widgets.charts import HeatMap, LineChart
from conpet.store import RunRecord

STATUS_COLOURS = {"finished": "#1d6b48", "failed": "#b73131", "cancelled": "#8a6d00", "interrupted": "#b73131",
                  "running": "#2a62c6", "queued": "#2a62c6"}


def pct(x: float | None) -> float | None:
    return None if x is None else 100 * float(x)


def run_seconds(run: RunRecord) -> float | None:
    """A run's wall time (what the table's Took column shows), None when it has not started."""
    if run.started_at is None:
        return None
    end = run.finished_at or run.updated_at
    return None if end is None else (end - run.started_at).total_seconds()


def duration(run: RunRecord) -> str:
    seconds = run_seconds(run)
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


class RunsView(QWidget):
    COLUMNS = ["Run", "Purpose", "Method", "Backbone", "Task", "Status", "Started", "By", "Took", "Message"]

    def __init__(self, model: ProjectModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.runs: list[RunRecord] = []
        layout = QVBoxLayout(self)
        heading = QLabel("Runs and learning curves")
        heading.setObjectName("heading")
        layout.addWidget(heading)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(len(self.COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        splitter.addWidget(self.table)

        charts = QWidget()
        grid = QGridLayout(charts)
        grid.setContentsMargins(0, 0, 0, 0)
        self.curve_chart = LineChart("Accuracy after each step (%)", y_range=(0, 100), x_label="step",
                                     integer_x=True)
        self.curve_chart.setObjectName("curveChart")
        self.matrix_chart = HeatMap("Accuracy matrix: after step i (row), on task j (column)")
        self.matrix_chart.setObjectName("matrixChart")
        # the whole run (the table's Took: loading, learning, testing, saving) and the learning within it
        self.cost_chart = LineChart("Time per step (s): whole run and learning", x_label="step", integer_x=True)
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        grid.addWidget(self.curve_chart, 0, 0)
        grid.addWidget(self.matrix_chart, 0, 1)
        grid.addWidget(self.cost_chart, 1, 0)
        grid.addWidget(self.detail, 1, 1)
        splitter.addWidget(charts)
        splitter.setSizes([200, 520])
        layout.addWidget(splitter, 1)

        self.table.itemSelectionChanged.connect(self._selected)
        model.runsChanged.connect(self.reload)
        self.reload()

    def reload(self) -> None:
        selected = self.selected_run()
        known = {r.id for r in self.runs}
        self.runs = self.model.runs()
        if any(r.id not in known for r in self.runs):
            selected = None  # a new run: show it (the newest, at the top) rather than an old selection
        self.table.setRowCount(len(self.runs))
        tasks = {t.id: t.index for t in self.model.tasks()}
        for i, r in enumerate(self.runs):
            started = r.started_at.astimezone().strftime("%Y-%m-%d %H:%M") if r.started_at else ""
            cells = [str(r.id), r.purpose, r.method, r.backbone, str(tasks.get(r.task_id, "")) if r.task_id else "",
                     r.status, started, r.started_by, duration(r),
                     r.error.splitlines()[0] if r.error else r.message]
            for j, c in enumerate(cells):
                item = QTableWidgetItem(c)
                if j == 5:
                    item.setForeground(QColor(STATUS_COLOURS.get(r.status, "#1f2633")))
                self.table.setItem(i, j, item)
        steps = self.model.step_metrics()

        def points(key: str) -> list[tuple[float, float]]:
            return [(m["task_index"], pct(m[key])) for m in steps if m.get(key) is not None]

        # The selector's line often equals whole accuracy (one task; or every routed example right): it is
        # drawn first and dashed, so the whole-accuracy line drawn over it stays visible.
        series = []
        if any(m.get("selector_acc") is not None for m in steps):
            series.append(("selector accuracy", points("selector_acc")))
        series += [("average accuracy", points("avg_acc")), ("whole accuracy", points("whole_acc"))]
        self.curve_chart.set_series(series, dashed=("selector accuracy", "average accuracy"))
        self.matrix_chart.set_matrix([[pct(a) for a in m.get("task_acc", [])] for m in steps])
        learning = [(m["task_index"], float(m["train_seconds"])) for m in steps if m.get("train_seconds") is not None]
        by_id = {r.id: r for r in self.runs}
        whole = [(m["task_index"], run_seconds(by_id[m["run_id"]])) for m in steps
                 if m.get("run_id") in by_id and run_seconds(by_id[m["run_id"]]) is not None]
        values = [v for _, v in learning + whole]
        self.cost_chart.y_range = (0.0, 1.15 * max(values)) if values else None
        self.cost_chart.set_series([("whole run", whole), ("learning", learning)], dashed=("learning",))
        row = next((i for i, r in enumerate(self.runs) if selected and r.id == selected.id), 0 if self.runs else -1)
        if row >= 0:
            self.table.selectRow(row)
            self.table.scrollTo(self.table.model().index(row, 0))
        self._selected()

    def selected_run(self) -> RunRecord | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.runs):
            return None
        return self.runs[rows[0].row()]

    def _selected(self) -> None:
        r = self.selected_run()
        if r is None:
            self.detail.setPlainText("No runs yet.")
            return
        lines = [f"Run {r.id}: {r.purpose} with {r.method} on {r.backbone or '?'} — {r.status}", r.message or ""]
        for m in r.metrics:
            if m.get("kind") == "step" and m.get("whole_acc") is not None:
                lines.append(f"Task {m['task_index']} ({', '.join(m.get('types', []))}): whole "
                             f"{pct(m['whole_acc']):.1f}%, average {pct(m['avg_acc']):.1f}%"
                             + (f", selector {pct(m['selector_acc']):.1f}%" if m.get("selector_acc") is not None
                                else "")
                             + f"; trained in {m['train_seconds']:.0f} s on {sum(m.get('train_examples', [])) or '?'} "
                               "examples (new + replayed tasks).")
        if r.error:
            lines += ["", "Error:", r.error]
        if r.backbone_sha256:
            lines.append(f"Backbone SHA-256: {r.backbone_sha256[:16]}…")
        self.detail.setPlainText("\n".join(line for line in lines if line is not None))
