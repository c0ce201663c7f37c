# ruff: noqa: F811  (pytest fixtures imported from test_app_helpers are used as parameters)
"""Training, prediction and routing review through the real worker and the real minilm backbone: a tiny
run to the end (the engine never runs on the GUI thread), predictions with per-module scores, routing
rows that can be accepted and corrected (and undone), a cancelled run, a failed run."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer
from test_app_helpers import app_env, make_project, no_leftover_threads, quiet_dialogs  # noqa: F401

from app.main_window import MainWindow
from app.views.train_dialog import TrainChoice, TrainDialog

TINY = {"batch_limit": 3, "max_epochs": 1, "eval_batch_size": 64}


@pytest.fixture
def engine_threads(monkeypatch):
    """Every thread that ran a backbone forward pass (training or prediction)."""
    from conpet.methods.base import PETMethod

    seen: set[int] = set()
    original = PETMethod.forward_logits

    def recording(self, *args, **kwargs):
        seen.add(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PETMethod, "forward_logits", recording)
    return seen


def window(qtbot, app_env, tmp_path, minilm, **project_kw):
    settings, _ = app_env
    w = MainWindow(settings, backbone_provider=lambda name, device: minilm)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.open_project(make_project(tmp_path / "p", **project_kw))
    return w


def choice(w, names=None, budget="smoke") -> TrainChoice:
    types = [t for t in w.model.types() if names is None or t.name in names]
    return TrainChoice(type_ids=tuple(t.id for t in types), type_names=tuple(t.name for t in types),
                       method="dynamic", backbone="minilm", device="cpu", budget=budget, min_examples=5)


def run_to_end(qtbot, w, kind: str, timeout_s: int = 600):
    ended = []
    w.controller.jobEnded.connect(lambda k, outcome, payload: ended.append((k, outcome, payload)))
    qtbot.waitUntil(lambda: any(k == kind for k, _, _ in ended), timeout=timeout_s * 1000)
    return next((o, p) for k, o, p in ended if k == kind)


@pytest.mark.slow
def test_tiny_training_to_the_end_then_predictions_and_routing(qtbot, app_env, tmp_path, minilm, engine_threads):
    w = window(qtbot, app_env, tmp_path, minilm, types=("Person", "City", "Drug"), per_type=10)
    gui = threading.get_ident()
    training = w.views["Training"]
    # the dialog shows the three ready types (10 gold examples each, minimum 10)
    dialog = TrainDialog(training.candidates(), 10, 0, training)
    qtbot.addWidget(dialog)
    assert set(dialog.selected_type_names()) == {"Person", "City", "Drug"}
    dialog.set_checked(w.model.project.types.find("Drug").id, False)
    assert set(dialog.choice().type_names) == {"Person", "City"}

    # the GUI thread keeps serving events while the worker trains
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    w.show_tab("Training")
    worker = training.start(choice(w, {"Person", "City"}), overrides=TINY)
    events = []
    worker.event.connect(lambda e: events.append(e))
    shown = []  # the Training view when the training ended (a prediction follows at once)
    w.controller.jobEnded.connect(lambda k, _o, _p: shown.append(
        (training.progress.value(), training.stage_label.text(), training.message_label.text())) if k == "train"
        else None)
    outcome, payload = run_to_end(qtbot, w, "train")
    timer.stop()
    assert outcome == "finished", payload
    predicted = []  # the prediction that follows a training (listened for before it can end)
    w.controller.jobEnded.connect(lambda k, o, p: predicted.append((o, p)) if k == "predict" else None)
    assert payload.task_index == 1 and set(payload.types) == {"Person", "City"}
    assert engine_threads and gui not in engine_threads, "model code ran on the GUI thread"
    assert len(ticks) > 5
    # live progress reached the view: stage, a loss point, 100 %
    assert shown[0][:2] == (1000, "Finished") and "Task 1 learnt" in shown[0][2]
    assert training.loss_chart.series() and training.loss_chart.series()[0][1]  # kept while predicting
    # the run, its metrics and the new task are in the store; the views show them
    run = w.model.project.runs.get(payload.run_id)
    assert run.status == "finished" and run.purpose == "train"
    assert [t.frozen for t in w.model.tasks()] == [True]
    assert w.model.project.types.find("Drug").task_id is None  # left for a later task
    runs = w.views["Runs & curves"]
    assert runs.table.rowCount() >= 1
    assert [len(pts) for _, pts in runs.curve_chart.series()][:2] == [1, 1]
    assert len(runs.matrix_chart.matrix()) == 1
    assert training.tasks_table.rowCount() == 1

    # export the learnt model as a bundle from the app (File > Export bundle…)
    from app.main_window import bundle_export_available

    if bundle_export_available():
        from conpet.bundle import read_manifest

        worker = w.start_bundle_export(tmp_path / "people.conpet.zip")
        with qtbot.waitSignal(worker.ended, timeout=120_000) as done:
            pass
        assert done.args[1] == "finished", done.args[2]
        manifest = read_manifest(tmp_path / "people.conpet.zip")
        assert [sorted(ty["name"] for ty in t["types"]) for t in manifest["tasks"]] == [["City", "Person"]]

    # the whole project is predicted in the background after the training, without being asked
    qtbot.waitUntil(lambda: bool(predicted), timeout=600_000)
    outcome, result = predicted[0]
    assert outcome == "finished", result
    assert result.predictions > 0 and gui not in engine_threads
    preds = w.views["Predictions"]
    label = w.views["Label"]
    some = next(p for p in w.model.predictions_for_run(result.run_id) if p.kind == "entity")
    label.select_sentence(some.sentence_id)
    qtbot.waitUntil(lambda: preds.sentence_id == some.sentence_id, timeout=30_000)  # a busy CPU
    w.show_tab("Predictions")  # a hidden view catches up with the new predictions when it is shown
    qtbot.waitUntil(lambda: preds.table.rowCount() >= 1, timeout=10_000)
    assert preds.table.item(0, 3).text() in {"Person", "City"}
    assert len(preds.selector_chart.bars()) == 1  # one expert so far: one bar
    assert {name for name, _ in preds.expert_chart.bars()} == {"Person", "City"}
    # a second pass reads every logit from the project's cache: no backbone work
    preds.predict_all()
    outcome, again = run_to_end(qtbot, w, "predict")
    assert outcome == "finished" and again.backbone_passes == 0 and again.predictions == result.predictions

    # routing review: one row per prediction, least certain (lowest score) first
    routing = w.views["Routing review"]
    w.show_tab("Routing review")
    rows = routing.proxy.rowCount()
    assert rows == again.predictions
    scores = [routing.table_model.rows[routing.proxy.mapToSource(routing.proxy.index(i, 0)).row()].p.score
              for i in range(rows)]
    assert scores == sorted(scores)
    # accept the first row's prediction: it becomes the gold type of that span; undo brings the old one back
    routing.select_first()
    r = routing.selected_row()
    gold_before = r.gold
    assert routing.accept_selected()
    after = [a for a in w.model.annotations(r.p.sentence_id) if a.spans == r.p.spans and a.status == "gold"]
    assert [a.type_name for a in after] == [r.p.label]
    w.undo_action.trigger()
    after = [a for a in w.model.annotations(r.p.sentence_id) if a.spans == r.p.spans and a.status == "gold"]
    assert [a.type_name for a in after] == [gold_before]
    # correct a prediction to another type: a gold label the next training uses
    routing.table.selectRow(0)
    r = routing.selected_row()
    other = next(t for t in w.model.types("entity") if t.name != r.p.label and t.name in {"Person", "City"})
    assert routing.correct_selected(other.id)
    assert "Task 1" in routing.status.text()
    ex = [e for e in w.model.project.examples_for_training([other.id])
          if e.meta["sentence_id"] == r.p.sentence_id and e.spans == r.p.spans]
    assert ex and ex[0].label == other.name
    w.undo_action.trigger()
    w.redo_action.trigger()
    assert any(a.type_name == other.name for a in w.model.annotations(r.p.sentence_id) if a.spans == r.p.spans)


@pytest.mark.slow
def test_cancel_a_run(qtbot, app_env, tmp_path, minilm):
    w = window(qtbot, app_env, tmp_path, minilm, types=("Person", "City"), per_type=10)
    training = w.views["Training"]
    worker = training.start(choice(w), overrides={"batch_limit": 400, "max_epochs": 5})
    stages = []
    worker.event.connect(lambda e: stages.append(e.stage))
    qtbot.waitUntil(lambda: "expert" in stages, timeout=300_000)
    assert training.cancel_button.isEnabled()
    training.cancel_button.click()
    outcome, _ = run_to_end(qtbot, w, "train")
    assert outcome == "cancelled"
    assert training.stage_label.text() == "Cancelled"
    runs = w.model.project.runs.list()
    assert runs[0].status == "cancelled"
    # nothing half-trained is kept; the task stays open for the next Train; annotations untouched
    assert w.model.project.modules.list() == []
    assert [t.frozen for t in w.model.tasks()] == [False]
    assert "open" in training.tasks_table.item(0, 2).text()
    assert w.train_action.isEnabled()


@pytest.mark.slow
def test_a_failure_shows_the_error_and_keeps_everything(qtbot, app_env, tmp_path, minilm, monkeypatch,
                                                         quiet_dialogs):
    from conpet.methods.dynamic import DynamicConPET

    w = window(qtbot, app_env, tmp_path, minilm, types=("Person", "City"), per_type=10)
    before = w.model.counts()

    def broken(self, *a, **k):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr(DynamicConPET, "train_step", broken)
    training = w.views["Training"]
    training.start(choice(w), overrides=TINY)
    outcome, error = run_to_end(qtbot, w, "train")
    assert outcome == "failed" and "the GPU caught fire" in error
    assert training.stage_label.text() == "Failed"
    assert any(kind == "warning" and "the GPU caught fire" in text for kind, _t, text in quiet_dialogs)
    run = w.model.project.runs.list()[0]
    assert run.status == "failed" and "the GPU caught fire" in run.error
    assert w.model.counts()["annotations"] == before["annotations"]
    assert "failed" in w.views["Runs & curves"].table.item(0, 5).text()
