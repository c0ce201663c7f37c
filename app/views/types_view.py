"""Knowledge types: add, rename, describe, colour and give a shortcut to entity and relation types.

Name, description and shortcut are edited in place in the table; the colour by double-clicking its
swatch. Deleting a type a trained task uses is refused, with the reason; deleting an untrained type
first says how many annotations go with it (they stay in the history). A selected relation type's head
and tail entity types are ticked in two lists below the table (none ticked: any type); each change is
one step on the undo stack."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app import dialogs
from app.undo import SetRelationArguments, perform
from app.viewmodels.project_model import ProjectModel
from app.viewmodels.type_defaults import RESERVED_KEYS, free_colour, free_shortcut
from conpet.core.errors import ConpetError
from conpet.store import TypeInUseError, TypeRecord

_Index = QModelIndex | QPersistentModelIndex

NO_PARENT = QModelIndex()  # the default parent of a flat model's rows


def who_made(t: TypeRecord) -> str:
    """Who added the type and who changed it last ("" for a type recorded before names were kept)."""
    parts = [f"Added by {t.created_by}"] if t.created_by else []
    if t.edited_by and t.edited_by != t.created_by:
        parts.append(f"last changed by {t.edited_by}")
    return "; ".join(parts)


class TypesTableModel(QAbstractTableModel):
    COLUMNS = ["", "Name", "Kind", "Shortcut", "Gold examples", "Task", "Head → tail", "Description"]
    C_COLOUR, C_NAME, C_KIND, C_SHORTCUT, C_COUNT, C_TASK, C_ARGS, C_DESC = range(8)
    failed = Signal(str)

    def __init__(self, model: ProjectModel) -> None:
        super().__init__()
        self.model = model
        self._rows: list[TypeRecord] = []
        self._counts: dict[int, int] = {}
        self.reload()
        model.typesChanged.connect(self.reload)
        model.tasksChanged.connect(self.reload)
        model.annotationsChanged.connect(lambda _sid: self._reload_counts())

    def reload(self) -> None:
        self.beginResetModel()
        self._rows = sorted(self.model.types(), key=lambda t: (t.kind, t.id))
        self._counts = self.model.gold_counts()
        self.endResetModel()

    def _reload_counts(self) -> None:
        self._counts = self.model.gold_counts()
        if self._rows:
            self.dataChanged.emit(self.index(0, self.C_COUNT), self.index(len(self._rows) - 1, self.C_COUNT))

    def type_at(self, row: int) -> TypeRecord:
        return self._rows[row]

    def row_of(self, type_id: int) -> int:
        for i, t in enumerate(self._rows):
            if t.id == type_id:
                return i
        return -1

    def rowCount(self, parent: _Index = NO_PARENT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = NO_PARENT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() in (self.C_NAME, self.C_SHORTCUT, self.C_DESC):
            f |= Qt.ItemFlag.ItemIsEditable
        return f

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        t = self._rows[index.row()]
        c = index.column()
        if role == Qt.ItemDataRole.BackgroundRole and c == self.C_COLOUR:
            return QColor(t.colour)
        if role == Qt.ItemDataRole.ToolTipRole:
            if c == self.C_COLOUR:
                return "Double-click to change the colour"
            if c == self.C_TASK and t.task_index is not None:
                return f"Learnt in task {t.task_index}: it can be renamed, but not deleted"
            return "\n".join(x for x in (t.description, who_made(t)) if x) or None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if c == self.C_NAME:
                return t.name
            if c == self.C_KIND:
                return t.kind
            if c == self.C_SHORTCUT:
                return t.shortcut or ""
            if c == self.C_COUNT:
                return self._counts.get(t.id, 0)
            if c == self.C_TASK:
                return f"Task {t.task_index}" if t.task_index is not None else ("—" if role == Qt.ItemDataRole.DisplayRole else "")
            if c == self.C_ARGS:
                return argument_summary(self.model, t)
            if c == self.C_DESC:
                return t.description
        if role == Qt.ItemDataRole.TextAlignmentRole and c == self.C_COUNT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: _Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole:
            return False
        t = self._rows[index.row()]
        c = index.column()
        try:
            if c == self.C_NAME and str(value).strip() != t.name:
                self.model.rename_type(t.id, str(value))
            elif c == self.C_DESC and str(value) != t.description:
                self.model.describe_type(t.id, str(value))
            elif c == self.C_SHORTCUT and (str(value).strip() or None) != t.shortcut:
                self.model.set_type_shortcut(t.id, check_shortcut(str(value)))
            else:
                return False
        except (ConpetError, ValueError) as exc:
            self.failed.emit(str(exc))
            return False
        return True


def argument_summary(model: ProjectModel, t: TypeRecord) -> str:
    """ "Person → City, Country" for a relation type ("any" for a free role); empty for an entity type."""
    if t.kind != "relation":
        return ""
    names = {e.id: e.name for e in model.types("entity")}

    def role(ids: tuple[int, ...]) -> str:
        return ", ".join(sorted(names[i] for i in ids if i in names)) or "any"

    return f"{role(t.head_type_ids)} → {role(t.tail_type_ids)}"


class ArgumentsEditor(QGroupBox):
    """Two checkable lists of entity types: what the selected relation type takes as head and as tail."""

    def __init__(self, model: ProjectModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.type_id: int | None = None
        layout = QHBoxLayout(self)
        self.lists: dict[str, QListWidget] = {}
        for role in ("head", "tail"):
            column = QVBoxLayout()
            label = QLabel(f"{role.capitalize()} entity types (none ticked: any)")
            lst = QListWidget()
            lst.setObjectName(f"{role}Types")
            lst.setMaximumHeight(110)
            lst.itemChanged.connect(self._ticked)
            column.addWidget(label)
            column.addWidget(lst)
            layout.addLayout(column)
            self.lists[role] = lst
        self.show_type(None)

    def show_type(self, t: TypeRecord | None) -> None:
        """Fill the lists for relation type ``t`` (disabled, with a hint, for an entity type or none)."""
        self.type_id = t.id if t is not None and t.kind == "relation" else None
        self.setEnabled(self.type_id is not None)
        self.setTitle(f"Head and tail types of {t.name}" if self.type_id is not None and t is not None
                      else "Head and tail types: select a relation type")
        for role, lst in self.lists.items():
            allowed = (t.head_type_ids if role == "head" else t.tail_type_ids) if self.type_id else ()
            lst.blockSignals(True)
            lst.clear()
            for e in sorted(self.model.types("entity"), key=lambda e: e.name.lower()):
                item = QListWidgetItem(swatch_icon(e.colour), e.name)
                item.setData(Qt.ItemDataRole.UserRole, e.id)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if e.id in allowed else Qt.CheckState.Unchecked)
                lst.addItem(item)
            lst.blockSignals(False)

    def ticked(self, role: str) -> tuple[int, ...]:
        lst = self.lists[role]
        return tuple(sorted(lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())
                            if lst.item(i).checkState() == Qt.CheckState.Checked))

    def _ticked(self, _item: QListWidgetItem) -> None:
        if self.type_id is None:
            return
        type_id = self.type_id
        if not perform(self.model, SetRelationArguments(self.model, type_id, self.ticked("head"), self.ticked("tail"))):
            self.show_type(self.model.type(type_id))  # refused (the reason is shown): back to what is stored


def swatch_icon(colour: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(colour))
    return QIcon(pix)


def check_shortcut(value: str) -> str | None:
    """A type's shortcut in the annotate view is one printable key; H and T mark relation ends."""
    value = value.strip()
    if not value:
        return None
    if len(value) != 1 or not value.isprintable():
        raise ValueError(f"a shortcut is a single key (a letter or a digit), not {value!r}")
    if value.lower() in RESERVED_KEYS:
        raise ValueError(f"{value!r} is reserved: H and T mark a relation's head and tail")
    return value


