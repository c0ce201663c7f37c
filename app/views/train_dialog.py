"""The "Train new knowledge" dialog: which types would form the new task, the method, backbone, device and
the training budget. It only collects choices (a :class:`TrainChoice`); the training view runs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from conpet.core.config import CONVERGE_MAX_EPOCHS, CONVERGE_PATIENCE
from conpet.core.runtime import cpu_cores
from conpet.project.crossval import DEFAULT_FOLDS
from conpet.project.refresh_preview import RefreshPreview
from conpet.project.training import DEFAULT_METHOD

METHODS = [("dynamic-lda", "Dynamic ConPET routed by statistics (one expert per task, LDA router; nothing old retrains)"),
           ("dynamic-typesel", "Dynamic ConPET, type-level selector (selector + one expert per task)"),
           ("dynamic", "Dynamic ConPET as in the paper (selector learns task ids)"),
           ("static", "Static ConPET (one module, dynamic replay)")]

# Below this many gold examples a type's 8:1:1 split leaves (almost) nothing to validate and test on.
FEW_EXAMPLES = 10

# Training budgets: the engine's profiles (conpet.core.config.profile_train), in words.
BUDGETS = {
    "smoke": "Quick try: at most 100 batches per stage, 2 epochs (a few minutes on a CPU)",
    "quick": "Standard: at most 400 batches per stage, 2 epochs",
    "paper": "Thorough: the paper's settings (hours on a CPU; for a GPU)",
    "converge": (f"Until it converges: epochs until validation accuracy stops rising ({CONVERGE_PATIENCE} epochs "
                 f"without a rise, at most {CONVERGE_MAX_EPOCHS}); the best epoch is kept"),
}


@dataclass(frozen=True)
class TypeCandidate:
    type_id: int
    kind: str
    name: str
    colour: str
    gold_count: int
    in_open_task: bool = False  # the task of an unfinished training: it stays in the next one


@dataclass(frozen=True)
class TrainChoice:
    type_ids: tuple[int, ...]  # the new task's types
    type_names: tuple[str, ...]
    method: str
    backbone: str
    device: str
    budget: str
    min_examples: int
    overrides: dict = field(default_factory=dict)
    threads: int = 0  # torch CPU threads; 0: automatic
    all_data: bool = False  # train on every labelled example; a cross-validated accuracy instead of a test split
    folds: int = DEFAULT_FOLDS
    refresh_only: bool = False  # no new task: the step learns the learnt types' changed labels alone


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch / no driver: CPU
        return False


def backbone_names() -> list[str]:
    try:
        from conpet.model.backbones import BACKBONES

        return list(BACKBONES)
    except ImportError:
        return ["minilm", "smollm2-135m"]


def _swatch(colour: str) -> QIcon:
    pm = QPixmap(14, 14)
    pm.fill(QColor(colour))
    return QIcon(pm)


class TrainDialog(QDialog):
    """Shows every untrained type with its gold count: the ready ones (enough gold examples, or already in
    the open task of an unfinished training) form the new task. The minimum is a setting."""

    def __init__(self, candidates: list[TypeCandidate], min_examples: int, trained_tasks: int,
                 parent: QWidget | None = None, default_backbone: str = "minilm", threads: int = 0,
                 refresh: RefreshPreview | None = None) -> None:
        super().__init__(parent)
        self._refresh = refresh or RefreshPreview()
        self.setWindowTitle("Train new knowledge")
        self.setMinimumWidth(560)
        self._candidates = candidates
        layout = QVBoxLayout(self)
        heading = QLabel(f"New task {trained_tasks + 1}: the types below become one step of continual learning.")
        heading.setObjectName("heading")
        heading.setWordWrap(True)
        layout.addWidget(heading)
        hint = QLabel("A type is ready when it has enough gold examples; uncheck one to keep it for a later "
                      "task. Earlier tasks are kept: ConPET "
                      "replays them and adds new parameters instead of overwriting the old ones.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)

        self.types_list = QListWidget()
        self.types_list.setObjectName("trainTypes")
        self.types_list.itemChanged.connect(lambda _item: self._update_summary())
        layout.addWidget(self.types_list, 1)

        form = QFormLayout()
        self.min_spin = QSpinBox()
        self.min_spin.setRange(1, 10_000)
        self.min_spin.setValue(min_examples)
        self.min_spin.setSuffix(" gold examples per type")
        self.min_spin.valueChanged.connect(self._fill_types)
        form.addRow("Minimum:", self.min_spin)

        self.method_box = QComboBox()
        for key, label in METHODS:
            self.method_box.addItem(label, key)
        self.method_box.setCurrentIndex(max(self.method_box.findData(DEFAULT_METHOD), 0))
        form.addRow("Method:", self.method_box)

        row = QHBoxLayout()
        self.backbone_box = QComboBox()
        self.backbone_box.setEditable(False)
        for name in backbone_names():
            self.backbone_box.addItem(name, name)
        i = self.backbone_box.findData(default_backbone)
        if i >= 0:
            self.backbone_box.setCurrentIndex(i)
        browse = QPushButton("Local folder…")
        browse.clicked.connect(self._browse_backbone)
        row.addWidget(self.backbone_box, 1)
        row.addWidget(browse)
        form.addRow("Backbone:", row)

        self.device_box = QComboBox()
        if cuda_available():
            self.device_box.addItem("GPU (CUDA)", "cuda")
        self.device_box.addItem("CPU", "cpu")
        form.addRow("Device:", self.device_box)

        self.budget_box = QComboBox()
        for key, label in BUDGETS.items():
            self.budget_box.addItem(label, key)
        self.budget_box.setCurrentIndex(self.budget_box.findData("smoke"))
        form.addRow("Budget:", self.budget_box)

        self.threads_spin = QSpinBox()
        self.threads_spin.setObjectName("cpuThreads")
        self.threads_spin.setRange(0, cpu_cores())
        self.threads_spin.setSpecialValueText("Automatic (the cores other programs leave free)")
        self.threads_spin.setSuffix(" thread(s)")
        self.threads_spin.setValue(min(max(0, threads), cpu_cores()))
        self.threads_spin.setToolTip("CPU threads for training and prediction. Automatic uses the free cores "
                                     "(at most 4): more threads than free cores make training several times "
                                     "slower while other programs run.")
        form.addRow("CPU threads:", self.threads_spin)

        self.all_data_box = QCheckBox("Train on all labelled data (no held-out test examples)")
        self.all_data_box.setObjectName("allData")
        self.folds_spin = QSpinBox()
        self.folds_spin.setObjectName("cvFolds")
        self.folds_spin.setRange(2, 20)
        self.folds_spin.setValue(DEFAULT_FOLDS)
        self.folds_spin.setSuffix(" folds")
        self.folds_spin.setEnabled(False)
        self.all_data_box.toggled.connect(self.folds_spin.setEnabled)
        self.all_data_box.toggled.connect(lambda _on: self._update_summary())
        self.folds_spin.valueChanged.connect(lambda _k: self._update_summary())
        data_row = QHBoxLayout()
        data_row.addWidget(self.all_data_box, 1)
        data_row.addWidget(self.folds_spin)
        form.addRow("Data:", data_row)
        layout.addLayout(form)

        # what the step does with labels of learnt types added, removed or corrected since their task trained
        self.refresh_label = QLabel(self._refresh.text)
        self.refresh_label.setObjectName("refreshPlan")
        self.refresh_label.setWordWrap(True)
        self.refresh_label.setVisible(bool(self._refresh.changed))
        layout.addWidget(self.refresh_label)

        self.summary = QLabel()
        self.summary.setObjectName("statusLine")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.train_button = buttons.addButton("Train", QDialogButtonBox.ButtonRole.AcceptRole)
        self.train_button.setProperty("primary", True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._fill_types()

    def _fill_types(self) -> None:
        """Ready types are checked (uncheck one to leave it for a later task); the types of an open task
        (a training that did not finish) are fixed; types short of examples are shown greyed."""
        self.types_list.blockSignals(True)
        self.types_list.clear()
        minimum = self.min_spin.value()
        has_open = any(c.in_open_task for c in self._candidates)
        for c in sorted(self._candidates, key=lambda c: (not self._ready(c), c.kind, c.name.lower())):
            ready = self._ready(c)
            if c.in_open_task:
                note = " — in the unfinished task, trained now"
            elif has_open and ready:
                note = " — ready; joins the task after this one"
            elif ready:
                note = ""
            else:
                note = f" — needs {minimum - c.gold_count} more to join"
            item = QListWidgetItem(_swatch(c.colour), f"{c.name}  ({c.kind}, {c.gold_count} gold){note}")
            item.setData(Qt.ItemDataRole.UserRole, c.type_id)
            if c.in_open_task:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                item.setCheckState(Qt.CheckState.Checked)
            elif ready and not has_open:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
            else:
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setCheckState(Qt.CheckState.Unchecked)
            self.types_list.addItem(item)
        self.types_list.blockSignals(False)
        self._update_summary()

    def _ready(self, c: TypeCandidate) -> bool:
        return c.in_open_task or c.gold_count >= self.min_spin.value()

    def set_checked(self, type_id: int, checked: bool) -> None:
        for i in range(self.types_list.count()):
            item = self.types_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == type_id and item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def _update_summary(self) -> None:
        ids = self.selected_type_ids()
        if not ids and self._refresh.changed and self._refresh.refreshes:
            text, ok = "No new task: this training refreshes the learnt tasks with their changed labels.", True
        elif not self._candidates:
            text, ok = "Every type is already part of a trained task. Add a new type and label it first.", False
        elif not ids:
            text, ok = "No type is ready: label more examples, or lower the minimum.", False
        else:
            names = [c.name for c in self._candidates if c.type_id in ids]
            text, ok = f"{len(ids)} type(s) will form the new task: {', '.join(names)}.", True
            few = [c for c in self._candidates if c.type_id in ids and c.gold_count < FEW_EXAMPLES]
            if few:
                listed = ", ".join(f"{c.name} ({c.gold_count})" for c in few)
                text += (f" Warning: very few gold examples for {listed}. A type's examples are split 8:1:1 "
                         f"into training, validation and test, so with fewer than {FEW_EXAMPLES} the model "
                         "learns little and its accuracy is measured on one or two examples, if any. Label "
                         "more, or train anyway.")
        if ok and self.all_data_box.isChecked():
            k = self.folds_spin.value()
            text += (f" All data: the new task learns from every labelled example and its accuracy is a {k}-fold "
                     f"cross-validated estimate, which costs {k} extra trainings of the new task (about {k} times "
                     "as long).")
        self.summary.setText(text)
        self.summary.setProperty("level", "error" if ok and "Warning" in text else ("info" if ok else "error"))
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)
        self.train_button.setEnabled(ok)

    def _browse_backbone(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a local model folder (Hugging Face layout)")
        if folder:
            self.backbone_box.addItem(Path(folder).name + " (local)", folder)
            self.backbone_box.setCurrentIndex(self.backbone_box.count() - 1)

    def selected_type_ids(self) -> tuple[int, ...]:
        out = []
        for i in range(self.types_list.count()):
            item = self.types_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(int(item.data(Qt.ItemDataRole.UserRole)))
        return tuple(out)

    def selected_type_names(self) -> tuple[str, ...]:
        ids = set(self.selected_type_ids())
        return tuple(c.name for c in self._candidates if c.type_id in ids)

    def choice(self) -> TrainChoice:
        return TrainChoice(
            type_ids=self.selected_type_ids(),
            type_names=self.selected_type_names(),
            method=self.method_box.currentData(),
            backbone=self.backbone_box.currentData(),
            device=self.device_box.currentData(),
            budget=self.budget_box.currentData(),
            min_examples=self.min_spin.value(),
            threads=self.threads_spin.value(),
            all_data=self.all_data_box.isChecked(),
            folds=self.folds_spin.value(),
            refresh_only=not self.selected_type_ids(),
        )
