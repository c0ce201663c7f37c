"""Honest about the budget, nothing dropped silently: before training, each stage's batches, epochs and
coverage of the new data; the types left out below --min-examples; a warning for a tiny test split; the
accuracy with its number of examples."""

from __future__ import annotations

import json

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.core.config import TrainConfig, make_config
from conpet.methods.registry import method_class
from conpet.methods.replay import ReplaySampler
from conpet.methods.training_report import accuracy_text, describe_plan, stage_plans
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


def test_the_issue_case_says_the_limit_stops_inside_the_first_epoch():
    """5 270 training examples under the default (quick) profile: 400 batches, 30 % of the data."""
    cfg = make_config("quick", data="project", dynamic=False).train
    (plan,) = stage_plans("static", cfg, 5270, has_old=True)
    (line,) = describe_plan([plan])
    assert line == ("training stage: 400 batches of 8 (4 new + 4 replayed) = 0.30 of at most 2 epoch(s) over the "
                    "5270 new training examples; stopped by the batch limit, it sees 30% of them")


@pytest.mark.parametrize(("method", "has_old", "stages"), [
    ("static", False, ["training"]), ("dynamic", False, ["expert"]), ("dynamic", True, ["selector", "expert"]),
    ("dynamic-typesel", False, ["selector", "expert"]),
    ("dynamic-lda", True, ["expert"]), ("lda-adapted", True, []), ("lda-frozen", False, []),
])
def test_stages_and_counts_match_the_sampler(method, has_old, stages):
    cfg = TrainConfig(batch_limit=7, max_epochs=2, selector_batch_limit=50)
    plans = stage_plans(method, cfg, 37, has_old)
    assert [p.stage for p in plans] == stages
    for p in plans:
        limit = cfg.iter1_limit if p.stage == "selector" else cfg.iter2_limit if p.stage == "expert" else cfg.batch_limit
        replays = has_old and not method_class(method).routed_by_statistics  # dynamic-lda's experts see their own task only
        sampler = ReplaySampler(list(range(37)), [[1, 2]] if replays else [], batch_size=cfg.batch_size,
                                batch_limit=limit, max_epochs=cfg.max_epochs)
        assert p.batches == len(sampler) and p.batches_per_epoch == sampler.plan.batches_per_epoch
    full = next(p for p in plans if p.stage in ("selector",)) if "selector" in stages else None
    if full is not None:
        assert not full.limited and "stopped" not in describe_plan([full])[0]


def test_accuracy_text():
    assert accuracy_text(24, 30) == "80.0% (24 of 30)" and accuracy_text(0, 0) == "- (no test examples)"


@pytest.fixture
def project_dir(tmp_path):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
        import_file(p, demo_subset(("Drug",), 1, tmp_path / "t2.jsonl"))
    return folder


def test_training_says_what_it_leaves_out_and_warns_on_a_tiny_test_split(project_dir, tiny_bert, tmp_path):
    notes: list[str] = []
    timeline: list[str] = []

    class Sink:
        def report(self, event):
            timeline.append(event.stage)

        def cancel_requested(self):
            return False

    def note(line):
        notes.append(line)
        timeline.append("note")

    out = train_project(project_dir, method="dynamic-typesel", backbone=tiny_bert, overrides=TINY, profile="smoke",
                        min_examples=5, notify=note, sink=Sink())
    trained = [i for i, stage in enumerate(timeline) if stage not in ("note", "setup")]
    assert trained and max(i for i, stage in enumerate(timeline) if stage == "note") < trained[0]  # said first
    assert out.types and "Drug" not in out.types
    n_train = out.metrics["train_examples"][0]
    batches = min(2, -(-n_train // 8))  # --batch-limit 2, one epoch of batches of 8
    assert f"expert stage: {batches} batches of 8 = {batches / -(-n_train // 8):.2f} of at most 1 epoch(s) over the " \
           f"{n_train} new training examples" in notes[1]
    assert notes[0].startswith("selector stage: ")  # the type-level selector learns from task 1 on
    assert "left out of this task, below --min-examples 5: 'Drug' (1 example); label more, or lower --min-examples" \
        in notes
    n_test = out.metrics["test_examples"][0]
    assert f"the new task has only {n_test} test example(s)" in " ".join(notes)
    assert out.notes == tuple(notes)
    with Project.open(project_dir) as p:
        assert p.runs.get(out.run_id).config["notes"] == notes
    # --type Drug: a one-example task trains, and says it cannot be measured
    notes.clear()
    out = train_project(project_dir, backbone=tiny_bert, overrides=TINY, profile="smoke", types=["Drug"],
                        notify=notes.append)
    assert "the new task has no test examples: its accuracy cannot be measured" in notes
    assert not any(n.startswith("left out") for n in notes)


def test_cli_prints_the_plan_first_and_the_accuracy_with_its_count(project_dir, tiny_bert_dir, capsys):
    assert cli.main(["train", str(project_dir), "--profile", "smoke", "--batch-limit", "2", "--epochs", "1",
                     "--quiet", "--threads", "1", "--backbone", str(tiny_bert_dir)]) == 0
    out, err = capsys.readouterr()
    assert "conpet: expert stage: " in err and "selector stage" not in err  # the default: no selector to train
    assert "conpet: left out of this task" in err
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        c, n = run.metrics[-1]["test_correct"][0], run.metrics[-1]["test_examples"][0]
    assert f"whole accuracy {accuracy_text(c, n)} of the test examples" in out
    assert f"per task: task 1 {accuracy_text(c, n)}" in out and json.dumps(run.config["notes"])


def test_a_re_adapted_feature_map_is_planned_while_types_are_few():
    cfg = TrainConfig(batch_size=8, max_epochs=2, batch_limit=None, router_readapt_types=16)
    first = stage_plans("dynamic-lda", cfg, 64, has_old=False, seen_types=8, seen_examples=64)
    assert [p.stage for p in first] == ["feature-map", "expert"]
    second = stage_plans("dynamic-lda", cfg, 64, has_old=True, seen_types=16, seen_examples=128)
    assert [p.stage for p in second] == ["feature-map", "expert"] and second[0].batches == 2 * 128 // 8
    assert "128 stored training examples of every learnt type" in describe_plan(second)[0]
    third = stage_plans("dynamic-lda", cfg, 64, has_old=True, seen_types=24, seen_examples=192)
    assert [p.stage for p in third] == ["expert"]  # past the limit the map stays as it is
    assert [p.stage for p in stage_plans("lda-adapted", cfg, 64, has_old=False, seen_types=8,
                                         seen_examples=64)] == ["feature-map"]  # the map is not expert 0
    off = TrainConfig(batch_size=8, max_epochs=2, batch_limit=None)
    assert [p.stage for p in stage_plans("dynamic-lda", off, 64, has_old=False, seen_types=8,
                                         seen_examples=64)] == ["expert"]
