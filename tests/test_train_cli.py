"""`conpet train PROJECT_DIR` and `train_project`: the next task from the types with enough labelled
examples, the run / modules / metrics / predictions stored, a second step continuing the model, cancel
leaving the task open (and the next call resuming it), clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.core.errors import Cancelled, ConpetError
from conpet.core.progress_bar import TerminalProgress
from conpet.core.protocols import ProgressEvent
from conpet.project.model import current_model_folder, step_metrics
from conpet.project.training import DEFAULT_METHOD, train_project
from conpet.store import Project
from conpet.store.importer import import_file

TINY = ["--profile", "smoke", "--batch-limit", "2", "--epochs", "1", "--min-examples", "5"]
TINY_OVERRIDES = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


@pytest.fixture
def project_dir(tmp_path) -> Path:
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
    return folder


def test_train_cli_two_steps(project_dir, tmp_path, tiny_bert_dir, capsys):
    assert cli.main(["train", str(project_dir), *TINY, "--method", "dynamic-typesel",
                     "--backbone", str(tiny_bert_dir)]) == 0
    out, err = capsys.readouterr()
    assert "task 1 (" in out and "whole accuracy" in out and "train [" in err
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        assert run.status == "finished" and run.method == "dynamic-typesel" and run.backbone == "tiny-bert"
        assert run.backbone_sha256 and run.config["train"]["batch_limit"] == 2
        (task,) = p.tasks.list()
        assert task.frozen and set(task.type_names) == {"Person", "City"}
        mods = {m.name: m for m in p.modules.list()}
        # the mention detector trains with the model (the demo subset has entities, no relations: no gate)
        assert set(mods) == {"selector", "expert-1", "mention-detector"} and all(m.run_id == run.id for m in mods.values())
        assert all(p.modules.verify(m) for m in mods.values())
        (metrics,) = step_metrics(p)
        assert metrics["step"] == 1 and 0.0 <= metrics["whole_acc"] <= 1.0 and metrics["selector_acc"] is not None
        assert p.predictions.count(run.id) == sum(metrics["test_examples"]) > 0
        assert current_model_folder(p) == p.modules_dir / f"run-{run.id:04d}"
        import_file(p, demo_subset(("Company", "Drug"), 8, tmp_path / "t2.jsonl"))
    assert cli.main(["train", str(project_dir), *TINY, "--quiet"]) == 0  # on the model's recorded backbone
    out, err = capsys.readouterr()
    assert "task 2 (" in out and "train [" not in err
    with Project.open(project_dir) as p:
        runs = p.runs.list()
        assert [r.status for r in runs] == ["finished", "finished"]
        assert [t.frozen for t in p.tasks.list()] == [True, True]
        names = sorted((m.name, m.version) for m in p.modules.list())
        assert names == [("expert-1", 1), ("expert-2", 1), ("mention-detector", 1), ("mention-detector", 2),
                         ("selector", 1), ("selector", 2)]
        steps = step_metrics(p)
        assert [s["step"] for s in steps] == [1, 2] and len(steps[1]["task_acc"]) == 2
        state = json.loads((current_model_folder(p) / "method.json").read_text())
        assert [sorted(t) for t in state["tasks"]] == [["City", "Person"], ["Company", "Drug"]]
        # the detector's second step learnt the new sentences and replayed the first step's
        training = json.loads((current_model_folder(p) / "training.json").read_text())
        first, second = training["suggesters"]["detector"]["steps"]
        assert first and second and not set(first) & set(second)
        log = max(runs, key=lambda r: r.id).log
        assert "mention detector: step 2 on" in log and f"replaying {len(first)} earlier" in log


def test_train_cli_with_the_type_level_selector(project_dir, capsys):
    assert cli.main(["train", str(project_dir), *TINY, "--method", "dynamic-typesel", "--quiet"]) == 0
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        assert run.status == "finished" and run.method == "dynamic-typesel"
        assert run.backbone == "minilm"  # the default backbone (no --backbone)
        assert run.config["train"]["selector_labels"] == "type"
        state = json.loads((current_model_folder(p) / "method.json").read_text())
        assert state["method"] == "dynamic-typesel"
        (metrics,) = step_metrics(p)
        assert metrics["selector_acc"] is not None and p.predictions.count(run.id) > 0


def test_train_cli_with_the_statistical_router(project_dir, tmp_path, tiny_bert_dir, capsys):
    # the default method for a new project
    assert cli.main(["train", str(project_dir), *TINY, "--quiet", "--backbone", str(tiny_bert_dir)]) == 0
    with Project.open(project_dir) as p:
        assert p.runs.list()[0].method == DEFAULT_METHOD == "dynamic-lda"
        import_file(p, demo_subset(("Company", "Drug"), 8, tmp_path / "t2.jsonl"))
    assert cli.main(["train", str(project_dir), *TINY, "--quiet"]) == 0  # the model keeps its method
    with Project.open(project_dir) as p:
        runs = p.runs.list()
        assert [r.status for r in runs] == ["finished", "finished"] and runs[-1].method == "dynamic-lda"
        folder = current_model_folder(p)
        assert (folder / "router.safetensors").is_file()
        state = json.loads((folder / "method.json").read_text())
        assert state["config"]["representation"] == "markers" and state["modules"] == ["expert_0", "expert_1"]
        assert state["config"]["router_layers"] == "last+middle"  # the default, recorded with the model
        import sqlite3

        with sqlite3.connect(p.db_path) as conn:
            rows = set(conn.execute("SELECT DISTINCT module_id, module_version FROM logit_cache"))
        # the router's cached features survive the step's prune (they are the model's, at its feature map's version)
        assert (f"{state['uid']}/features-expert_0-middle+last", state["versions"]["expert_0"]) in rows
        metrics = step_metrics(p)
        assert metrics[-1]["selector_acc"] is not None and p.predictions.count(runs[-1].id) > 0
    bundle = tmp_path / "lda.zip"
    assert cli.main(["export", str(project_dir), str(bundle)]) == 0
    assert cli.main(["verify-bundle", str(bundle)]) == 0


def test_nothing_to_train(tmp_path, capsys):
    folder = tmp_path / "empty"
    Project.create(folder).close()
    assert cli.main(["train", str(folder), *TINY]) == 1
    assert "nothing new to learn" in capsys.readouterr().err
    with Project.open(folder) as p:
        t = p.types.add("Person", "entity")
        s = p.sentences.add("Ada Lovelace wrote notes.")
        p.annotations.add_entity(s.id, 0, 12, t.id)
    assert cli.main(["train", str(folder), *TINY]) == 1
    assert "labelled examples a new task needs ('Person': 1)" in capsys.readouterr().err
    with Project.open(folder) as p:
        assert p.runs.list() == [] and p.tasks.list() == []


class CancelAfter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.events: list[ProgressEvent] = []

    def report(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def cancel_requested(self) -> bool:
        return sum(e.stage in ("selector", "expert") for e in self.events) >= self.n


def test_cancel_keeps_the_task_open_and_the_next_call_resumes(project_dir, tiny_bert):
    with pytest.raises(Cancelled):
        train_project(project_dir, backbone=tiny_bert, overrides={**TINY_OVERRIDES, "batch_limit": 10},
                      profile="smoke", sink=CancelAfter(1))
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        assert run.status == "cancelled"
        (task,) = p.tasks.list()
        assert not task.frozen and p.modules.list() == [] and current_model_folder(p) is None
        assert not any(d.name.startswith("run-") for d in p.modules_dir.iterdir())
    out = train_project(project_dir, backbone=tiny_bert, overrides=TINY_OVERRIDES, profile="smoke")
    assert out.status == "finished" and out.task_index == 1
    with Project.open(project_dir) as p:
        assert [t.frozen for t in p.tasks.list()] == [True]


def test_static_method_and_method_mismatch(project_dir, tiny_bert):
    out = train_project(project_dir, method="static", backbone=tiny_bert, overrides=TINY_OVERRIDES, profile="smoke")
    assert out.method == "static"
    with Project.open(project_dir) as p:
        (m,) = [m for m in p.modules.list() if m.name != "mention-detector"]
        assert (m.name, m.kind) == ("main", "static")
        t = p.types.add("Drug", "entity")
        for i in range(6):
            s = p.sentences.add(f"Patients took aspirin{i} daily.")
            p.annotations.add_entity(s.id, 14, 21 + len(str(i)), t.id)
    with pytest.raises(ConpetError, match="is a 'static' model"):
        train_project(project_dir, method="dynamic", backbone=tiny_bert, overrides=TINY_OVERRIDES)


def test_backbone_mismatch_refused(project_dir, tiny_bert):
    import dataclasses

    train_project(project_dir, backbone=tiny_bert, overrides=TINY_OVERRIDES, profile="smoke")
    with Project.open(project_dir) as p:
        t = p.types.add("Drug", "entity")
        for i in range(6):
            s = p.sentences.add(f"Patients took aspirin{i} daily.")
            p.annotations.add_entity(s.id, 14, 21 + len(str(i)), t.id)
    other = dataclasses.replace(tiny_bert, _sha256="0" * 64)
    with pytest.raises(ConpetError, match="backbone mismatch"):
        train_project(project_dir, backbone=other, overrides=TINY_OVERRIDES)


def test_terminal_progress_renders_a_bar():
    import io

    buf = io.StringIO()
    bar = TerminalProgress(buf, width=10, own_eta=False)  # as `conpet train` makes it: the job's ETA only
    bar.report(ProgressEvent(0.5, "expert: batch 3/6", "expert", 12.0, {"loss": 0.5, "acc": 0.75}))
    bar.report(ProgressEvent(0.6, "router: statistics", "router"))
    bar.report(ProgressEvent(1.0, "done", "done"))
    text = buf.getvalue()
    assert "60.0% router: statistics ETA estimating…" in text  # no rate measured yet: no made-up ETA
    assert "[#####.....]  50.0% expert: batch 3/6 loss 0.500 acc 75% ETA 0:12" in text
    assert "[##########] 100.0%" in text
    assert not bar.cancel_requested()
    bar.request_cancel()
    assert bar.cancel_requested()


def test_types_option_chooses_the_new_task(project_dir, tmp_path, tiny_bert_dir, capsys):
    with Project.open(project_dir) as p:
        import_file(p, demo_subset(("Company", "Drug"), 8, tmp_path / "t2.jsonl"))
    assert cli.main(["train", str(project_dir), *TINY, "--quiet", "--type", "Person", "--type", "Drug",
                     "--backbone", str(tiny_bert_dir)]) == 0
    assert cli.main(["train", str(project_dir), *TINY, "--quiet", "--type", "Nobody"]) == 1
    assert "no type called 'Nobody'" in capsys.readouterr().err
    assert cli.main(["train", str(project_dir), *TINY, "--quiet", "--type", "Person"]) == 1
    assert "already belongs to task 1" in capsys.readouterr().err
    with Project.open(project_dir) as p:
        (task,) = p.tasks.list()
        assert sorted(task.type_names) == ["Drug", "Person"] and task.frozen
        assert sorted(t.name for t in p.pending_types(5)) == ["City", "Company"]
