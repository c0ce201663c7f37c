"""Training: the project's tasks so far, "Train new knowledge", and the live view of a running job: stage,
progress, ETA, the loss and accuracy as they come, and Cancel. The job itself runs on a worker thread;
this view only listens to its signals."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import dialogs, jobs
from app.controller import JobController
from app.settings import AppSettings
from app.viewmodels.project_model import ProjectModel
from app.views.train_dialog import TrainChoice, TrainDialog, TypeCandidate
from app.widgets.charts import LineChart
from app.workers import Worker
from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressEvent
from conpet.project.consolidation import ConsolidationPlan, preview_consolidation
from conpet.project.crossval import cv_text
from conpet.project.refresh_preview import RefreshPreview, preview_refresh
from conpet.project.training import TrainOutcome

STAGE_NAMES = {"loading": "Loading the backbone", "setup": "Loading the backbone", "selector": "Training the selector",
               "expert": "Training the new expert", "train": "Training", "evaluation": "Evaluating",
               "done": "Done", "import": "Importing", "feature-map": "Training the feature map",
               "router": "Router statistics"}


def validation_text(stage: str, epoch: object, score: float) -> str:
    """The log line for an epoch's validation: what was measured, in per cent. The selector's score is
    its routing accuracy plus a tie-breaker (its type accuracy / 1000, see conpet.methods.dynamic), so it
    can read 1.001; the routing accuracy itself is at most 100 %."""
    what = "routing accuracy (examples sent to their task's expert)" if stage == "selector" else "accuracy"
    name = STAGE_NAMES.get(stage, stage or "training")
    return f"{name}, epoch {epoch}: validation {what} {100 * min(float(score), 1.0):.1f} %"


def has_accuracy(m: dict) -> bool:
    return m.get("whole_acc") is not None or bool(m.get("cv"))


FEW_TEST_EXAMPLES = 20  # below this many, an accuracy says little (2 of 2 right reads as 100 %)


def few_note(n: int | None) -> str:
    """A warning after an accuracy measured on too few test examples ("" when there are enough)."""
    if not n or n >= FEW_TEST_EXAMPLES:
        return ""
    return f" (only {n} test example{'s' if n != 1 else ''}: too few to trust; label more of its types)"


def accuracy_text(m: dict) -> str:
    """'whole accuracy 81.2 % on 48 test examples (average 80.9 %), selector 97.9 %', and for a task trained
    on all its data 'new task 84.2% (cross-validated, 5 folds, 755 examples)'."""
    if m.get("whole_acc") is None:
        return f"new task {cv_text(m.get('cv'))}"
    n = sum(m.get("test_examples") or [])
    on = f" on {n} test example{'s' if n != 1 else ''}" if n else ""
    text = f"whole accuracy {100 * m['whole_acc']:.1f} %{on}{few_note(n)}"
    if m.get("avg_acc") is not None:
        text += f" (average over tasks {100 * m['avg_acc']:.1f} %)"
    if m.get("selector_acc") is not None:
        text += f", selector routing {100 * m['selector_acc']:.1f} %"
    if m.get("cv"):
        text += f"; new task {cv_text(m['cv'])}"
    return text


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    return f"{seconds // 60} min {seconds % 60:02d} s left"


class TrainingView(QWidget):
    readinessChanged = Signal(bool, str)  # (Train can start now, why / why not)

    def __init__(self, model: ProjectModel, controller: JobController, settings: AppSettings,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.controller = controller
        self.settings = settings
        self.worker: Worker | None = None
        self._t0 = 0.0
        self._loss: dict[str, list[tuple[float, float]]] = {}  # one line per stage (selector, expert)
        self._acc: list[tuple[float, float]] = []
        self._valid: list[tuple[float, float]] = []
        self._stage = ""
        self._consolidating = False  # the running job is a consolidation
        self.last_outcome: tuple[str, object] | None = None

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        heading = QLabel("Training")
        heading.setObjectName("heading")
        top.addWidget(heading)
        top.addStretch(1)
        self.train_button = QPushButton("Train new knowledge…")
        self.train_button.setProperty("primary", True)
        self.train_button.clicked.connect(self.open_train_dialog)
        top.addWidget(self.train_button)
        self.consolidate_button = QPushButton("Consolidate the model…")
        self.consolidate_button.setToolTip(
            "Re-train the feature map that routes inputs to the experts on every stored example, and recompute "
            "every type's statistics through it (dynamic-lda). Says what it costs before it runs.")
        self.consolidate_button.clicked.connect(self.ask_consolidate)
        top.addWidget(self.consolidate_button)
        layout.addLayout(top)
        hint = QLabel("Each training adds one task: the types you label now. ConPET keeps what earlier tasks "
                      "taught (a new expert per task, chosen by the selector) instead of retraining all.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.tasks_table = QTableWidget(0, 4)
        self.tasks_table.setObjectName("tasksTable")
        self.tasks_table.setHorizontalHeaderLabels(["Task", "Types", "State", "Accuracy when learnt"])
        self.tasks_table.verticalHeader().hide()
        self.tasks_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tasks_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tasks_table.horizontalHeader().setStretchLastSection(True)
        splitter.addWidget(self.tasks_table)

        box = QGroupBox("Current job")
        bl = QVBoxLayout(box)
        self.stage_label = QLabel("No job running.")
        self.stage_label.setObjectName("heading")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        row = QHBoxLayout()
        self.eta_label = QLabel("")
        self.metrics_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setProperty("danger", True)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.eta_label)
        row.addStretch(1)
        row.addWidget(self.metrics_label)
        row.addWidget(self.cancel_button)
        self.message_label = QLabel("")
        self.message_label.setObjectName("hint")
        bl.addWidget(self.stage_label)
        bl.addWidget(self.progress)
        bl.addLayout(row)
        bl.addWidget(self.message_label)
        charts = QHBoxLayout()
        self.loss_chart = LineChart("Training loss (live)", x_label="progress %", x_range=(0, 100))
        self.acc_chart = LineChart("Training / validation accuracy (live)", y_range=(0, 100), x_label="progress %",
                                   x_range=(0, 100))
        charts.addWidget(self.loss_chart)
        charts.addWidget(self.acc_chart)
        bl.addLayout(charts, 1)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setFixedHeight(90)
        bl.addWidget(self.log)
        splitter.addWidget(box)
        splitter.setSizes([160, 480])
        layout.addWidget(splitter, 1)

        model.tasksChanged.connect(self.reload_tasks)
        model.runsChanged.connect(self.reload_tasks)
        controller.jobStarted.connect(self._job_started)
        controller.jobEnded.connect(self._job_ended)
        controller.busyChanged.connect(self._busy_changed)
        for sig in (model.annotationsChanged, model.typesChanged, model.tasksChanged):
            sig.connect(self._update_train_button)
        self.reload_tasks()
        self._update_train_button()

    # --- tasks ----------------------------------------------------------------------------------
    def reload_tasks(self) -> None:
        tasks = self.model.tasks()
        acc: dict[int, str] = {}
        for m in self.model.step_metrics():
            own = m["task_acc"][-1] if m.get("task_acc") else None
            if m.get("cv"):
                acc[int(m["task_index"])] = accuracy_text(m)
            elif own is not None and m.get("whole_acc") is not None:
                n_own = (m.get("test_examples") or [None])[-1]
                on = f" of {n_own} test examples{few_note(n_own)}" if n_own else " on its test set"
                acc[int(m["task_index"])] = f"{100 * own:.1f} %{on}; {accuracy_text(m)}"
        self.tasks_table.setRowCount(len(tasks))
        for i, t in enumerate(tasks):
            if t.frozen:
                state = "learnt"
            elif self.worker is not None and self.worker.name == "train":
                state = "training now…"
            else:
                state = "open: its training did not finish; Train trains it again from the start"
            for j, text in enumerate([f"Task {t.index}", ", ".join(t.type_names), state, acc.get(t.index, "—")]):
                self.tasks_table.setItem(i, j, QTableWidgetItem(text))

    # --- starting -------------------------------------------------------------------------------
    def candidates(self) -> list[TypeCandidate]:
        counts = self.model.gold_counts()
        tasks = self.model.tasks()
        open_ids = set(tasks[-1].type_ids) if tasks and not tasks[-1].frozen else set()
        out = []
        for t in self.model.types():
            if t.task_id is None or t.id in open_ids:
                out.append(TypeCandidate(t.id, t.kind, t.name, t.colour, counts.get(t.id, 0), t.id in open_ids))
        return out

    def train_readiness(self) -> tuple[bool, str]:
        """(whether Train has anything to do now, why not / what it would do). The dialog can lower the
        minimum number of examples, so any untrained type with a gold example is enough to open it."""
        if self.controller.model_job_running():
            return False, "A job is running: wait for it to end, or cancel it."
        cands = self.candidates()
        if any(c.in_open_task for c in cands):
            return True, "Train the unfinished task again, from the start."
        labelled = [c for c in cands if c.gold_count > 0]
        if not labelled:  # no new task to learn: the learnt types' changed labels may still be
            refresh = self.refresh_preview()
            if refresh.changed and refresh.refreshes:
                return True, f"Refresh: {refresh.text}"
        if not cands:
            return False, "Every type is already learnt: add a type in the Types tab and label it first."
        if not labelled:
            return False, "No untrained type has a gold example yet: label some first."
        minimum = self.settings.min_examples()
        ready = [c.name for c in labelled if c.gold_count >= minimum]
        if ready:
            return True, f"Train a new task with {', '.join(ready)}."
        return True, (f"No type has {minimum} gold examples yet; the dialog lets you lower the minimum "
                      "(or label more first).")

    def _update_train_button(self, *_args) -> None:
        ok, why = self.train_readiness()
        self.train_button.setEnabled(ok)
        self.train_button.setToolTip(why)
        self.readinessChanged.emit(ok, why)

    def model_lock(self) -> tuple[str | None, str | None]:
        """(method, backbone) of the project's current model: a new task continues it."""
        for run in self.model.runs(purpose="train"):
            if run.status == "finished":
                return run.method, run.backbone
        return None, None

    def refresh_preview(self) -> RefreshPreview:
        """What the next training does with labels of learnt types changed since their task trained."""
        try:
            return preview_refresh(self.model.folder)
        except ConpetError as exc:  # an unreadable model: the training itself will say so
            return RefreshPreview(text=str(exc))

    def open_train_dialog(self) -> None:
        if self.controller.model_job_running():
            dialogs.inform(self, "A job is running", "Wait for the running job to end, or cancel it.")
            return
        method, backbone = self.model_lock()
        dialog = TrainDialog(self.candidates(), self.settings.min_examples(), len([t for t in self.model.tasks()
                                                                                  if t.frozen]),
                             self, default_backbone=backbone or str(self.settings.value("training/backbone", "minilm")),
                             threads=self.settings.cpu_threads(), refresh=self.refresh_preview())
        if method is not None:
            i = dialog.method_box.findData(method)
            if i >= 0:
                dialog.method_box.setCurrentIndex(i)
            dialog.method_box.setEnabled(False)
            dialog.backbone_box.setEnabled(False)
            dialog.method_box.setToolTip("Fixed by the tasks already learnt: a new task continues that model.")
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.settings.set_min_examples(dialog.min_spin.value())
        self.settings.set_value("training/backbone", dialog.choice().backbone)
        self.settings.set_cpu_threads(dialog.choice().threads)
        self.controller.cpu_threads = dialog.choice().threads or None
        self.start(dialog.choice())

    def ask_consolidate(self, overrides: dict | None = None) -> Worker | None:
        """Say what consolidating the model costs (``conpet.project.consolidation``), and on Yes run it in the
        background; the current model stays until the consolidated one is saved."""
        if self.controller.model_job_running():
            dialogs.inform(self, "A job is running", "Wait for the running job to end, or cancel it.")
            return None
        try:
            plan = preview_consolidation(self.model.folder)
        except ConpetError as exc:
            plan = ConsolidationPlan(reason=str(exc))
        if not plan.possible:
            dialogs.inform(self, "Nothing to consolidate", _sentence(plan.reason))
            return None
        lines = [line.removeprefix("consolidate: ") for line in plan.lines]
        text = ("Consolidating re-learns the feature map that routes every input to its task's expert, from all "
                f"{plan.examples} stored training examples of the {plan.types} learnt types.\n\n"
                + "\n".join(f"• {_sentence(line)}" for line in lines)
                + "\n\nThe current model stays in use until the consolidated one is saved; cancelling leaves it "
                  "as it is. Consolidate now?")
        if not dialogs.ask(self, "Consolidate the model", text):
            return None
        method, backbone = self.model_lock()
        request = jobs.TrainRequest(self.model.folder, method=method or jobs.DEFAULT_METHOD,
                                    backbone=backbone or str(self.settings.value("training/backbone", "minilm")),
                                    overrides=dict(overrides or {}), threads=self.settings.cpu_threads() or None,
                                    consolidate=True)
        self._consolidating = True
        try:
            return self.controller.start_training(request)
        except BaseException:
            self._consolidating = False
            raise

    def start(self, choice: TrainChoice, overrides: dict | None = None) -> Worker:
        tasks = self.model.tasks()
        open_task = bool(tasks) and not tasks[-1].frozen
        request = jobs.TrainRequest(self.model.where, method=choice.method, backbone=choice.backbone,
                                    device=choice.device, budget=choice.budget, min_examples=choice.min_examples,
                                    types=None if open_task else tuple(choice.type_names),
                                    overrides=dict(overrides or choice.overrides), threads=choice.threads or None,
                                    all_data=choice.all_data, folds=choice.folds,
                                    refresh_only=choice.refresh_only)
        return self.controller.start_training(request)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.cancel_button.setEnabled(False)  # asked once: pressing it again would do nothing
            self.stage_label.setText("Cancelling… (stops after the current batch)")

    # --- a running job --------------------------------------------------------------------------
    @Slot(str, object)
    def _job_started(self, kind: str, worker: Worker) -> None:
        if kind not in ("train", "predict"):
            return
        self.worker = worker
        self._t0 = time.monotonic()
        if kind == "train":  # a prediction (one follows every training) leaves the training's curves in view
            self._loss, self._acc, self._valid = {}, [], []
            self.loss_chart.set_series([])
            self.acc_chart.set_series([])
            self.metrics_label.setText("")
            self.message_label.setText("")
        self.progress.setValue(0)
        self.stage_label.setText(("Consolidating: starting…" if self._consolidating else "Training: starting…")
                                 if kind == "train" else "Predicting: starting…")
        self.eta_label.setText("estimating…")
        self.cancel_button.setEnabled(True)
        what = ("consolidation" if self._consolidating else "training") if kind == "train" else "prediction"
        self.log.appendPlainText(f"— {what} started")
        worker.event.connect(self.on_event)

    @Slot(object)
    def on_event(self, event: ProgressEvent) -> None:
        if event.stage != self._stage:
            self._stage = event.stage
            self.reload_tasks()  # the job may have just created the new task
        self.progress.setValue(int(round(event.fraction * 1000)))
        stage = STAGE_NAMES.get(event.stage, event.stage.capitalize() if event.stage else "Working")
        self.stage_label.setText(stage)
        self.eta_label.setText(format_eta(event.eta_seconds))
        self.message_label.setText(event.message)
        m = event.metrics or {}
        x = 100 * event.fraction
        if "loss" in m and m["loss"] == m["loss"]:
            # The selector's and the expert's losses are different quantities: never one joined line.
            self._loss.setdefault(event.stage or "training", []).append((x, float(m["loss"])))
            self.loss_chart.set_series([(f"{STAGE_NAMES.get(stage, stage).lower()}: loss", pts)
                                        for stage, pts in self._loss.items()])
        if "acc" in m:
            self._acc.append((x, 100 * float(m["acc"])))
        if "valid_acc" in m:
            self._valid.append((x, 100 * min(float(m["valid_acc"]), 1.0)))
            self.log.appendPlainText(validation_text(event.stage, m.get("epoch", "?"), m["valid_acc"]))
        if "acc" in m or "valid_acc" in m:
            self.acc_chart.set_series([("training batches", self._acc), ("validation", self._valid)])
        parts = []
        if "loss" in m:
            parts.append(f"loss {m['loss']:.3f}")
        if "acc" in m:
            parts.append(f"batch accuracy {100 * m['acc']:.0f} %")
        if has_accuracy(m):
            parts.append(accuracy_text(m))
            self.log.appendPlainText(accuracy_text(m))
        if parts:
            self.metrics_label.setText("   ".join(parts))

    @Slot(str, str, object)
    def _job_ended(self, kind: str, outcome: str, payload: object) -> None:
        if kind not in ("train", "predict"):
            return
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.last_outcome = (outcome, payload)
        consolidating, self._consolidating = self._consolidating and kind == "train", False
        took = time.monotonic() - self._t0
        if outcome == "finished":
            self.progress.setValue(1000)
            self.eta_label.setText(f"took {took:.0f} s")
            if isinstance(payload, TrainOutcome):
                m = payload.metrics
                r = payload.refresh
                done = f"Task {payload.task_index} learnt ({', '.join(payload.types)}). " if payload.types else ""
                if r:
                    done += (f"Learnt tasks refreshed: {r.get('added', 0)} label(s) added, {r.get('removed', 0)} "
                             "removed or corrected; experts retrained: "
                             f"{', '.join(map(str, r.get('experts', []))) or 'none'}. ")
                c = payload.consolidation
                if c:
                    done += (f"Model consolidated: a new feature map trained on {c.get('examples')} stored "
                             f"examples of {c.get('types')} types; every type's statistics recomputed. ")
                text = done + (_sentence(accuracy_text(m)) if has_accuracy(m) else "")
            elif isinstance(payload, jobs.PredictOutcome):
                text = (f"{payload.predictions} predictions stored in {payload.seconds:.1f} s "
                        f"({payload.backbone_passes} backbone passes; cached logits need none).")
            else:
                text = "Done."
            self.stage_label.setText("Finished")
            self.message_label.setText(text)
        elif outcome == "cancelled":
            self.stage_label.setText("Cancelled")
            self.eta_label.setText("")
            self.message_label.setText("Stopped. The model before the consolidation stays as it was; every "
                                       "annotation is saved." if consolidating else
                                       "Stopped. The model of the last finished task is unchanged; every "
                                       "annotation is saved.")
            text = "cancelled"
        else:
            self.stage_label.setText("Failed")
            first = str(payload).strip().splitlines()[0] if payload else "unknown error"
            self.message_label.setText(f"{first}  (your annotations and earlier models are saved)")
            text = str(payload)
            title = ("Consolidation failed" if consolidating else "Training failed") if kind == "train" else \
                "Prediction failed"
            dialogs.warn(self, title,
                         f"{text}\n\nEverything saved before stays saved.")
        self.log.appendPlainText(f"— {outcome}: {text.splitlines()[0] if text else ''}")
        self.reload_tasks()

    def _busy_changed(self, _busy: bool) -> None:
        self._update_train_button()
        self.consolidate_button.setEnabled(not self.controller.model_job_running())
