# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The Training view's "Consolidate the model…": it says what the consolidation will cost before it runs, runs
it in the background with the model before it current until the consolidated one is saved, and a cancelled
consolidation leaves that model as it was."""

from __future__ import annotations

import hashlib

import pytest
from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from conpet.methods.dynamic_lda import CONSOLIDATED_MAP
from conpet.project.model import current_model_folder, read_model_state
from conpet.project.training import train_project
from conpet.store import Project

pytestmark = pytest.mark.slow
TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


def _current(folder):
    with Project.open(folder) as p:
        return current_model_folder(p)


def _digest(folder) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def _window(qtbot, app_env, folder, minilm) -> MainWindow:
    settings, _ = app_env
    w = MainWindow(settings, backbone_provider=lambda name, device: minilm)
    qtbot.addWidget(w)
    w.open_project(folder)
    return w


def _run(qtbot, w, on_map_training=None):
    """Start the consolidation from the view; at its first feature-map event call ``on_map_training``; wait
    for its end. Returns (outcome, payload, the current model folder seen while the map trained)."""
    ended, seen = [], []
    w.controller.jobEnded.connect(lambda k, outcome, payload: ended.append((k, outcome, payload)))
    training = w.views["Training"]
    worker = training.ask_consolidate()
    assert worker is not None

    def on_event(event):
        if event.stage == "feature-map" and not seen:
            seen.append(_current(w.model.folder))
            if on_map_training is not None:
                on_map_training()

    worker.event.connect(on_event)
    qtbot.waitUntil(lambda: any(k == "train" for k, _, _ in ended), timeout=600_000)
    outcome, payload = next((o, p) for k, o, p in ended if k == "train")
    return outcome, payload, seen


def test_consolidating_from_the_training_view(qtbot, app_env, quiet_dialogs, tmp_path, minilm):
    folder = make_project(tmp_path / "p", types=("Person", "City"))
    train_project(folder, backbone=minilm, overrides=TINY, profile="smoke")
    before = _current(folder)
    w = _window(qtbot, app_env, folder, minilm)
    training = w.views["Training"]
    assert training.consolidate_button.isEnabled()
    outcome, payload, seen = _run(qtbot, w)
    assert outcome == "finished", payload
    # asked first, with the cost from the work plan
    title, text = next((t, x) for kind, t, x in quiet_dialogs if kind == "question")
    assert title == "Consolidate the model"
    assert "stored training examples" in text and "times the last task's step" in text
    assert seen == [before]  # the model before it stayed current while the map trained
    after = _current(folder)
    assert after != before and payload.consolidation["map"] == CONSOLIDATED_MAP
    assert read_model_state(after)[0]["extra"]["feature_map"] == CONSOLIDATED_MAP
    assert "Model consolidated" in training.message_label.text()


def test_a_cancelled_consolidation_leaves_the_model_as_it_was(qtbot, app_env, quiet_dialogs, tmp_path, minilm):
    folder = make_project(tmp_path / "p", types=("Person", "City"))
    train_project(folder, backbone=minilm, overrides=TINY, profile="smoke")
    before = _current(folder)
    files = _digest(before)
    w = _window(qtbot, app_env, folder, minilm)
    training = w.views["Training"]
    outcome, _, seen = _run(qtbot, w, on_map_training=training.cancel)
    assert outcome == "cancelled" and seen == [before]
    assert _current(folder) == before and _digest(before) == files
    assert "stays as it was" in training.message_label.text()


def test_nothing_to_consolidate_says_why(qtbot, app_env, quiet_dialogs, tmp_path, minilm):
    w = _window(qtbot, app_env, make_project(tmp_path / "p", types=("Person", "City")), minilm)
    assert w.views["Training"].ask_consolidate() is None
    assert any(kind == "information" and title == "Nothing to consolidate" and "no trained model" in text
               for kind, title, text in quiet_dialogs)
