"""Labelling: the sentence list (search and filters) and the editor.

In the editor, select text with the mouse (or Shift+arrows) and press a type's shortcut key (or click
the type) to mark an entity. For a relation, select or click the head (or move the caret into it) and
press H, the tail and press T, then press the relation type's key. Click a mention and press another type's key to retype it;
Delete removes the selected annotation. Every edit is saved at once and can be undone (Ctrl+Z). The
model's suggestions and their keys (Tab, Space, Delete, Enter, Alt+N) are in ``app.views.suggestions``."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.undo import AddEntity, AddRelation, ChangeType, DeleteAnnotation, perform
from app.viewmodels.project_model import ProjectModel
from app.viewmodels.review_queue import ReviewQueue
from app.viewmodels.sentences_model import (
    CONFIDENCE_FILTERS,
    SentenceFilter,
    SentenceIdRole,
    SentenceListModel,
)
from app.views.selection import selection_problem, snap_to_words
from app.views.suggestions import (
    KEYS_HELP,
    SuggestionActions,
    gold_label,
    open_suggestions,
    relations_on,
    suggestion_key,
    suggestion_marks,
)
from app.views.text_entry import TextEntryActions
from app.widgets.annotation_editor import AnnotationEditor, Arc, Mark
from app.widgets.flow_layout import FlowLayout
from conpet.data.example import Span
from conpet.store import AnnotationRecord, PredictionRecord, TypeRecord

STATUS_FILTERS = [(None, "Any status"), ("annotated", "Annotated"), ("unannotated", "Not annotated"),
                  ("predicted", "Predicted, not reviewed"), ("rejected", "Has a rejection")]


def swatch(colour: str, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(colour))
    return QIcon(pm)


class AnnotateView(SuggestionActions, TextEntryActions, QWidget):
    sentenceSelected = Signal(int)

    def __init__(self, model: ProjectModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.sentence_id: int | None = None
        self._annotations: list[AnnotationRecord] = []
        self._annotated: set[int] | None = None  # sentences with a gold label (the progress counter)
        self._total = 0
        self.suggestions: list[PredictionRecord] = []  # the model's predictions with no gold label yet
        self.focus_annotation: int | None = None
        self.selected_suggestion: int | None = None  # a suggestion chosen with Tab or a click
        self.in_queue = False  # the sentence was reached by "Next most useful": Enter goes on in the queue
        self.queue = ReviewQueue(model)  # before the view's own connections: it counts first

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(splitter)

        # --- left: sentence list with search and filters
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search sentences…")
        self.search.setClearButtonEnabled(True)
        self.type_filter = QComboBox()
        self.status_filter = QComboBox()
        for key, label in STATUS_FILTERS:
            self.status_filter.addItem(label, key)
        self.confidence_filter = QComboBox()
        for key, label in CONFIDENCE_FILTERS:
            self.confidence_filter.addItem(label, key)
        model.sentencesChanged.connect(self._forget_progress)  # before the list reloads on it
        self.list_model = SentenceListModel(model)
        self.list = QListView()
        self.list.setObjectName("sentenceList")
        self.list.setModel(self.list_model)
        self.list.setUniformItemSizes(True)
        self.list.setAlternatingRowColors(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        ll.addWidget(self.search)
        frow = QHBoxLayout()
        frow.addWidget(self.type_filter, 1)
        frow.addWidget(self.status_filter, 1)
        ll.addLayout(frow)
        ll.addWidget(self.confidence_filter)
        ll.addWidget(self.list, 1)
        ll.addWidget(self.count_label)
        ll.addLayout(self._text_entry_row())
        splitter.addWidget(left)

        # --- right: the editor
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        nav = QHBoxLayout()
        self.title = QLabel("No sentence selected")
        self.title.setObjectName("heading")
        self.prev_button = QToolButton()
        self.prev_button.setText("◀ Previous")
        self.prev_button.setToolTip("Previous sentence (Alt+Up)")
        self.next_button = QToolButton()
        self.next_button.setText("Next ▶")
        self.next_button.setToolTip("Next sentence (Alt+Down)")
        self.useful_button = QToolButton()
        self.useful_button.setObjectName("nextUseful")
        self.useful_button.setText("Next most useful ▶▶")
        self.useful_button.setToolTip("The unreviewed sentence the model is least sure about, from the latest "
                                      "prediction run (Alt+N)")
        self.queue_label = QLabel()
        self.queue_label.setObjectName("hint")
        nav.addWidget(self.title, 1)
        nav.addWidget(self.queue_label)
        nav.addWidget(self.useful_button)
        nav.addWidget(self.prev_button)
        nav.addWidget(self.next_button)
        rl.addLayout(nav)

        self.editor = AnnotationEditor()
        self.editor.setMinimumHeight(140)  # two spaced lines with their arcs, without scrolling
        self.editor.setMaximumHeight(210)  # three spaced lines: the relation arcs sit between them
        rl.addWidget(self.editor, 1)
        hint = QLabel("Select text, then press a type's key (or click it). Relation: click the head (or move "
                      "the caret into it) and press H, then the tail and press the relation's key (T marks a "
                      "tail first, if you like). Click a mention to retype or delete it. Ctrl+Z undoes.\nSuggestions (dotted): "
                      + KEYS_HELP + ".")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        rl.addWidget(hint)

        rl.addWidget(QLabel("Entity types"))
        self.entity_palette = QWidget()
        self.entity_palette.setLayout(FlowLayout(spacing=4))
        rl.addWidget(self.entity_palette)
        rl.addWidget(QLabel("Relation types"))
        self.relation_palette = QWidget()
        self.relation_palette.setLayout(FlowLayout(spacing=4))
        rl.addWidget(self.relation_palette)

        ends = QHBoxLayout()
        self.head_button = QPushButton("Head (H)")
        self.tail_button = QPushButton("Tail (T)")
        self.clear_ends_button = QPushButton("Clear")
        self.ends_label = QLabel("Head: —   Tail: —")
        ends.addWidget(self.head_button)
        ends.addWidget(self.tail_button)
        ends.addWidget(self.clear_ends_button)
        ends.addWidget(self.ends_label, 1)
        rl.addLayout(ends)

        self.table = QTableWidget(0, 5)
        self.table.setObjectName("annotationTable")
        self.table.setHorizontalHeaderLabels(["Kind", "Text", "Type", "Status", "By"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.ResizeToContents)
        rl.addWidget(self.table, 2)
        trow = QHBoxLayout()
        self.delete_button = QPushButton("Delete annotation")
        self.delete_button.setProperty("danger", True)
        self.accept_next_button = QPushButton("Accept suggestions && next (Enter)")
        self.accept_next_button.setProperty("primary", True)
        self.accept_next_button.setToolTip("Make the model's suggestions in this sentence (dotted) gold labels, "
                                           "then go to the next sentence. " + KEYS_HELP)
        self.accept_next_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        trow.addWidget(self.delete_button)
        trow.addStretch(1)
        trow.addWidget(self.accept_next_button)
        rl.addLayout(trow)

        self.status = QLabel("Ready.")
        self.status.setObjectName("statusLine")
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Room for two lines from the start, at most three: a message that wraps moves nothing above it.
        lines = self.status.fontMetrics().lineSpacing()
        self.status.setFixedHeight(3 * lines + 8)
        rl.addWidget(self.status)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([420, 700])

        # --- wiring
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.type_filter.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.status_filter.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.confidence_filter.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.list_model.modelReset.connect(self._list_reset)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        QShortcut(QKeySequence("Alt+Up"), self, lambda: self.step(-1))
        QShortcut(QKeySequence("Alt+Down"), self, lambda: self.step(1))
        QShortcut(QKeySequence("Alt+N"), self, self.next_most_useful)
        self.list.installEventFilter(self)  # Enter on the sentence list: the button names Enter
        self.useful_button.clicked.connect(self.next_most_useful)
        self.editor.cyclePressed.connect(self.cycle_suggestion)
        self.editor.spacePressed.connect(self.accept_selected)
        model.predictionsChanged.connect(self._show_queue_progress)
        self.editor.shortcutPressed.connect(self.on_key)
        self.editor.deletePressed.connect(self.delete_focused)
        self.editor.escapePressed.connect(self._escape)
        self.editor.acceptPressed.connect(self.accept_and_next)
        self.accept_next_button.clicked.connect(self.accept_and_next)
        model.predictionsChanged.connect(self._show_sentence)
        self.editor.markClicked.connect(self._mark_clicked)
        self.editor.undoRequested.connect(model.undo_stack.undo)
        self.editor.redoRequested.connect(model.undo_stack.redo)
        self.head_button.clicked.connect(lambda: self.set_end("head"))
        self.tail_button.clicked.connect(lambda: self.set_end("tail"))
        self.clear_ends_button.clicked.connect(self.clear_ends)
        self.delete_button.clicked.connect(self.delete_focused)
        self.table.itemSelectionChanged.connect(self._table_selection)
        model.typesChanged.connect(self._types_changed)
        model.annotationsChanged.connect(self._annotations_changed)
        model.message.connect(self.show_message)
        model.editReplayed.connect(self.show_replayed)

        self._types_changed()
        self._list_reset()
        self._show_queue_progress()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        """Enter in the sentence list does what the button says (accept the suggestions and go on)."""
        if (watched is self.list and event.type() == QEvent.Type.KeyPress
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers()):
            self.accept_and_next()
            return True
        return super().eventFilter(watched, event)

    # --- messages -------------------------------------------------------------------------------
    def show_message(self, level: str, text: str) -> None:
        self.status.setProperty("level", level)
        self.status.setText(text)
        self.status.setToolTip(text)  # the whole text, should it need more than the line's three rows
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    # --- filters and list -----------------------------------------------------------------------
    def _types_changed(self) -> None:
        current = self.type_filter.currentData()
        self.type_filter.blockSignals(True)
        self.type_filter.clear()
        self.type_filter.addItem("Any type", None)
        for t in sorted(self.model.types(), key=lambda t: (t.kind, t.name.lower())):
            self.type_filter.addItem(swatch(t.colour), f"{t.name} ({t.kind})", t.id)
        i = self.type_filter.findData(current)
        self.type_filter.setCurrentIndex(max(i, 0))
        self.type_filter.blockSignals(False)
        self._fill_palettes()
        self._show_sentence()

    def _fill_palettes(self) -> None:
        self._type_buttons: dict[int, QPushButton] = {}
        for palette, kind in ((self.entity_palette, "entity"), (self.relation_palette, "relation")):
            layout = palette.layout()
            while layout.count():
                item = layout.takeAt(0)
                if item.widget():
                    item.widget().deleteLater()
            for t in sorted(self.model.types(kind), key=lambda t: (t.shortcut is None, t.shortcut or "", t.name)):
                b = QPushButton(f"{t.shortcut}  {t.name}" if t.shortcut else t.name)
                b.setProperty("typeButton", True)
                b.setIcon(swatch(t.colour))
                b.setToolTip(t.description or t.name)
                b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                b.setObjectName(f"typeButton-{t.id}")
                b.clicked.connect(lambda _c=False, tid=t.id: self.apply_type(tid))
                layout.addWidget(b)
                self._type_buttons[t.id] = b
            if not self.model.types(kind):
                hint = QLabel(f"No {kind} types yet: add one in the Types tab.")
                hint.setObjectName("hint")
                layout.addWidget(hint)

    def _apply_filter(self) -> None:
        self.list_model.set_filter(SentenceFilter(
            text=self.search.text().strip(), type_id=self.type_filter.currentData(),
            status=self.status_filter.currentData(), confidence=self.confidence_filter.currentData()))

    def _update_progress(self, sentence_id: int | None = None) -> None:
        """How far the labelling is: the list's length and how many of all sentences have a gold label.
        After an edit of one sentence only that sentence is looked at again (the full count is two
        queries over the whole project, too slow for every key press)."""
        if self._annotated is None or sentence_id == -1:
            self._total = len(self.model.sentence_ids())
            self._annotated = set(self.model.sentence_ids(status="annotated"))
        elif sentence_id is None:
            pass  # the list was filtered: the counts stand
        elif any(a.status == "gold" for a in self._annotations_of(sentence_id)):
            self._annotated.add(sentence_id)
        else:
            self._annotated.discard(sentence_id)
        n, total, done = self.list_model.rowCount(), self._total, len(self._annotated)
        # rounded down: 320 of 321 is 99 %, not 100 % (which would say that nothing is left)
        share = f" ({100 * done // total} %)" if total else ""
        shown = f"{n} of {total} sentences shown" if n != total else f"{total} sentences"
        self.count_label.setText(f"{shown} · {done} annotated{share} · {total - done} to go")

    def _forget_progress(self) -> None:
        self._annotated = None

    def _annotations_of(self, sentence_id: int) -> list[AnnotationRecord]:
        return self._annotations if sentence_id == self.sentence_id else self.model.annotations(sentence_id)

    def _list_reset(self) -> None:
        n = self.list_model.rowCount()
        self._update_progress()
        row = self.list_model.row_of(self.sentence_id) if self.sentence_id is not None else -1
        if row < 0 and n:
            row = 0
        if row >= 0:
            self.list.setCurrentIndex(self.list_model.index(row))
        else:
            self.set_sentence(None)

    def _current_changed(self, current, _previous) -> None:
        if current.isValid():
            self.set_sentence(int(current.data(SentenceIdRole)))

    def select_sentence(self, sentence_id: int) -> bool:
        row = self.list_model.row_of(sentence_id)
        if row < 0:
            self.search.clear()
            self.type_filter.setCurrentIndex(0)
            self.status_filter.setCurrentIndex(0)
            self.confidence_filter.setCurrentIndex(0)
            self._apply_filter()
            row = self.list_model.row_of(sentence_id)
        if row < 0:
            return False
        self.list.selectionModel().setCurrentIndex(self.list_model.index(row),
                                                   QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.list.scrollTo(self.list_model.index(row), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def step(self, delta: int) -> None:
        row = self.list.currentIndex().row() + delta
        if 0 <= row < self.list_model.rowCount():
            self.list.setCurrentIndex(self.list_model.index(row))
            self.editor.setFocus()

    # --- the editor -----------------------------------------------------------------------------
    def set_sentence(self, sentence_id: int | None) -> None:
        changed = sentence_id != self.sentence_id
        self.sentence_id = sentence_id
        if changed:
            self.focus_annotation = None
            self.selected_suggestion = None
            self.in_queue = False
            self.editor.set_sentence(self.model.sentence(sentence_id).text if sentence_id is not None else "")
            self._update_ends()
            if sentence_id is not None:
                self.sentenceSelected.emit(sentence_id)
        self._show_sentence()

    def _annotations_changed(self, sentence_id: int) -> None:
        if sentence_id in (-1, self.sentence_id):
            self._show_sentence()
        self._update_progress(sentence_id)
        self._show_queue_progress()

    def _show_sentence(self, reload: bool = True) -> None:
        """Draw the sentence's marks, suggestions and table; ``reload=False`` draws what was read last (a
        new selection or focus changes no label)."""
        if self.sentence_id is None:
            self.title.setText("No sentence selected")
            self._annotations = []
            self.editor.set_marks([])
            self.table.setRowCount(0)
            return
        row = self.list_model.row_of(self.sentence_id)
        where = f"{row + 1} of {self.list_model.rowCount()}" if row >= 0 else "not in the filtered list"
        if reload:
            self._annotations = self.model.annotations(self.sentence_id)
            self.suggestions = open_suggestions(self.model.predictions_for_sentence(self.sentence_id),
                                                self._annotations)
        n = len(self.suggestions)
        self.accept_next_button.setText(f"Accept {n} suggestion{'s' if n != 1 else ''} && next (Enter)" if n
                                        else "Next sentence (Enter)")
        self.title.setText(f"Sentence {self.sentence_id}  ·  {where}"
                           + (f"  ·  {n} suggestion{'s' if n != 1 else ''}" if n else ""))
        text = self.editor.toPlainText()
        types = {t.id: t for t in self.model.types()}
        by_name = {t.name: t for t in self.model.types()}
        marks = [Mark(a.start, a.end, types[a.type_id].colour if a.type_id in types else "#999999",
                      gold_label(a), a.id)
                 for a in self._annotations if a.kind == "entity" and a.status == "gold"]
        more_marks, suggested_arcs = suggestion_marks(
            self.suggestions, self._annotations, lambda label: by_name[label].colour if label in by_name else "#999999")
        if self._suggestion(self.selected_suggestion) is None:
            self.selected_suggestion = None
        focus = suggestion_key(self.selected_suggestion) if self.selected_suggestion is not None else self.focus_annotation
        self.delete_button.setText("Reject suggestion" if self.selected_suggestion is not None else "Delete annotation")
        self.editor.set_marks(marks + more_marks, focus)
        self.editor.set_arcs([Arc((a.start, a.end), (a.tail_start, a.tail_end),
                                  types[a.type_id].colour if a.type_id in types else "#999999", a.type_name, a.id)
                              for a in self._annotations if a.kind == "relation" and a.status == "gold"
                              and a.tail_start is not None and a.tail_end is not None] + suggested_arcs)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._annotations))
        for i, a in enumerate(self._annotations):
            if a.kind == "entity":
                shown = text[a.start:a.end]
            else:
                shown = f"{text[a.start:a.end]}  →  {text[a.tail_start:a.tail_end]}"
            colour = types[a.type_id].colour if a.type_id in types else "#999999"
            items = [QTableWidgetItem(a.kind), QTableWidgetItem(shown), QTableWidgetItem(swatch(colour), a.type_name),
                     QTableWidgetItem(a.status), QTableWidgetItem(a.author)]
            for j, it in enumerate(items):
                it.setData(Qt.ItemDataRole.UserRole, a.id)
                it.setToolTip(f"{a.status} {a.kind} {a.type_name!r}, version {a.version}, by {a.author}"
                              + (f", {a.created_at:%Y-%m-%d %H:%M}" if a.created_at else ""))
                self.table.setItem(i, j, it)
            if a.id == self.focus_annotation:
                self.table.selectRow(i)
        if self.focus_annotation is None:
            self.table.clearSelection()
        self.table.blockSignals(False)
        self._show_focused_relation()
        self._update_relation_buttons()

    def _show_focused_relation(self) -> None:
        a = self._annotation(self.focus_annotation)
        if a is not None and a.kind == "relation" and a.tail_start is not None:
            colour = self.model.type(a.type_id).colour
            self.editor.show_relation(Mark(a.start, a.end, colour, "head"),
                                      Mark(a.tail_start, a.tail_end, colour, "tail"))
        else:
            self.editor.show_relation(None)

    def _annotation(self, annotation_id: int | None) -> AnnotationRecord | None:
        for a in self._annotations:
            if a.id == annotation_id:
                return a
        return None

    def _mark_clicked(self, key: object) -> None:
        if isinstance(key, tuple) and key[0] == "prediction":
            self.select_suggestion(key[1])
            return
        self.selected_suggestion = None
        self.focus(key if isinstance(key, int) else None)

    def focus(self, annotation_id: int | None) -> None:
        self.focus_annotation = annotation_id
        self._show_sentence()
        a = self._annotation(annotation_id)
        if a is not None:
            by = f" (by {a.author})" if a.author != "user" else ""
            self.show_message("info", f"Selected {a.status} {a.kind} {a.type_name!r}{by}: press another type's key "
                              "to change it, Delete to remove it, H / T to use it as a relation's head / tail.")

    def show_replayed(self, what: str, annotation_id: int) -> None:
        """After an undo or redo: go to the sentence it changed and highlight the annotation (or, when
        it is gone, select the words it covered), so that nothing changes out of sight."""
        a = self.model.annotation(annotation_id)
        if a.sentence_id != self.sentence_id and not self.select_sentence(a.sentence_id):
            self.show_message("info", f"{what} in sentence {a.sentence_id}.")
            return
        text = self.editor.toPlainText()
        shown = text[a.start:a.end] if a.kind == "entity" else f"{text[a.start:a.end]} → {text[a.tail_start:a.tail_end]}"
        if a.status in ("gold", "rejected"):
            self.focus_annotation = a.id
            self._show_sentence()
            state = f"now {a.type_name}" if a.status == "gold" else f"rejected as {a.type_name}"
        else:
            self.focus_annotation = None
            self._show_sentence()
            self.editor.select_span(a.start, a.end)
            state = "removed"
        self.editor.ensureCursorVisible()
        self.show_message("ok", f"{what}: {shown!r} in sentence {a.sentence_id} is {state}.")

    def _table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.selected_suggestion = None  # Delete now means the annotation chosen in the table
            self.focus_annotation = int(self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))
            marks = self.editor.marks()
            self.editor.set_marks(marks, self.focus_annotation)
            self._show_focused_relation()

    # --- actions --------------------------------------------------------------------------------
    def on_key(self, key: str) -> None:
        if key.lower() == "h":
            self.set_end("head")
            return
        if key.lower() == "t":
            self.set_end("tail")
            return
        t = self.model.type_by_shortcut(key)
        if t is None:
            keys = ", ".join(f"{x.shortcut} = {x.name}" for x in self.model.types() if x.shortcut)
            self.show_message("error", f"No type has the key {key!r}." + (f" Keys: {keys}." if keys else
                              " Give types a shortcut in the Types tab."))
            return
        self.apply_type(t.id)

    def apply_type(self, type_id: int) -> bool:
        """The user picked a type: mark the selection (entity), retype the selected mention, or join the
        marked head and tail (relation)."""
        if self.sentence_id is None:
            self.show_message("error", "Choose a sentence first.")
            return False
        t = self.model.type(type_id)
        if t.kind == "entity":
            return self._apply_entity_type(t)
        return self._apply_relation_type(t)

    def _apply_entity_type(self, t: TypeRecord) -> bool:
        span = self.editor.selected_span()
        if span is None:
            focused = self._annotation(self.focus_annotation)
            if focused is not None and focused.kind == "entity":
                if focused.type_id == t.id:
                    self.show_message("info", f"This mention is already {t.name!r}.")
                    return False
                ok = perform(self.model, ChangeType(self.model, focused.id, t.id))
                if ok:
                    self.show_message("ok", f"Changed the mention to {t.name!r}.")
                return ok
            self.show_message("error", "Select the words of the mention first: drag with the mouse, or hold "
                              "Shift and use the arrow keys.")
            return False
        text = self.editor.toPlainText()
        start, end = snap_to_words(text, *span)
        problem = selection_problem(text, start, end)
        if problem:
            self.show_message("error", problem)
            return False
        ok = perform(self.model, AddEntity(self.model, self.sentence_id, start, end, t.id))
        if ok:
            self.editor.clear_selection()
            widened = " (the selection was widened to whole words)" if (start, end) != span else ""
            self.show_message("ok", f"Marked {text[start:end]!r} as {t.name}{widened}.")
        return ok

    def _apply_relation_type(self, t: TypeRecord) -> bool:
        head, tail = self.editor.pending("head"), self.editor.pending("tail")
        if head is not None and tail is None and self._tail_candidate() is not None:
            # the head is set and the user points at another mention: it is the tail (no T needed)
            if self.set_end("tail"):
                tail = self.editor.pending("tail")
        if head is None or tail is None:
            missing = " and ".join(r for r, m in (("a head", head), ("a tail", tail)) if m is None)
            self.show_message("error", f"A relation needs a head and a tail: mark {missing} first (select or "
                              "click a mention and press H or T).")
            return False
        ok = perform(self.model, AddRelation(self.model, self.sentence_id, Span(head.start, head.end),
                                             Span(tail.start, tail.end), t.id))
        if ok:
            text = self.editor.toPlainText()
            self.show_message("ok", f"Added {t.name}: {text[head.start:head.end]!r} → {text[tail.start:tail.end]!r}.")
            self.clear_ends()
        return ok

    def _pointed_span(self) -> tuple[int, int] | None:
        """What the user points at for a relation's end: the selection, else the gold mention the caret is
        in (so that a relation can be made from the keyboard alone: move into a mention, press H or T),
        else the clicked mention."""
        span = self.editor.selected_span()
        if span is not None:
            return span
        caret = self.editor.textCursor().position()
        for a in self._annotations:
            if a.kind == "entity" and a.status == "gold" and a.start <= caret <= a.end:
                return (a.start, a.end)
        focused = self._annotation(self.focus_annotation)
        if focused is not None and focused.kind == "entity":
            return (focused.start, focused.end)
        return None

    def _tail_candidate(self) -> tuple[int, int] | None:
        """The selection, or the mention pointed at, when it is not the head itself."""
        span = self._pointed_span()
        head = self.editor.pending("head")
        if span is None or head is None or (span[0], span[1]) == (head.start, head.end):
            return None
        return span

    def set_end(self, role: str) -> bool:
        """Use the selection (or the mention the caret is in, or the clicked one) as the relation's head or
        tail."""
        span = self._pointed_span()
        if span is None:
            self.show_message("error", f"Select the {role} first (drag over its words, click a mention, or move "
                              "the caret into a mention).")
            return False
        text = self.editor.toPlainText()
        span = snap_to_words(text, *span)
        problem = selection_problem(text, *span)
        if problem:
            self.show_message("error", problem)
            return False
        other = self.editor.pending("tail" if role == "head" else "head")
        if other is not None and Span(*span).overlaps(Span(other.start, other.end)):
            self.show_message("error", f"The head and the tail must not overlap ({text[span[0]:span[1]]!r} "
                              f"overlaps {text[other.start:other.end]!r}).")
            return False
        self.editor.set_pending(role, Mark(span[0], span[1], "#000000", role))
        self.editor.clear_selection()
        self._update_ends()
        if self.editor.pending("head") and self.editor.pending("tail"):
            ends = {role: self._end_type(role) for role in ("head", "tail")}
            fitting = [x for x in self.model.types("relation")
                       if relation_refusal(x, ends, self.editor.pending, text, self.model) is None]
            if not fitting:
                self.show_message("error", "No relation type takes this head and tail (their entity types are "
                                  "not among any relation type's head and tail types; see the Types view).")
                return True
            keys = ", ".join(f"{x.shortcut} = {x.name}" for x in fitting if x.shortcut)
            self.show_message("info", "Now press the relation type's key" + (f" ({keys})" if keys else "")
                              + " or click it.")
        else:
            self.show_message("info", f"{role.capitalize()} set to {text[span[0]:span[1]]!r}.")
        return True

    def _escape(self) -> None:
        """Escape drops what is half chosen: a relation's head and tail, the selected suggestion."""
        self.clear_ends()
        if self.selected_suggestion is not None:
            self.select_suggestion(None)
            self.show_message("info", "No suggestion selected (Tab selects one).")

    def clear_ends(self) -> None:
        self.editor.set_pending("head", None)
        self.editor.set_pending("tail", None)
        self._update_ends()

    def _update_ends(self) -> None:
        text = self.editor.toPlainText()
        parts = []
        for role in ("head", "tail"):
            m = self.editor.pending(role)
            parts.append(f"{role.capitalize()}: " + (repr(text[m.start:m.end]) if m else "—"))
        self.ends_label.setText("   ".join(parts))
        self._update_relation_buttons()

    def _end_type(self, role: str) -> TypeRecord | None:
        """The entity type of the gold mention on the marked head (tail), if it has one."""
        m = self.editor.pending(role)
        if m is None:
            return None
        for a in self._annotations:
            if a.kind == "entity" and a.status == "gold" and (a.start, a.end) == (m.start, m.end):
                return self.model.type(a.type_id)
        return None

    def _update_relation_buttons(self) -> None:
        """Grey the relation types whose declared head / tail entity types refuse the marked pair (the
        store refuses them too: a key press gets its reason)."""
        ends = {role: self._end_type(role) for role in ("head", "tail")}
        text = self.editor.toPlainText()
        for t in self.model.types("relation"):
            button = getattr(self, "_type_buttons", {}).get(t.id)
            if button is None:
                continue
            refusal = relation_refusal(t, ends, self.editor.pending, text, self.model)
            button.setEnabled(refusal is None)
            button.setToolTip(refusal or t.description or t.name)

    def delete_focused(self) -> bool:
        """Delete: reject the selected suggestion, or delete the selected annotation."""
        if self.selected_suggestion is not None:
            return self.reject_selected()
        a = self._annotation(self.focus_annotation)
        if a is None:
            self.show_message("error", "Click a mention or select an annotation in the table to delete it.")
            return False
        # a deleted mention takes the gold relations on it along (one undo step): no relation is left
        # pointing at a span that is not a mention
        dropped = relations_on(a.spans[0], self._annotations) if a.kind == "entity" else []
        ok = self._perform_with(DeleteAnnotation(self.model, a.id), dropped, f"Delete {a.kind} {a.type_name}")
        if ok:
            self.focus_annotation = None
            self._show_sentence()
            also = (f" and the {', '.join(r.type_name for r in dropped)} relation{'s' if len(dropped) > 1 else ''} "
                    "on it") if dropped else ""
            self.show_message("ok", f"Deleted the {a.kind} {a.type_name!r}{also} (Ctrl+Z brings it back).")
        return ok


def relation_refusal(t: TypeRecord, ends: dict[str, TypeRecord | None], pending, text: str,
                     model: ProjectModel) -> str | None:
    """Why relation type ``t`` does not take the marked pair (None: it does)."""
    for role, entity in ends.items():
        if entity is not None and not t.allows(role, entity.id):
            allowed = sorted(model.type(i).name for i in (t.head_type_ids if role == "head" else t.tail_type_ids))
            m = pending(role)
            return (f"{t.name} takes a {role} of type {' or '.join(allowed)}; the {role} "
                    f"{text[m.start:m.end]!r} is {entity.name}")
    return None
