# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The app's Train with labels of learnt types changed since their task was trained: the dialog says how many
and what the refresh will do, and trains with no new task; the Training view's button is ready for it."""

from __future__ import annotations

import pytest
from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from app.views.train_dialog import TrainDialog, TypeCandidate
from conpet.project.refresh_preview import RefreshPreview, preview_refresh
from conpet.project.training import train_project
from conpet.store import Project

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


def test_the_dialog_says_what_the_refresh_does_and_trains_with_no_new_task(qtbot):
    preview = RefreshPreview(added=12, removed=1, tasks=(1,), refreshes=True, method="dynamic-lda",
                             text="13 label(s) of learnt types changed since their task was trained")
    dialog = TrainDialog([], 5, 1, refresh=preview)
    qtbot.addWidget(dialog)
    assert dialog.refresh_label.isVisibleTo(dialog) and "13 label(s)" in dialog.refresh_label.text()
    assert dialog.train_button.isEnabled() and "refreshes the learnt tasks" in dialog.summary.text()
    assert dialog.choice().refresh_only
    # a type ready for a new task: it is learnt too (after the refresh), so the step is not refresh-only
    ready = TypeCandidate(7, "entity", "Drug", "#ff0000", 20)
    both = TrainDialog([ready], 5, 1, refresh=preview)
    qtbot.addWidget(both)
    assert both.choice().type_names == ("Drug",) and not both.choice().refresh_only
    # nothing changed, nothing new: nothing to train
    idle = TrainDialog([], 5, 1, refresh=RefreshPreview(refreshes=True, text="no label changed"))
    qtbot.addWidget(idle)
    assert not idle.refresh_label.isVisibleTo(idle) and not idle.train_button.isEnabled()


@pytest.mark.slow
def test_the_training_view_offers_a_refresh_once_learnt_types_gain_labels(qtbot, app_env, tmp_path, minilm):
    folder = make_project(tmp_path / "p", types=("Person", "City"))
    train_project(folder, backbone=minilm, overrides=TINY, profile="smoke")
    assert preview_refresh(folder).changed == 0
    with Project.open(folder) as p:
        person = next(t for t in p.types.list() if t.name == "Person")
        for text in ("Grace Hopper wrote compilers.", "Alan Turing broke codes.", "Marie Curie studied radium."):
            s = p.sentences.add(text)
            p.annotations.add_entity(s.id, 0, text.index(" ", text.index(" ") + 1), person.id)
    preview = preview_refresh(folder)
    assert preview.refreshes and preview.added >= 1 and preview.tasks == (1,)  # ~8:1:1, some may be tested
    settings, _ = app_env
    w = MainWindow(settings, backbone_provider=lambda name, device: minilm)
    qtbot.addWidget(w)
    w.open_project(folder)
    ok, why = w.views["Training"].train_readiness()
    assert ok and why.startswith("Refresh:") and f"{preview.added} added" in why
