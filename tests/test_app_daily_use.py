# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The app as a daily tool (issue 25): the Routing review ranks a pair the relatedness gate doubts first and
can say "no relation"; Accept under the "Not yet confirmed" filter moves to the row that took the decided
one's place; a correction the argument rules refuse says why. Predictions are written into the store."""

from __future__ import annotations

from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from app.views.routing_view import RoutingTableModel
from conpet.data.example import Span
from conpet.store.records import NewPrediction

TEXT = "Mateo Silva was treated at a clinic in Osaka , and Ada Quill was born in Lisbon ."


def sp(m: str) -> Span:
    return Span(TEXT.index(m), TEXT.index(m) + len(m))


def routing_window(qtbot, app_env, tmp_path, rows):
    """A project with TEXT, its four mentions gold, born_in (Person -> City) declared, and a prediction
    run holding ``rows``: (head, tail, label, score, P(related))."""
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City"), relations=("born_in",), per_type=3))
    p = w.model.project
    sid = p.sentences.add(TEXT).id
    for m, t in (("Mateo Silva", "Person"), ("Osaka", "City"), ("Ada Quill", "Person"), ("Lisbon", "City")):
        p.annotations.add_entity(sid, sp(m).start, sp(m).end, t)
    p.types.set_arguments("born_in", head=["Person"], tail=["City"])
    run = p.runs.start("dynamic-lda", purpose="predict")
    p.predictions.add_many(run.id, [
        NewPrediction(sid, (sp(h), sp(t)), label, score, selector_scores=(0.99,), active_experts=(0,),
                      expert_scores={label: 1.0, "related": related})
        for h, t, label, score, related in rows])
    p.runs.finish(run.id)
    w.model.refresh_all()
    w.show_tab("Routing review")
    view = w.views["Routing review"]
    qtbot.waitUntil(lambda: view.table_model.rowCount() == len(rows), timeout=10_000)
    return w, view, sid


def shown(view) -> list[str]:
    m = view.table_model
    return [m.data(m.index(view.proxy.mapToSource(view.proxy.index(r, 0)).row(), RoutingTableModel.C_MENTION))
            for r in range(view.proxy.rowCount())]


def test_a_pair_the_gate_doubts_comes_first_and_can_be_rejected_as_no_relation(qtbot, app_env, tmp_path):
    # both typed born_in with certainty by the expert; the gate doubts Mateo -> Osaka (score = 0.55 x 1.0)
    w, view, sid = routing_window(qtbot, app_env, tmp_path, [
        ("Ada Quill", "Lisbon", "born_in", 0.98, 0.98), ("Mateo Silva", "Osaka", "born_in", 0.55, 0.55)])
    assert shown(view) == ["Mateo Silva → Osaka", "Ada Quill → Lisbon"]
    m = view.table_model
    assert m.data(m.index(0, RoutingTableModel.C_SCORE)) in ("98.0%", "55.0%")
    qtbot.waitUntil(view.reject_button.isVisible, timeout=10_000)
    view.table.selectRow(0)
    assert view.reject_button.text() == "No relation (R)"
    assert view.reject_selected()
    rejected = [a for a in w.model.annotations(sid) if a.kind == "relation"]
    assert [(a.status, a.type_name) for a in rejected] == [("rejected", "born_in")]
    assert "no relation" in view.status.text()
    doubted = next(r for r in m.rows if r.text[r.p.start:r.p.end] == "Mateo Silva")
    assert doubted.reviewed and doubted.state == "rejected" and not doubted.left_to_review
    assert m.left_to_review() == 1
    assert view.selected_row().text[view.selected_row().p.start:view.selected_row().p.end] == "Ada Quill"
    w.undo_action.trigger()  # undone: left to review again
    assert m.left_to_review() == 2


