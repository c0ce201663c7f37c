# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The model's suggestions in the Label view, driven by keys and clicks: drawn apart from gold, selected
with Tab or a click, accepted with Space, rejected with Delete (kept, shown struck through), all accepted
with Enter; every decision one undo step, recorded with the model and run; and the "next most useful"
queue with its counter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from test_app_helpers import (  # noqa: F401
    app_env,
    click_at,
    make_project,
    no_leftover_threads,
    quiet_dialogs,
)
from test_app_labelling import TEXT, gold, setup

from conpet.data.example import Span
from conpet.store.records import NewPrediction


def span(m: str) -> Span:
    return Span(TEXT.index(m), TEXT.index(m) + len(m))


def predict(w, rows, *, finish=True):
    p = w.model.project
    run = p.runs.start("dynamic-lda", purpose="predict")
    p.predictions.add_many(run.id, rows)
    if finish:
        p.runs.finish(run.id)
    w.model.predictionsChanged.emit()
    return run.id


def test_select_accept_reject_with_keys_and_undo_each(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    run = predict(w, [NewPrediction(sid, (span("Ada Quill"),), "Person", 0.7),
                      NewPrediction(sid, (span("Brightwell Labs"),), "Company", 0.8),
                      NewPrediction(sid, (span("Lisbon"),), "City", 0.9)])
    assert len(view.suggestions) == 3
    marks = ed.marks()
    assert all(m.suggested for m in marks) and len(marks) == 3  # drawn dotted and pale, not as gold
    assert "Tab" in view.accept_next_button.toolTip() and "Space" in view.accept_next_button.toolTip()

    ed.setFocus()
    qtbot.keyClick(ed, Qt.Key.Key_Tab)  # selects the first suggestion, and the focus stays in the editor
    first = view.suggestions[0]
    assert view.selected_suggestion == first.id and ed.hasFocus()
    assert "Space accepts" in view.status.text() and "Delete rejects" in view.status.text()
    qtbot.keyClick(ed, Qt.Key.Key_Space)  # accept it
    accepted = [a for a in w.model.annotations(sid) if a.status == "gold"]
    me = w.model.project.user  # who decided, and the model and run that proposed it
    assert len(accepted) == 1 and accepted[0].author == f"{me} via model:dynamic-lda run {run}"
    assert view.table.item(0, 4).text() == f"{me} via model:dynamic-lda run {run}"  # provenance is shown
    assert f"run {run}" in view.table.item(0, 1).toolTip()
    gold_mark = next(m for m in ed.marks() if not m.suggested and not m.rejected)
    assert f"accepted from model:dynamic-lda run {run} by {me}" in gold_mark.label
    assert len(view.suggestions) == 2 and view.selected_suggestion == view.suggestions[0].id  # the next one

    # a click selects a suggestion; Delete rejects it, kept as "rejected" and drawn struck through
    click_at(ed, TEXT.index("Lisbon") + 2)
    lisbon = next(p for p in view.suggestions if p.label == "City")
    assert view.selected_suggestion == lisbon.id
    assert view.delete_button.text() == "Reject suggestion"
    qtbot.keyClick(ed, Qt.Key.Key_Delete)
    rejected = [a for a in w.model.annotations(sid) if a.status == "rejected"]
    assert [(TEXT[a.start:a.end], a.type_name, a.author) for a in rejected] == [
        ("Lisbon", "City", f"{me} via model:dynamic-lda run {run}")]
    assert [m.rejected for m in ed.marks() if m.key == rejected[0].id] == [True]
    assert "City" not in [p.label for p in view.suggestions]  # not offered again
    assert w.model.undo_stack.count() == 2  # one step per decision

    # undo from another sentence goes back to the one it changes
    other = next(i for i in view.list_model.ids() if i != sid)
    assert view.select_sentence(other)
    w.undo_action.trigger()
    assert view.sentence_id == sid and not [a for a in w.model.annotations(sid) if a.status == "rejected"]
    assert "City" in [p.label for p in view.suggestions]
    w.undo_action.trigger()
    assert gold(w, sid) == [] and len(view.suggestions) == 3
    w.redo_action.trigger()
    w.redo_action.trigger()
    assert [a.status for a in w.model.annotations(sid) if TEXT[a.start:a.end] == "Lisbon"] == ["rejected"]
    assert "rejected as City" in view.status.text()


def test_shift_tab_cycles_backwards_escape_clears_and_enter_accepts_all_with_provenance(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    run = predict(w, [NewPrediction(sid, (span("Ada Quill"),), "Person", 0.7),
                      NewPrediction(sid, (span("Lisbon"),), "City", 0.9)])
    qtbot.keyClick(ed, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_suggestion == view.suggestions[-1].id
    qtbot.keyClick(ed, Qt.Key.Key_Escape)  # nothing selected: Delete then rejects nothing
    qtbot.keyClick(ed, Qt.Key.Key_Delete)
    assert view.selected_suggestion is None and len(view.suggestions) == 2 and w.model.undo_stack.count() == 0
    qtbot.keyClick(ed, Qt.Key.Key_Tab)
    qtbot.keyClick(ed, Qt.Key.Key_Tab)
    qtbot.keyClick(ed, Qt.Key.Key_Tab)  # round and round
    assert view.selected_suggestion == view.suggestions[0].id
    qtbot.keyClick(ed, Qt.Key.Key_Return)
    assert {a.author for a in w.model.project.annotations.for_sentence(sid)} == {
        f"{w.model.project.user} via model:dynamic-lda run {run}"}
    assert w.model.undo_stack.count() == 1


def test_next_most_useful_goes_by_the_models_doubt_and_counts_the_reviewed(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    qtbot.keyClick(view.editor, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    assert "No prediction run yet" in view.status.text() and view.sentence_id == sid
    p = w.model.project
    sure, unsure = (p.sentences.add(t).id for t in ("Ada Quill lives in Porto.", "Bo Lind visited Oslo."))
    w.model.sentencesChanged.emit()
    n_unlabelled = len(p.sentences.ids(status="unannotated"))
    predict(w, [NewPrediction(sure, (Span(19, 24),), "City", 0.99, expert_scores={"detector": 0.99}),
                NewPrediction(unsure, (Span(16, 20),), "City", 0.4, selector_scores=(0.5, 0.5),
                              expert_scores={"detector": 0.55}),
                NewPrediction(sid, (span("Lisbon"),), "City", 0.8)])
    assert view.queue_label.text() == f"0 of {n_unlabelled} reviewed"
    qtbot.keyClick(view.editor, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    assert view.sentence_id == unsure  # the least sure first
    assert view.selected_suggestion is not None  # its suggestion ready for Space / Delete
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)  # accept it: in the queue, Enter goes on in the queue
    assert view.sentence_id == sid
    assert f"1 of {n_unlabelled} reviewed" in view.status.text()
    view.useful_button.click()  # went on without marking anything: reviewed too
    assert view.sentence_id == sure and view.queue_label.text() == f"2 of {n_unlabelled} reviewed"
