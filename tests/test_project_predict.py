"""`conpet predict PROJECT_DIR` predicts a project with the app's code (a re-run reads every logit from the
project's cache); a job leaves no PET module on its backbone; the app keeps one loaded backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.model.modules import _SharedPeft
from conpet.project.backbones import KeptBackbone
from conpet.project.predict import predict_project
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


@pytest.fixture
def trained(trained_demo_project) -> Path:
    """Person and City learnt (a copy of the session's trained demo project)."""
    return trained_demo_project


def test_predict_a_project_dir_writes_its_predictions_and_a_rerun_reads_the_cache(trained, tmp_path, capsys):
    out = tmp_path / "out" / "preds.jsonl"
    assert cli.main(["predict", str(trained), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    with Project.open(trained) as p:
        run = [r for r in p.runs.list() if r.purpose == "predict"][-1]
        stored = p.predictions.for_run(run.id)
        annotated = {sid for sid, anns in p.annotations.for_sentences(p.sentences.ids()).items() if anns}
        texts = p.sentences.get_many(sorted(annotated))
    assert run.status == "finished" and f"run {run.id}: predicted {len(stored)} " in err
    assert [int(line["id"]) for line in lines] == sorted(annotated)
    assert all(line["text"] == texts[int(line["id"])].text for line in lines)
    got = sorted((int(line["id"]), m["start"], m["end"], m["label"]) for line in lines for m in line["predictions"])
    assert got == sorted((r.sentence_id, r.start, r.end, r.label) for r in stored)
    assert all(m["label"] in {"Person", "City"} and m["mention"] for line in lines for m in line["predictions"])
    assert "backbone passes)" in err and "(0 backbone passes)" not in err

    again = tmp_path / "again.jsonl"
    assert cli.main(["predict", str(trained), "--out", str(again), "--quiet", "--device", "cpu"]) == 0
    assert "(0 backbone passes)" in capsys.readouterr().err  # every logit came from the project's cache
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_predict_tells_a_project_from_a_bundle(trained, tmp_path, capsys):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "Ada", "entities": [{"start": 0, "end": 3}]}\n', encoding="utf-8")
    assert cli.main(["predict", str(trained), str(jsonl)]) == 1
    assert "a project predicts its own sentences" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "missing.zip")]) == 1
    assert "missing.zip: not found; a bundle predicts an INPUT.jsonl file" in capsys.readouterr().err
    untrained = tmp_path / "untrained"
    Project.create(untrained).close()
    assert cli.main(["predict", str(untrained)]) == 1
    assert f"{untrained}: nothing to predict with yet: train the first task" in capsys.readouterr().err


def test_training_and_prediction_leave_no_pet_module_on_the_backbone(tmp_path, tiny_bert):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
    shared = _SharedPeft.of(tiny_bert)
    before = set(shared.params)
    train_project(folder, backbone=tiny_bert, profile="smoke", overrides=TINY)
    assert set(shared.params) == before  # the trained modules were taken off the kept backbone
    predict_project(folder, backbone_provider=lambda name, device: tiny_bert, device="cpu")
    assert set(shared.params) == before


def test_kept_backbone_loads_once_per_backbone_and_device():
    loaded = []

    def loader(name, device=None):
        loaded.append((name, device))
        return object()

    kept = KeptBackbone(loader)
    first = kept("minilm", "cpu")
    assert kept("minilm", "cpu") is first and kept.loads == 1
    other = kept("smollm2-135m", "cpu")
    assert other is not first and kept("minilm", "cpu") is not first  # one kept: a switch reloads
    assert loaded == [("minilm", "cpu"), ("smollm2-135m", "cpu"), ("minilm", "cpu")]
    kept.clear()
    kept("minilm", "cpu")
    assert kept.loads == 4


def test_the_app_window_keeps_one_backbone_for_its_jobs(qtbot, tmp_path, monkeypatch):
    from test_app_helpers import make_project

    from app.main_window import MainWindow
    from app.settings import AppSettings

    monkeypatch.setenv("CONPET_HOME", str(tmp_path / "home"))
    w = MainWindow(AppSettings(tmp_path / "settings.ini"), preload=False)
    qtbot.addWidget(w)
    w.open_project(make_project(tmp_path / "p"))
    assert isinstance(w.backbone_provider, KeptBackbone)
    assert w.controller.backbone_provider is w.backbone_provider  # every job of the window asks the same one
