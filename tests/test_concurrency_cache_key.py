"""Issue 24 (10): the logit cache is keyed by a model's input alone, so the sentence and spans a training
step cached (with its label) are served from the cache at prediction (no label)."""

from __future__ import annotations

from dataclasses import replace

import torch

from conpet.core.config import TrainConfig
from conpet.data.example import Example, Span
from conpet.methods.registry import make_method
from conpet.model.logit_cache import MemoryLogitCache

TRAIN = Example("Ada Lovelace wrote the first program .", (Span(0, 12),), "Person", "entity")
ASKED = Example("Ada Lovelace wrote the first program .", (Span(0, 12),), "", "entity", id="prediction-1")


def test_the_input_key_ignores_the_label_the_id_and_the_source():
    assert TRAIN.id != ASKED.id
    assert TRAIN.input_key == ASKED.input_key == replace(TRAIN, source="other.jsonl", id="x").input_key
    assert TRAIN.input_key != replace(TRAIN, spans=(Span(4, 12),)).input_key
    assert TRAIN.input_key != replace(TRAIN, text=TRAIN.text + " ").input_key
    pair = Example(TRAIN.text, (Span(0, 12), Span(23, 36)), "wrote", "relation")
    assert pair.input_key != TRAIN.input_key


def test_features_cached_for_a_training_example_serve_its_prediction(minilm):
    torch.set_num_threads(1)
    method = make_method("lda-frozen", minilm, TrainConfig(), cache=MemoryLogitCache())
    first, _ = method.features([TRAIN])
    passes = method.backbone_forwards
    again, _ = method.features([ASKED])
    assert method.backbone_forwards == passes, "the unlabelled example went through the backbone again"
    assert (first == again).all()


def test_a_frozen_modules_logits_cached_in_training_serve_prediction(minilm):
    torch.set_num_threads(1)
    method = make_method("static", minilm, TrainConfig(), cache=MemoryLogitCache())
    try:
        method.add_module("static", 3)
        method.task_types = [("Person", "City", "Drug")]
        assert method.is_frozen("static")
        trained = method.module_logits("static", [TRAIN])
        passes = method.backbone_forwards
        asked = method.module_logits("static", [ASKED])
        assert method.backbone_forwards == passes, "the unlabelled example went through the backbone again"
        assert torch.equal(trained, asked)
    finally:
        method.pet.close()