class AddTypeDialog(QDialog):
    def __init__(self, model: ProjectModel, parent: QWidget | None = None, kind: str = "entity") -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a knowledge type")
        self.model = model
        self.colour = QColor(free_colour(model.types()))  # never the colour of another type
        form = QFormLayout(self)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. Person, Drug, works_for")
        self.kind_box = QComboBox()
        self.kind_box.addItem("Entity type (a mention)", "entity")
        self.kind_box.addItem("Relation type (between a head and a tail)", "relation")
        self.kind_box.setCurrentIndex(0 if kind == "entity" else 1)
        self.desc_edit = QPlainTextEdit()
        self.desc_edit.setPlaceholderText("What counts as this type? Examples help the people who label.")
        self.desc_edit.setFixedHeight(70)
        self.desc_edit.setTabChangesFocus(True)  # Tab moves on to the next field, as in every other field
        self.shortcut_edit = QLineEdit()
        self.shortcut_edit.setMaxLength(1)
        self.shortcut_edit.setPlaceholderText(suggest_shortcut(model))
        self.colour_button = QPushButton()
        self.colour_button.clicked.connect(self._pick_colour)
        self._show_colour()
        form.addRow("Name:", self.name_edit)
        form.addRow("Kind:", self.kind_box)
        form.addRow("Description:", self.desc_edit)
        form.addRow("Shortcut key:", self.shortcut_edit)
        form.addRow("Colour:", self.colour_button)
        self.error = QLabel()
        self.error.setObjectName("statusLine")
        self.error.setProperty("level", "error")
        # room for three wrapped lines from the start: a refusal never resizes the dialog
        self.error.setWordWrap(True)
        self.error.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.error.setFixedHeight(3 * self.error.fontMetrics().lineSpacing() + 4)
        self.setMinimumWidth(480)
        form.addRow(self.error)
        for edit in (self.name_edit, self.shortcut_edit):  # an error is about what was typed: typing clears it
            edit.textChanged.connect(lambda _t: self.error.clear())
        self.kind_box.currentIndexChanged.connect(lambda _i: self.error.clear())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.created: TypeRecord | None = None

    def _show_colour(self) -> None:
        self.colour_button.setText(self.colour.name())
        self.colour_button.setStyleSheet(f"background: {self.colour.name()}; color: white;")

    def _pick_colour(self) -> None:
        c = QColorDialog.getColor(self.colour, self, "Type colour")
        if c.isValid():
            self.colour = c
            self._show_colour()

    def _accept(self) -> None:
        try:
            shortcut = check_shortcut(self.shortcut_edit.text() or self.shortcut_edit.placeholderText())
            self.created = self.model.add_type(
                self.name_edit.text(), self.kind_box.currentData(), description=self.desc_edit.toPlainText(),
                colour=self.colour.name(), shortcut=shortcut)
        except (ConpetError, ValueError) as exc:
            self.error.setText(str(exc))
            return
        self.accept()


