"""Dynamic replay (ConPET III-B): batches of new and old data in a fixed ratio, old examples drawn
hierarchically (first a seen task uniformly, then an example uniformly within it), a cap on batches per
step and on epochs, and a fixed, seeded validation sample (validation batches : training batches = 1:4).

Also the K-Means episodic memory used by the limited-memory baselines (EMR, EA-EMR, CRL).
Everything here is deterministic for a seed and knows nothing about models.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


def split_batch(batch_size: int, new_old_ratio: float, has_old: bool) -> tuple[int, int]:
    """(new, old) examples per batch: all new when there is nothing to replay, else the ratio, at least one of each."""
    if not has_old:
        return batch_size, 0
    n_new = int(round(batch_size * new_old_ratio / (1.0 + new_old_ratio)))
    n_new = min(max(n_new, 1), batch_size - 1)
    return n_new, batch_size - n_new


@dataclass(frozen=True)
class ReplayPlan:
    """How many batches a stage trains: `epochs` passes over the new data, `total` batches in all."""

    n_new: int
    n_old: int
    batches_per_epoch: int
    epochs: int
    total: int

    def epoch_sizes(self) -> list[int]:
        sizes, left = [], self.total
        while left > 0:
            sizes.append(min(self.batches_per_epoch, left))
            left -= sizes[-1]
        return sizes


def stage_batches(n_examples: int, per_batch: int, max_epochs: int, batch_limit: int | None) -> tuple[int, int]:
    """(batches per epoch, batches of the stage) of a stage that passes ``max_epochs`` times over ``n_examples``
    at ``per_batch`` of them per batch, cut at ``batch_limit``: the one count that the samplers, the plans
    shown before training, the baselines' replay budget and the ETA share."""
    per_epoch = math.ceil(n_examples / per_batch) if n_examples else 0
    total = max_epochs * per_epoch
    return per_epoch, total if batch_limit is None else min(total, batch_limit)


class ReplaySampler(Generic[T]):
    """Yields training batches for one stage of one continual step.

    Each batch holds `n_new` examples from the new task (shuffled, without replacement within an epoch)
    and `n_old` old examples, each drawn by picking one of `old_tasks` uniformly, then one of its examples
    uniformly (with replacement). The stage runs `min(max_epochs * batches_per_epoch, batch_limit)`
    batches; the last epoch may be cut short by the limit.
    """

    def __init__(self, new: Sequence[T], old_tasks: Sequence[Sequence[T]] = (), *, batch_size: int = 8,
                 new_old_ratio: float = 1.0, batch_limit: int | None = None, max_epochs: int = 10,
                 seed: int = 0) -> None:
        if not new:
            raise ValueError("a replay sampler needs at least one new example")
        self.new = list(new)
        self.old_tasks = [list(t) for t in old_tasks if len(t)]
        n_new, n_old = split_batch(batch_size, new_old_ratio, bool(self.old_tasks))
        per_epoch, total = stage_batches(len(self.new), n_new, max_epochs, batch_limit)
        self.plan = ReplayPlan(n_new, n_old, per_epoch, math.ceil(total / per_epoch), total)
        self.seed = seed

    def __len__(self) -> int:
        return self.plan.total

    def epochs(self) -> Iterator[Iterator[list[T]]]:
        """One iterator of batches per epoch (consume each before asking for the next)."""
        rng = np.random.default_rng([self.seed, 7919])
        for size in self.plan.epoch_sizes():
            yield self._epoch(rng, size)

    def _epoch(self, rng: np.random.Generator, size: int) -> Iterator[list[T]]:
        order = rng.permutation(len(self.new))
        p = self.plan
        for b in range(size):
            idx = order[b * p.n_new : (b + 1) * p.n_new]
            batch = [self.new[i] for i in idx]
            batch.extend(self.sample_old(rng, p.n_old))
            yield batch

    def sample_old(self, rng: np.random.Generator, n: int) -> list[T]:
        """Hierarchical sampling: task uniformly, then example uniformly within the task."""
        if n <= 0 or not self.old_tasks:
            return []
        tasks = rng.integers(len(self.old_tasks), size=n)
        return [self.old_tasks[t][int(rng.integers(len(self.old_tasks[t])))] for t in tasks]


def validation_sample(valid_sets: Sequence[Sequence[T]], n_examples: int, *, seed: int,
                      min_per_task: int = 1) -> list[list[T]]:
    """A fixed, seeded sample of each seen task's validation set, the same size for every task
    (so that average accuracy weighs tasks equally): about `n_examples` in all, at least
    `min_per_task` per task, never more than a task has."""
    k = max(len(valid_sets), 1)
    per_task = max(math.ceil(n_examples / k), min_per_task)
    out = []
    for i, vs in enumerate(valid_sets):
        rng = np.random.default_rng([seed, 104729, i])
        if len(vs) <= per_task:
            out.append(list(vs))
        else:
            idx = np.sort(rng.choice(len(vs), size=per_task, replace=False))
            out.append([vs[j] for j in idx])
    return out


def validation_size(batches_per_epoch: int, batch_size: int, valid_ratio: float) -> int:
    """Examples in the validation sample: valid_ratio validation batches per training batch of an epoch."""
    return max(1, math.ceil(batches_per_epoch * valid_ratio)) * batch_size
