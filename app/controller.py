"""Starts the project's long jobs on workers and tells the views about them.

One model job (training, prediction or evaluation on a file) runs at a time: they share the backbone
(each puts its PET modules on it) and training and prediction write the same run tables. Imports may run beside them (the store serialises the writes). When a job ends, the project
model re-reads what the job wrote and emits its change signals on the GUI thread."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app import jobs
from app.viewmodels.project_model import ProjectModel
from app.workers import Worker, WorkerHost

MODEL_JOBS = ("train", "predict", "evaluate")
# The reloads after a job are spaced this far apart: timers that are due together run in one turn of
# the event loop, which would add their costs up into one stall.
STEP_GAP_MS = 15


class JobController(QObject):
    jobStarted = Signal(str, object)  # (kind: "train" | "predict" | "evaluate" | "import", worker)
    jobEnded = Signal(str, str, object)  # (kind, outcome: "finished" | "failed" | "cancelled", result or message)
    busyChanged = Signal(bool)  # a model job is running

    def __init__(self, model: ProjectModel, host: WorkerHost,
                 backbone_provider: jobs.BackboneProvider | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.host = host
        self.backbone_provider = backbone_provider
        self.folder: str | Path = model.where  # what the workers open: the folder or the server's URL
        self.gui_thread = threading.get_ident()
        self.current: dict[str, Worker] = {}
        self._types_before_import: set[int] = set()
        self.cpu_threads: int | None = None  # the app's setting for predictions (None: automatic)
        # After a training, the whole project is predicted in the background (cancellable like any
        # prediction), so the new model's suggestions are there when the expert comes back to label.
        self.predict_after_training = True
        self.mention_threshold: float | None = None  # the app's setting (None: the model's own threshold)

    def model_job_running(self) -> bool:
        return any(k in self.current for k in MODEL_JOBS)

    def running(self, kind: str) -> Worker | None:
        return self.current.get(kind)

    def cancel(self, kind: str | None = None) -> None:
        for k, w in list(self.current.items()):
            if kind is None or k == kind:
                w.cancel()

    # --- jobs -----------------------------------------------------------------------------------
    def start_training(self, request: jobs.TrainRequest) -> Worker:
        self._refuse_if_busy()
        provider = self.backbone_provider
        return self._start("train", partial(jobs.train_next_task, request, backbone_provider=provider))

    def start_prediction(self, sentence_ids: list[int] | None = None) -> Worker:
        self._refuse_if_busy()
        provider = self.backbone_provider
        return self._start("predict", partial(_predict, self.folder, sentence_ids, provider, self.cpu_threads,
                                              mention_threshold=self.mention_threshold))

    def start_evaluation(self, path: Path, fmt: str | None = None) -> Worker:
        """Score the current model on a labelled file; the result is an ``EvalReport`` (nothing stored)."""
        self._refuse_if_busy()
        return self._start("evaluate", partial(jobs.evaluate_file, self.folder, Path(path), fmt,
                                               backbone_provider=self.backbone_provider, threads=self.cpu_threads,
                                               mention_threshold=self.mention_threshold))

    def start_import(self, path: Path, fmt: str | None = None, options: dict | None = None) -> Worker:
        if "import" in self.current:
            raise RuntimeError("an import is already running")
        self._types_before_import = {t.id for t in self.model.types()}
        return self._start("import", partial(jobs.import_data, self.folder, Path(path), fmt, options))

    def _refuse_if_busy(self) -> None:
        if self.model_job_running():
            kind = next(k for k in MODEL_JOBS if k in self.current)
            what = {"train": "training", "predict": "prediction", "evaluate": "evaluation"}[kind]
            raise RuntimeError(f"a {what} job is running; wait for it or cancel it first")

    def _start(self, kind: str, fn) -> Worker:
        worker = Worker(lambda sink: fn(sink=sink), name=kind)
        worker.ended.connect(self._ended)
        self.current[kind] = worker
        self.jobStarted.emit(kind, worker)
        if kind in MODEL_JOBS:
            self.busyChanged.emit(True)
        self.host.start(worker)
        if kind in ("train", "predict"):
            self.model.runsChanged.emit()  # the run record appears as soon as the worker writes it
        return worker

    @Slot(str, str, object)
    def _ended(self, kind: str, outcome: str, payload: object) -> None:
        self.current.pop(kind, None)
        m = self.model
        # The views re-read what the job wrote, one signal per turn of the event loop, so that no single
        # turn of the GUI thread does all the reloading; jobEnded comes last, when the views are current.
        if kind == "import":
            m.refresh_types()
            new = {t.id for t in m.types()} - self._types_before_import
            if new:
                m.tidy_new_types(new)
            steps = [m.typesChanged.emit, m.sentencesChanged.emit, lambda: m.annotationsChanged.emit(-1)]
        elif kind == "train":
            steps = [m.tasksChanged.emit, m.typesChanged.emit, m.runsChanged.emit]
        elif kind == "evaluate":
            steps = []  # it wrote nothing: nothing to re-read
        else:
            steps = [m.runsChanged.emit, m.predictionsChanged.emit]
        steps.append(partial(self._announce, kind, outcome, payload))
        for i, step in enumerate(steps):
            QTimer.singleShot(i * STEP_GAP_MS, self, step)

    def _announce(self, kind: str, outcome: str, payload: object) -> None:
        self.jobEnded.emit(kind, outcome, payload)
        if kind in MODEL_JOBS:
            self.busyChanged.emit(self.model_job_running())
        if kind == "train" and outcome == "finished" and self.predict_after_training:
            self._predict_after_training()

    def _predict_after_training(self) -> None:
        try:
            self.start_prediction(None)
        except RuntimeError:  # another model job started meanwhile: the user predicts when it is done
            return


def _predict(folder: Path, sentence_ids: list[int] | None, provider: jobs.BackboneProvider,
             threads: int | None = None, sink=None, *, mention_threshold: float | None = None):
    return jobs.predict_project(folder, sink, sentence_ids=sentence_ids, backbone_provider=provider,
                                threads=threads, mention_threshold=mention_threshold)
