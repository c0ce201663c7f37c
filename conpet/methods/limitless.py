"""Limitless (CONPET.md "Baselines (IV-C)"): Dynamic ConPET with no batch number limit, every step
training on all history, the paper's upper bound, whose cost grows linearly with the number of tasks.

Each stage (selector, expert) runs `max_epochs` epochs; an epoch is one pass over *every* old example
(shuffled, without replacement) with the new task's examples cycled alongside in ConPET's batch shape
(n_new new + n_old old per batch, 1:1 by default): max(ceil(N_new / n_new), ceil(N_old / n_old))
batches. At the first step there is no history and an epoch is one pass over the new data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np

from conpet.data.example import Example
from conpet.methods.dynamic import DynamicConPET
from conpet.methods.registry import register_method
from conpet.methods.replay import ReplayPlan, ReplaySampler

T = TypeVar("T")


class FullHistorySampler(ReplaySampler[T]):
    """ReplaySampler whose epochs cover all old examples once; no batch limit."""

    def __init__(self, new: Sequence[T], old_tasks: Sequence[Sequence[T]] = (), *, batch_size: int = 8,
                 new_old_ratio: float = 1.0, max_epochs: int = 10, seed: int = 0) -> None:
        super().__init__(new, old_tasks, batch_size=batch_size, new_old_ratio=new_old_ratio, batch_limit=None,
                         max_epochs=max_epochs, seed=seed)
        self.old_flat = [ex for t in self.old_tasks for ex in t]
        p = self.plan
        per_epoch = math.ceil(len(self.new) / p.n_new)
        if self.old_flat:
            per_epoch = max(per_epoch, math.ceil(len(self.old_flat) / p.n_old))
        self.plan = ReplayPlan(p.n_new, p.n_old, per_epoch, max_epochs, max_epochs * per_epoch)

    def _epoch(self, rng: np.random.Generator, size: int) -> Iterator[list[T]]:
        p = self.plan
        new_order = _cycled(rng, len(self.new), size * p.n_new)
        old_order = _cycled(rng, len(self.old_flat), size * p.n_old) if self.old_flat else []
        for b in range(size):
            batch = [self.new[i] for i in new_order[b * p.n_new : (b + 1) * p.n_new]]
            batch.extend(self.old_flat[i] for i in old_order[b * p.n_old : (b + 1) * p.n_old])
            yield batch


def _cycled(rng: np.random.Generator, n: int, count: int) -> list[int]:
    """`count` indices: consecutive shuffled passes over range(n)."""
    out: list[int] = []
    while len(out) < count:
        out.extend(int(i) for i in rng.permutation(n))
    return out[:count]


@register_method("limitless", aliases=("dynamic-limitless", "upper-bound"))
class Limitless(DynamicConPET):
    """Dynamic ConPET with no batch limit: every step trains on all history."""

    name = "limitless"
    description = (
        "Dynamic ConPET with no batch limit: every step "
        "trains on all history (the paper's upper bound)")
    step_cost_grows = True

    def make_sampler(self, stage: str, new: Sequence[Example], old_tasks: Sequence[Sequence[Example]],
                     limit: int | None) -> ReplaySampler[Example]:
        c = self.config
        return FullHistorySampler(new, old_tasks if c.replay else (), batch_size=c.batch_size,
                                  new_old_ratio=c.new_old_ratio, max_epochs=c.max_epochs,
                                  seed=c.seed * 1000 + self.n_tasks * 10 + _stage_seed(stage))


def _stage_seed(stage: str) -> int:
    from conpet.methods.base import hash_stage

    return hash_stage(stage)