def suggest_shortcut(model: ProjectModel) -> str:
    return free_shortcut(model.types())


class TypesView(QWidget):
    def __init__(self, model: ProjectModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.table_model = TypesTableModel(model)
        layout = QVBoxLayout(self)
        heading = QLabel("Knowledge types")
        heading.setObjectName("heading")
        hint = QLabel("The entity and relation types your model learns. Double-click a cell to edit it, "
                      "the colour swatch to recolour. A type becomes part of a task when you train it.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(heading)
        layout.addWidget(hint)

        self.table = QTableView()
        self.table.setObjectName("typesTable")
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(TypesTableModel.C_DESC, QHeaderView.ResizeMode.Stretch)
        hh.resizeSection(TypesTableModel.C_COLOUR, 22)
        hh.setSectionResizeMode(TypesTableModel.C_COLOUR, QHeaderView.ResizeMode.Fixed)
        self.table.doubleClicked.connect(self._double_clicked)
        layout.addWidget(self.table, 1)
        self.arguments = ArgumentsEditor(model)
        layout.addWidget(self.arguments)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_arguments())
        self._kept: int | None = None  # the selected type, across the table's reloads
        self.table_model.modelAboutToBeReset.connect(self._keep_selection)
        self.table_model.modelReset.connect(self._restore_selection)

        row = QHBoxLayout()
        self.add_button = QPushButton("Add type…")
        self.add_button.setProperty("primary", True)
        self.add_button.clicked.connect(self.add_type)
        self.colour_button = QPushButton("Colour…")
        self.colour_button.clicked.connect(self.change_colour)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setProperty("danger", True)
        self.delete_button.clicked.connect(self.delete_selected)
        row.addWidget(self.add_button)
        row.addWidget(self.colour_button)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.status = QLabel("Select a type to recolour or delete it; add a type for knowledge the model should learn next.")
        self.status.setObjectName("statusLine")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.table_model.failed.connect(lambda text: self.show_message("error", text))
        # an undo step's refusal or replay (the head / tail lists) is said here too, when this view is shown
        model.message.connect(lambda level, text: self.show_message(level, text) if self.isVisible() else None)

    def _keep_selection(self) -> None:
        t = self.selected_type()
        self._kept = t.id if t is not None else None

    def _restore_selection(self) -> None:
        if self._kept is not None:
            self.select_type(self._kept)
        self._show_arguments()

    def _show_arguments(self) -> None:
        t = self.selected_type()
        if t is not None:  # the record in the table may predate an undo: read it fresh
            t = self.model.type(t.id)
        self.arguments.show_type(t)

    def show_message(self, level: str, text: str) -> None:
        self.status.setProperty("level", level)
        self.status.setText(text)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def selected_type(self) -> TypeRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table_model.type_at(rows[0].row()) if rows else None

    def select_type(self, type_id: int) -> None:
        row = self.table_model.row_of(type_id)
        if row >= 0:
            self.table.selectRow(row)

    def add_type(self) -> TypeRecord | None:
        dialog = AddTypeDialog(self.model, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.created:
            self.select_type(dialog.created.id)
            self.show_message("ok", f"Added {dialog.created.kind} type {dialog.created.name!r}.")
            return dialog.created
        return None

    def _double_clicked(self, index: QModelIndex) -> None:
        if index.column() == TypesTableModel.C_COLOUR:
            self.change_colour()

    def change_colour(self) -> None:
        t = self.selected_type()
        if t is None:
            return
        c = QColorDialog.getColor(QColor(t.colour), self, f"Colour of {t.name}")
        if c.isValid():
            self.model.set_type_colour(t.id, c.name())

    def delete_selected(self) -> None:
        t = self.selected_type()
        if t is None:
            self.show_message("error", "Select a type to delete.")
            return
        explanation = delete_explanation(self.model, t)
        if explanation.refused:
            dialogs.inform(self, "This type cannot be deleted", explanation.text)
            self.show_message("error", explanation.text)
            return
        if not dialogs.ask(self, f"Delete {t.name}?", explanation.text):
            return
        self.delete_type(t.id)

    def delete_type(self, type_id: int) -> bool:
        """Delete without asking (the button asks first). A refusal is shown with the store's reason."""
        try:
            self.model.delete_type(type_id)
        except TypeInUseError as exc:
            self.show_message("error", str(exc))
            return False
        except ConpetError as exc:
            self.show_message("error", str(exc))
            return False
        self.show_message("ok", "Type deleted; its annotations are kept in the history.")
        return True


class DeleteExplanation:
    def __init__(self, refused: bool, text: str) -> None:
        self.refused, self.text = refused, text


def delete_explanation(model: ProjectModel, t: TypeRecord) -> DeleteExplanation:
    n = model.gold_counts().get(t.id, 0)
    if t.task_index is not None:
        return DeleteExplanation(True, (
            f"{t.name!r} was learnt in task {t.task_index}. The modules trained for that task predict it, "
            "and deleting it would leave them predicting a type that no longer exists (and break the "
            "continual history every later task builds on). You can rename it or change its description "
            "instead; to drop it entirely, start a new project without it."))
    return DeleteExplanation(False, (
        f"Delete the {t.kind} type {t.name!r}? No trained task uses it. Its {n} gold annotation(s) will be "
        "marked deleted (they stay in the project's history) and no longer count for training."))