def test_accept_under_the_open_filter_selects_the_row_that_moved_up(qtbot, app_env, tmp_path):
    w, view, sid = routing_window(qtbot, app_env, tmp_path, [
        ("Mateo Silva", "Osaka", "born_in", 0.3, 0.3), ("Ada Quill", "Lisbon", "born_in", 0.5, 0.5),
        ("Ada Quill", "Osaka", "born_in", 0.7, 0.7), ("Mateo Silva", "Lisbon", "born_in", 0.9, 0.9)])
    view.filter_box.setCurrentIndex(view.filter_box.findData("open"))
    assert len(shown(view)) == 4
    view.table.selectRow(0)
    for expected_next in ("Ada Quill → Lisbon", "Ada Quill → Osaka", "Mateo Silva → Lisbon"):
        assert view.accept_selected()
        r = view.selected_row()
        assert r is not None and view.table_model.data(view.table_model.index(
            view.table_model.rows.index(r), RoutingTableModel.C_MENTION)) == expected_next
    assert len(shown(view)) == 1


def test_a_correction_the_argument_rules_refuse_says_why(qtbot, app_env, tmp_path):
    w, view, sid = routing_window(qtbot, app_env, tmp_path, [("Ada Quill", "Lisbon", "born_in", 0.9, 0.9)])
    p = w.model.project
    lives_in = w.model.add_type("lives_in", "relation")
    w.model.set_relation_arguments(lives_in.id, [p.types.find("City", "entity").id], [])  # a City head only
    view.table.selectRow(0)
    assert not view.correct_selected(lives_in.id)
    assert "Not corrected to lives_in" in view.status.text() and "head" in view.status.text()
    assert view.status.property("level") == "error"
    assert not [a for a in w.model.annotations(sid) if a.kind == "relation"]


# --- the Label view: suggestions that keep labels consistent --------------------------------------------

def label_window(qtbot, app_env, tmp_path):
    from test_app_labelling import setup

    return setup(qtbot, app_env, tmp_path)


def test_a_relation_is_offered_only_after_the_mentions_it_connects(qtbot, app_env, tmp_path):
    from test_app_labelling import TEXT as LTEXT
    from test_app_suggestions import predict, span

    w, view, sid, types = label_window(qtbot, app_env, tmp_path)
    predict(w, [NewPrediction(sid, (span("Ada Quill"), span("Brightwell Labs")), "works_for", 0.8),
                NewPrediction(sid, (span("Brightwell Labs"),), "Company", 0.8),
                NewPrediction(sid, (span("Ada Quill"),), "Person", 0.7)])
    assert [p.kind for p in view.suggestions] == ["entity", "entity"]  # the pair waits for its mentions
    assert [p.label for p in view.suggestions] == ["Person", "Company"]  # in reading order
    view.cycle_suggestion(1)
    assert view.accept_selected() and [p.label for p in view.suggestions] == ["Company"]
    assert view.accept_selected()  # both mentions gold: now the relation is offered
    assert [p.label for p in view.suggestions] == ["works_for"]
    assert view.accept_selected()
    rel = next(a for a in w.model.annotations(sid) if a.kind == "relation")
    assert rel.status == "gold" and (LTEXT[rel.start:rel.end], rel.type_name) == ("Ada Quill", "works_for")


def test_rejecting_a_mention_removes_the_relations_on_it_in_the_same_undo_step(qtbot, app_env, tmp_path):
    from test_app_suggestions import predict, span

    w, view, sid, types = label_window(qtbot, app_env, tmp_path)
    p = w.model.project
    p.annotations.add_relation(sid, span("Ada Quill"), span("Brightwell Labs"), "works_for")  # untyped ends
    predict(w, [NewPrediction(sid, (span("Brightwell Labs"),), "Company", 0.8)])
    view.cycle_suggestion(1)
    steps = w.model.undo_stack.count()
    assert view.reject_selected()
    assert not [a for a in w.model.annotations(sid) if a.kind == "relation" and a.status == "gold"]
    assert "removed the works_for relation on it" in view.status.text()
    assert w.model.undo_stack.count() == steps + 1
    w.undo_action.trigger()
    assert [a.status for a in w.model.annotations(sid) if a.kind == "relation"] == ["gold"]
    assert not [a for a in w.model.annotations(sid) if a.status == "rejected"]
    # deleting a gold mention says what happens to the relation on it, and removes it too
    p.annotations.add_entity(sid, span("Ada Quill").start, span("Ada Quill").end, "Person")
    w.model.annotationsChanged.emit(sid)
    ada = next(a for a in w.model.annotations(sid) if a.kind == "entity" and a.status == "gold")
    view.focus(ada.id)
    assert view.delete_focused()
    assert "and the works_for relation on it" in view.status.text()
    assert not [a for a in w.model.annotations(sid) if a.status == "gold"]


