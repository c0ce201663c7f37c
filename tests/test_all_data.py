"""Training on all labelled data (``--all-data``): no held-out split for the new task, a k-fold
cross-validated accuracy instead, said before training, recorded with the run with its number of
examples; the folds are content-keyed like the fixed splits."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.project.crossval import assign_folds, cross_validate, cv_text
from conpet.project.model import current_model_folder
from conpet.project.splits import split_key
from conpet.project.training import TrainError, train_project
from conpet.store import Project
from conpet.store.importer import import_file

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


@dataclass(frozen=True)
class Ex:
    text: str
    label: str
    spans: tuple = ()
    id: str = ""


def _examples(n_a: int, n_b: int) -> list[Ex]:
    return ([Ex(f"a sentence {i}", "A", id=f"a{i}") for i in range(n_a)]
            + [Ex(f"b sentence {i}", "B", id=f"b{i}") for i in range(n_b)])


def test_folds_are_balanced_per_type_and_keyed_by_content():
    exs = _examples(11, 7)
    folds = assign_folds(exs, 5)
    for label in ("A", "B"):
        sizes = [sum(1 for ex, f in zip(exs, folds, strict=True) if ex.label == label and f == i) for i in range(5)]
        assert max(sizes) - min(sizes) <= 1
    again = assign_folds(list(reversed(exs)), 5)
    assert {split_key(e): f for e, f in zip(exs, folds, strict=True)} == \
        {split_key(e): f for e, f in zip(reversed(exs), again, strict=True)}


def test_every_example_is_predicted_once_by_a_model_that_never_saw_it():
    exs = _examples(6, 4)
    seen: list[str] = []

    def train_and_predict(i, train, held):
        assert not {e.id for e in train} & {e.id for e in held}
        seen.extend(e.id for e in held)
        return [e.label if e.label == "A" else "A" for e in held]  # right on A, wrong on B

    cv = cross_validate(exs, 3, train_and_predict)
    assert sorted(seen) == sorted(e.id for e in exs)
    assert (cv.examples, cv.correct, cv.folds, sum(cv.fold_examples)) == (10, 6, 3, 10)
    assert cv_text(cv.to_dict()) == "60.0% (cross-validated, 3 folds, 10 examples)"


@pytest.fixture
def project_dir(tmp_path):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
        import_file(p, demo_subset(("Drug",), 1, tmp_path / "t2.jsonl"))
    return folder


@pytest.mark.slow
def test_all_data_trains_on_everything_and_reports_a_cross_validated_accuracy(project_dir, tiny_bert_dir, capsys):
    with Project.open(project_dir) as p:
        n_gold = sum(len(p.examples_for_training([t.id])) for t in p.types.list() if t.name in ("Person", "City"))
    assert cli.main(["train", str(project_dir), "--profile", "smoke", "--batch-limit", "2", "--epochs", "1",
                     "--quiet", "--threads", "1", "--all-data", "--folds", "3", "--min-examples", "5",
                     "--backbone", str(tiny_bert_dir)]) == 0
    out, err = capsys.readouterr()
    assert (f"conpet: all data: the new task trains on all {n_gold} labelled examples" in err
            and "3-fold cross-validation, which costs 3 extra trainings of the new task only" in err)
    assert "test example(s)" not in err  # no test split to warn about
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        m = run.metrics[-1]
        assert run.config["all_data"] is True and run.config["folds"] == 3
        assert m["train_examples"] == [n_gold] and m["test_examples"] == [0]
        cv = m["cv"]
        assert cv["folds"] == 3 and cv["examples"] == n_gold and sum(cv["fold_examples"]) == n_gold
        assert 0 <= cv["correct"] <= n_gold
        folder = current_model_folder(p)
    assert f"task 1 (trained on all its data): accuracy {cv_text(cv)}" in out
    assert "cross-validated, 3 folds" in out and "whole accuracy" not in out  # nothing was held out
    # the examples trained on are recorded as train: a later step never tests on them
    splits = json.loads((folder / "training.json").read_text())["splits"]
    assert set(splits.values()) == {"train"} and len(splits) == n_gold


def test_folds_without_all_data_is_refused(project_dir, capsys):
    assert cli.main(["train", str(project_dir), "--folds", "3", "--quiet"]) == 2
    assert "--folds sets the cross-validation of --all-data" in capsys.readouterr().err
    with Project.open(project_dir) as p:
        assert not p.runs.list() and not p.tasks.list()


def test_all_data_refuses_a_type_it_cannot_cross_validate(project_dir, tiny_bert):
    with pytest.raises(TrainError, match=r"type\(s\) \['Drug'\] need at least 2 labelled examples"):
        train_project(project_dir, backbone=tiny_bert, overrides=TINY, profile="smoke", types=["Drug"],
                      all_data=True)
    with pytest.raises(TrainError, match="--folds must be at least 2"):
        train_project(project_dir, backbone=tiny_bert, overrides=TINY, profile="smoke", all_data=True, folds=1)
    with Project.open(project_dir) as p:
        assert not p.runs.list()  # refused before a run starts
