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
