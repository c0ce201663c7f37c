# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Training feedback that does not mislead (issue 16): one loss line per stage, validation said in words
and per cent (never "1.001"), accuracy with its number of test examples, a warning for a task with
very few examples, an interrupted task said to restart, and Train / Cancel disabled when they would do
nothing (and drawn so). Events are fed to the view directly; no model is trained."""

from __future__ import annotations

import time

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton
from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from app.settings import RESOURCES
from app.views.train_dialog import TrainDialog, TypeCandidate
from conpet.core.errors import Cancelled
from conpet.core.protocols import ProgressEvent
from conpet.project.training import TrainOutcome


def window(qtbot, app_env, tmp_path, **kw):
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", **kw))
    return w


def test_selector_and_expert_losses_are_separate_lines_and_validation_is_in_words(qtbot, app_env, tmp_path):
    w = window(qtbot, app_env, tmp_path)
    view = w.views["Training"]
    for i, (stage, loss) in enumerate([("selector", 2.1), ("selector", 1.7), ("expert", 0.9), ("expert", 0.6)]):
        view.on_event(ProgressEvent(0.1 * (i + 1), f"{stage}: batch", stage, None, {"loss": loss}))
    series = dict(view.loss_chart.series())
    assert len(series) == 2
    assert [y for _x, y in next(pts for name, pts in series.items() if "selector" in name)] == [2.1, 1.7]
    assert [y for _x, y in next(pts for name, pts in series.items() if "expert" in name)] == [0.9, 0.6]
    # the selector's validation score carries a tie-breaker (routing accuracy + type accuracy / 1000)
    view.on_event(ProgressEvent(0.5, "selector: epoch 1 validation 1.001", "selector", None,
                                {"valid_acc": 1.001, "epoch": 1}))
    line = view.log.toPlainText().splitlines()[-1]
    assert "1.001" not in line and "100.0 %" in line and "routing accuracy" in line and "epoch 1" in line
    view.on_event(ProgressEvent(0.8, "expert: epoch 2 validation 0.750", "expert", None,
                                {"valid_acc": 0.75, "epoch": 2}))
    assert "validation accuracy 75.0 %" in view.log.toPlainText().splitlines()[-1]


def test_accuracy_comes_with_the_number_of_test_examples(qtbot, app_env, tmp_path):
    w = window(qtbot, app_env, tmp_path)
    view = w.views["Training"]
    metrics = {"whole_acc": 0.8125, "avg_acc": 0.8, "selector_acc": 0.97, "test_examples": [30, 18],
               "task_acc": [0.8, 0.83]}
    view._job_ended("train", "finished", TrainOutcome(1, "finished", "dynamic", 2, ("Drug",), None, metrics))
    text = view.message_label.text()
    assert "81.2 %" in text and "on 48 test examples" in text


def test_a_task_with_very_few_examples_is_warned_about(qtbot):
    cands = [TypeCandidate(1, "entity", "Drug", "#4e79a7", 2), TypeCandidate(2, "entity", "City", "#f28e2b", 40)]
    dialog = TrainDialog(cands, 1, 0)
    qtbot.addWidget(dialog)
    assert "very few gold examples" in dialog.summary.text() and "Drug (2)" in dialog.summary.text()
    assert "City (" not in dialog.summary.text()
    assert dialog.train_button.isEnabled()  # a warning, not a refusal
    dialog.set_checked(1, False)
    assert "very few" not in dialog.summary.text()


def test_an_interrupted_task_is_said_to_restart(qtbot, app_env, tmp_path):
    w = window(qtbot, app_env, tmp_path)
    person = w.model.project.types.find("Person")
    w.model.project.tasks.create_next([person.id])  # open: its training never finished
    w.model.tasksChanged.emit()
    state = w.views["Training"].tasks_table.item(0, 2).text()
    assert "from the start" in state and "continues" not in state


def test_train_is_disabled_while_there_is_nothing_to_train(qtbot, app_env, tmp_path):
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    assert w.create_project(tmp_path / "empty")
    view = w.views["Training"]
    assert not view.train_button.isEnabled() and not w.train_action.isEnabled()
    assert "add a type" in view.train_button.toolTip()
    person = w.model.add_type("Person", "entity")
    assert not view.train_button.isEnabled() and "label some first" in view.train_button.toolTip()
    sid = w.model.project.sentences.add("Ada Quill spoke.").id
    w.model._add_entity(sid, 0, 9, person.id)
    assert view.train_button.isEnabled() and w.train_action.isEnabled()
    assert "lower the minimum" in view.train_button.toolTip()  # 1 example, minimum 10: the dialog can lower it


def test_cancel_is_disabled_once_asked(qtbot, app_env, tmp_path):
    w = window(qtbot, app_env, tmp_path)

    def waits_for_cancel(sink=None):
        while not sink.cancel_requested():
            time.sleep(0.01)
        raise Cancelled("cancelled")

    w.controller._start("train", waits_for_cancel)
    qtbot.waitUntil(w.cancel_action.isEnabled, timeout=10_000)
    w.cancel_action.trigger()
    assert not w.cancel_action.isEnabled()  # pressing it again would do nothing
    with qtbot.waitSignal(w.controller.jobEnded, timeout=10_000):
        pass
    assert not w.cancel_action.isEnabled()


def test_a_disabled_primary_button_looks_disabled(qtbot):
    qss = (RESOURCES / "styles" / "studio.qss").read_text(encoding="utf-8")
    b = QPushButton("Train")
    b.setProperty("primary", True)
    b.setStyleSheet(qss)
    qtbot.addWidget(b)
    b.resize(120, 32)
    b.setEnabled(False)
    b.show()
    background = QColor(b.grab().toImage().pixel(6, 16))
    assert background.blue() - background.red() < 40, background.name()  # grey, not the primary blue


def test_train_dialog_offers_all_data_and_converge_and_says_the_cost(qtbot):
    cands = [TypeCandidate(2, "entity", "City", "#f28e2b", 40)]
    dialog = TrainDialog(cands, 1, 0)
    qtbot.addWidget(dialog)
    assert dialog.budget_box.findData("converge") >= 0
    assert not dialog.choice().all_data and not dialog.folds_spin.isEnabled()
    dialog.all_data_box.setChecked(True)
    dialog.folds_spin.setValue(4)
    assert "4-fold cross-validated estimate, which costs 4 extra trainings" in dialog.summary.text()
    choice = dialog.choice()
    assert choice.all_data and choice.folds == 4


def test_a_task_trained_on_all_data_shows_its_cross_validated_accuracy(qtbot, app_env, tmp_path):
    w = window(qtbot, app_env, tmp_path)
    view = w.views["Training"]
    metrics = {"whole_acc": None, "avg_acc": None, "test_examples": [0], "task_acc": [None],
               "cv": {"folds": 5, "examples": 755, "correct": 636}}
    view._job_ended("train", "finished", TrainOutcome(1, "finished", "dynamic-lda", 1, ("Drug",), None, metrics))
    assert "84.2% (cross-validated, 5 folds, 755 examples)" in view.message_label.text()
