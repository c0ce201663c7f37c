# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""A relation type's head and tail entity types in the app: picked in the Types view (undoable), and the
Label view greys the relation types the marked pair does not fit, and refuses them with the reason."""

from __future__ import annotations

from PySide6.QtCore import Qt
from test_app_helpers import (  # noqa: F401
    app_env,
    click_at,
    drag_select,
    make_project,
    no_leftover_threads,
    quiet_dialogs,
)

from app.main_window import MainWindow
from app.views.types_view import TypesTableModel

TEXT = "Dr Ada Quill joined Brightwell Labs in Lisbon last year."


def open_window(qtbot, app_env, tmp_path) -> MainWindow:
    settings, _ = app_env
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", types=("Person", "City", "Company"),
                                relations=("works_for",), per_type=3))
    return w


def _tick(lst, name: str, state=Qt.CheckState.Checked) -> None:
    item = next(lst.item(i) for i in range(lst.count()) if lst.item(i).text() == name)
    item.setCheckState(state)


def _ticked(lst) -> set[str]:
    return {lst.item(i).text() for i in range(lst.count()) if lst.item(i).checkState() == Qt.CheckState.Checked}


def test_types_view_picks_head_and_tail_types_undoably(qtbot, app_env, tmp_path):
    w = open_window(qtbot, app_env, tmp_path)
    w.show_tab("Types")
    view = w.views["Types"]
    qtbot.waitUntil(view.isVisible, timeout=10_000)
    types = {t.name: t for t in w.model.types()}
    editor = view.arguments
    view.select_type(types["Person"].id)
    assert not editor.isEnabled()  # an entity type has no head or tail
    view.select_type(types["works_for"].id)
    assert editor.isEnabled() and "works_for" in editor.title()
    assert {"Person", "City", "Company"} <= {editor.lists["head"].item(i).text()
                                             for i in range(editor.lists["head"].count())}
    _tick(editor.lists["head"], "Person")
    _tick(view.arguments.lists["tail"], "Company")
    stored = w.model.project.types.get(types["works_for"].id)
    assert stored.head_type_ids == (types["Person"].id,) and stored.tail_type_ids == (types["Company"].id,)
    # the selection and the ticks survive the table's reload; the table sums it up
    assert view.selected_type().id == types["works_for"].id
    assert _ticked(view.arguments.lists["head"]) == {"Person"}
    row = view.table_model.row_of(types["works_for"].id)
    assert view.table_model.index(row, TypesTableModel.C_ARGS).data() == "Person → Company"
    # each tick is one undo step
    w.undo_action.trigger()
    assert w.model.project.types.get(types["works_for"].id).tail_type_ids == ()
    assert _ticked(view.arguments.lists["tail"]) == set()
    assert "Undid" in view.status.text()
    w.redo_action.trigger()
    assert w.model.project.types.get(types["works_for"].id).tail_type_ids == (types["Company"].id,)
    # a restriction that gold relations already break is refused with the reason, and the list goes back
    _tick(view.arguments.lists["head"], "Person", Qt.CheckState.Unchecked)
    _tick(view.arguments.lists["head"], "City")
    assert "cannot restrict the head of 'works_for' to City" in view.status.text()
    assert _ticked(view.arguments.lists["head"]) == set()
    assert w.model.project.types.get(types["works_for"].id).head_type_ids == ()


def test_label_view_greys_and_refuses_relation_types_the_pair_does_not_fit(qtbot, app_env, tmp_path):
    w = open_window(qtbot, app_env, tmp_path)
    types = {t.name: t for t in w.model.types()}
    w.model.set_relation_arguments(types["works_for"].id, [types["Person"].id], [types["Company"].id])
    sid = w.model.project.sentences.add(TEXT).id
    w.model.sentencesChanged.emit()
    view = w.views["Label"]
    w.show_tab("Label")
    assert view.select_sentence(sid)
    qtbot.waitUntil(lambda: view.sentence_id == sid, timeout=30_000)
    qtbot.waitUntil(view.editor.isVisible, timeout=10_000)
    ed = view.editor
    ed.setFocus()
    types = {t.name: t for t in w.model.types()}
    for mention, t in (("Ada Quill", "Person"), ("Brightwell Labs", "Company")):
        s = TEXT.index(mention)
        drag_select(ed, s, s + len(mention))
        qtbot.keyClick(ed, types[t].shortcut)
    button = view._type_buttons[types["works_for"].id]
    # the wrong way round: Company -> Person
    click_at(ed, TEXT.index("Brightwell") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_H)
    click_at(ed, TEXT.index("Ada") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_T)
    assert not button.isEnabled()
    assert "No relation type takes this head and tail" in view.status.text()
    assert button.toolTip() == "works_for takes a head of type Person; the head 'Brightwell Labs' is Company"
    qtbot.keyClick(ed, types["works_for"].shortcut)  # the key is refused by the store, with the reason
    assert "'works_for' takes a head of type Person, and the head 'Brightwell Labs' is 'Company'" in view.status.text()
    assert not any(a.kind == "relation" for a in w.model.project.annotations.for_sentence(sid))
    # the right way round is offered and taken
    view.clear_ends()
    assert button.isEnabled()
    click_at(ed, TEXT.index("Ada") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_H)
    click_at(ed, TEXT.index("Brightwell") + 1)
    qtbot.keyClick(ed, Qt.Key.Key_T)
    assert button.isEnabled() and f"{types['works_for'].shortcut} = works_for" in view.status.text()
    qtbot.keyClick(ed, types["works_for"].shortcut)
    assert any(a.kind == "relation" for a in w.model.project.annotations.for_sentence(sid))


def test_the_demo_declares_its_relation_types_arguments(tmp_path):
    from app.jobs import create_demo_project
    from conpet.store import Project

    with Project.open(create_demo_project(tmp_path / "demo")) as p:
        names = {t.id: t.name for t in p.types.list()}
        works_for = p.types.find("works_for", "relation")
        assert [names[i] for i in works_for.head_type_ids] == ["Person"]
        assert [names[i] for i in works_for.tail_type_ids] == ["Company"]
        assert sorted(names[i] for i in p.types.find("located_in", "relation").head_type_ids) == ["City", "Company"]
