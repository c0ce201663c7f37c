# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Projects and knowledge types in the app: first launch opens the demo, create / open / recent, add and
edit types without code, deleting a trained type is refused with an explanation."""

from __future__ import annotations

from pathlib import Path

from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow, bundle_export_available
from app.views.types_view import AddTypeDialog, TypesTableModel, delete_explanation


def open_window(qtbot, settings) -> MainWindow:
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    return w


def test_first_launch_creates_and_opens_the_demo(qtbot, app_env):
    settings, home = app_env
    w = open_window(qtbot, settings)
    w.open_initial_project()
    qtbot.waitUntil(lambda: w.model is not None, timeout=30_000)
    assert (home / "Demo" / "project.sqlite").is_file()
    counts = w.model.counts()
    assert counts["sentences"] >= 300 and counts["types"] == 9
    assert w.windowTitle().startswith("Demo")
    names = {t.name: t for t in w.model.types()}
    assert names["Person"].shortcut == "1" and names["treats"].kind == "relation"
    assert names["Drug"].description
    # the label view shows the first sentence with its marks
    label = w.views["Label"]
    assert label.sentence_id is not None and label.editor.marks()
    # next launch: the demo is the recent project and opens directly
    assert settings.recent_projects()[0] == (home / "Demo").resolve()
    w.close()
    w2 = open_window(qtbot, settings)
    w2.open_initial_project()  # in the background: the window answers while the store opens
    qtbot.waitUntil(lambda: w2.model is not None, timeout=30_000)
    assert w2.model.folder == (home / "Demo").resolve()


def test_create_and_reopen_a_project(qtbot, app_env, tmp_path, quiet_dialogs):
    settings, _ = app_env
    w = open_window(qtbot, settings)
    folder = tmp_path / "My project"
    assert w.create_project(folder)
    assert w.model.counts()["sentences"] == 0
    other = make_project(tmp_path / "other")
    assert w.open_project(other)
    assert w.model.counts()["sentences"] > 0
    assert [p.name for p in settings.recent_projects()[:2]] == ["other", "My project"]
    # opening something that is not a project says why and keeps the window usable
    assert not w.open_project(tmp_path / "nothing here")
    assert any("not a ConPET project" in text for _k, _t, text in quiet_dialogs)


def test_add_rename_describe_colour_shortcut_without_code(qtbot, app_env, tmp_path):
    settings, _ = app_env
    w = open_window(qtbot, settings)
    w.open_project(make_project(tmp_path / "p"))
    view = w.views["Types"]
    dialog = AddTypeDialog(w.model, view)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.name_edit, "Vaccine")
    dialog.desc_edit.setPlainText("A vaccine, by its name.")
    dialog.shortcut_edit.setText("v")
    dialog._accept()
    assert dialog.created is not None
    t = w.model.project.types.find("Vaccine")
    assert t.description == "A vaccine, by its name." and t.shortcut == "v" and t.kind == "entity"
    # a reserved or clashing shortcut is refused with a message, nothing is added
    bad = AddTypeDialog(w.model, view)
    qtbot.addWidget(bad)
    bad.name_edit.setText("Hospital")
    bad.shortcut_edit.setText("h")
    bad._accept()
    assert bad.created is None and "reserved" in bad.error.text()
    assert w.model.project.types.find("Hospital") is None
    # in-place edits in the table: rename, describe, shortcut; colour through the model
    table = view.table_model
    row = table.row_of(t.id)
    assert table.setData(table.index(row, TypesTableModel.C_NAME), "Vaccine product")
    assert table.setData(table.index(row, TypesTableModel.C_DESC), "Any vaccine product.")
    assert table.setData(table.index(row, TypesTableModel.C_SHORTCUT), "x")
    w.model.set_type_colour(t.id, "#123456")
    t = w.model.project.types.get(t.id)
    assert (t.name, t.description, t.shortcut, t.colour) == ("Vaccine product", "Any vaccine product.", "x", "#123456")
    # a clash is refused with the store's reason shown in the view
    row = table.row_of(t.id)
    assert not table.setData(table.index(row, TypesTableModel.C_SHORTCUT), "1")
    assert "already used" in view.status.text()
    # the annotate view's palette shows the new type with its key
    label = w.views["Label"]
    assert any("Vaccine product" in b.text() for b in label.entity_palette.findChildren(type(label.delete_button)))


def test_deleting_a_trained_type_is_refused_with_an_explanation(qtbot, app_env, tmp_path):
    settings, _ = app_env
    w = open_window(qtbot, settings)
    w.open_project(make_project(tmp_path / "p"))
    person = w.model.project.types.find("Person")
    city = w.model.project.types.find("City")
    task = w.model.project.tasks.create_next([person.id])
    w.model.project.tasks.freeze(task.id)
    w.model.refresh_all()
    view = w.views["Types"]
    view.select_type(person.id)
    view.delete_selected()
    assert "learnt in task 1" in view.status.text()
    assert w.model.project.types.find("Person") is not None
    # even bypassing the explanation, the store refuses and the view shows why
    assert not view.delete_type(person.id)
    assert "cannot delete" in view.status.text()
    # an untrained type can be deleted after the question, its annotations go to the history
    n = w.model.gold_counts()[city.id]
    assert "marked deleted" in delete_explanation(w.model, w.model.type(city.id)).text
    view.select_type(city.id)
    view.delete_selected()
    assert w.model.project.types.find("City") is None
    assert w.model.project.annotations.count(type=city.id, status="deleted") == n


def test_bundle_export_entry_only_when_the_feature_exists(qtbot, app_env):
    settings, _ = app_env
    w = open_window(qtbot, settings)
    titles = [a.text() for a in w.menuBar().actions()[0].menu().actions()]
    assert ("Export &bundle…" in titles) == bundle_export_available()


def test_recent_list_survives_a_missing_folder(qtbot, app_env, tmp_path):
    settings, home = app_env
    settings.add_recent(tmp_path / "gone")
    w = open_window(qtbot, settings)
    w.open_initial_project()
    qtbot.waitUntil(lambda: w.model is not None, timeout=30_000)
    assert w.model.folder == (home / "Demo").resolve()
    assert Path(tmp_path / "gone") not in settings.recent_projects()[:1]


def test_import_through_the_dialog_with_progress(qtbot, app_env, tmp_path):
    from test_app_helpers import small_jsonl

    settings, _ = app_env
    w = open_window(qtbot, settings)
    w.create_project(tmp_path / "empty")
    data = small_jsonl(tmp_path / "data.jsonl", per_type=5)
    worker = w.import_file(data)
    with qtbot.waitSignal(w.controller.jobEnded, timeout=60_000) as ended:
        pass
    assert ended.args[:2] == ["import", "finished"]
    assert w.model.counts()["sentences"] > 0 and w.model.counts()["types"] == 3
    assert "Imported" in w.statusBar().currentMessage()
    assert w.views["Label"].list_model.rowCount() == w.model.counts()["sentences"]
    assert worker is not None
    # a malformed file: the dialog names the file, the line and the reason; nothing is written
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "entities": []}\n{"text": "broken", "entites": []}\n', encoding="utf-8")
    before = w.model.counts()
    w.import_file(bad)
    with qtbot.waitSignal(w.controller.jobEnded, timeout=60_000) as ended:
        pass
    assert ended.args[:2] == ["import", "failed"]
    assert "bad.jsonl:2" in ended.args[2] and "entites" in ended.args[2]
    from app.views.progress_dialog import ProgressDialog

    dialog = [d for d in w.findChildren(ProgressDialog) if d.outcome == "failed"][-1]
    assert "bad.jsonl:2" in dialog.detail.text()
    assert w.model.counts() == before


def test_export_annotations_as_jsonl_round_trips(qtbot, app_env, tmp_path):
    from app.main_window import _export_jsonl_job
    from app.workers import Worker
    from conpet.data.jsonl import read_jsonl_sentences

    settings, _ = app_env
    w = open_window(qtbot, settings)
    w.open_project(make_project(tmp_path / "p", relations=("works_for",), per_type=4))
    out = tmp_path / "out.jsonl"
    worker = Worker(lambda sink: _export_jsonl_job(w.model.folder, out, sink), name="export")
    with qtbot.waitSignal(worker.ended, timeout=60_000) as done:
        w.host.start(worker)
    assert done.args[1] == "finished" and done.args[2] == w.model.counts()["sentences"]
    lines = read_jsonl_sentences(out)
    n = sum(len(s.entities) + len(s.relations) for s in lines)
    assert n == w.model.counts()["annotations"]


def test_exports_default_to_the_project_folder_and_say_where_they_went(qtbot, app_env, tmp_path, monkeypatch,
                                                                       quiet_dialogs):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from app import dialogs, main_window

    settings, _ = app_env
    w = open_window(qtbot, settings)
    w.open_project(make_project(tmp_path / "p", per_type=3))
    offered = []

    def save_as(_parent, _title, default, _filters):
        offered.append(Path(default))
        return str(tmp_path / "out" / Path(default).name), ""

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    w.export_jsonl()
    qtbot.waitUntil(lambda: any(kind == "saved" for kind, _t, _x in quiet_dialogs), timeout=30_000)
    assert offered[0].parent == w.model.folder  # the project's folder, not the home folder
    out = tmp_path / "out" / "annotations.jsonl"
    notice = next(text for kind, _t, text in quiet_dialogs if kind == "saved")
    assert str(out) in notice and "sentence(s)" in notice
    assert str(out) in w.statusBar().currentMessage()

    # the bundle (its engine is faked here: a trained model is not needed to check the feedback)
    def fake_bundle(folder, path, sink=None):
        Path(path).write_bytes(b"PK\x05\x06" + b"\0" * 18)
        return Path(path)

    monkeypatch.setattr(main_window, "_export_bundle_job", fake_bundle)
    quiet_dialogs.clear()
    w.export_bundle()
    qtbot.waitUntil(lambda: any(kind == "saved" for kind, _t, _x in quiet_dialogs), timeout=30_000)
    assert offered[1] == w.model.folder / f"{w.model.name}.conpet.zip"
    notice = next(text for kind, _t, text in quiet_dialogs if kind == "saved")
    assert str(tmp_path / "out" / offered[1].name) in notice and "KiB" in notice

    # the notice's "Show in folder" button opens the folder that holds the file
    revealed = []
    monkeypatch.setattr(dialogs, "reveal", lambda path: revealed.append(Path(path)))
    box = dialogs.saved_box(w, "Bundle exported", notice, out)
    qtbot.addWidget(box)
    button = next(b for b in box.buttons() if b.text() == "Show in folder")
    assert box.buttonRole(button) == QMessageBox.ButtonRole.ActionRole
    button.click()
    assert revealed == [out]


def test_types_differ_by_more_than_case_get_their_own_colour_and_key_and_tab_leaves_the_description(
        qtbot, app_env, tmp_path):
    import json

    from PySide6.QtCore import Qt

    settings, _ = app_env
    w = open_window(qtbot, settings)
    w.open_project(make_project(tmp_path / "p"))  # Person, City, Drug with keys 1-3
    view = w.views["Types"]
    # "city" beside "City" is refused, in the dialog and by renaming
    dup = AddTypeDialog(w.model, view)
    qtbot.addWidget(dup)
    dup.name_edit.setText("city")
    dup._accept()
    assert dup.created is None and "City" in dup.error.text()
    person = w.model.project.types.find("Person")
    table = view.table_model
    assert not table.setData(table.index(table.row_of(person.id), TypesTableModel.C_NAME), "CITY")
    assert "already" in view.status.text() and w.model.project.types.get(person.id).name == "Person"
    # a new type gets a colour no other type has (not Person's blue)
    new = AddTypeDialog(w.model, view)
    qtbot.addWidget(new)
    new.name_edit.setText("Vaccine")
    new._accept()
    colours = [t.colour for t in w.model.types()]
    assert new.created is not None and len(set(colours)) == len(colours)
    # Tab in the description moves on to the shortcut field
    tab = AddTypeDialog(w.model, view)
    qtbot.addWidget(tab)
    tab.show()
    tab.activateWindow()
    tab.desc_edit.setFocus()
    qtbot.waitUntil(tab.desc_edit.hasFocus, timeout=5_000)
    qtbot.keyClick(tab.desc_edit, Qt.Key.Key_Tab)
    assert tab.desc_edit.toPlainText() == "" and not tab.desc_edit.hasFocus()
    # imported types: distinct colours and a shortcut key each
    data = tmp_path / "new.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"Item {i} and Thing {i}.", "entities": [
        {"start": 0, "end": 6, "type": f"Gadget{i % 3}"}, {"start": 11, "end": 18, "type": f"Widget{i % 3}"}]})
        for i in range(6)) + "\n", encoding="utf-8")
    w.import_file(data)
    with qtbot.waitSignal(w.controller.jobEnded, timeout=60_000):
        pass
    types = w.model.project.types.list()
    assert len(types) == 10
    assert len({t.colour for t in types}) == len(types)
    assert all(t.shortcut for t in types)
    assert len({t.shortcut for t in types}) == len(types)
    label = w.views["Label"]
    assert all(any(t.name in b.text() and b.text().startswith(t.shortcut) for b in
                   label.entity_palette.findChildren(type(label.delete_button))) for t in types if t.kind == "entity")
