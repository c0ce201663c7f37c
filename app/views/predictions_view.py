"""Predictions with per-module scores: for a sentence's marked mentions and pairs, the predicted type and
its score, the selector's score for every expert (a bar per task), which experts were active, and the
chosen expert's scores over its own types. "Predict whole project" runs in the background and fills
the store; the project's logit cache makes a second pass almost free."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import dialogs
from app.controller import JobController
from app.settings import AppSettings
from app.viewmodels.project_model import ProjectModel
from app.viewmodels.sentences_model import SentenceFilter, SentenceIdRole, SentenceListModel
from app.widgets.annotation_editor import AnnotationEditor, Mark
from app.widgets.charts import BarChart
from conpet.store import PredictionRecord


def task_label(model: ProjectModel, j: int) -> str:
    """An expert's name for people: 'Task 2 · Drug, Disease' (j is the 0-based task position)."""
    tasks = model.tasks()
    if 0 <= j < len(tasks):
        names = ", ".join(tasks[j].type_names)
        return f"Task {tasks[j].index} · {names}"
    return f"Task {j + 1}"


def selector_confidence(p: PredictionRecord) -> float | None:
    return max(p.selector_scores) if p.selector_scores else None


def mention_text(text: str, p) -> str:
    if p.kind == "entity" or p.tail_start is None:
        return text[p.start:p.end]
    return f"{text[p.start:p.end]} → {text[p.tail_start:p.tail_end]}"


def mention_threshold_spin() -> QDoubleSpinBox:
    """The app's mention-threshold setting: below 0 reads "model's" (the threshold the model chose on its
    validation sentences), 0 proposes every mention, higher keeps only the detector's surer ones."""
    spin = QDoubleSpinBox()
    spin.setObjectName("mentionThreshold")
    spin.setRange(-0.05, 1.0)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    spin.setSpecialValueText("model's")
    spin.setToolTip("The detector confidence (0-1) a proposed mention needs to be shown as a suggestion. "
                    "\"model's\": the threshold the model chose on sentences it held out when it trained; "
                    "0: every proposal. Applies to the next prediction.")
    return spin