def test_enter_keeps_a_sentence_whose_suggestions_are_refused_and_works_from_the_list(qtbot, app_env, tmp_path):
    from PySide6.QtCore import Qt
    from test_app_suggestions import predict, span

    w, view, sid, types = label_window(qtbot, app_env, tmp_path)
    p = w.model.project
    for m, t in (("Ada Quill", "Person"), ("Brightwell Labs", "Company")):
        p.annotations.add_entity(sid, span(m).start, span(m).end, t)
    p.types.add("founded_in", "relation")
    p.types.set_arguments("founded_in", head=["City"], tail=[])  # the suggested pair has a Person head
    w.model.refresh_types()
    predict(w, [NewPrediction(sid, (span("Ada Quill"), span("Brightwell Labs")), "founded_in", 0.8),
                NewPrediction(sid, (span("Lisbon"),), "City", 0.9)])
    assert len(view.suggestions) == 2
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)
    assert view.sentence_id == sid  # not gone on: the refused suggestion is still to decide
    assert "could not be accepted" in view.status.text() and "head" in view.status.text()
    assert [s.label for s in view.suggestions] == ["founded_in"] and view.selected_suggestion == view.suggestions[0].id
    steps = w.model.undo_stack.count()
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)  # nothing to accept: no step, and no Redo that does nothing
    assert w.model.undo_stack.count() == steps and not w.model.undo_stack.canRedo()
    assert view.sentence_id == sid
    assert view.reject_selected()
    first = view.list_model.ids()[0]
    assert view.select_sentence(first)
    view.list.setFocus()
    qtbot.keyClick(view.list, Qt.Key.Key_Return)  # Enter from the sentence list goes on too
    assert view.sentence_id == view.list_model.ids()[1] and "next sentence" in view.status.text()


# --- suggestions after training ---------------------------------------------------------------------

def test_a_finished_training_predicts_the_project_in_the_background(qtbot, app_env, tmp_path, monkeypatch):
    import threading

    from app import jobs
    from conpet.project.predict import PredictOutcome

    predicted = []

    def fake_train(request, backbone_provider=None, sink=None):
        return "trained"

    def fake_predict(folder, sink=None, *, sentence_ids=None, backbone_provider=None, threads=None, **_kw):
        predicted.append((sentence_ids, threading.current_thread() is threading.main_thread()))
        return PredictOutcome(run_id=1, predictions=0, seconds=0.0, backbone_passes=0)

    monkeypatch.setattr(jobs, "train_next_task", fake_train)
    monkeypatch.setattr(jobs, "predict_project", fake_predict)
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City"), per_type=3))
    started = []
    w.controller.jobStarted.connect(lambda kind, _w: started.append((kind, w.cancel_action.isEnabled())))
    ended = []
    w.controller.jobEnded.connect(lambda kind, outcome, _p: ended.append((kind, outcome)))
    w.controller.start_training(object())
    qtbot.waitUntil(lambda: ("predict", "finished") in ended, timeout=30_000)
    assert [k for k, _ in started] == ["train", "predict"] and started[1][1]  # cancellable, as any prediction
    assert predicted == [(None, False)]  # the whole project, on a worker thread
    assert ended == [("train", "finished"), ("predict", "finished")]

    w.controller.predict_after_training = False  # off: a training is followed by nothing
    w.controller.start_training(object())
    qtbot.waitUntil(lambda: ended.count(("train", "finished")) == 2, timeout=30_000)
    qtbot.wait(200)
    assert len(predicted) == 1


