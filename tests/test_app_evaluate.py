# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""The app's "Evaluate on a file…": the job runs on a worker (Cancel stops it), the report dialog shows the
same figures as `conpet evaluate PROJECT_DIR FILE` and saves the same JSON; the project is left as it was."""

from __future__ import annotations

import json

import pytest
from test_app_helpers import no_leftover_threads, quiet_dialogs  # noqa: F401
from test_project_evaluate import folder_digest, labelled_file

from app.main_window import MainWindow
from app.views.evaluation_dialog import EvaluationDialog
from conpet.project.evaluate import evaluate_project
from conpet.store import Project


@pytest.fixture
def trained(trained_demo_project):
    """Person and City learnt (a copy of the session's trained demo project), then a type Drug added."""
    folder = trained_demo_project
    with Project.open(folder) as p:
        p.types.add("Drug", "entity")  # a type of the project that the model has not learnt
    return folder


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from app.settings import AppSettings

    monkeypatch.setenv("CONPET_HOME", str(tmp_path / "home"))
    return AppSettings(tmp_path / "settings.ini")


def window(qtbot, settings, provider) -> MainWindow:
    w = MainWindow(settings, backbone_provider=provider, preload=False)
    qtbot.addWidget(w)
    w.show()
    return w


def test_evaluate_on_a_file_shows_the_report_and_saves_its_json(qtbot, settings, trained, tmp_path, tiny_bert,
                                                              quiet_dialogs):
    w = window(qtbot, settings, lambda name, device: tiny_bert)
    assert w.open_project(trained)
    assert w.evaluate_action.isEnabled()
    data = labelled_file(tmp_path / "mine.jsonl")
    before = folder_digest(trained)
    w.evaluate_file(data)
    with qtbot.waitSignal(w.controller.jobEnded, timeout=120_000) as ended:
        pass
    assert ended.args[:2] == ["evaluate", "finished"]
    dialog = w.evaluation_dialog
    assert isinstance(dialog, EvaluationDialog) and dialog.isVisible()
    want = evaluate_project(trained, data, backbone_provider=lambda name, device: tiny_bert)
    assert dialog.figures["Accuracy"] == f"{100 * want.accuracy:.2f}%"
    assert dialog.figures["Macro-F1"] == f"{100 * want.macro_f1:.2f}%"
    assert "Routing accuracy" in dialog.figures and "Oracle-routing accuracy" in dialog.figures
    assert want.spans is not None  # the model was trained with a mention detector: its raw-text proposals too
    f1 = want.spans["untyped"]["f1"]
    assert dialog.figures["Proposed mentions, span only (P / R / F1)"].endswith(f"{100 * f1:.2f}%")
    rows = [[dialog.per_type.item(r, c).text() for c in range(5)] for r in range(dialog.per_type.rowCount())]
    assert [(r[0], r[1], r[4]) for r in rows] == [("Person", f"{100 * want.per_type[0].precision:.2f}%", "12")]
    assert dialog.confusions.rowCount() == len(want.confusions)
    assert "types the project does not have: Spaceship (12), Town (12)" in dialog.left_out.text()
    assert "types the model has not learnt: Drug (12)" in dialog.left_out.text()

    out = tmp_path / "saved" / "report.json"
    out.parent.mkdir()
    dialog.save_json(out)
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["accuracy"] == pytest.approx(want.accuracy) and saved["n_examples"] == want.n_examples
    assert saved["per_type"] == json.loads(json.dumps(want.to_json()))["per_type"]
    assert quiet_dialogs[-1][:2] == ("saved", "Report saved")
    assert folder_digest(trained) == before


def test_cancel_stops_an_evaluation(qtbot, settings, trained, tmp_path, tiny_bert):
    holder: dict = {}

    def provider(name, device):  # runs on the worker's thread, before the first batch: Cancel is seen there
        holder["w"].controller.cancel("evaluate")
        return tiny_bert

    w = window(qtbot, settings, provider)
    holder["w"] = w
    assert w.open_project(trained)
    w.evaluate_file(labelled_file(tmp_path / "mine.jsonl"))
    with qtbot.waitSignal(w.controller.jobEnded, timeout=120_000) as ended:
        pass
    assert ended.args[:2] == ["evaluate", "cancelled"]
    assert w.evaluation_dialog is None
