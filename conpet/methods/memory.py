"""Episodic memory of the limited-memory baselines (ConPET IV-C: EMR, EA-EMR, CRL) and the arithmetic
that gives them a training budget no lower than ConPET's.

- `kmeans_select`: per type, K-Means (scikit-learn, seeded) with `per_type` clusters on the examples'
  representations, and the example nearest each centroid (all of a type's examples when it has fewer).
- `EpisodicMemory`: the selected examples per task, with the representation each had when it was
  stored (EA-EMR aligns current representations back onto those).
- `default_memory_per_type` (defined with the profiles in `conpet.core.config`): Table III's sizes (FewNERD/OntoNotes 100, BBN/FewRel 50, TACRED/ACE 20),
  scaled down when a profile caps the training examples per type, so that the memory keeps the same
  share of a type's training data as in the paper (otherwise a 50-example memory would hold all 40
  training examples of the quick profile and the baselines would be Static ConPET under another name).
- `memory_replay_plan`: how often the memory is replayed (see its docstring).

Knows nothing about models: representations come in as arrays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conpet.core.config import default_memory_per_type  # noqa: F401  (kept here for the baselines' callers)
from conpet.data.example import Example, Span
from conpet.methods.replay import split_batch, stage_batches


def kmeans_select(features: np.ndarray, labels: Sequence[str], per_type: int, *, seed: int) -> list[int]:
    """Indices of the memory: per type (types in sorted order), K-Means with `per_type` clusters on
    that type's rows of `features` and, for each centroid, the nearest example not already picked.
    A type with at most `per_type` examples keeps them all. Deterministic for a seed."""
    from sklearn.cluster import KMeans

    if per_type < 1:
        raise ValueError("per_type must be at least 1")
    x_all = np.asarray(features, dtype=np.float64)
    if x_all.ndim != 2 or x_all.shape[0] != len(labels):
        raise ValueError(f"features must be [n, d] with n = {len(labels)} labels, got {x_all.shape}")
    by_type: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_type.setdefault(lab, []).append(i)
    chosen: list[int] = []
    for lab in sorted(by_type):
        idx = by_type[lab]
        if len(idx) <= per_type:
            chosen.extend(idx)
            continue
        x = x_all[idx]
        km = KMeans(n_clusters=per_type, n_init=3, random_state=seed).fit(x)
        taken: set[int] = set()
        picked: list[int] = []
        for c in km.cluster_centers_:
            d = np.linalg.norm(x - c, axis=1)
            for j in np.argsort(d, kind="stable"):
                if int(j) not in taken:
                    taken.add(int(j))
                    picked.append(idx[int(j)])
                    break
        chosen.extend(sorted(picked))
    return chosen


class EpisodicMemory:
    """Memorised examples per task (task order), each with its representation at storage time."""

    def __init__(self, per_type: int) -> None:
        if per_type < 1:
            raise ValueError("per_type must be at least 1")
        self.per_type = per_type
        self.tasks: list[list[Example]] = []
        self.features: dict[str, np.ndarray] = {}  # example id -> representation when stored

    def __len__(self) -> int:
        return sum(len(t) for t in self.tasks)

    def add_task(self, examples: Sequence[Example], features: np.ndarray, *, seed: int) -> list[Example]:
        """Select this task's memory from `examples` (rows of `features`) and store it; returns it."""
        feats = np.asarray(features, dtype=np.float32)
        idx = kmeans_select(feats, [ex.label for ex in examples], self.per_type, seed=seed)
        chosen = [examples[i] for i in idx]
        self.tasks.append(chosen)
        for i in idx:
            self.features[examples[i].id] = feats[i].copy()
        return chosen

    def task_examples(self) -> list[list[Example]]:
        return [list(t) for t in self.tasks]

    def examples(self) -> list[Example]:
        return [ex for t in self.tasks for ex in t]

    def stored(self, examples: Sequence[Example]) -> np.ndarray:
        return np.stack([self.features[ex.id] for ex in examples])

    def copy(self) -> EpisodicMemory:
        out = EpisodicMemory(self.per_type)
        out.tasks = [list(t) for t in self.tasks]
        out.features = dict(self.features)
        return out

    # --- persistence: memory.json (examples) + memory.safetensors (stored representations) ---------

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"per_type": self.per_type, "tasks": [[example_to_dict(ex) for ex in t] for t in self.tasks]}
        (folder / "memory.json").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
        ids = [ex.id for ex in self.examples()]
        if ids:
            save_file({"features": np.stack([self.features[i] for i in ids]).astype(np.float32)},
                      str(folder / "memory.safetensors"))

    @classmethod
    def load(cls, folder: str | Path) -> EpisodicMemory:
        from safetensors.numpy import load_file

        folder = Path(folder)
        doc = json.loads((folder / "memory.json").read_text(encoding="utf-8"))
        mem = cls(int(doc["per_type"]))
        mem.tasks = [[example_from_dict(d) for d in t] for t in doc["tasks"]]
        ids = [ex.id for ex in mem.examples()]
        if ids:
            feats = load_file(str(folder / "memory.safetensors"))["features"]
            mem.features = {i: feats[j] for j, i in enumerate(ids)}
        return mem


