"""A project's refresh step (conpet.project.training with dynamic-lda): labels of learnt types added or corrected
after their task was trained reach the model with no new task; a correction (as the Routing review's Correct of
a gold label) moves the statistics of both types; a refresh that fails midway leaves the current model's files
and the store as they were; each task's accuracy is measured on the test examples fixed at its first step."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.core.errors import Cancelled
from conpet.core.protocols import ProgressEvent
from conpet.methods.router import GaussianRouter
from conpet.project.model import current_model_folder, read_model_state
from conpet.project.splits import split_key
from conpet.project.training import TrainError, train_project
from conpet.store import Project
from conpet.store.importer import import_file

pytestmark = pytest.mark.slow
TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}
NEW_PEOPLE = ["Grace Hopper wrote the first compiler.", "Alan Turing broke codes.",
              "Marie Curie studied radium.", "Niels Bohr described atoms.", "Emmy Noether proved theorems.",
              "Ada Byron loved engines.", "Carl Gauss counted stars.", "Rosalind Franklin imaged DNA."]


@pytest.fixture
def trained(tmp_path, minilm) -> Path:
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 10, tmp_path / "t1.jsonl"))
    train_project(folder, backbone=minilm, overrides=TINY, profile="smoke")
    return folder


def _router(folder: Path) -> GaussianRouter:
    return GaussianRouter.load(current_model_folder_of(folder) / "router.safetensors")


def current_model_folder_of(folder: Path) -> Path:
    with Project.open(folder) as p:
        out = current_model_folder(p)
    assert out is not None
    return out


def _add_people(folder: Path, sentences: list[str]) -> None:
    with Project.open(folder) as p:
        person = next(t for t in p.types.list() if t.name == "Person")
        for text in sentences:
            s = p.sentences.add(text)
            end = text.index(" ", text.index(" ") + 1)  # first two words: the person's name
            p.annotations.add_entity(s.id, 0, end, person.id)


def _digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def test_nothing_changed_means_nothing_to_learn_and_new_labels_of_learnt_types_are_learnt(trained, minilm, capsys):
    with pytest.raises(TrainError, match="no label of a learnt type changed"):
        train_project(trained, backbone=minilm, overrides=TINY, profile="smoke")
    before = _router(trained)
    _add_people(trained, NEW_PEOPLE)
    assert cli.main(["train", str(trained), "--batch-limit", "2", "--epochs", "1", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "label(s) of learnt types changed since their task was trained" in err  # said before training
    assert "refresh: the router's statistics follow the changed labels" in err
    assert "refreshed the learnt tasks" in out and "nothing new" not in out + err
    with Project.open(trained) as p:
        assert len(p.tasks.list()) == 1  # no new task
        run = p.runs.list()[0]
        assert run.status == "finished" and run.task_id is None
        metrics = run.metrics[-1]
        assert metrics["kind"] == "refresh" and metrics["refresh"]["added"] >= 1
        train_ids = {ex.input_key for ex in p.examples_for_training(["Person"])}
    after = _router(trained)
    person = after.types.index("Person")
    assert after.counts[person] == before.counts[person] + metrics["refresh"]["added"]
    state, _ = read_model_state(current_model_folder_of(trained))
    assert set(state["learnt_examples"]["Person"]) <= train_ids


def test_a_routing_review_correction_moves_the_statistics_of_both_types(trained, minilm):
    state, training = read_model_state(current_model_folder_of(trained))
    before = _router(trained)
    with Project.open(trained) as p:
        city = next(t for t in p.types.list() if t.name == "City")
        person_train = [ex for ex in p.examples_for_training(["Person"])
                        if training["splits"][split_key(ex)] == "train" and ex.input_key in state["learnt_examples"]["Person"]]
        corrected = person_train[0]
        p.annotations.edit(corrected.meta["annotation_id"], type=city.id)  # what the review's Correct does
    out = train_project(trained, backbone=minilm, overrides=TINY, profile="smoke")
    assert out.refresh["added"] == 1 and out.refresh["removed"] == 1 and out.types == ()
    after = _router(trained)
    for name, delta in (("Person", -1), ("City", +1)):
        j = after.types.index(name)
        assert after.counts[j] == before.counts[j] + delta
        assert not np.allclose(after.means[j], before.means[j])


def test_a_refresh_cancelled_midway_leaves_the_model_and_the_store_as_they_were(trained, minilm):
    folder = current_model_folder_of(trained)
    files = _digest(folder)
    _add_people(trained, NEW_PEOPLE[:3])

    class CancelInExpert:
        def report(self, event: ProgressEvent) -> None:
            self.seen = getattr(self, "seen", False) or event.stage == "expert"

        def cancel_requested(self) -> bool:
            return getattr(self, "seen", False)

    with pytest.raises(Cancelled):  # --refresh 1: expert 1 retrains, and is stopped in its stage
        train_project(trained, backbone=minilm, overrides=TINY, profile="smoke", refresh=[1], sink=CancelInExpert())
    assert current_model_folder_of(trained) == folder and _digest(folder) == files
    with Project.open(trained) as p:
        assert [r.status for r in p.runs.list()][0] == "cancelled"
        assert len(p.tasks.list()) == 1
    out = train_project(trained, backbone=minilm, overrides=TINY, profile="smoke", refresh=[1])
    assert out.refresh["experts"] == [1] and out.refresh["added"] == 3


def test_each_task_is_measured_on_the_test_examples_of_its_first_step(trained, minilm, tmp_path):
    state, training = read_model_state(current_model_folder_of(trained))
    fixed = training["test_ids"]["0"]
    _add_people(trained, NEW_PEOPLE)  # about one in ten of them goes to the test split
    with Project.open(trained) as p:
        import_file(p, demo_subset(("Company",), 10, tmp_path / "t2.jsonl"))
    out = train_project(trained, backbone=minilm, overrides=TINY, profile="smoke")
    m = out.metrics
    _, training2 = read_model_state(current_model_folder_of(trained))
    with Project.open(trained) as p:
        new = [ex for ex in p.examples_for_training(["Person"]) if ex.text in NEW_PEOPLE]
    where = [training2["splits"][split_key(ex)] for ex in new]
    assert out.types == ("Company",) and out.refresh["added"] == where.count("train")  # refreshed, then task 2
    assert m["grown_test_examples"][0] == where.count("test")
    assert training2["test_ids"]["0"] == fixed  # task 1's test examples stay those of its first step
    assert m["test_examples"][0] == len(fixed)
    assert m["kind"] == "step" and json.dumps(m)
