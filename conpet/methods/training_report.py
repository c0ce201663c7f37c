"""What a training step tells its user before and after it runs: the budget each stage will spend and
how much of the new data it covers, the types it leaves out and why, test splits too small to mean
much, and accuracies with the number of examples behind them. Pure functions of counts and configs,
so the CLI, the app and the tests say the same thing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conpet.core.config import TrainConfig
from conpet.methods.replay import split_batch, stage_batches

SMALL_TEST = 20  # fewer test examples than this and one example moves the accuracy by more than 5 points


@dataclass(frozen=True)
class StagePlan:
    stage: str  # "selector", "expert" or "training"
    batches: int
    batches_per_epoch: int
    max_epochs: int
    n_new: int  # new examples per batch
    n_old: int  # replayed examples per batch
    new_examples: int
    patience: int | None = None  # early stopping on validation accuracy (TrainConfig.patience)

    @property
    def epochs(self) -> float:
        return self.batches / self.batches_per_epoch if self.batches_per_epoch else 0.0

    @property
    def coverage(self) -> float:
        """Fraction of the new training examples the stage sees at least once."""
        return min(1.0, self.batches * self.n_new / self.new_examples) if self.new_examples else 0.0

    @property
    def limited(self) -> bool:
        """True when the batch limit stops the stage before its epochs are done."""
        return self.batches < self.max_epochs * self.batches_per_epoch


def _class(method: str) -> Any:
    from conpet.methods.registry import method_class

    return method_class(method)


def readapts_map(method: str, config: TrainConfig, seen_types: int, has_old: bool) -> bool:
    """Whether this step of a statistically routed method re-trains its feature map on every learnt type's
    stored data (``router_readapt_types``; ``seen_types`` counts the new task's types too)."""
    cls = _class(method)
    return (cls.routed_by_statistics and cls.features_from != "frozen" and config.router_readapt_types > 0
            and config.router_features == "first-task"
            and (not has_old or seen_types <= config.router_readapt_types))


def feature_map_plan(config: TrainConfig, seen_examples: int) -> StagePlan:
    """The stage that trains a feature map on every learnt type's ``seen_examples`` stored training examples (a
    re-adapting step, a consolidation): the expert stage's batch limit, no replay."""
    per_epoch, total = stage_batches(seen_examples, config.batch_size, config.max_epochs, config.iter2_limit)
    return StagePlan("feature-map", total, per_epoch, config.max_epochs, config.batch_size, 0, seen_examples,
                     config.patience)


def stage_plans(method: str, config: TrainConfig, new_examples: int, has_old: bool, *, seen_types: int = 0,
                seen_examples: int = 0) -> list[StagePlan]:
    """The stages one step of ``method`` runs and their budgets, as ``conpet.methods.replay.ReplaySampler`` counts
    them (Dynamic ConPET: a selector stage, then the new expert's; the others: one stage). ``seen_types`` and
    ``seen_examples``: every learnt task's types and stored training examples, the new task's included (a
    re-adapted feature map trains on them)."""
    out = []
    cls = _class(method)
    if readapts_map(method, config, seen_types, has_old):
        out.append(feature_map_plan(config, seen_examples))
    if cls.routed_by_statistics:
        # One expert per task on its own task's data (no replay); the router's statistics need no batches.
        # Without experts, only a feature map adapted once (on the first task) trains.
        own_map = config.router_readapt_types > 0 and config.router_features == "first-task"
        trains = cls.use_experts or (cls.features_from == "first-task" and not has_old and not own_map)
        limits = [("expert", config.iter2_limit)] if trains else []
        has_old = False
    elif cls.dynamic_family:
        # The task-id selector has nothing to learn from the first task alone; the type-level one has.
        labels = cls.selector_labels or config.selector_labels
        selector = cls.use_selector and (has_old or labels == "type")
        limits = [("selector", config.iter1_limit)] if selector else []
        limits.append(("expert", config.iter2_limit))
    else:
        limits = [("training", config.batch_limit)]
    n_new, n_old = split_batch(config.batch_size, config.new_old_ratio, has_old and config.replay)
    for stage, limit in limits:
        per_epoch, total = stage_batches(new_examples, n_new, config.max_epochs, limit)
        out.append(StagePlan(stage, total, per_epoch, config.max_epochs, n_new, n_old, new_examples,
                             config.patience))
    return out


def describe_plan(plans: Sequence[StagePlan]) -> list[str]:
    lines = []
    for p in plans:
        line = (f"{p.stage} stage: {p.batches} batches of {p.n_new + p.n_old}"
                + (f" ({p.n_new} new + {p.n_old} replayed)" if p.n_old else "")
                + f" = {p.epochs:.2f} of at most {p.max_epochs} epoch(s) over the {p.new_examples} "
                + ("stored training examples of every learnt type" if p.stage == "feature-map"
                   else "new training examples"))
        if p.patience is not None:
            line += (f"; early stopping: it stops once validation accuracy has not risen for {p.patience} "
                     "epoch(s) and keeps the best epoch's weights")
        if p.limited:
            line += (f"; stopped by the batch limit, it sees {100 * p.coverage:.0f}% of them"
                     if p.coverage < 1 else "; stopped by the batch limit")
        lines.append(line)
    return lines


def left_out_types(free: Sequence[Any], counts: Mapping[int, int], min_examples: int) -> list[str]:
    """Warnings for the types no task holds that a new task leaves out for having too few examples."""
    short = [(t.name, counts.get(t.id, 0)) for t in free if counts.get(t.id, 0) < min_examples]
    if not short:
        return []
    listed = ", ".join(f"{name!r} ({n} example{'s' if n != 1 else ''})" for name, n in short)
    return [f"left out of this task, below --min-examples {min_examples}: {listed}; label more, or lower "
            "--min-examples"]


def small_test_warnings(task: Any) -> list[str]:
    """Warnings for a new task whose test split is too small to mean much, or misses types."""
    out = []
    n = len(task.test)
    if n < SMALL_TEST:
        out.append(f"the new task has only {n} test example(s): its accuracy moves by "
                   f"{100 / n if n else 100:.0f} points per example; label more for a meaningful figure"
                   if n else "the new task has no test examples: its accuracy cannot be measured")
    missing = [t for t in task.types if not any(ex.label == t for ex in task.test)]
    if missing and n:
        out.append(f"type(s) {missing} have no test example: their accuracy is not measured")
    return out


def accuracy_text(correct: int, total: int) -> str:
    """``80.0% (24 of 30)``, or ``- (no test examples)``."""
    if not total:
        return "- (no test examples)"
    return f"{100 * correct / total:.1f}% ({correct} of {total})"


def all_data_notes(n_examples: int, folds: int) -> list[str]:
    """What ``--all-data`` does and costs, said before training."""
    per_fold = n_examples - n_examples // folds
    return [f"all data: the new task trains on all {n_examples} labelled examples (no validation or test split: "
            "the best epoch is chosen on the data it trains on); its accuracy is estimated by "
            f"{folds}-fold cross-validation, which costs {folds} extra trainings of the new task only (about "
            f"{per_fold} examples each, old tasks untouched), run before the model that is kept: the step "
            f"takes about {folds} times as long as without --all-data"]
