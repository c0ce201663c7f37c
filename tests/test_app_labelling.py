# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Labelling in the editor with simulated mouse and keys: entities by drag + shortcut and by Shift+arrows,
relations by head (H), tail (T) and the relation's key, clear messages for bad selections, every edit
saved at once, undo and redo through the QUndoStack, and the sentence list's filters."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar
from test_app_helpers import (  # noqa: F401
    app_env,
    click_at,
    drag_select,
    make_project,
    no_leftover_threads,
    quiet_dialogs,
)

from app.main_window import MainWindow

TEXT = "Dr Ada Quill joined Brightwell Labs in Lisbon last year."


def setup(qtbot, app_env, tmp_path):
    settings, _ = app_env
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City", "Company"),
                                relations=("works_for",), per_type=3))
    sid = w.model.project.sentences.add(TEXT).id
    w.model.sentencesChanged.emit()
    view = w.views["Label"]
    w.show_tab("Label")
    assert view.select_sentence(sid)
    qtbot.waitUntil(lambda: view.sentence_id == sid, timeout=30_000)
    qtbot.waitUntil(view.editor.isVisible, timeout=10_000)  # the new tabs are shown by a queued event
    view.editor.setFocus()
    keys = {t.name: t for t in w.model.types()}
    return w, view, sid, keys


def gold(w, sid):
    return [(a.kind, TEXT[a.start:a.end] if a.kind == "entity" else
             (TEXT[a.start:a.end], TEXT[a.tail_start:a.tail_end]), a.type_name)
            for a in w.model.project.annotations.for_sentence(sid) if a.status == "gold"]


