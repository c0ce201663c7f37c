"""Learning more about the types a model already knows (data-incremental learning).

A project keeps every label, so after a task is learnt its types keep gaining examples (a Routing review's
Accept or Correct, an accepted suggestion, a sentence from the Next most useful queue) and losing some (a
label removed, or corrected to another type). A model records, per learnt type, the input keys
(`Example.input_key`: kind, text and spans, also the logit cache's key, so a removed example's cached
features are found by it) of the training examples it learnt the type from (`PETMethod.learnt_examples`);
`label_changes` compares that record with a learnt task's current training examples:

- added: a current training example whose key the record of its type does not hold (new, or relabelled
  into the type: the record is per type);
- removed: a key the record holds that is no longer among the type's current training examples (its
  label was removed, or corrected to another type).

What a method does with them is its `new_labels` (one of `NEW_LABELS`): `refresh` (a refresh step learns
them, with or without a new task: `PETMethod.refresh`), `replay` (they reach the model at its next new task,
which replays every learnt task's current data) or `none` (never).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conpet.data.example import Example
from conpet.data.tasks import TaskData

# What a method does with new labels of types it has learnt (its class attribute `new_labels`).
NEW_LABELS = ("refresh", "replay", "none")


@dataclass(frozen=True)
class TaskChange:
    """What changed in one learnt task's training data since the model learnt it."""

    task: int  # 0-based task index
    added: tuple[Example, ...]  # current training examples the model has not learnt from
    removed: tuple[tuple[str, str], ...]  # (input key, the type it was learnt as) no longer there
    learnt: int  # training examples the model learnt the task's types from

    @property
    def changed(self) -> int:
        return len(self.added) + len(self.removed)

    @property
    def share(self) -> float:
        """Changed examples per learnt example (a task learnt from none: 1 if anything changed)."""
        return self.changed / self.learnt if self.learnt else float(self.changed > 0)


def label_changes(tasks: Sequence[TaskData], learnt: Mapping[str, Sequence[str]]) -> list[TaskChange]:
    """Per task of `tasks` (their current training data), what differs from `learnt` (type -> input keys)."""
    out = []
    for task in tasks:
        known = {t: set(learnt.get(t, ())) for t in task.types}
        current: dict[str, set[str]] = {t: set() for t in task.types}
        added = []
        for ex in task.train:
            current.setdefault(ex.label, set()).add(ex.input_key)
            if ex.input_key not in known.get(ex.label, set()):
                added.append(ex)
        removed = tuple((i, t) for t in task.types for i in sorted(known[t] - current.get(t, set())))
        out.append(TaskChange(task.index, tuple(added), removed, sum(len(v) for v in known.values())))
    return out


def changes_text(changes: Sequence[TaskChange]) -> str:
    """One line: how many labels of learnt types changed, and in which tasks."""
    added = sum(len(c.added) for c in changes)
    removed = sum(len(c.removed) for c in changes)
    tasks = [c.task + 1 for c in changes if c.changed]
    if not tasks:
        return "no label of a learnt type changed since its task was trained"
    return (f"{added + removed} label(s) of learnt types changed since their task was trained ({added} added, "
            f"{removed} removed or relabelled) in task(s) {', '.join(map(str, tasks))}")
