"""A job encodes each example once: a training step (its epochs, stages, validation and test passes) and a
project's prediction (the selector's and the experts' passes) tokenise an example the first time they read
it and reuse that encoding after."""

from __future__ import annotations

from collections import Counter

import pytest
from demo_data import demo_subset

from conpet.core.config import TrainConfig
from conpet.data.example import Example, Span
from conpet.data.tasks import TaskData
from conpet.eval.continual import run_continual
from conpet.methods.registry import make_method
from conpet.model.encoding import ConpetEncoder
from conpet.project.predict import predict_project
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file

# two epochs and the default validation: every training example is read at least twice per stage
BUDGET = {"batch_limit": 20, "max_epochs": 2, "min_valid_per_task": 2}


@pytest.fixture
def encodings(monkeypatch) -> Counter:
    """How often each example (by what its encoding depends on) went through the tokenizer."""
    counts: Counter = Counter()
    tokenise = ConpetEncoder._encode

    def counted(self, example):
        counts[(example.kind, example.text, example.spans)] += 1
        return tokenise(self, example)

    monkeypatch.setattr(ConpetEncoder, "_encode", counted)
    return counts


def _twice(counts: Counter) -> list:
    return [key for key, n in counts.items() if n > 1]


def test_a_project_step_and_a_project_prediction_encode_each_example_once(tmp_path, tiny_bert, encodings):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
    train_project(folder, method="dynamic", backbone=tiny_bert, profile="smoke", overrides=BUDGET)
    assert len(encodings) >= 12 and not _twice(encodings)  # train, valid and test examples, each once
    with Project.open(folder) as p:
        import_file(p, demo_subset(("Company", "Drug"), 8, tmp_path / "t2.jsonl"))
    encodings.clear()
    train_project(folder, backbone=tiny_bert, overrides=BUDGET)  # the second step replays the first task
    assert len(encodings) >= 24 and not _twice(encodings)
    encodings.clear()
    with Project.open(folder) as p:
        p.logit_cache.clear()  # every module runs through the backbone: the selector, then an expert
    out = predict_project(folder, backbone_provider=lambda name, device: tiny_bert)
    assert out.predictions >= 24 and out.backbone_passes >= 2
    assert len(encodings) >= 24 and not _twice(encodings)


def _tasks() -> list[TaskData]:
    words = {"city": ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Vienna"],
             "fruit": ["apple", "pear", "plum", "kiwi", "mango", "peach"],
             "color": ["red", "blue", "green", "pink", "grey", "cyan"],
             "animal": ["dog", "cat", "wolf", "bear", "goat", "lion"]}

    def ex(label: str, word: str, n: int) -> Example:
        text = f"Sentence {n} is about {word} today."
        return Example(text, (Span(text.index(word), text.index(word) + len(word)),), label, "entity")

    out = []
    for k, group in enumerate((("city", "fruit"), ("color", "animal"))):
        rows = [[ex(t, w, n) for t in group for w in words[t]] for n in range(3)]
        out.append(TaskData(k, group, rows[0], rows[1], rows[2]))
    return out


def test_each_benchmark_step_encodes_its_examples_once(tiny_bert, encodings):
    method = make_method("dynamic", tiny_bert, TrainConfig(lr=3e-3, seed=1, **BUDGET))
    per_step: list[list] = []

    def on_step(record) -> None:  # called after the step's job: the next step may encode them again
        per_step.append(_twice(encodings))
        encodings.clear()

    run_continual(method, _tasks(), on_step=on_step)
    assert per_step == [[], []]
