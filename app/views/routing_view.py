"""Routing review: every prediction of the newest prediction run with the expert the selector routed it to
and how sure the selector was; least certain first (by the prediction's score, which for a proposed pair is
P(related) × P(type | related), so a pair the relatedness gate doubts comes first). Accept makes the
prediction a gold annotation; Correct gives the right type (which also names the expert that should have
been chosen: the one of the task holding that type); Reject says the type is wrong, for a pair "no
relation" (a rejected annotation, which the gate learns as a negative). All are ordinary annotations, so
the next training uses them, and all can be undone.

Accepting a prediction that contradicts the span's gold label asks first. A row is reviewed when its
span got a gold label (or the prediction a rejection) after the run predicted it (so the mark survives a
restart); after a decision the next row left to review is selected, also when the filter hides the row
just decided. When a task was learnt after the run, a banner says so and
offers to predict again."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app import dialogs
from app.undo import AcceptPrediction, CorrectPrediction, RejectPrediction, attempt
from app.viewmodels.project_model import ProjectModel
from app.views.annotate_view import swatch
from app.views.predictions_view import mention_text, selector_confidence, task_label
from conpet.store import PredictionRecord, RunRecord

SortRole = Qt.ItemDataRole.UserRole + 2

FILTERS = [("all", "All predictions"), ("open", "Not yet confirmed (no matching gold)"),
           ("disagree", "Prediction ≠ gold"), ("agree", "Prediction = gold")]

NO_PARENT = QModelIndex()  # the default parent of a flat model's rows


@dataclass
class RoutingRow:
    p: PredictionRecord
    text: str
    gold: str | None  # current gold type on this span, if any
    routed: str
    confidence: float | None
    reviewed: bool = False  # the span got its gold label (or this prediction a rejection) after the run
    rejected: bool = False  # the predicted type is rejected on this span (for a pair: no relation)

    @property
    def state(self) -> str:
        if self.rejected and self.gold is None:
            return "rejected"
        if self.gold is None:
            return "open"
        return "agree" if self.gold == self.p.label else "disagree"

    @property
    def left_to_review(self) -> bool:
        """No decision yet, and the gold label (if any) does not already confirm the prediction."""
        return not self.reviewed and self.state not in ("agree", "rejected")


class RoutingTableModel(QAbstractTableModel):
    reviewChanged = Signal()  # a row's gold label (and so its review state) changed
    # What a decision needs comes first (mention, prediction, gold, review); the sentence, long, last.
    COLUMNS = ["Mention / pair", "Predicted", "Gold", "Review", "Score", "Routed expert", "Selector confidence",
               "Sentence"]
    C_MENTION, C_PRED, C_GOLD, C_STATE, C_SCORE, C_ROUTED, C_CONF, C_SENT = range(8)

    def __init__(self, model: ProjectModel, shown=lambda: True) -> None:
        super().__init__()
        self.model = model
        self.rows: list[RoutingRow] = []
        self.run: RunRecord | None = None
        # While the view is hidden a change only marks the rows stale (``reload_if_stale`` when shown): each
        # label decision in the Label view would otherwise re-sort a thousand hidden rows.
        self.shown = shown
        self.stale = False
        model.predictionsChanged.connect(self._reload_when_shown)
        model.annotationsChanged.connect(self._annotations_changed)
        model.tasksChanged.connect(self._reload_when_shown)
        self._reload_when_shown()  # a project opens on the Label view: the rows are read when first shown

    def _reload_when_shown(self) -> None:
        if self.shown():
            self.reload()
        else:
            self.stale = True

    def reload_if_stale(self) -> None:
        if self.stale:
            self.reload()

    def reload(self) -> None:
        self.stale = False
        run = self.model.latest_prediction_run()
        self.beginResetModel()
        self.rows = []
        self.run = run
        if run is not None:
            preds = self.model.predictions_for_run(run.id)
            ids = sorted({p.sentence_id for p in preds})
            texts = {i: s.text for i, s in self.model.sentences(ids).items()}
            gold = self._gold(ids)
            labels = {}
            for p in preds:
                j = p.active_experts[0] if p.active_experts else None
                if j not in labels:
                    labels[j] = task_label(self.model, j) if j is not None else "one module"
                row = RoutingRow(p, texts.get(p.sentence_id, ""), None, labels[j], selector_confidence(p))
                self._set_gold(row, gold)
                self.rows.append(row)
        self.endResetModel()

    @property
    def run_id(self) -> int | None:
        return self.run.id if self.run is not None else None

    def _gold(self, sentence_ids: list[int]) -> dict[tuple, tuple[str, object]]:
        """(sentence, kind, spans) → (gold type name, when that gold version was written), and
        (sentence, kind, spans, type name) → ("rejected", when) for the rejections."""
        out: dict[tuple, tuple[str, object]] = {}
        for sid, anns in self.model.annotations_for(sentence_ids).items():
            for a in anns:
                if a.status == "gold":
                    out[(sid, a.kind, a.spans)] = (a.type_name, a.created_at)
                elif a.status == "rejected":
                    out[(sid, a.kind, a.spans, a.type_name)] = ("rejected", a.created_at)
        return out

    def _set_gold(self, row: RoutingRow, gold: dict[tuple, tuple[str, object]]) -> None:
        key = (row.p.sentence_id, row.p.kind, row.p.spans)
        name, written = gold.get(key, (None, None))
        rejected, when_rejected = gold.get((*key, row.p.label), (None, None))
        row.gold = name
        row.rejected = rejected is not None
        predicted = self.run.finished_at or row.p.created_at if self.run is not None else None

        def after_run(when) -> bool:
            return bool(when and predicted and _naive(when) >= _naive(predicted))

        row.reviewed = bool(name and after_run(written)) or (name is None and after_run(when_rejected))

    def _annotations_changed(self, sentence_id: int) -> None:
        if self.stale:
            return  # reloaded when shown
        if sentence_id < 0 or not self.shown():
            self._reload_when_shown()
            return
        gold = self._gold([sentence_id])
        for i, r in enumerate(self.rows):
            if r.p.sentence_id == sentence_id:
                self._set_gold(r, gold)
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))
        self.reviewChanged.emit()

    def left_to_review(self) -> int:
        return sum(r.left_to_review for r in self.rows)

    def reviewed(self) -> int:
        return sum(r.reviewed for r in self.rows)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        r = self.rows[index.row()]
        c = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == self.C_SENT:
                return r.text if len(r.text) <= 90 else r.text[:87] + "…"
            if c == self.C_MENTION:
                return mention_text(r.text, r.p)
            if c == self.C_PRED:
                return r.p.label
            if c == self.C_SCORE:
                return f"{100 * r.p.score:.1f}%"
            if c == self.C_ROUTED:
                return r.routed
            if c == self.C_CONF:
                return f"{100 * r.confidence:.1f}%" if r.confidence is not None else "—"
            if c == self.C_GOLD:
                return r.gold or "—"
            if c == self.C_STATE:
                if r.reviewed:
                    return {"agree": "✓ reviewed", "rejected": "✓ rejected"}.get(r.state, "✓ corrected")
                return {"open": "to review", "agree": "confirmed", "disagree": "differs",
                        "rejected": "rejected"}[r.state]
        if role == SortRole:
            if c == self.C_SCORE:
                return r.p.score
            if c == self.C_CONF:
                return r.confidence if r.confidence is not None else r.p.score
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        if role == Qt.ItemDataRole.ToolTipRole and c == self.C_SENT:
            return r.text
        if role == Qt.ItemDataRole.ForegroundRole:
            if r.reviewed:
                return QColor("#1d6b48") if c == self.C_STATE else QColor("#7a808a")
            if c == self.C_STATE:
                return QColor({"open": "#8a6d00", "agree": "#1d6b48", "disagree": "#b73131",
                               "rejected": "#7a808a"}[r.state])
        if role == Qt.ItemDataRole.BackgroundRole and r.reviewed:
            return QColor(29, 107, 72, 28)
        if role == Qt.ItemDataRole.FontRole and c == self.C_GOLD and r.state == "disagree":
            bold = QFont()
            bold.setBold(True)
            return bold
        return None


def _naive(when):
    """Store times are UTC; some come back without tzinfo (SQLite), so compare them without it."""
    return when.replace(tzinfo=None) if getattr(when, "tzinfo", None) is not None else when


class RoutingProxy(QSortFilterProxyModel):
    def __init__(self) -> None:
        super().__init__()
        self.state = "all"
        self.setSortRole(SortRole)

    def set_state(self, state: str) -> None:
        self.state = state
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802
        if self.state == "all":
            return True
        return self.sourceModel().rows[row].state == self.state


def newer_tasks(model: ProjectModel, run: RunRecord | None) -> list[int]:
    """The indexes of tasks learnt after ``run`` started: its predictions do not know them."""
    if run is None or run.started_at is None:
        return []
    return [t.index for t in model.tasks() if t.frozen and t.frozen_at is not None
            and _naive(t.frozen_at) > _naive(run.started_at)]


class RoutingView(QWidget):
    def __init__(self, model: ProjectModel, controller=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.controller = controller  # app.controller.JobController; None: no "predict again" offer
        self.table_model = RoutingTableModel(model, shown=self.isVisible)
        self.proxy = RoutingProxy()
        self.proxy.setSourceModel(self.table_model)

        layout = QVBoxLayout(self)
        heading = QLabel("Routing review")
        heading.setObjectName("heading")
        hint = QLabel("Which expert the selector chose for each prediction, least certain first (a proposed "
                      "pair's score is P(related) × P(type | related)). Accept (A) a right prediction, Correct "
                      "a wrong one, or Reject (R) it (for a pair: no relation): each becomes a label that the "
                      "next training uses. After each decision the next row left to review is selected.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(heading)
        layout.addWidget(hint)
        self.stale_banner = QWidget()
        self.stale_banner.setObjectName("staleBanner")
        banner = QHBoxLayout(self.stale_banner)
        banner.setContentsMargins(0, 0, 0, 0)
        self.stale_label = QLabel()
        self.stale_label.setObjectName("statusLine")
        self.stale_label.setProperty("level", "error")
        self.stale_label.setWordWrap(True)
        self.repredict_button = QPushButton("Predict again with the newest model")
        self.repredict_button.clicked.connect(self.predict_again)
        banner.addWidget(self.stale_label, 1)
        banner.addWidget(self.repredict_button)
        layout.addWidget(self.stale_banner)
        row = QHBoxLayout()
        self.filter_box = QComboBox()
        for key, label in FILTERS:
            self.filter_box.addItem(label, key)
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        row.addWidget(self.filter_box)
        row.addWidget(self.count_label, 1)
        layout.addLayout(row)

        self.table = QTableView()
        self.table.setObjectName("routingTable")
        self.table.setModel(self.proxy)
        # the indicator first: enabling sorting sorts at once, by column 0 unless told otherwise
        self.table.horizontalHeader().setSortIndicator(RoutingTableModel.C_SCORE, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # sized by the first rows only: measuring every row of a run (a thousand and more) at each change of
        # a row froze the window for seconds at open and half a second at each decision
        hh.setResizeContentsPrecision(50)
        hh.setSectionResizeMode(RoutingTableModel.C_SENT, QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(60)
        layout.addWidget(self.table, 1)

        actions = QHBoxLayout()
        self.accept_button = QPushButton("Accept prediction (A)")
        self.accept_button.setProperty("primary", True)
        self.correct_box = QComboBox()
        self.correct_box.setMinimumWidth(180)
        self.correct_button = QPushButton("Correct to this type")
        self.reject_button = QPushButton("Reject (R)")
        self.reject_button.setToolTip("The predicted type is wrong here; for a pair: there is no relation")
        actions.addWidget(self.accept_button)
        actions.addWidget(self.reject_button)
        actions.addSpacing(16)
        actions.addWidget(QLabel("Right type:"))
        actions.addWidget(self.correct_box)
        actions.addWidget(self.correct_button)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.status = QLabel("Select a row.")
        self.status.setObjectName("statusLine")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.filter_box.currentIndexChanged.connect(lambda _i: self._filter_changed())
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self._selection_changed())
        self.accept_button.clicked.connect(self.accept_selected)
        self.correct_button.clicked.connect(lambda: self.correct_selected(self.correct_box.currentData()))
        self.reject_button.clicked.connect(self.reject_selected)
        QShortcut(QKeySequence("A"), self.table, self.accept_selected)
        QShortcut(QKeySequence("R"), self.table, self.reject_selected)
        self.table_model.modelReset.connect(self._update_count)
        self.table_model.reviewChanged.connect(self._update_count)
        model.typesChanged.connect(self._selection_changed)
        model.tasksChanged.connect(self._update_count)
        if controller is not None:
            controller.busyChanged.connect(lambda busy: self.repredict_button.setEnabled(not busy))
        self._update_count()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.table_model.reload_if_stale()

    def _filter_changed(self) -> None:
        self.proxy.set_state(self.filter_box.currentData())
        self._update_count()

    def _update_count(self) -> None:
        n, total = self.proxy.rowCount(), self.table_model.rowCount()
        run = self.table_model.run
        if run is None:
            self.count_label.setText("No predictions yet: train a task, then Predict whole project.")
        else:
            when = run.finished_at.astimezone().strftime("%Y-%m-%d %H:%M") if run.finished_at else ""
            left, done = self.table_model.left_to_review(), self.table_model.reviewed()
            shown = f"{n} of {total} shown" if n != total else f"{total} predictions"
            self.count_label.setText(f"Run {run.id} ({when}): {shown} · {done} reviewed · {left} left to review")
        newer = newer_tasks(self.model, run)
        if newer:
            tasks = ", ".join(str(i) for i in newer)
            self.stale_label.setText(f"These predictions come from run {run.id}, made before task(s) {tasks} "
                                     "were learnt: a newer model exists, and it may route differently.")
        self.stale_banner.setVisible(bool(newer))
        self.repredict_button.setVisible(self.controller is not None)

    def predict_again(self) -> bool:
        if self.controller is None:
            return False
        try:
            self.controller.start_prediction(None)
        except RuntimeError as exc:
            self._say("error", str(exc))
            return False
        self._say("info", "Predicting the whole project with the newest model… (follow it in the Training tab)")
        return True

    def selected_row(self) -> RoutingRow | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table_model.rows[self.proxy.mapToSource(rows[0]).row()]

    def select_first(self) -> None:
        self.table_model.reload_if_stale()  # rows wanted now, before the view was first shown
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def select_next_to_review(self, decided: RoutingRow | None = None, at: int | None = None) -> bool:
        """Select the first row left to review after the current one (wrapping); False when none is left.
        After a decision on ``decided`` (shown at proxy row ``at`` before it): when the filter took that row
        out, the row that moved up into its place is the next one, not the one below it."""
        n = self.proxy.rowCount()
        current = self.table.selectionModel().selectedRows()
        if decided is not None and at is not None:
            source = self.table_model.index(self.table_model.rows.index(decided), 0)
            still = self.proxy.mapFromSource(source)
            start = still.row() + 1 if still.isValid() else at
        else:
            start = current[0].row() + 1 if current else 0
        for k in range(n):
            row = (start + k) % n
            if self.table_model.rows[self.proxy.mapToSource(self.proxy.index(row, 0)).row()].left_to_review:
                self.table.selectRow(row)
                self.table.scrollTo(self.proxy.index(row, 0))
                return True
        return False

    def _selected_proxy_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _selection_changed(self) -> None:
        r = self.selected_row()
        self.correct_box.clear()
        if r is None:
            return
        self.reject_button.setText("No relation (R)" if r.p.kind == "relation" else "Reject (R)")
        for t in sorted(self.model.types(r.p.kind), key=lambda t: t.name.lower()):
            suffix = f" (task {t.task_index})" if t.task_index is not None else " (not trained yet)"
            self.correct_box.addItem(swatch(t.colour), t.name + suffix, t.id)
        i = self.correct_box.findText(r.p.label, Qt.MatchFlag.MatchStartsWith)
        self.correct_box.setCurrentIndex(max(i, 0))
        conf = f"{100 * r.confidence:.1f}%" if r.confidence is not None else "n/a"
        self.status.setProperty("level", "info")
        self.status.setText(f"{mention_text(r.text, r.p)!r}: predicted {r.p.label} ({100 * r.p.score:.1f}%), routed "
                            f"to {r.routed} with selector confidence {conf}. Gold: {r.gold or 'none yet'}.")

    def accept_selected(self) -> bool:
        r = self.selected_row()
        if r is None:
            self.status.setText("Select a prediction first.")
            return False
        mention, gold = mention_text(r.text, r.p), r.gold  # the row's gold changes once accepted
        if gold is not None and gold != r.p.label and not dialogs.ask(
                self, "Replace the gold label?",
                f"{mention!r} is labelled {gold} (gold). The prediction says {r.p.label}. Replace {gold} "
                f"with {r.p.label}? (Ctrl+Z undoes it.)"):
            self._say("info", f"Kept the gold label: {mention!r} stays {gold}.")
            return False
        at = self._selected_proxy_row()
        ok, refusal = self._perform(AcceptPrediction(self.model, r.p.id))
        if ok:
            was = f" (was {gold})" if gold is not None and gold != r.p.label else ""
            self.select_next_to_review(r, at)
            self._say("ok", f"Accepted: {mention!r} is {r.p.label}{was} (gold; Ctrl+Z undoes).")
        else:
            self._say("error", f"Not accepted: {refusal}")
        return ok

    def reject_selected(self) -> bool:
        """The predicted type is wrong on this span; for a pair, the pair has no relation."""
        r = self.selected_row()
        if r is None:
            self.status.setText("Select a prediction first.")
            return False
        at = self._selected_proxy_row()
        ok, refusal = self._perform(RejectPrediction(self.model, r.p.id))
        mention = mention_text(r.text, r.p)
        if ok:
            self.select_next_to_review(r, at)
            what = (f"no relation between {mention!r}" if r.p.kind == "relation"
                    else f"{mention!r} is not {r.p.label}")
            self._say("ok", f"Rejected: {what} (kept as a rejection the next training learns from; Ctrl+Z undoes).")
        else:
            self._say("error", f"Not rejected: {refusal}")
        return ok

    def correct_selected(self, type_id: int | None) -> bool:
        r = self.selected_row()
        if r is None or type_id is None:
            self.status.setText("Select a prediction and the right type first.")
            return False
        t = self.model.type(type_id)
        at = self._selected_proxy_row()
        ok, refusal = self._perform(CorrectPrediction(self.model, r.p.id, type_id))
        if not ok:
            self._say("error", f"Not corrected to {t.name}: {refusal}")
            return False
        if t.task_index is not None:
            where = (f"its expert is task {t.task_index}'s, so the selector should have routed here to "
                     f"Task {t.task_index}" + (" (it did)." if r.p.active_experts and
                                               r.p.active_experts[0] + 1 == t.task_index else "."))
        else:
            where = "it is not trained yet: the next task will learn it."
        self.select_next_to_review(r, at)
        self._say("ok", f"Corrected to {t.name}: {where} The next training uses this label.")
        return True

    def _perform(self, command) -> tuple[bool, str]:
        """Do an undoable decision; (False, the store's reason) when it is refused (an argument rule, an
        overlap), said in this view's status line."""
        refusal = attempt(self.model, command)
        return refusal is None, refusal or ""

    def _say(self, level: str, text: str) -> None:
        self.status.setProperty("level", level)
        self.status.setText(text)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
