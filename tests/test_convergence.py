"""The `converge` profile: early stopping on validation accuracy (patience in epochs, a cap on epochs, the
best epoch's weights kept), on a tiny real run (minilm, the synthetic tasks of test_methods)."""

from __future__ import annotations

import pytest
import torch
from test_methods import synthetic_tasks

from conpet.core.config import CONVERGE_MAX_EPOCHS, CONVERGE_PATIENCE, TrainConfig, profile_train
from conpet.methods.base import TrainingHook
from conpet.methods.registry import make_method
from conpet.methods.training_report import describe_plan, stage_plans

pytestmark = pytest.mark.slow


class EpochWeights(TrainingHook):
    """The trained module's weights and the validation accuracy after every epoch."""

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.weights: list[list[torch.Tensor]] = []
        self.module = ""

    def after_epoch(self, method, stage, epoch, score):
        self.module = stage.module
        self.scores.append(score)
        self.weights.append([p.detach().clone() for p in method.pet.module_parameters(stage.module)])


def test_converge_profile_stops_on_validation_accuracy_and_keeps_the_best_epoch(minilm):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        config = TrainConfig(lr=3e-3, batch_limit=None, max_epochs=12, patience=1, seed=1, eval_batch_size=64)
        method = make_method("static", minilm, config)
        rec = EpochWeights()
        method.hooks.append(rec)
        stats = method.learn_task(synthetic_tasks()[0], [])
    finally:
        torch.set_num_threads(old)
    (stage,) = stats.stages
    best = max(range(len(rec.scores)), key=lambda e: (rec.scores[e], -e))  # the first epoch with the top score
    # It stopped the first epoch after the best that brought no rise, long before the cap.
    assert stage.stopped_early and stage.epochs == len(rec.scores) < config.max_epochs
    assert stage.best_epoch == best and stage.epochs == best + 1 + config.patience
    assert all(s <= rec.scores[best] for s in rec.scores[best + 1:])
    # The module holds the best epoch's weights, not the last epoch's.
    now = [p.detach() for p in method.pet.module_parameters(rec.module)]
    assert all(torch.equal(a, b) for a, b in zip(now, rec.weights[best], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(now, rec.weights[-1], strict=True))


def test_converge_profile_is_said_before_training():
    cfg = profile_train("converge", data="project")
    assert cfg.batch_limit is None and cfg.max_epochs == CONVERGE_MAX_EPOCHS and cfg.patience == CONVERGE_PATIENCE
    (line,) = describe_plan(stage_plans("dynamic-lda", cfg, 400, has_old=False))
    assert line.startswith(f"expert stage: 1500 batches of 8 = 30.00 of at most {CONVERGE_MAX_EPOCHS} epoch(s)")
    assert f"not risen for {CONVERGE_PATIENCE} epoch(s) and keeps the best epoch's weights" in line
