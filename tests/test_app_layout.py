# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Predictions and Runs layout (issue 16): mention columns as wide as their text, a header that knows
about one-sentence predictions, the runs list showing the newest run when one appears, and the whole
accuracy line never hidden under the selector's."""

from __future__ import annotations

from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from conpet.data.example import Span
from conpet.store.records import NewPrediction

TEXT = "Dr Ada Quill of the Brightwell Laboratories International Consortium moved to Lisbon."


def window(qtbot, app_env, tmp_path, width=900):
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.resize(width, 700)
    w.show()
    w.open_project(make_project(tmp_path / "p", per_type=3))
    sid = w.model.project.sentences.add(TEXT).id
    w.model.sentencesChanged.emit()
    return w, sid


def predict_sentence(w, sid):
    p = w.model.project
    org = "Brightwell Laboratories International Consortium"
    run = p.runs.start("dynamic-typesel", purpose="predict", config={"sentences": [sid]})
    p.predictions.add_many(run.id, [NewPrediction(sid, (Span(TEXT.index(org), TEXT.index(org) + len(org)),),
                                                  "City", 0.4, selector_scores=(0.9,), active_experts=(0,))])
    p.runs.finish(run.id)
    w.model.runsChanged.emit()
    w.model.predictionsChanged.emit()
    return run, org


def test_prediction_columns_show_whole_mentions_and_the_header_knows_a_sentence_was_predicted(
        qtbot, app_env, tmp_path):
    w, sid = window(qtbot, app_env, tmp_path)
    run, org = predict_sentence(w, sid)
    w.show_tab("Predictions")
    view = w.views["Predictions"]
    view.select_sentence(sid)
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=10_000)
    qtbot.wait(50)
    assert view.table.item(0, 1).text() == org
    needed = view.table.fontMetrics().horizontalAdvance(org)
    assert view.table.horizontalHeader().sectionSize(1) >= needed
    assert "No predictions yet" not in view.info.text() and f"run {run.id}" in view.info.text()


def test_the_runs_list_shows_the_newest_run_when_one_appears(qtbot, app_env, tmp_path):
    w, sid = window(qtbot, app_env, tmp_path)
    p = w.model.project
    first = p.runs.start("dynamic-typesel", purpose="predict")
    p.runs.finish(first.id)
    w.model.runsChanged.emit()
    w.show_tab("Runs & curves")
    view = w.views["Runs & curves"]
    assert view.selected_run().id == first.id
    for _ in range(40):
        p.runs.finish(p.runs.start("dynamic-typesel", purpose="predict").id)
    w.model.runsChanged.emit()
    qtbot.wait(20)
    newest = p.runs.list()[0]
    assert view.selected_run().id == newest.id
    assert view.table.verticalScrollBar().value() == 0
    # with no new run, the user's choice stays
    view.table.selectRow(5)
    chosen = view.selected_run().id
    w.model.runsChanged.emit()
    assert view.selected_run().id == chosen


def test_whole_accuracy_is_drawn_over_an_identical_selector_line(qtbot, app_env, tmp_path, monkeypatch):
    w, sid = window(qtbot, app_env, tmp_path)
    steps = [{"task_index": 1, "whole_acc": 1.0, "avg_acc": 1.0, "selector_acc": 1.0, "task_acc": [1.0]},
             {"task_index": 2, "whole_acc": 0.8, "avg_acc": 0.8, "selector_acc": 0.8, "task_acc": [0.8, 0.8]}]
    monkeypatch.setattr(w.model, "step_metrics", lambda: steps)
    view = w.views["Runs & curves"]
    view.reload()
    names = [name for name, _pts in view.curve_chart.series()]
    assert names[-1] == "whole accuracy"  # drawn last: on top
    assert "selector accuracy" in view.curve_chart.dashed and "whole accuracy" not in view.curve_chart.dashed
