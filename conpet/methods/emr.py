"""EMR, the shared machinery of the memory baselines, and EMR* (CONPET.md "Baselines (IV-C)").

`MemoryBaseline` is one PET module over all seen types (as Static ConPET) plus a K-Means episodic
memory (`conpet.methods.memory`), selected after every step from the new task's training examples by their
representations (the final hidden state at [MASK], after the method's `transform`).

- The PET-only baselines (`limited_memory = True`: EMR, EA-EMR, CRL) replay only the memory: each
  batch is ConPET's batch shape (n_new new + n_old old examples, old ones drawn task-first from the
  memorised examples) and a step trains exactly ConPET's number of batches
  (`conpet.methods.memory.memory_replay_plan`: the small memory is replayed often enough that the total
  number of training batches is not lower than ConPET's). The plan is recorded in the step's stats.
- Their Static ConPET versions (`limited_memory = False`: EA-EMR*, CRL*) replay all history with the
  batch limit (the engine's dynamic replay); they keep a memory too, but only as what EA-EMR aligns
  and what CRL builds its prototypes from. EMR* is the engine's Static ConPET under its paper name.

Subclasses change `transform` (EA-EMR's alignment), `batch_loss` (CRL's extra losses),
`prepare_step` / `after_training` (what happens around the training stage) and `predict_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from conpet.core.protocols import LogitCache, Reporter
from conpet.data.example import Example
from conpet.data.tasks import TaskData
from conpet.methods.base import Stage, StepStats
from conpet.methods.memory import EpisodicMemory, memory_replay_plan
from conpet.methods.registry import register_method
from conpet.methods.static import SingleModuleMethod, StaticConPET

MEMORY_FOLDER = "memory"


class MemoryBaseline(SingleModuleMethod):
    """One PET module over all seen types + a K-Means episodic memory (see the module docstring)."""

    name: ClassVar[str] = "?"
    limited_memory: ClassVar[bool] = True  # replay only the memory (PET-only) or all history (starred)
    new_labels: ClassVar[str] = "none"  # the memory is chosen when a task is learnt; the starred ones replay
    new_labels_text: ClassVar[str] = ("never learns labels added to learnt types: it replays only the memory "
                                      "chosen when each task was learnt")
    TRAIN_SHARE: ClassVar[float] = 0.95  # of a step's progress; the rest is memory selection etc.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memory = EpisodicMemory(self.config.memory_per_type)

    # --- representations ------------------------------------------------------------------------

    def transform(self, h: torch.Tensor) -> torch.Tensor:
        """What the head sees of a hidden state (EA-EMR: the alignment layer). Identity here."""
        return h

    def hidden_states(self, examples: Sequence[Example], *, grad: bool) -> torch.Tensor:
        """Raw [MASK] hidden states of the current module, [B, H] float32 (one backbone pass)."""
        self.backbone_forwards += 1
        self.backbone_examples += len(examples)
        batch = self.encode(examples)
        with torch.set_grad_enabled(grad):
            return self.pet.hidden(batch, self.adapter(self.current)).float()

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.pet.heads[self.adapter(self.current)](features)

    def forward_logits(self, name: str, examples: Sequence[Example], *, grad: bool) -> torch.Tensor:
        if name != self.current:
            return super().forward_logits(name, examples, grad=grad)
        h = self.transform(self.hidden_states(examples, grad=grad))
        with torch.set_grad_enabled(grad):
            return self.head(h).float()

    @torch.no_grad()
    def representations(self, examples: Sequence[Example], *, raw: bool = False) -> np.ndarray:
        """Representations (after `transform` unless `raw`) of many examples, in prediction batches."""
        out = []
        for _, chunk in self._batches(examples):
            h = self.hidden_states(chunk, grad=False)
            out.append((h if raw else self.transform(h)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.backbone.hidden_size), dtype=np.float32)

    # --- training ---------------------------------------------------------------------------------

    def begin_step(self, task: TaskData) -> dict[str, Any]:
        state = super().begin_step(task)
        state["memory"] = self.memory.copy()
        return state

    def rollback_step(self, state: dict[str, Any]) -> None:
        super().rollback_step(state)
        self.memory = state["memory"]

    def new_and_old(self, task: TaskData, history: list[TaskData]) -> tuple[list[Example], list[list[Example]]]:
        new, old = super().new_and_old(task, history)
        if self.limited_memory and old:
            old = self.memory.task_examples()[: len(history)]
        return new, old

    def batch_loss(self, batch: list[Example], index: dict[str, int]) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy over all seen types (EMR). Subclasses add terms."""
        logits = self.module_logits(self.current, batch, grad=True)
        gold = torch.tensor([index[ex.label] for ex in batch], device=logits.device)
        return F.cross_entropy(logits, gold), {"acc": float((logits.argmax(-1) == gold).float().mean())}

    def prepare_step(self, task: TaskData, history: list[TaskData]) -> None:
        """Before the module grows for the new task (CRL: freeze a copy of the previous model)."""

    def train_step(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        self.prepare_step(task, history)
        if not self.has_module(self.current):
            self.add_module(self.MODULE, len(self.types))
            self.current = self.MODULE
        else:
            self.pet.grow_head(self.adapter(self.current), len(task.types))
        self.bump_version(self.current)
        new, old = self.new_and_old(task, history)
        sampler = self.make_sampler("train", new, old, self.config.batch_limit)
        valid = self.make_validation([list(t.valid) for t in [*history, task]], sampler, "train")
        c = self.config
        if self.limited_memory:
            plan = memory_replay_plan(len(new), sum(len(o) for o in old), batch_size=c.batch_size,
                                      new_old_ratio=c.new_old_ratio, max_epochs=c.max_epochs,
                                      batch_limit=c.batch_limit)
            assert len(sampler) >= plan.conpet_batches, "the baseline must not train fewer batches than ConPET"
            stats.extra["replay"] = {"memory_examples": plan.memory_examples, "batches": len(sampler),
                                     "conpet_batches": plan.conpet_batches, "memory_draws": plan.memory_draws,
                                     "replays_per_example": round(plan.replays_per_example, 2)}
        else:
            stats.extra["replay"] = {"history_examples": sum(len(o) for o in old), "batches": len(sampler)}
        index = self.type_index()
        stage = Stage("train", self.current, sampler, lambda b: self.batch_loss(b, index),
                      lambda: self.average_accuracy(valid), c.lr)
        stats.stages.append(self.run_stage(stage, rep, 0.0, self.TRAIN_SHARE))
        rep.check_cancel()
        rep(self.TRAIN_SHARE, "selecting the episodic memory", "memory")
        self.after_training(task, history, rep, stats)

    def after_training(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        """Select the new task's memory (K-Means on its training examples' representations)."""
        self.select_memory(task, stats)

    def select_memory(self, task: TaskData, stats: StepStats) -> list[Example]:
        feats = self.representations(task.train)
        chosen = self.memory.add_task(list(task.train), feats, seed=self.config.seed * 1000 + task.index)
        stats.extra["memory"] = {"per_type": self.memory.per_type, "selected": len(chosen), "total": len(self.memory)}
        return chosen

    # --- save / load --------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        super().save(folder)
        self.memory.save(Path(folder) / MEMORY_FOLDER)

    @classmethod
    def load(cls, folder: str | Path, backbone: Any, cache: LogitCache | None = None) -> MemoryBaseline:
        method = super().load(folder, backbone, cache)
        assert isinstance(method, MemoryBaseline)
        if (Path(folder) / MEMORY_FOLDER / "memory.json").is_file():
            method.memory = EpisodicMemory.load(Path(folder) / MEMORY_FOLDER)
        method.load_weights(Path(folder))
        return method

    def load_weights(self, folder: Path) -> None:
        """Method-specific tensors beside the modules (EA-EMR's alignment, CRL's prototypes)."""


@register_method("emr", aliases=("emr-pet",))
class EMR(MemoryBaseline):
    """EMR with PET only: plain replay of a K-Means episodic memory (cross-entropy on new + memorised)."""

    name = "emr"
    description = "EMR with PET only: replay of a K-Means episodic memory (baseline)"


@register_method("emr*", aliases=("emr-star", "emr_star"))
class EMRStar(StaticConPET):
    """EMR* = Static ConPET: EMR on dynamic replay of all history with the batch limit."""

    name = "emr*"
    description = "EMR* = Static ConPET: one PET module, dynamic replay of all history with the batch limit"