def test_mark_entities_with_mouse_and_keyboard_then_undo_redo(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    # mouse: drag over "Ada Quill", then the Person key
    start = TEXT.index("Ada Quill")
    drag_select(ed, start, start + len("Ada Quill"))
    assert ed.selected_span() == (start, start + len("Ada Quill"))
    qtbot.keyClick(ed, types["Person"].shortcut)
    assert ("entity", "Ada Quill", "Person") in gold(w, sid)  # saved at once
    assert "Marked 'Ada Quill' as Person" in view.status.text()
    # keyboard: put the cursor before "Lisbon" and extend with Shift+Right
    click_at(ed, TEXT.index("Lisbon"))
    for _ in range(len("Lisbon")):
        qtbot.keyClick(ed, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(ed, types["City"].shortcut)
    assert ("entity", "Lisbon", "City") in gold(w, sid)
    # the type list (a click on the palette button) works as well as the key
    start = TEXT.index("Brightwell Labs")
    drag_select(ed, start, start + len("Brightwell Labs"))
    view.findChild(type(view.delete_button), f"typeButton-{types['Company'].id}").click()
    assert ("entity", "Brightwell Labs", "Company") in gold(w, sid)
    assert len(ed.marks()) == 3

    stack = w.model.undo_stack
    assert stack.count() == 3
    w.undo_action.trigger()  # Company mark undone
    assert ("entity", "Brightwell Labs", "Company") not in gold(w, sid)
    qtbot.keyClick(ed, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Z from the editor
    assert ("entity", "Lisbon", "City") not in gold(w, sid)
    w.redo_action.trigger()
    w.redo_action.trigger()
    assert {g[1] for g in gold(w, sid)} == {"Ada Quill", "Lisbon", "Brightwell Labs"}
    # history is kept: the undone-and-redone annotation has several versions
    lisbon = next(a for a in w.model.project.annotations.for_sentence(sid) if TEXT[a.start:a.end] == "Lisbon")
    assert [v.status for v in w.model.project.annotations.history(lisbon.id)] == ["gold", "deleted", "gold"]

    # retype: click a mention, press another type's key; delete it with the Delete key; undo both
    click_at(ed, TEXT.index("Lisbon") + 2)
    assert view.focus_annotation == lisbon.id
    qtbot.keyClick(ed, types["Company"].shortcut)
    assert ("entity", "Lisbon", "Company") in gold(w, sid)
    qtbot.keyClick(ed, Qt.Key.Key_Delete)
    assert all(g[1] != "Lisbon" for g in gold(w, sid))
    w.undo_action.trigger()
    w.undo_action.trigger()
    assert ("entity", "Lisbon", "City") in gold(w, sid)


def test_relation_by_head_tail_and_key(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    for mention, t in (("Ada Quill", "Person"), ("Brightwell Labs", "Company")):
        s = TEXT.index(mention)
        drag_select(ed, s, s + len(mention))
        qtbot.keyClick(ed, types[t].shortcut)
    # press the relation key too early: a clear message, nothing saved
    qtbot.keyClick(ed, types["works_for"].shortcut)
    assert "needs a head and a tail" in view.status.text()
    # head: click the person mention and press H; tail: select the company with the mouse and press T
    click_at(ed, TEXT.index("Ada") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_H)
    s = TEXT.index("Brightwell Labs")
    drag_select(ed, s, s + len("Brightwell Labs"))
    qtbot.keyClick(ed, Qt.Key.Key_T)
    assert "Head: 'Ada Quill'" in view.ends_label.text() and "Tail: 'Brightwell Labs'" in view.ends_label.text()
    qtbot.keyClick(ed, types["works_for"].shortcut)
    assert ("relation", ("Ada Quill", "Brightwell Labs"), "works_for") in gold(w, sid)
    assert view.editor.pending("head") is None  # ends cleared for the next relation
    w.undo_action.trigger()
    assert not any(g[0] == "relation" for g in gold(w, sid))
    w.redo_action.trigger()
    assert any(g[0] == "relation" for g in gold(w, sid))


def test_invalid_selections_get_a_clear_message(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    s = TEXT.index("Brightwell Labs")
    drag_select(ed, s, s + len("Brightwell Labs"))
    qtbot.keyClick(ed, types["Company"].shortcut)
    before = gold(w, sid)
    # overlapping an existing mention: the store's reason, shown in the status line
    drag_select(ed, TEXT.index("Labs"), TEXT.index("Lisbon") + len("Lisbon"))
    qtbot.keyClick(ed, types["City"].shortcut)
    assert "overlaps" in view.status.text() and view.status.property("level") == "error"
    # (half a word is no longer refused: it snaps to the whole word, see the test below)
    # nothing selected
    click_at(ed, 0)
    ed.clear_selection()
    qtbot.keyClick(ed, types["Person"].shortcut)
    assert "Select the words" in view.status.text()
    # a key no type has
    qtbot.keyClick(ed, "q")
    assert "No type has the key 'q'" in view.status.text()
    # head and tail overlapping
    drag_select(ed, TEXT.index("Brightwell"), TEXT.index("Brightwell") + len("Brightwell"))
    qtbot.keyClick(ed, Qt.Key.Key_H)
    drag_select(ed, TEXT.index("Brightwell"), TEXT.index("Labs") + 4)
    qtbot.keyClick(ed, Qt.Key.Key_T)
    assert "must not overlap" in view.status.text()
    assert gold(w, sid) == before
    assert w.model.undo_stack.count() == 1  # refused edits never reach the undo stack


def test_sentence_list_search_and_filters(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    total = view.list_model.rowCount()
    qtbot.keyClicks(view.search, "Brightwell")
    qtbot.waitUntil(lambda: view.list_model.rowCount() < total, timeout=30_000)
    assert sid in view.list_model.ids()
    assert all("Brightwell" in w.model.sentence(i).text for i in view.list_model.ids())
    view.search.clear()
    qtbot.waitUntil(lambda: view.list_model.rowCount() == total, timeout=30_000)
    view.status_filter.setCurrentIndex(view.status_filter.findData("unannotated"))
    assert view.list_model.ids() == [sid]
    view.status_filter.setCurrentIndex(0)
    view.type_filter.setCurrentIndex(view.type_filter.findData(types["works_for"].id))
    ids = view.list_model.ids()
    assert ids and sid not in ids
    view.type_filter.setCurrentIndex(0)
    # prediction confidence: nothing predicted yet, so "Not predicted" keeps everything
    view.confidence_filter.setCurrentIndex(view.confidence_filter.findData("none"))
    assert view.list_model.rowCount() == total
    view.confidence_filter.setCurrentIndex(view.confidence_filter.findData("low"))
    assert view.list_model.rowCount() == 0
    # keyboard navigation between sentences
    view.confidence_filter.setCurrentIndex(0)
    view.select_sentence(view.list_model.ids()[0])
    view.step(1)
    assert view.sentence_id == view.list_model.ids()[1]


def test_accepting_a_prediction_that_matches_the_gold_label_then_undo_keeps_the_label(qtbot, app_env, tmp_path):
    """Accept is a no-op when the span is already gold with the predicted type: undo must not delete
    the user's annotation. Accepting a different type retypes it and undo brings the old type back."""
    from app.undo import AcceptPrediction, perform
    from conpet.data.example import Span
    from conpet.store.records import NewPrediction

    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    start = TEXT.index("Lisbon")
    ann = w.model.project.annotations.add_entity(sid, start, start + len("Lisbon"), types["City"].id)
    run = w.model.project.runs.start("dynamic-typesel", purpose="predict")
    w.model.project.predictions.add_many(run.id, [
        NewPrediction(sid, (Span(start, start + 6),), "City", 0.9),
        NewPrediction(sid, (Span(start, start + 6),), "Person", 0.6)])
    same, other = sorted(w.model.project.predictions.for_run(run.id), key=lambda p: p.label)
    assert (same.label, other.label) == ("City", "Person")
    assert perform(w.model, AcceptPrediction(w.model, same.id))
    assert ("entity", "Lisbon", "City") in gold(w, sid)
    w.undo_action.trigger()
    assert ("entity", "Lisbon", "City") in gold(w, sid)  # it was gold before: undo keeps it
    assert perform(w.model, AcceptPrediction(w.model, other.id))
    assert ("entity", "Lisbon", "Person") in gold(w, sid)
    w.undo_action.trigger()
    assert ("entity", "Lisbon", "City") in gold(w, sid) and w.model.annotation(ann.id).type_name == "City"
    w.redo_action.trigger()
    assert ("entity", "Lisbon", "Person") in gold(w, sid)


def test_undo_shows_the_sentence_it_changes_and_highlights_the_edit(qtbot, app_env, tmp_path):
    """Ctrl+Z on another sentence must not change the first one out of sight: the view goes there,
    selects the words of the removed mention (or highlights the restored one) and says what it did."""
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    start = TEXT.index("Lisbon")
    drag_select(ed, start, start + len("Lisbon"))
    qtbot.keyClick(ed, types["City"].shortcut)
    other = next(i for i in view.list_model.ids() if i != sid)
    assert view.select_sentence(other)
    assert view.sentence_id == other
    qtbot.keyClick(view.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert ("entity", "Lisbon", "City") not in gold(w, sid)
    assert view.sentence_id == sid  # the view went to the sentence the undo changed
    assert ed.selected_span() == (start, start + len("Lisbon"))  # the words it covered are selected
    assert "Undid" in view.status.text() and "'Lisbon'" in view.status.text() and "removed" in view.status.text()
    assert "Undid" in w.statusBar().currentMessage()
    # redo from another sentence: back again, the restored mention highlighted
    assert view.select_sentence(other)
    w.redo_action.trigger()
    assert view.sentence_id == sid
    lisbon = next(a for a in w.model.annotations(sid) if TEXT[a.start:a.end] == "Lisbon")
    assert view.focus_annotation == lisbon.id and "now City" in view.status.text()


def test_the_toolbar_keeps_every_button_in_view_when_undo_names_a_long_edit(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    long_name = w.model.add_type("Programming language of the early mainframe era", "entity", shortcut="p")
    start = TEXT.index("Lisbon")
    drag_select(view.editor, start, start + len("Lisbon"))
    qtbot.keyClick(view.editor, "p")
    assert long_name.name in w.undo_action.text()
    w.resize(1000, 800)
    qtbot.wait(50)
    toolbar = w.findChild(QToolBar, "mainToolbar")
    for action in (w.predict_action, w.cancel_action, w.train_action):
        button = toolbar.widgetForAction(action)
        assert button is not None and button.isVisible(), action.text()
        assert button.geometry().right() <= toolbar.width()
    assert toolbar.widgetForAction(w.undo_action).text() == "Undo"
    assert long_name.name in w.undo_action.toolTip()  # the edit is named in the tooltip instead


def test_a_selection_inside_words_snaps_to_the_whole_words_and_the_layout_does_not_jump(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    # "a Qui" … "ll" : from inside "Ada" to inside "Quill"
    drag_select(ed, TEXT.index("Ada") + 1, TEXT.index("Quill") + 3)
    qtbot.keyClick(ed, types["Person"].shortcut)
    assert ("entity", "Ada Quill", "Person") in gold(w, sid)
    assert "widened to whole words" in view.status.text()
    # the head of a relation snaps too
    drag_select(ed, TEXT.index("Brightwell") + 3, TEXT.index("Labs") + 2)
    qtbot.keyClick(ed, Qt.Key.Key_H)
    head = ed.pending("head")
    assert TEXT[head.start:head.end] == "Brightwell Labs"
    # a message that wraps onto more lines leaves the editor and the buttons where they were
    view.show_message("info", "Ready.")
    qtbot.wait(20)
    before = (ed.geometry(), view.delete_button.mapTo(view, view.delete_button.rect().topLeft()))
    view.show_message("error", "A long explanation " * 12)
    qtbot.wait(20)
    assert view.status.heightForWidth(view.status.width()) >= 2 * view.status.fontMetrics().lineSpacing()
    assert (ed.geometry(), view.delete_button.mapTo(view, view.delete_button.rect().topLeft())) == before


def test_the_sentence_list_counts_what_is_annotated_and_what_is_left(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    total = len(w.model.sentence_ids())
    done = total - 1  # every imported sentence has a label; the one added by setup() has none
    assert f"{done} annotated" in view.count_label.text() and "1 to go" in view.count_label.text()
    start = TEXT.index("Lisbon")
    drag_select(view.editor, start, start + len("Lisbon"))
    qtbot.keyClick(view.editor, types["City"].shortcut)
    assert f"{total} annotated (100 %)" in view.count_label.text() and "0 to go" in view.count_label.text()


def test_a_relation_is_drawn_as_a_labelled_arc_from_head_to_tail(qtbot, app_env, tmp_path):
    from PySide6.QtGui import QColor

    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    for mention, t in (("Ada Quill", "Person"), ("Brightwell Labs", "Company")):
        s = TEXT.index(mention)
        drag_select(ed, s, s + len(mention))
        qtbot.keyClick(ed, types[t].shortcut)
    click_at(ed, TEXT.index("Ada") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_H)
    click_at(ed, TEXT.index("Brightwell") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_T)
    qtbot.keyClick(ed, types["works_for"].shortcut)
    [arc] = ed.arcs()
    assert arc.label == "works_for" and arc.colour == types["works_for"].colour
    assert TEXT[arc.head[0]:arc.head[1]] == "Ada Quill" and TEXT[arc.tail[0]:arc.tail[1]] == "Brightwell Labs"
    [g] = ed.arc_geometry()
    head_mid = (ed.position_rect(arc.head[0]).left() + ed.position_rect(arc.head[1]).left()) / 2
    assert abs(g.start.x() - head_mid) < 2 and g.end.x() > g.start.x()  # head → tail, left to right here
    assert g.apex.y() < g.start.y() and g.apex.y() >= 0  # above the text, inside the editor
    # it is really painted: the arc's colour appears between the two mentions, above the text
    image = ed.viewport().grab().toImage()
    colour = QColor(arc.colour)
    hits = 0
    for x in range(int(g.start.x()), int(g.end.x()), 2):
        for y in range(int(g.apex.y()) - 12, int(g.start.y()) + 1):
            c = QColor(image.pixel(x, y))
            if abs(c.red() - colour.red()) + abs(c.green() - colour.green()) + abs(c.blue() - colour.blue()) < 90:
                hits += 1
    assert hits > 20
    # undoing the relation removes its arc
    w.undo_action.trigger()
    assert ed.arcs() == []


def test_a_relation_needs_no_t_when_the_tail_is_clicked_after_the_head(qtbot, app_env, tmp_path):
    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    ed = view.editor
    for mention, t in (("Ada Quill", "Person"), ("Brightwell Labs", "Company")):
        s = TEXT.index(mention)
        drag_select(ed, s, s + len(mention))
        qtbot.keyClick(ed, types[t].shortcut)
    click_at(ed, TEXT.index("Ada") + 1)       # 1 click
    qtbot.keyClick(ed, Qt.Key.Key_H)          # 1 key
    click_at(ed, TEXT.index("Brightwell") + 1)  # 1 click
    qtbot.keyClick(ed, types["works_for"].shortcut)  # 1 key: the clicked mention is the tail
    assert ("relation", ("Ada Quill", "Brightwell Labs"), "works_for") in gold(w, sid)
    # with only the head set and nothing else pointed at, the key still asks for the tail
    click_at(ed, TEXT.index("Ada") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_H)
    qtbot.keyClick(ed, types["works_for"].shortcut)
    assert "needs a head and a tail" in view.status.text()


def test_enter_accepts_the_sentences_suggestions_and_goes_to_the_next(qtbot, app_env, tmp_path):
    from conpet.data.example import Span
    from conpet.store.records import NewPrediction

    w, view, sid, types = setup(qtbot, app_env, tmp_path)
    p = w.model.project
    span = {m: Span(TEXT.index(m), TEXT.index(m) + len(m)) for m in ("Ada Quill", "Lisbon", "Brightwell Labs")}
    p.annotations.add_entity(sid, span["Ada Quill"].start, span["Ada Quill"].end, types["Person"].id)
    run = p.runs.start("dynamic-typesel", purpose="predict")
    p.predictions.add_many(run.id, [NewPrediction(sid, (span["Ada Quill"],), "City", 0.5),  # gold already: not offered
                                    NewPrediction(sid, (span["Lisbon"],), "City", 0.9),
                                    NewPrediction(sid, (span["Brightwell Labs"],), "Company", 0.8)])
    p.runs.finish(run.id)
    w.model.predictionsChanged.emit()
    w.model.annotationsChanged.emit(sid)
    assert len(view.suggestions) == 2 and "2 suggestions" in view.title.text()
    assert view.accept_next_button.text() == "Accept 2 suggestions && next (Enter)"
    assert sum(m.suggested for m in view.editor.marks()) == 2
    row = view.list.currentIndex().row()
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)  # one key for the whole sentence
    assert {g[1]: g[2] for g in gold(w, sid)} == {"Ada Quill": "Person", "Lisbon": "City", "Brightwell Labs": "Company"}
    assert view.list.currentIndex().row() == row + 1 or "last sentence" in view.status.text()
    assert "Accepted 2 suggestion(s)" in view.status.text()
    assert w.model.undo_stack.count() == 1  # one undo step
    w.undo_action.trigger()
    assert {g[1] for g in gold(w, sid)} == {"Ada Quill"}
    assert view.sentence_id == sid  # and the undo shows the sentence it changed
