# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Routing review that an expert can trust (issue 16): accepting a prediction that contradicts a gold
label asks first and the Gold column is in view; reviewed rows are marked and counted, the next row
left is selected after a decision; a task learnt after the run is announced with an offer to predict
again. Predictions are written straight into the store (no training needed)."""

from __future__ import annotations

from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from app.views.routing_view import RoutingTableModel
from conpet.data.example import Span
from conpet.store.records import NewPrediction

TEXT = ("After the long meeting in the old town hall, Dr Ada Quill took sumatriptan for her migraine and "
        "then flew back to Lisbon with her colleagues from the clinic.")


def window_with_predictions(qtbot, app_env, tmp_path, width=1200):
    """A project with one sentence: 'sumatriptan' gold Drug but predicted Person, 'Lisbon' predicted City
    with no gold label yet, 'Ada Quill' predicted Person and already gold Person."""
    settings, _ = app_env
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.resize(width, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City", "Drug"), per_type=3))
    p = w.model.project
    sid = p.sentences.add(TEXT).id
    types = {t.name: t for t in p.types.list()}
    spans = {m: Span(TEXT.index(m), TEXT.index(m) + len(m)) for m in ("sumatriptan", "Lisbon", "Ada Quill")}
    p.annotations.add_entity(sid, spans["sumatriptan"].start, spans["sumatriptan"].end, types["Drug"].id)
    p.annotations.add_entity(sid, spans["Ada Quill"].start, spans["Ada Quill"].end, types["Person"].id)
    run = p.runs.start("dynamic-typesel", purpose="predict")
    p.predictions.add_many(run.id, [
        NewPrediction(sid, (spans["sumatriptan"],), "Person", 0.55, selector_scores=(0.5,), active_experts=(0,)),
        NewPrediction(sid, (spans["Lisbon"],), "City", 0.9, selector_scores=(0.6,), active_experts=(0,)),
        NewPrediction(sid, (spans["Ada Quill"],), "Person", 0.95, selector_scores=(0.7,), active_experts=(0,))])
    p.runs.finish(run.id)
    w.model.refresh_all()
    w.show_tab("Routing review")
    view = w.views["Routing review"]
    qtbot.waitUntil(lambda: view.table_model.rowCount() == 3, timeout=10_000)
    return w, view, sid, types, run


def select(view, mention: str) -> None:
    for row in range(view.proxy.rowCount()):
        r = view.table_model.rows[view.proxy.mapToSource(view.proxy.index(row, 0)).row()]
        if r.text[r.p.start:r.p.end] == mention:
            view.table.selectRow(row)
            return
    raise AssertionError(mention)


def gold_of(w, sid, mention):
    return [a.type_name for a in w.model.annotations(sid) if a.status == "gold"
            and TEXT[a.start:a.end] == mention]


def test_accept_against_a_different_gold_label_asks_and_no_keeps_it(qtbot, app_env, tmp_path, quiet_dialogs):
    w, view, sid, types, _run = window_with_predictions(qtbot, app_env, tmp_path)
    select(view, "sumatriptan")
    quiet_dialogs.answer = False  # the expert answers No
    assert not view.accept_selected()
    question = [text for kind, _t, text in quiet_dialogs if kind == "question"]
    assert question and "Drug" in question[-1] and "Person" in question[-1]
    assert gold_of(w, sid, "sumatriptan") == ["Drug"]
    assert w.model.undo_stack.count() == 0
    assert "Kept the gold label" in view.status.text()
    # Yes: replaced, and said so
    quiet_dialogs.answer = True
    select(view, "sumatriptan")
    assert view.accept_selected()
    assert gold_of(w, sid, "sumatriptan") == ["Person"]
    assert "was Drug" in view.status.text()
    # accepting where there is no gold label does not ask
    quiet_dialogs.clear()
    select(view, "Lisbon")
    assert view.accept_selected()
    assert not [k for k, _t, _x in quiet_dialogs if k == "question"]


def test_gold_and_review_columns_are_in_view_without_scrolling(qtbot, app_env, tmp_path):
    w, view, *_ = window_with_predictions(qtbot, app_env, tmp_path, width=1000)
    qtbot.wait(50)
    hh = view.table.horizontalHeader()
    visible = view.table.viewport().width()
    for column in (RoutingTableModel.C_MENTION, RoutingTableModel.C_PRED, RoutingTableModel.C_GOLD,
                   RoutingTableModel.C_STATE):
        assert hh.sectionViewportPosition(column) + hh.sectionSize(column) <= visible, column
    # the decision's columns sit side by side, in this order, before the long sentence
    order = [hh.visualIndex(c) for c in (RoutingTableModel.C_MENTION, RoutingTableModel.C_PRED,
                                          RoutingTableModel.C_GOLD, RoutingTableModel.C_STATE)]
    assert order == [0, 1, 2, 3]


def test_reviewed_rows_are_marked_counted_and_the_next_row_is_selected(qtbot, app_env, tmp_path):
    w, view, sid, types, run = window_with_predictions(qtbot, app_env, tmp_path)
    model = view.table_model
    # 'Ada Quill' is already gold Person: nothing to decide; the other two are left
    assert model.left_to_review() == 2 and model.reviewed() == 0
    assert f"Run {run.id}" in view.count_label.text() and "2 left to review" in view.count_label.text()
    select(view, "Lisbon")
    assert view.accept_selected()
    assert model.left_to_review() == 1 and model.reviewed() == 1
    assert "1 reviewed" in view.count_label.text() and "1 left to review" in view.count_label.text()
    lisbon = next(i for i, r in enumerate(model.rows) if r.text[r.p.start:r.p.end] == "Lisbon")
    assert model.data(model.index(lisbon, RoutingTableModel.C_STATE)).startswith("✓")
    assert model.data(model.index(lisbon, RoutingTableModel.C_MENTION),
                      role=__import__("PySide6.QtCore").QtCore.Qt.ItemDataRole.BackgroundRole) is not None
    # accept-and-next: the row left to review (sumatriptan) is selected now
    r = view.selected_row()
    assert r is not None and r.text[r.p.start:r.p.end] == "sumatriptan"
    # the mark survives a reload (it comes from the store, not from the session)
    model.reload()
    assert model.reviewed() == 1 and model.left_to_review() == 1
    # undo: the row is left to review again
    w.undo_action.trigger()
    assert model.left_to_review() == 2


def test_a_newer_model_is_announced_with_an_offer_to_predict_again(qtbot, app_env, tmp_path):
    w, view, sid, types, run = window_with_predictions(qtbot, app_env, tmp_path)
    assert view.stale_banner.isHidden()
    task = w.model.project.tasks.create_next([types["Person"].id])
    w.model.project.tasks.freeze(task.id)
    w.model.tasksChanged.emit()
    assert not view.stale_banner.isHidden()
    assert f"run {run.id}" in view.stale_label.text() and "task(s) 1" in view.stale_label.text()
    assert "newer model" in view.stale_label.text()
    calls = []
    w.controller.start_prediction = lambda ids=None: calls.append(ids)
    view.repredict_button.click()
    assert calls == [None]
