# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The app's mention-threshold setting (issue 23, item 7): kept in the app's settings, shown in the
Predictions view, and handed to the next prediction and evaluation (None: the model's own threshold)."""

from __future__ import annotations

from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app import jobs
from app.main_window import MainWindow
from app.settings import AppSettings
from conpet.project.predict import PredictOutcome


def _window(qtbot, settings, tmp_path) -> MainWindow:
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    w.open_project(make_project(tmp_path / "p"))
    return w


def test_the_setting_reaches_the_prediction(qtbot, app_env, tmp_path, monkeypatch):
    settings, _ = app_env
    settings.set_mention_threshold(0.7)
    asked: list[float | None] = []

    def fake_predict(folder, sink=None, **kw):  # the engine's override itself is tested in test_mention_threshold
        asked.append(kw["mention_threshold"])
        return PredictOutcome(0, 0, 0.0, 0)

    monkeypatch.setattr(jobs, "predict_project", fake_predict)
    w = _window(qtbot, settings, tmp_path)
    view = w.views["Predictions"]
    assert w.controller.mention_threshold == 0.7 and view.threshold_spin.text() == "0.70"

    ended = []
    w.controller.jobEnded.connect(lambda kind, outcome, payload: ended.append(kind))
    view.predict_all()
    qtbot.waitUntil(lambda: "predict" in ended, timeout=20000)
    assert asked == [0.7]

    view.threshold_spin.setValue(view.threshold_spin.minimum())  # "model's"
    assert view.threshold_spin.text() == "model's" and w.controller.mention_threshold is None
    assert AppSettings(tmp_path / "settings.ini").mention_threshold() is None
    view.threshold_spin.setValue(0.0)  # every proposal
    assert w.controller.mention_threshold == 0.0 and settings.mention_threshold() == 0.0
    ended.clear()
    view.predict_all()
    qtbot.waitUntil(lambda: "predict" in ended, timeout=20000)
    assert asked == [0.7, 0.0]


def test_a_bad_stored_value_reads_as_the_models_own(app_env):
    settings, _ = app_env
    settings.set_value("predictions/mention_threshold", "lots")
    assert settings.mention_threshold() is None
    settings.set_value("predictions/mention_threshold", 3)
    assert settings.mention_threshold() is None
