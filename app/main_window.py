"""The main window: menus and toolbar, project create / open / recent, and one tab per view. The views
are built for the open project (each gets the project model and, where it starts jobs, the job
controller); opening another project replaces them."""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import dialogs, jobs, open_marker
from app.controller import JobController
from app.preload import preload_engine
from app.settings import RESOURCES, AppSettings, demo_folder
from app.viewmodels.project_model import ProjectModel
from app.views.annotate_view import AnnotateView
from app.views.predictions_view import PredictionsView
from app.views.progress_dialog import ProgressDialog
from app.views.routing_view import RoutingView
from app.views.runs_view import RunsView
from app.views.training_view import TrainingView
from app.views.types_view import TypesView
from app.workers import Worker, WorkerHost
from conpet.core.errors import ConpetError
from conpet.project.backbones import KeptBackbone
from conpet.store.identity import check_user, choose_user, default_user
from conpet.store.location import is_server_url


def icon(name: str) -> QIcon:
    return QIcon(str(RESOURCES / "icons" / f"{name}.svg"))


def bundle_export_available() -> bool:
    """The bundle feature is there when conpet.project.bundles offers export_bundle (absent, not faked, before)."""
    if importlib.util.find_spec("conpet.project.bundles") is None:
        return False
    try:
        from conpet.project import bundles
    except Exception:  # noqa: BLE001 - a broken optional module hides the entry
        return False
    return hasattr(bundles, "export_bundle")


class ExportNotice(QObject):
    """Receives an export worker's result on the GUI thread and has the window say where it went."""

    def __init__(self, window: MainWindow, title: str, what: str, path: Path) -> None:
        super().__init__(window)
        self.window, self.title, self.what, self.path = window, title, what, path

    @Slot(object)
    def done(self, result: object) -> None:
        path = Path(str(result)) if isinstance(result, (str, Path)) else self.path
        self.window._exported(self.title, self.what.format(result=result), path)
        self.deleteLater()


