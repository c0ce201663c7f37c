# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The app in a team: the user's name (asked in the settings) is the author of what they do, and a project
on a PostgreSQL server opens like a folder ("Connect to a server…")."""

from __future__ import annotations

from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
)
from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from conpet.store import Project
from conpet.store.transfer import copy_project


def open_window(qtbot, settings) -> MainWindow:
    w = MainWindow(settings, preload=False)
    qtbot.addWidget(w)
    w.show()
    return w


def test_the_name_in_the_settings_is_the_author_and_a_server_project_opens(qtbot, app_env, quiet_dialogs,
                                                                           postgres_url, tmp_path):
    settings, _home = app_env
    copy_project(make_project(tmp_path / "p"), postgres_url)
    w = open_window(qtbot, settings)
    try:
        assert w.open_project(postgres_url)
        assert w.model.project.is_server and "postgresql://" in w.project_label.text()
        assert w.settings.recent_projects() == []  # a URL may hold a password: not remembered
        assert not w.set_user_name("   ") and quiet_dialogs  # refused, with the reason shown
        assert w.set_user_name("Ana Lima")
        assert settings.user_name() == "Ana Lima"
        sid = next(i for i in w.model.project.sentences.ids() if w.model.annotations(i))
        assert w.model.project.annotations.delete(w.model.annotations(sid)[0].id).author == "Ana Lima"
        with Project.open(postgres_url) as worker_side:  # a worker's own Project: the same name
            assert worker_side.user == "Ana Lima"
    finally:
        w.close()
    w2 = open_window(qtbot, settings)  # the name is kept in the settings: asked once
    try:
        assert w2.open_project(postgres_url) and w2.model.project.user == "Ana Lima"
    finally:
        w2.close()


def test_runs_and_types_show_who(qtbot, app_env, tmp_path, monkeypatch):
    from app.views.types_view import who_made

    settings, _home = app_env
    monkeypatch.setenv("CONPET_USER", "ana")
    folder = make_project(tmp_path / "p")
    with Project.open(folder) as p:
        p.user = "bob"
        p.types.rename(p.types.list()[0].id, "Human")
        p.runs.start("dynamic")
    w = open_window(qtbot, settings)
    try:
        assert w.open_project(folder)
        human = next(t for t in w.model.types() if t.name == "Human")
        assert who_made(human) == "Added by ana (import p.jsonl); last changed by bob"
        runs = w.views["Runs & curves"]
        runs.reload()
        by = runs.COLUMNS.index("By")
        assert runs.table.item(0, by).text() == "bob"
    finally:
        w.close()


def test_two_app_instances_lose_no_work_and_see_each_other(qtbot, app_env, quiet_dialogs, postgres_url, tmp_path):
    """Ana's window and Bob's window on one server project: Bob's edit to a sentence Ana changed since he
    loaded it is refused naming her, his view reloads; each window shows the other's work after a poll."""
    from app import undo

    settings, _home = app_env
    copy_project(make_project(tmp_path / "p"), postgres_url)
    ana, bob = open_window(qtbot, settings), open_window(qtbot, settings)
    try:
        assert ana.open_project(postgres_url) and bob.open_project(postgres_url)
        ana.model.project.user, bob.model.project.user = "ana", "bob"
        sid = next(i for i in ana.model.sentence_ids() if ana.model.annotations(i))
        first = bob.model.annotations(sid)[0]  # what bob's view shows
        reloaded = []
        bob.model.annotationsChanged.connect(reloaded.append)
        assert undo.perform(ana.model, undo.DeleteAnnotation(ana.model, first.id))
        messages = []
        bob.model.message.connect(lambda level, text: messages.append((level, text)))
        other = next(t for t in bob.model.types(first.kind) if t.id != first.type_id)
        assert not undo.perform(bob.model, undo.ChangeType(bob.model, first.id, other.id))
        assert messages and "changed by ana" in messages[-1][1] and sid in reloaded
        assert bob.model.project.annotations.get(first.id).status == "deleted"  # ana's work stands
        # reloaded, bob restores it; ana's window sees it at its next poll
        bob.model.annotations(sid)
        assert bob.model._restore(first.id).status == "gold"
        seen = []
        ana.model.annotationsChanged.connect(seen.append)
        ana.poll_teammates()
        assert seen == [sid] and ana.model.annotations(sid)[0].author == "bob"
        ana.poll_teammates()
        assert seen == [sid]  # nothing new: nothing reloaded
    finally:
        ana.close()
        bob.close()