def test_a_relation_from_the_keyboard_alone(qtbot, app_env, tmp_path):
    from PySide6.QtCore import Qt
    from test_app_labelling import TEXT as LTEXT
    from test_app_suggestions import span

    w, view, sid, types = label_window(qtbot, app_env, tmp_path)
    p = w.model.project
    for m, t in (("Ada Quill", "Person"), ("Brightwell Labs", "Company")):
        p.annotations.add_entity(sid, span(m).start, span(m).end, t)
    w.model.annotationsChanged.emit(sid)
    ed = view.editor
    ed.setFocus()
    qtbot.keyClick(ed, Qt.Key.Key_Home)
    for _ in range(LTEXT.index("Ada Quill") + 2):  # the caret into "Ada Quill", nothing selected
        qtbot.keyClick(ed, Qt.Key.Key_Right)
    assert ed.selected_span() is None
    qtbot.keyClick(ed, Qt.Key.Key_H)
    assert view.editor.pending("head") is not None and "Ada Quill" in view.ends_label.text()
    for _ in range(LTEXT.index("Brightwell Labs") + 3 - ed.textCursor().position()):
        qtbot.keyClick(ed, Qt.Key.Key_Right)
    qtbot.keyClick(ed, types["works_for"].shortcut)  # the caret in the tail: the relation's key makes it
    rel = [a for a in w.model.annotations(sid) if a.kind == "relation"]
    assert [(LTEXT[a.start:a.end], LTEXT[a.tail_start:a.tail_end], a.type_name) for a in rel] == [
        ("Ada Quill", "Brightwell Labs", "works_for")]


def test_quiet_silences_the_libraries_progress_bars(monkeypatch):
    import subprocess
    import sys

    code = ("import os, sys; from conpet.cli.main import quiet_libraries; quiet_libraries(); "
            "from transformers.utils import logging; sys.exit(0 if not logging.is_progress_bar_enabled() "
            "and os.environ['HF_HUB_DISABLE_PROGRESS_BARS'] == '1' else 1)")
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    loud = "import sys; from transformers.utils import logging; sys.exit(0 if logging.is_progress_bar_enabled() else 1)"
    assert subprocess.run([sys.executable, "-c", loud], capture_output=True).returncode == 0


def test_smaller_things_a_user_notices(qtbot, app_env, tmp_path):
    from PySide6.QtWidgets import QToolBar

    from app.main_window import bundle_export_available
    from app.views.types_view import AddTypeDialog

    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City"), per_type=3))
    qtbot.wait(50)
    toolbar = w.findChild(QToolBar, "mainToolbar")
    if bundle_export_available():  # at the default width every button is in view, Export bundle too
        button = toolbar.widgetForAction(w.export_bundle_action)
        assert button is not None and button.isVisible() and button.geometry().right() <= toolbar.width()
    # the share of annotated sentences is rounded down: one sentence left is not "100 %"
    label = w.views["Label"]
    p = w.model.project
    total = len(p.sentences.ids())
    for i in range(100 - total + 1):
        p.sentences.add(f"Sentence number {i} of the filler .")
    w.model.sentencesChanged.emit()
    n = len(p.sentences.ids())
    done = len(p.sentences.ids(status="annotated"))
    assert f"{done} annotated ({100 * done // n} %)" in label.count_label.text()
    assert label.count_label.text().count("100 %") == 0
    # the add-type dialog: "an entity type", the error wraps in room kept for it and goes when the name changes
    dialog = AddTypeDialog(w.model, w.views["Types"])
    qtbot.addWidget(dialog)
    dialog.show()
    height = dialog.height()
    dialog.name_edit.setText("city")
    dialog._accept()
    assert "already an entity type called 'City'" in dialog.error.text()
    assert dialog.height() == height and dialog.error.wordWrap()
    dialog.name_edit.setText("Town")
    assert dialog.error.text() == ""
    # the status bar names a finished export, not the outcome of a job before it
    w.job_label.setText("Import failed")
    w._exported("Annotations exported", "Wrote 3 sentence(s) to", tmp_path / "out.jsonl")
    assert w.job_label.text() == "Annotations exported"


