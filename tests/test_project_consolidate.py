"""Consolidating a project's model (conpet.project.consolidation, `conpet train --consolidate`): the cost is said
before it runs (the same lines with and without a backbone); it saves a new current model whose feature map
is its own module; cancelled or failed midway, the current model's files and the store's tasks stay as they
were; models that cannot be consolidated say why."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.core.errors import Cancelled
from conpet.core.protocols import ProgressEvent
from conpet.methods.dynamic_lda import CONSOLIDATED_MAP
from conpet.project.consolidation import preview_consolidation
from conpet.project.model import current_model_folder, read_model_state
from conpet.project.training import TrainError, train_project
from conpet.store import Project
from conpet.store.importer import import_file

pytestmark = pytest.mark.slow
TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


@pytest.fixture
def trained(tmp_path, minilm) -> Path:
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 10, tmp_path / "t1.jsonl"))
    train_project(folder, backbone=minilm, overrides=TINY, profile="smoke")
    return folder


def _model(folder: Path) -> Path:
    with Project.open(folder) as p:
        out = current_model_folder(p)
    assert out is not None
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def test_the_cost_is_said_before_and_the_consolidated_model_becomes_current(trained, minilm, capsys):
    plan = preview_consolidation(trained)
    assert plan.possible and plan.tasks == 1 and plan.types == 2 and plan.examples > 0 and plan.batches == 2
    assert plan.ratio is not None and plan.ratio > 0 and plan.seconds is not None
    assert any(f"{plan.examples} stored training examples of every learnt type" in line for line in plan.lines)
    assert any("times the last task's step" in line for line in plan.lines)
    before = _model(trained)
    said: list[str] = []
    out = train_project(trained, backbone=minilm, consolidate=True, notify=said.append)
    assert said[-len(plan.lines):] == plan.lines  # the project layer says what the preview said
    assert out.consolidation == {"examples": plan.examples, "types": 2, "map": CONSOLIDATED_MAP,
                                 "replaced": "expert_0"}
    after = _model(trained)
    assert after != before and out.model_folder == after
    state, _ = read_model_state(after)
    assert state["modules"] == ["expert_0", CONSOLIDATED_MAP] and state["extra"]["feature_map"] == CONSOLIDATED_MAP
    with Project.open(trained) as p:
        run = p.runs.list()[0]
        assert run.status == "finished" and run.metrics[-1]["kind"] == "consolidate"
        assert run.metrics[-1]["whole_acc"] is not None
    # the command says the cost before it runs, then what it did; a second consolidation replaces the first
    assert cli.main(["train", str(trained), "--consolidate", "--quiet", "--epochs", "1", "--batch-limit", "2"]) == 0
    said_there = capsys.readouterr()
    assert "conpet: consolidate: " in said_there.err and "times the last task's step" in said_there.err
    assert "consolidated the model" in said_there.out
    state, _ = read_model_state(_model(trained))
    assert state["modules"] == ["expert_0", CONSOLIDATED_MAP]
    assert state["versions"][CONSOLIDATED_MAP] > json.loads((after / "method.json").read_text())["versions"][
        CONSOLIDATED_MAP]


class _Stop:
    """Cancels once the consolidation's feature map is training, or fails as its statistics are recomputed."""

    def __init__(self, fail: bool) -> None:
        self.fail, self.stop = fail, False

    def report(self, event: ProgressEvent) -> None:
        if self.fail and event.stage == "router":
            raise RuntimeError("the disk is on fire")
        self.stop = self.stop or event.stage == "feature-map"

    def cancel_requested(self) -> bool:
        return self.stop and not self.fail


@pytest.mark.parametrize("fail", [False, True], ids=["cancelled", "failed"])
def test_a_consolidation_stopped_midway_leaves_the_model_and_the_store_as_they_were(trained, minilm, fail):
    folder = _model(trained)
    files = _digest(folder)
    with pytest.raises(RuntimeError if fail else Cancelled):
        train_project(trained, backbone=minilm, overrides=TINY, consolidate=True, sink=_Stop(fail))
    assert _model(trained) == folder and _digest(folder) == files
    with Project.open(trained) as p:
        assert p.runs.list()[0].status == ("failed" if fail else "cancelled")
        assert len(p.tasks.list()) == 1 and all(t.frozen for t in p.tasks.list())
        assert not [d for d in p.modules_dir.iterdir() if d.name.startswith(".")]  # no staging folder left


def test_what_cannot_be_consolidated_says_why(tmp_path, minilm):
    empty = tmp_path / "empty"
    Project.create(empty).close()
    assert "no trained model" in preview_consolidation(empty).reason
    with pytest.raises(TrainError, match="no trained model"):
        train_project(empty, backbone=minilm, consolidate=True)
    static = tmp_path / "static"
    with Project.create(static) as p:
        import_file(p, demo_subset(("Person", "City"), 10, tmp_path / "t1.jsonl"))
    train_project(static, backbone=minilm, method="static", overrides=TINY, profile="smoke")
    assert "no consolidation step" in preview_consolidation(static).reason
    with pytest.raises(TrainError, match="no consolidation step"):
        train_project(static, backbone=minilm, consolidate=True)