def example_to_dict(ex: Example) -> dict[str, Any]:
    return {"text": ex.text, "spans": [[s.start, s.end] for s in ex.spans], "label": ex.label, "kind": ex.kind,
            "id": ex.id, "source": ex.source, "group": ex.group}


def example_from_dict(d: dict[str, Any]) -> Example:
    return Example(d["text"], tuple(Span(int(a), int(b)) for a, b in d["spans"]), d["label"], d["kind"],
                   id=d["id"], source=d.get("source", ""), group=d.get("group"))


# --- the replay-frequency arithmetic -------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryReplayPlan:
    """One continual step of a limited-memory baseline, next to ConPET's step on the same task.

    Every batch holds `n_new` new and `n_old` memorised examples (the same batch shape as ConPET's
    dynamic replay); the baseline trains `batches` batches, exactly ConPET's count, so its total number
    of training batches is never lower than ConPET's. The memory being small, each memorised example
    comes back `replays_per_example` times in the step (on average): that is the replay frequency.
    """

    new_examples: int
    memory_examples: int
    n_new: int
    n_old: int
    conpet_batches: int
    batches: int
    memory_draws: int
    replays_per_example: float


def conpet_batches(n_new_examples: int, *, has_old: bool, batch_size: int, new_old_ratio: float,
                   max_epochs: int, batch_limit: int | None) -> int:
    """Batches ConPET's dynamic replay trains in one stage: max_epochs passes over the new data at
    n_new new examples per batch, cut at the batch number limit (as `ReplaySampler` does)."""
    n_new, _ = split_batch(batch_size, new_old_ratio, has_old)
    return stage_batches(n_new_examples, n_new, max_epochs, batch_limit)[1]


def memory_replay_plan(n_new_examples: int, memory_size: int, *, batch_size: int, new_old_ratio: float,
                       max_epochs: int, batch_limit: int | None) -> MemoryReplayPlan:
    """The replay frequency that gives a limited-memory baseline ConPET's number of batches.

    With history in memory (`memory_size` > 0): batches = ConPET's = min(E * ceil(N / n_new), limit),
    memory draws = batches * n_old, replays per memorised example = draws / memory_size.
    E.g. N = 320 new examples, a memory of 32, batch 8 at 1:1, E = 2, no binding limit:
    160 batches, 640 memory draws, each memorised example replayed 20 times in the step.
    """
    if n_new_examples < 1:
        raise ValueError("a step needs at least one new example")
    if memory_size < 0:
        raise ValueError("memory_size must not be negative")
    has_old = memory_size > 0
    n_new, n_old = split_batch(batch_size, new_old_ratio, has_old)
    ref = conpet_batches(n_new_examples, has_old=has_old, batch_size=batch_size, new_old_ratio=new_old_ratio,
                         max_epochs=max_epochs, batch_limit=batch_limit)
    draws = ref * n_old
    return MemoryReplayPlan(n_new_examples, memory_size, n_new, n_old, ref, ref, draws,
                            draws / memory_size if memory_size else 0.0)