class PredictionsView(QWidget):
    COLUMNS = ["Kind", "Mention / pair", "Gold", "Predicted", "Score", "Routed to", "Selector"]

    def __init__(self, model: ProjectModel, controller: JobController, settings: AppSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.controller = controller
        self.settings = settings
        self.sentence_id: int | None = None
        self.rows: list[PredictionRecord] = []

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        heading = QLabel("Predictions and routing scores")
        heading.setObjectName("heading")
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(QLabel("Mention threshold:"))
        self.threshold_spin = mention_threshold_spin()
        top.addWidget(self.threshold_spin)
        self.predict_sentence_button = QPushButton("Predict this sentence")
        self.predict_all_button = QPushButton("Predict whole project")
        self.predict_all_button.setProperty("primary", True)
        top.addWidget(self.predict_sentence_button)
        top.addWidget(self.predict_all_button)
        layout.addLayout(top)
        self.info = QLabel()
        self.info.setObjectName("hint")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search sentences…")
        self.search.setClearButtonEnabled(True)
        self.list_model = SentenceListModel(model)
        self.list = QListView()
        self.list.setObjectName("predictionSentenceList")
        self.list.setModel(self.list_model)
        self.list.setUniformItemSizes(True)
        self.list.setAlternatingRowColors(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        ll.addWidget(self.search)
        ll.addWidget(self.list, 1)
        splitter.addWidget(left)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        self.viewer = AnnotationEditor()
        self.viewer.setObjectName("annotationEditor")
        self.viewer.setMaximumHeight(150)
        rl.addWidget(self.viewer)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("predictionTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        # Every column as wide as its contents (a narrow window scrolls instead of cutting "Lisbon"
        # down to "ion"); the last one takes what is left.
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)
        rl.addWidget(self.table, 1)
        charts = QHBoxLayout()
        self.selector_chart = BarChart("Selector: score per expert (bold = active)")
        self.selector_chart.setObjectName("selectorChart")
        self.expert_chart = BarChart("Chosen expert: scores over its types")
        self.expert_chart.setObjectName("expertChart")
        charts.addWidget(self.selector_chart, 1)
        charts.addWidget(self.expert_chart, 1)
        rl.addLayout(charts, 1)
        self.detail = QLabel()
        self.detail.setObjectName("statusLine")
        self.detail.setWordWrap(True)
        rl.addWidget(self.detail)
        splitter.addWidget(right)
        splitter.setSizes([360, 760])
        layout.addWidget(splitter, 1)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(
            lambda: self.list_model.set_filter(SentenceFilter(text=self.search.text().strip())))
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.list_model.modelReset.connect(self._list_reset)
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.predict_all_button.clicked.connect(self.predict_all)
        self.predict_sentence_button.clicked.connect(self.predict_sentence)
        self._stale = False  # a change came while the view was hidden: refresh when it is shown
        model.predictionsChanged.connect(self._changed)
        model.annotationsChanged.connect(lambda sid: self._changed() if sid in (-1, self.sentence_id) else None)
        model.typesChanged.connect(self._changed)
        controller.busyChanged.connect(self._busy_changed)
        self.set_mention_threshold(settings.mention_threshold() if settings is not None else None)
        self.threshold_spin.valueChanged.connect(self._threshold_changed)
        self._list_reset()
        self._changed()

    # --- actions --------------------------------------------------------------------------------
    def predict_all(self) -> None:
        self._start(None)

    def predict_sentence(self) -> None:
        if self.sentence_id is None:
            self.detail.setText("Choose a sentence first.")
            return
        self._start([self.sentence_id])

    def _start(self, ids: list[int] | None) -> None:
        try:
            self.controller.start_prediction(ids)
        except RuntimeError as exc:
            dialogs.inform(self, "A job is running", str(exc))
            return
        self.info.setText("Predicting in the background… (follow it in the Training tab)")

    def set_mention_threshold(self, value: float | None) -> None:
        """Show ``value`` (None: the model's own) and use it for the next prediction."""
        self.threshold_spin.setValue(self.threshold_spin.minimum() if value is None else value)
        self.controller.mention_threshold = value

    def _threshold_changed(self, value: float) -> None:
        chosen = None if value < 0 else round(value, 2)
        self.controller.mention_threshold = chosen
        if self.settings is not None:
            self.settings.set_mention_threshold(chosen)

    def _busy_changed(self, busy: bool) -> None:
        self.predict_all_button.setEnabled(not busy)
        self.predict_sentence_button.setEnabled(not busy)

    # --- showing --------------------------------------------------------------------------------
    def _list_reset(self) -> None:
        row = self.list_model.row_of(self.sentence_id) if self.sentence_id is not None else -1
        if row < 0 and self.list_model.rowCount():
            row = 0
        if row >= 0:
            self.list.setCurrentIndex(self.list_model.index(row))

    def _current_changed(self, current, _previous) -> None:
        if current.isValid():
            self.show_sentence(int(current.data(SentenceIdRole)))

    def select_sentence(self, sentence_id: int) -> None:
        row = self.list_model.row_of(sentence_id)
        if row < 0 and self.search.text():
            self.search.clear()
            self.list_model.set_filter(SentenceFilter())
            row = self.list_model.row_of(sentence_id)
        if row >= 0:
            self.list.selectionModel().setCurrentIndex(self.list_model.index(row),
                                                       QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.list.scrollTo(self.list_model.index(row), QAbstractItemView.ScrollHint.PositionAtCenter)

    def _changed(self) -> None:
        """Refresh now when shown; a hidden view waits until it is shown (each label decision in the Label
        view would otherwise re-read this view's sentence too, for nothing)."""
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        self._stale = False
        run = self.model.latest_prediction_run()
        if run is None:
            latest = next((r for r in self.model.runs(purpose="predict") if r.status == "finished"), None)
            if latest is not None:
                self.info.setText(f"Predictions of run {latest.id} cover only the sentences it was asked for; "
                                  "Predict whole project predicts the rest.")
            elif any(r.status == "finished" for r in self.model.runs(purpose="train")):
                self.info.setText("The test sentences have the predictions training made; Predict whole project "
                                  "predicts every sentence.")
            else:
                self.info.setText("No predictions yet. Train a task, then press Predict whole project.")
        else:
            when = run.finished_at.astimezone().strftime("%Y-%m-%d %H:%M") if run.finished_at else ""
            self.info.setText(f"Predictions of run {run.id} ({when}): {run.message}")
        if self.sentence_id is not None:
            self.show_sentence(self.sentence_id)

    def show_sentence(self, sentence_id: int) -> None:
        self.sentence_id = sentence_id
        text = self.model.sentence(sentence_id).text
        if self.viewer.toPlainText() != text:
            self.viewer.set_sentence(text)
        self.rows = self.model.predictions_for_sentence(sentence_id)
        gold = {(a.kind, a.spans): a for a in self.model.annotations(sentence_id) if a.status == "gold"}
        types = {t.name: t for t in self.model.types()}
        marks = []
        self.table.setRowCount(len(self.rows))
        for i, p in enumerate(self.rows):
            g = gold.get((p.kind, p.spans))
            sel = selector_confidence(p)
            routed = task_label(self.model, p.active_experts[0]) if p.active_experts else "one module"
            cells = [p.kind, mention_text(text, p), g.type_name if g else "—", p.label, f"{100 * p.score:.1f}%",
                     routed, f"{100 * sel:.1f}%" if sel is not None else "—"]
            for j, c in enumerate(cells):
                item = QTableWidgetItem(c)
                if j == 3 and g is not None:
                    item.setForeground(Qt.GlobalColor.darkGreen if g.type_name == p.label else Qt.GlobalColor.red)
                self.table.setItem(i, j, item)
            if p.kind == "entity":
                colour = types[p.label].colour if p.label in types else "#999999"
                marks.append(Mark(p.start, p.end, colour, f"{p.label} {100 * p.score:.0f}%", p.id))
        self.viewer.set_marks(marks)
        if self.rows:
            self.table.selectRow(0)
        else:
            self.selector_chart.set_bars([])
            self.expert_chart.set_bars([])
            self.detail.setText("No predictions for this sentence yet." if self.model.latest_prediction_run()
                                else "")
        self._row_selected()

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.rows):
            return
        self.show_prediction(self.rows[rows[0].row()])

    def show_prediction(self, p: PredictionRecord) -> None:
        types = {t.name: t for t in self.model.types()}
        if p.selector_scores:
            active = {task_label(self.model, j) for j in (p.active_experts or [])}
            self.selector_chart.set_bars([(task_label(self.model, j), s) for j, s in enumerate(p.selector_scores)],
                                         highlight=active)
        else:
            self.selector_chart.empty_text = "This method has no selector: one module covers every type."
            self.selector_chart.set_bars([])
        ranked = sorted(p.expert_scores.items(), key=lambda kv: -kv[1])
        self.expert_chart.set_bars(ranked, highlight={p.label},
                                   colors={n: types[n].colour for n, _ in ranked if n in types})
        active = ", ".join(task_label(self.model, j) for j in (p.active_experts or [])) or "—"
        text = self.viewer.toPlainText()
        self.detail.setText(f"{mention_text(text, p)!r} → {p.label} ({100 * p.score:.1f}%). "
                            f"Active expert(s): {active}.")
        if p.kind == "entity":
            self.viewer.set_marks(self.viewer.marks(), p.id)
            self.viewer.show_relation(None)
        else:
            colour = types[p.label].colour if p.label in types else "#999999"
            self.viewer.show_relation(Mark(p.start, p.end, colour), Mark(p.tail_start, p.tail_end, colour))