def test_the_time_chart_agrees_with_the_runs_table(qtbot, app_env, tmp_path):
    import time

    from app.views.runs_view import RunsView, run_seconds

    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City"), per_type=3))
    p = w.model.project
    run = p.runs.start("dynamic", purpose="train")
    time.sleep(1.2)  # a run longer than its learning
    p.runs.update_progress(run.id, 1.0, "done", step=1, metrics={
        "kind": "step", "task_index": 1, "train_seconds": 0.4, "whole_acc": 1.0, "avg_acc": 1.0, "task_acc": [1.0]})
    p.runs.finish(run.id)
    view = RunsView(w.model)
    qtbot.addWidget(view)
    series = dict((name, pts) for name, pts in view.cost_chart.series())
    took = run_seconds(p.runs.get(run.id))
    assert series["learning"] == [(1, 0.4)] and series["whole run"] == [(1, took)] and took >= 1.2
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert view.table.item(0, headers.index("Took")).text() == f"{int(took)} s"


def test_an_accuracy_on_a_handful_of_test_examples_comes_with_a_warning():
    from app.views.training_view import accuracy_text

    few = accuracy_text({"whole_acc": 1.0, "test_examples": [2]})
    assert "100.0 % on 2 test examples" in few and "too few to trust" in few
    assert "too few" not in accuracy_text({"whole_acc": 0.8, "test_examples": [40, 60]})


def test_a_project_open_in_another_instance_is_warned_about_and_the_undo_history_is_explained(
        qtbot, app_env, tmp_path, quiet_dialogs):
    import json
    import socket
    import subprocess

    from app import open_marker

    folder = make_project(tmp_path / "p", types=("Person",), per_type=2)
    other = subprocess.Popen(["sleep", "60"])  # a live process that "has the project open"
    try:
        (folder / open_marker.MARKER).write_text(json.dumps(
            {"pid": other.pid, "host": socket.gethostname(), "since": "today"}), encoding="utf-8")
        settings, _ = app_env
        w = MainWindow(settings, preload=False)
        qtbot.addWidget(w)
        w.show()
        quiet_dialogs.answer = False  # the user answers No
        assert not w.open_project(folder) and w.model is None
        asked = [text for kind, _t, text in quiet_dialogs if kind == "question"]
        assert asked and f"process {other.pid}" in asked[-1]
    finally:
        other.kill()
        other.wait()
    quiet_dialogs.clear()
    assert w.open_project(folder)  # its process is gone: taken over without a question
    assert not [kind for kind, _t, _x in quiet_dialogs if kind == "question"]
    assert json.loads((folder / open_marker.MARKER).read_text())["pid"] != other.pid
    assert "Undo (Ctrl+Z) starts here" in w.statusBar().currentMessage()
    assert w._close_project() and not (folder / open_marker.MARKER).exists()


def test_a_project_opens_in_the_background_behind_a_progress_dialog(qtbot, app_env, tmp_path, quiet_dialogs):
    import threading

    from app import main_window as mw

    opened_on = []
    real = mw._open_store_job

    def recording(folder, sink=None):
        opened_on.append(threading.current_thread() is threading.main_thread())
        return real(folder, sink)

    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    folder = make_project(tmp_path / "p", types=("Person",), per_type=2)
    import unittest.mock

    with unittest.mock.patch.object(mw, "_open_store_job", recording):
        worker = w.open_project_in_background(folder)
        assert worker is not None and w._opening is not None and w._opening[1].isVisible()
        qtbot.waitUntil(lambda: w.model is not None, timeout=30_000)
    assert opened_on == [False] and w.views and w.model.folder == folder
    # a folder that is no project: said in a warning, and nothing is open
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "project.sqlite").write_text("not a database", encoding="utf-8")
    w.open_project_in_background(bad)
    qtbot.waitUntil(lambda: any(kind == "warning" for kind, _t, _x in quiet_dialogs), timeout=30_000)
    assert w.model is None and w._opening is None