class MainWindow(QMainWindow):
    POLL_MS = 3000  # how often the open project is checked for others' changes
    TABS = ("Types", "Label", "Training", "Predictions", "Routing review", "Runs & curves")

    def __init__(self, settings: AppSettings, backbone_provider: jobs.BackboneProvider | None = None,
                 preload: bool = True) -> None:
        super().__init__()
        self.settings = settings
        if settings.user_name():  # the author of what this app writes, its workers' projects included
            choose_user(settings.user_name())
        # One loaded backbone for every job of the session (loading one takes seconds to minutes).
        self.backbone_provider = backbone_provider or KeptBackbone()
        self.host = WorkerHost(self)
        # Quitting during a backbone load waits for it; say so where the user looks.
        self.host.waiting.connect(lambda text: self.statusBar().showMessage(text))
        self.model: ProjectModel | None = None
        self._opening: tuple[Path, ProgressDialog] | None = None  # a project opening in the background
        self.controller: JobController | None = None
        self.views: dict[str, QWidget] = {}
        self.setWindowTitle("ConPET Studio")
        self.setWindowIcon(icon("app"))
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(False)
        self.setCentralWidget(self._welcome())
        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._make_status_bar()
        self._project_actions_enabled(False)
        self.preload_worker: Worker | None = None
        # teammates' changes (other app instances, other machines) show within a few seconds
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(self.POLL_MS)
        self.poll_timer.timeout.connect(self.poll_teammates)
        self.evaluation_dialog: QDialog | None = None  # the last "Evaluate on a file…" report
        if preload:
            self.preload_worker = self.host.start(Worker(lambda sink: preload_engine(sink), name="preload"))

    # --- building -------------------------------------------------------------------------------
    def _welcome(self) -> QWidget:
        w = QWidget()
        layout = QVBoxLayout(w)
        label = QLabel("<h2>ConPET Studio</h2><p>Teach a language model new entity and relation types, one "
                       "batch at a time, without forgetting the old ones.</p><p>Create a project or open one "
                       "from the File menu.</p>")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(label)
        return w

    def _action(self, text: str, slot, shortcut: str | QKeySequence | None = None, icon_name: str | None = None,
                tip: str | None = None) -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.triggered.connect(slot)
        return a

    def _make_actions(self) -> None:
        self.new_action = self._action("&New project…", self.new_project_dialog, QKeySequence.StandardKey.New,
                                       "new", "Create an empty project in a new folder")
        self.open_action = self._action("&Open project…", self.open_project_dialog, QKeySequence.StandardKey.Open,
                                        "open", "Open a project folder")
        self.connect_action = self._action("&Connect to a server…", self.connect_server_dialog, None, None,
                                           "Open a project that a team shares on a PostgreSQL server")
        self.user_action = self._action("Your &name…", self.user_name_dialog, None, None,
                                        "The name recorded on your annotations, decisions, type edits and "
                                        "trainings")
        self.demo_action = self._action("Open the &demo project", self.open_demo, None, None,
                                        "Open (or re-create) the demo project")
        self.import_action = self._action("&Import data…", self.import_dialog, "Ctrl+I", "import",
                                          "Import sentences and annotations (JSONL, FewRel JSON, Few-NERD)")
        self.export_jsonl_action = self._action("Export annotations as &JSONL…", self.export_jsonl, None, None,
                                                "Write every sentence with its gold annotations to a JSONL file")
        self.export_bundle_action = self._action("Export &bundle…", self.export_bundle, "Ctrl+E", "export",
                                                 "Export the trained model as an adapter bundle")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = self._action("&Undo", self._undo, QKeySequence.StandardKey.Undo, "undo", "Undo the last edit")
        self.redo_action = self._action("&Redo", self._redo, QKeySequence.StandardKey.Redo, "redo", "Redo")
        self.train_action = self._action("&Train new knowledge…", self.train, "Ctrl+T", "train",
                                         "Learn the newly labelled types as a new task")
        self.predict_action = self._action("&Predict whole project", self.predict_all, "Ctrl+P", "predict",
                                           "Predict every marked mention and pair in the background")
        self.evaluate_action = self._action("&Evaluate on a file…", self.evaluate_dialog, None, None,
                                            "Score the current model on a labelled file of your own (any import "
                                            "format): accuracy, macro-F1, per type, routing; the file is not "
                                            "added to the project")
        self.cancel_action = self._action("&Cancel job", self.cancel_jobs, "Ctrl+.", "cancel",
                                          "Stop the running job after its current batch")
        self.cancel_action.setEnabled(False)
        self.tab_actions = []
        icons = ["types", "label", "train", "predict", "routing", "runs"]
        for i, (name, ic) in enumerate(zip(self.TABS, icons, strict=True)):
            self.tab_actions.append(self._action(name.replace("&", "&&"), partial(self.show_tab, name),
                                                 f"Ctrl+{i + 1}", ic))

    def _make_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        m.addAction(self.new_action)
        m.addAction(self.open_action)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addAction(self.connect_action)
        m.addAction(self.demo_action)
        m.addSeparator()
        m.addAction(self.import_action)
        m.addAction(self.export_jsonl_action)
        if bundle_export_available():
            m.addAction(self.export_bundle_action)
        m.addSeparator()
        m.addAction(self.user_action)
        m.addSeparator()
        m.addAction(self.quit_action)
        e = self.menuBar().addMenu("&Edit")
        e.addAction(self.undo_action)
        e.addAction(self.redo_action)
        t = self.menuBar().addMenu("&Model")
        t.addAction(self.train_action)
        t.addAction(self.predict_action)
        t.addAction(self.evaluate_action)
        t.addAction(self.cancel_action)
        v = self.menuBar().addMenu("&View")
        for a in self.tab_actions:
            v.addAction(a)
        h = self.menuBar().addMenu("&Help")
        h.addAction(self._action("&About ConPET Studio", self.about))

    def _make_toolbar(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        for a in (self.new_action, self.open_action, self.import_action):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.undo_action)
        tb.addAction(self.redo_action)
        tb.addSeparator()
        tb.addAction(self.train_action)
        tb.addAction(self.predict_action)
        tb.addAction(self.cancel_action)
        if bundle_export_available():
            tb.addSeparator()
            tb.addAction(self.export_bundle_action)
        # Undo and Redo as icons (their tooltips name them): with text the row is wider than a 1280 px
        # window, and the toolbar then hid Export bundle without showing its overflow button
        for a in (self.undo_action, self.redo_action):
            button = tb.widgetForAction(a)
            if button is not None:
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.project_label = QLabel("No project")
        self.counts_label = QLabel("")
        self.job_label = QLabel("")
        self.job_bar = QProgressBar()
        self.job_bar.setRange(0, 1000)
        self.job_bar.setFixedWidth(160)
        self.job_bar.setTextVisible(False)
        self.job_bar.hide()
        sb.addWidget(self.project_label)
        sb.addWidget(self.counts_label, 1)
        sb.addPermanentWidget(self.job_label)
        sb.addPermanentWidget(self.job_bar)

    def _project_actions_enabled(self, on: bool) -> None:
        for a in (self.import_action, self.export_jsonl_action, self.export_bundle_action, self.train_action,
                  self.predict_action, self.evaluate_action, *self.tab_actions):
            a.setEnabled(on)
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)

    # --- projects -------------------------------------------------------------------------------
    def open_initial_project(self, folder: Path | None = None) -> None:
        """At start-up: the folder given, else the most recent project, else the demo (created the first time)."""
        if folder is not None:
            if (Path(folder) / "project.sqlite").exists():
                self.open_project_in_background(Path(folder))
            else:
                self.create_project(Path(folder))
            return
        for recent in self.settings.recent_projects():
            if (recent / "project.sqlite").exists():
                self.open_project_in_background(recent)
                return
        self.open_demo()

    def open_demo(self) -> None:
        folder = demo_folder()
        if (folder / "project.sqlite").exists():
            self.open_project(folder)
            return
        if not self._close_project():
            return
        worker = Worker(partial(_demo_job, folder), name="demo")
        dialog = ProgressDialog(self, "Creating the demo project",
                                f"Importing the demo sentences into {folder}…", worker, cancellable=False)
        worker.finished.connect(self._demo_ready)
        worker.failed.connect(self._demo_failed)
        self.host.start(worker)
        dialog.show()
        self._demo_dialog = dialog

    @Slot(object)
    def _demo_ready(self, folder: object) -> None:
        self.open_project(Path(str(folder)))
        self.show_tab("Label")

    @Slot(str)
    def _demo_failed(self, error: str) -> None:
        dialogs.warn(self, "Could not create the demo project", error)

    def new_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new project",
                                                  str(Path.home()))
        if folder:
            self.create_project(Path(folder))

    def create_project(self, folder: Path, name: str | None = None) -> bool:
        from conpet.store import Project

        try:
            Project.create(folder, name=name).close()
        except ConpetError as exc:
            dialogs.warn(self, "Could not create the project", str(exc))
            return False
        return self.open_project(folder)

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a project folder", str(Path.home()))
        if folder:
            self.open_project_in_background(Path(folder))

    def _may_open(self, folder: Path | str) -> bool:
        """Close the open project, and ask first when another app instance has this one open (a project on a
        server is shared by design: teammates' changes show as they come)."""
        if not self._close_project():
            return False
        if is_server_url(str(folder)):
            return True
        other = open_marker.holder(Path(folder))
        return other is None or dialogs.ask(
            self, "The project is open elsewhere",
            f"{folder} is open in {other}. Both would write the same project and neither would show the "
            "other's edits. Open it here anyway?")

    def connect_server_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Connect to a server",
                                       "The project's database URL (postgresql://user:password@host/database):")
        if ok and url.strip():
            self.open_project(url.strip())

    def user_name_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Your name", "The name recorded on your annotations, decisions, "
                                        "type edits and trainings:", text=self.settings.user_name() or default_user())
        if ok:
            self.set_user_name(name)

    def set_user_name(self, name: str) -> bool:
        """Record ``name`` as who works in this app (its settings, this process, the open project)."""
        try:
            name = check_user(name)
        except ConpetError as exc:
            dialogs.warn(self, "Your name", str(exc))
            return False
        self.settings.set_user_name(name)
        choose_user(name)
        if self.model is not None:
            self.model.project.user = name
        self.statusBar().showMessage(f"Working as {name}", 5000)
        return True

    def open_project(self, folder: Path | str) -> bool:
        """Open a project folder, or a project on a server (a ``postgresql://`` URL), now, on this thread
        (tests, scripts, Connect to a server; the menus open a folder in the background)."""
        if not self._may_open(folder):
            return False
        try:
            model = ProjectModel.open(folder, self)
        except ConpetError as exc:
            self._open_failed(folder, str(exc))
            return False
        return self._install(model)

    def open_project_in_background(self, folder: Path) -> Worker | None:
        """Open ``folder`` from the menus, the recent list or the command line: the store (its upgrade, the
        orphan collection) opens on a worker behind a progress dialog, so the window paints and answers at
        once; the views are built when it is ready. None when the user kept the open project."""
        if not self._may_open(folder):
            return None
        worker = Worker(partial(_open_store_job, Path(folder)), name="open")
        self._opening = (Path(folder), ProgressDialog(self, "Opening the project", f"Opening {folder}…", worker,
                                                      cancellable=False))
        worker.finished.connect(self._store_opened)
        worker.failed.connect(self._store_failed)
        self.host.start(worker)
        self._opening[1].show()
        return worker

    @Slot(object)
    def _store_opened(self, project: object) -> None:
        self._opening = None
        self._install(ProjectModel(project, self))

    @Slot(str)
    def _store_failed(self, error: str) -> None:
        folder = self._opening[0] if self._opening else Path()
        self._opening = None
        self._open_failed(folder, error)

    def _open_failed(self, folder: Path | str, error: str) -> None:
        dialogs.warn(self, "Could not open the project", error)
        if not is_server_url(str(folder)):
            self.settings.remove_recent(Path(folder))

    def _install(self, model: ProjectModel) -> bool:
        """Make ``model`` the window's open project: its controller, views and status."""
        self.model = model
        server = is_server_url(str(model.project.where))
        if not server:
            open_marker.claim(model.folder)
        self.controller = JobController(model, self.host, backbone_provider=self.backbone_provider, parent=self)
        self.controller.cpu_threads = self.settings.cpu_threads() or None
        self._build_views()
        if not server:  # a server's URL may hold a password: not kept in the settings
            self.settings.add_recent(model.folder)
        self._project_actions_enabled(True)
        self._train_readiness(*self.views["Training"].train_readiness())
        model.undo_stack.canUndoChanged.connect(self.undo_action.setEnabled)
        model.undo_stack.canRedoChanged.connect(self.redo_action.setEnabled)
        model.undo_stack.undoTextChanged.connect(lambda t: self._describe_undo(self.undo_action, "Undo", t))
        model.undo_stack.redoTextChanged.connect(lambda t: self._describe_undo(self.redo_action, "Redo", t))
        model.editReplayed.connect(lambda what, _id: self.statusBar().showMessage(what, 10000))
        # the project's counts are four queries: one update for a burst of changes (each decision is one)
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(300)
        self._counts_timer.timeout.connect(self._update_counts)
        for sig in (model.annotationsChanged, model.typesChanged, model.runsChanged, model.sentencesChanged):
            sig.connect(lambda *_a: self._counts_timer.start())
        self.controller.jobStarted.connect(self._job_started)
        self.controller.jobEnded.connect(self._job_ended)
        self.controller.busyChanged.connect(self._busy_changed)
        name = model.name
        self.setWindowTitle(f"{name} — ConPET Studio")
        self.project_label.setText(f"{name}  ·  {model.project.where}  ·  {model.project.user}")
        self._update_counts()
        # every edit was saved when it was made; the undo history itself lives only as long as the session
        opened = (f"Opened {name}. Undo (Ctrl+Z) starts here: edits from earlier sessions are saved, with every "
                  "version kept, but cannot be undone.")
        if not self.settings.user_name() and not self.settings.value("team/told"):  # said once
            self.settings.set_value("team/told", True)
            opened += f" Your work is recorded as {model.project.user}: File ▸ Your name… changes it."
        self.statusBar().showMessage(opened, 15000)
        model.poll_changes()  # the starting point of what teammates change from now on
        self.poll_timer.start()
        upgrade = getattr(model.project, "upgrade", None)
        if upgrade is not None:
            self.statusBar().showMessage(f"The project was upgraded; a backup of its old database is at "
                                         f"{getattr(upgrade, 'backup', '')}", 15000)
        if model.project.interrupted_runs:
            self.statusBar().showMessage(f"{len(model.project.interrupted_runs)} run(s) were interrupted when the "
                                         "app last stopped; they are marked as such in Runs.", 15000)
        return True

    def _build_views(self) -> None:
        assert self.model is not None and self.controller is not None
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.views = {
            "Types": TypesView(self.model),
            "Label": AnnotateView(self.model),
            "Training": TrainingView(self.model, self.controller, self.settings),
            "Predictions": PredictionsView(self.model, self.controller, self.settings),
            "Routing review": RoutingView(self.model, self.controller),
            "Runs & curves": RunsView(self.model),
        }
        icons = ["types", "label", "train", "predict", "routing", "runs"]
        for (name, view), ic in zip(self.views.items(), icons, strict=True):
            self.tabs.addTab(view, icon(ic), name.replace("&", "&&"))
        self.views["Label"].sentenceSelected.connect(self.views["Predictions"].select_sentence)
        training = self.views["Training"]
        training.readinessChanged.connect(self._train_readiness)
        self.setCentralWidget(self.tabs)
        self.tabs.setCurrentIndex(1)

    def poll_teammates(self) -> None:
        """Reload what others changed since the last poll (the views refresh on the model's signals)."""
        if self.model is None:
            return
        try:
            n = self.model.poll_changes()
        except ConpetError as exc:  # the server went away for a moment: say so, try again next time
            self.statusBar().showMessage(f"Could not check for teammates' changes: {exc}", self.POLL_MS)
            return
        if n:
            self.statusBar().showMessage(f"{n} sentence(s) changed by others were reloaded", 5000)

    def _close_project(self) -> bool:
        """Close the open project (stopping its jobs). False when the user keeps it open."""
        if self.model is None:
            return True
        if self.controller is not None and self.controller.current:
            if not dialogs.ask(self, "Stop the running job?", "A job is running in this project. Stop it and "
                               "close the project? (Everything saved so far stays saved.)"):
                return False
        self.poll_timer.stop()
        self.host.shutdown()
        self.views = {}
        self.setCentralWidget(self._welcome())
        self.model.close()
        open_marker.release(self.model.folder)
        self.model.deleteLater()
        self.model = None
        self.controller = None
        self._project_actions_enabled(False)
        return True

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_projects()
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for folder in recent:
            self.recent_menu.addAction(str(folder), partial(self.open_project_in_background, folder))

    # --- data in and out ------------------------------------------------------------------------
    def import_dialog(self) -> None:
        if self.controller is None:
            return
        from app.import_dialog import ImportDialog

        dialog = ImportDialog(self)
        if dialog.exec():
            path, fmt = dialog.chosen()
            self.import_file(path, fmt, dialog.options())

    def import_file(self, path: Path, fmt: str | None = None, options: dict | None = None) -> Worker | None:
        assert self.controller is not None
        try:
            worker = self.controller.start_import(path, fmt, options)
        except RuntimeError as exc:
            dialogs.inform(self, "An import is running", str(exc))
            return None
        dialog = ProgressDialog(self, "Importing", f"Importing {path.name}…", worker, cancellable=True)
        worker.finished.connect(dialog.import_report)
        dialog.show()
        return worker

    def export_jsonl(self) -> None:
        if self.model is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export annotations", str(self.model.folder / "annotations.jsonl"),
                                              "Project JSONL (*.jsonl)")
        if path:
            self.start_jsonl_export(Path(path))

    def start_jsonl_export(self, path: Path) -> Worker:
        assert self.model is not None
        worker = Worker(partial(_export_jsonl_job, self.model.where, path), name="export")
        notice = ExportNotice(self, "Annotations exported", "Wrote {result} sentence(s) with their gold "
                              "annotations to", path)
        worker.finished.connect(notice.done)
        ProgressDialog(self, "Exporting", f"Writing {path.name}…", worker, cancellable=False).show()
        self.host.start(worker)
        return worker

    def export_bundle(self) -> None:
        if self.model is None or not bundle_export_available():
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export an adapter bundle",
                                              str(self.model.folder / f"{self.model.name}.conpet.zip"),
                                              "Bundle (zip) (*.zip);;Bundle folder (*)")
        if path:
            self.start_bundle_export(Path(path))

    def start_bundle_export(self, path: Path) -> Worker:
        assert self.model is not None
        worker = Worker(partial(_export_bundle_job, self.model.where, path), name="bundle")
        notice = ExportNotice(self, "Bundle exported", "Saved the adapter bundle to", path)
        worker.finished.connect(notice.done)
        ProgressDialog(self, "Exporting the bundle", f"Writing {path.name}…", worker, cancellable=False).show()
        self.host.start(worker)
        return worker

    def _exported(self, title: str, what: str, path: Path) -> None:
        """Say where an export went, with a way to open its folder."""
        size = _size_text(path)
        self.statusBar().showMessage(f"{what} {path}" + (f" ({size})" if size else ""), 20000)
        self.job_label.setText(title)  # not the outcome of whatever job ran before (an import that failed)
        dialogs.saved(self, title, f"{what}\n{path}" + (f"\n({size})" if size else ""), path)

    # --- model jobs -----------------------------------------------------------------------------
    def train(self) -> None:
        if "Training" in self.views:
            self.show_tab("Training")
            self.views["Training"].open_train_dialog()

    def predict_all(self) -> None:
        if "Predictions" in self.views:
            self.show_tab("Training")
            self.views["Predictions"].predict_all()

    def evaluate_dialog(self) -> None:
        if self.controller is None:
            return
        from app.import_dialog import ImportDialog

        dialog = ImportDialog(self, title="Evaluate on a labelled file", action="Evaluate")
        if dialog.exec():
            path, fmt = dialog.chosen()
            self.evaluate_file(path, fmt)

    def evaluate_file(self, path: Path, fmt: str | None = None) -> Worker | None:
        """Score the current model on ``path`` in the background; the report opens when it is done."""
        assert self.controller is not None
        try:
            worker = self.controller.start_evaluation(path, fmt)
        except RuntimeError as exc:
            dialogs.inform(self, "A job is running", str(exc))
            return None
        dialog = ProgressDialog(self, "Evaluating", f"Scoring the model on {path.name}…", worker, cancellable=True)
        worker.finished.connect(self._show_evaluation)
        dialog.show()
        return worker

    @Slot(object)
    def _show_evaluation(self, report: object) -> None:
        from app.views.evaluation_dialog import EvaluationDialog

        self.evaluation_dialog = EvaluationDialog(self, report)
        self.evaluation_dialog.show()

    def cancel_jobs(self) -> None:
        if self.controller is not None and self.controller.current:
            self.controller.cancel()
            self.cancel_action.setEnabled(False)  # asked once: pressing it again would do nothing
            self.job_label.setText("Cancelling… (after the current batch)")

    @Slot(str, object)
    def _job_started(self, kind: str, worker: Worker) -> None:
        self.job_label.setText({"train": "Training…", "predict": "Predicting…", "evaluate": "Evaluating…",
                                "import": "Importing…"}.get(kind, kind))
        self.job_bar.setValue(0)
        self.job_bar.show()
        worker.progress.connect(self.job_bar.setValue)
        if kind in ("train", "predict", "evaluate"):
            self.cancel_action.setEnabled(True)

    @Slot(str, str, object)
    def _job_ended(self, kind: str, outcome: str, _payload: object) -> None:
        if self.controller is not None and not self.controller.current:
            self.job_bar.hide()
            self.cancel_action.setEnabled(False)
        names = {"train": "Training", "predict": "Prediction", "evaluate": "Evaluation", "import": "Import"}
        self.job_label.setText(f"{names.get(kind, kind)} {outcome}")

    def _busy_changed(self, busy: bool) -> None:
        self.predict_action.setEnabled(not busy)
        self.evaluate_action.setEnabled(not busy)
        self.cancel_action.setEnabled(busy)

    def _train_readiness(self, ok: bool, why: str) -> None:
        self.train_action.setEnabled(ok)
        self.train_action.setToolTip(f"Train new knowledge: {why}")

    def _update_counts(self, *_args) -> None:
        if self.model is None:
            return
        c = self.model.counts()
        self.counts_label.setText(f"{c['sentences']} sentences · {c['annotations']} gold annotations · "
                                  f"{c['types']} types · {c['tasks']} tasks")

    # --- misc -----------------------------------------------------------------------------------
    def _describe_undo(self, action: QAction, verb: str, what: str) -> None:
        """The menu names the edit; the toolbar button keeps its short text (a long name would push the
        other buttons out of sight) and names the edit in its tooltip."""
        action.setText(f"&{verb} {what}".strip())
        action.setIconText(verb)
        action.setToolTip(f"{verb} {what}".strip() + (" (" + action.shortcut().toString() + ")"
                                                        if not action.shortcut().isEmpty() else ""))

    def _undo(self) -> None:
        if self.model is not None:
            self.model.undo_stack.undo()

    def _redo(self) -> None:
        if self.model is not None:
            self.model.undo_stack.redo()

    def show_tab(self, name: str) -> None:
        if name in self.views:
            self.tabs.setCurrentWidget(self.views[name])

    def about(self) -> None:
        dialogs.inform(self, "About ConPET Studio",
                       "ConPET Studio teaches a language model new entity and relation types without "
                       "forgetting, with Continual Parameter-Efficient Tuning (Song et al., 2023): a small LoRA "
                       "expert per task and a selector that routes each input to its expert.")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.controller is not None and self.controller.model_job_running():
            if not dialogs.ask(self, "Quit while a job runs?", "A job is running. Stop it and quit? "
                               "(Everything saved so far stays saved.)"):
                event.ignore()
                return
        self.poll_timer.stop()
        self.host.shutdown()
        if self.model is not None:
            self.model.close()
            self.model = None
        if isinstance(self.backbone_provider, KeptBackbone):
            self.backbone_provider.clear()
        choose_user(None)  # the name was this window's
        self.settings.sync()
        event.accept()


def _size_text(path: Path) -> str:
    """The size of a file, or of a folder's files, for people ("" when it is not there)."""
    if path.is_file():
        n = path.stat().st_size
    elif path.is_dir():
        n = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    else:
        return ""
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def _open_store_job(folder: Path, sink=None):
    """The project's store opened (upgraded if need be, orphans collected): ``ProjectModel.open``'s work."""
    from conpet.core.protocols import Reporter
    from conpet.project.model import open_folder

    Reporter(sink)(0.0, f"opening {folder.name}", "open")
    return open_folder(folder)


def _demo_job(folder: Path, sink=None) -> Path:
    return jobs.create_demo_project(folder, sink)


def _export_jsonl_job(folder: str | Path, out: Path, sink=None) -> int:
    from conpet.core.protocols import Reporter
    from conpet.store import Project
    from conpet.store.exporter import export_jsonl

    rep = Reporter(sink)
    with Project.open(folder) as project:
        return export_jsonl(project, out, progress=lambda f, m: rep(f, m, "export"))


def _export_bundle_job(folder: str | Path, out: Path, sink=None) -> Path:
    from conpet.project.bundles import export_bundle

    return export_bundle(folder, out, progress=sink)
