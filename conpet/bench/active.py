"""`conpet bench --protocol active-learning`: does the Next most useful queue choose better sentences to label
than chance?

Per seed, on the profile's task sequence (types split at random with the seed, 8:1:1 examples): the method
learns task 1 alone with `--start` training examples per type; task 1's other training examples are the
pool, their gold labels hidden. Two arms then start from that same saved model. Each of `--rounds` rounds
labels `--batch` pool examples (in FewRel one example is one sentence) with their gold labels and learns
them in a refresh step (`PETMethod.refresh`: no new task):

- ``queue``: the top of the Next most useful queue (``conpet.suggest.uncertainty.most_useful_order`` over the
  model's predictions on the pool: the doubt score the app's queue uses);
- ``balanced``: the same queue dealt round-robin over the predicted types (``balanced_order``);
- ``random``: a draw seeded with the seed and the round.

Accuracy on task 1's test set (the same examples throughout) after every round, round 0 being the model
before any; with each round, how many of the chosen examples the model had got wrong (what a queue should
find). Writes DIR/active.json and DIR/active.txt.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from conpet.core.config import ExperimentConfig
from conpet.data.example import Example
from conpet.data.tasks import TaskData

ACTIVE_JSON = "active.json"
ACTIVE_TXT = "active.txt"
ARMS = ("queue", "balanced", "random")


def split_pool(task: TaskData, start: int) -> tuple[TaskData, list[Example]]:
    """Task 1 with the first `start` training examples of each type, and the rest of its training examples
    (the pool, in the split's shuffled order)."""
    from conpet.bench.refresh import capped

    (first,) = capped([task], start)
    kept = {ex.id for ex in first.train}
    return first, [ex for ex in task.train if ex.id not in kept]


def queue_order(method: Any, pool: Sequence[Example], balanced: bool = False) -> tuple[list[int], list[Any]]:
    """Pool positions in the Next most useful order (most doubtful first; ``balanced``: dealt over the
    predicted types) and the predictions it read."""
    from conpet.suggest.uncertainty import Scored, balanced_order, most_useful_order

    with method.job():
        preds = method.predict(list(pool))
    scored = [Scored(i, p.score, p.selector_scores, p.expert_scores, p.label) for i, p in enumerate(preds)]
    order = balanced_order if balanced else most_useful_order
    return order(range(len(pool)), scored), preds


def choose(arm: str, method: Any, pool: Sequence[Example], batch: int, seed: int, round_: int
           ) -> tuple[list[Example], int]:
    """The `batch` pool examples an arm labels this round, and how many of them the model predicted wrong."""
    if arm in ("queue", "balanced"):
        order, preds = queue_order(method, pool, balanced=arm == "balanced")
        picked = order[:batch]
        wrong = sum(preds[i].label != pool[i].label for i in picked)
        return [pool[i] for i in picked], wrong
    if arm != "random":
        raise ValueError(f"unknown arm {arm!r}; expected one of {ARMS}")
    chosen = random.Random(seed * 1000 + round_).sample(list(pool), min(batch, len(pool)))
    with method.job():
        preds = method.predict(chosen)
    return chosen, sum(p.label != ex.label for p, ex in zip(preds, chosen, strict=True))


def run_arm(method: Any, arm: str, task: TaskData, pool: Sequence[Example], batch: int, rounds: int,
            seed: int) -> list[dict[str, Any]]:
    """Round 0 (the model as given) and `rounds` rounds of labelling `batch` pool examples, then a refresh."""
    from conpet.bench.refresh import measure

    current, left = task, list(pool)
    rows = [{"round": 0, "labelled": len(current.train), **measure(method, [current])}]
    for r in range(1, rounds + 1):
        if len(left) < batch:
            break
        c0 = time.process_time()
        chosen, wrong = choose(arm, method, left, batch, seed, r)
        ids = {ex.id for ex in chosen}
        left = [ex for ex in left if ex.id not in ids]
        current = replace(current, train=(*current.train, *chosen))
        with method.job():
            stats = method.refresh([current])
        cpu = time.process_time() - c0
        rows.append({"round": r, "labelled": len(current.train), "chosen_wrong": wrong,
                     "chosen_types": len({ex.label for ex in chosen}), "cpu_seconds": round(cpu, 2),
                     "refresh": stats.extra.get("refresh", {}), **measure(method, [current])})
        print(f"   {arm} round {r}: {rows[-1]}", flush=True)
    return rows


def run_seed(method_name: str, exp: ExperimentConfig, seed: int, backbone: Any, tasks: list[TaskData], *,
             start: int, batch: int, rounds: int, arms: Sequence[str] = ARMS) -> dict[str, Any]:
    import torch

    from conpet.bench.refresh import _close, learn
    from conpet.methods.registry import canonical_name, load_method, make_method
    from conpet.model.logit_cache import MemoryLogitCache

    name = canonical_name(method_name)
    first, pool = split_pool(tasks[0], start)
    rec: dict[str, Any] = {"method": name, "seed": seed, "data": exp.data, "profile": exp.profile, "start": start,
                           "batch": batch, "rounds": rounds, "types": list(first.types), "pool": len(pool),
                           "test": len(first.test)}
    cache = MemoryLogitCache()
    torch.manual_seed(seed)
    m = make_method(name, backbone, exp.train.replace(seed=seed), cache=cache)
    rec["learn_cpu_seconds"] = round(learn(m, [first]), 2)
    print(f"== {name} seed {seed}: task 1 ({len(first.types)} types) with {start} per type, pool {len(pool)}, "
          f"test {len(first.test)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        m.save(Path(tmp) / "model")
        _close(m)
        rec["arms"] = {}
        for arm in arms:
            mv = load_method(Path(tmp) / "model", backbone, cache=cache)
            try:
                rec["arms"][arm] = run_arm(mv, arm, first, pool, batch, rounds, seed)
            finally:
                _close(mv)
    return rec


def format_active_table(records: Sequence[dict[str, Any]]) -> str:
    lines = []
    for r in records:
        lines.append(f"{r['data']} {r['profile']}, {r['method']}, seed {r['seed']}: task 1 ({len(r['types'])} types) "
                     f"from {r['start']} per type; {r['rounds']} rounds of {r['batch']} from a pool of {r['pool']}; "
                     f"accuracy on its {r['test']} test examples after each round (round 0 first)")
        for arm, rows in r["arms"].items():
            accs = ", ".join(f"{row['W']:.2f}" for row in rows)
            wrong = ", ".join(str(row["chosen_wrong"]) for row in rows[1:])
            lines.append(f"  {arm:<6}: {accs}  (chosen examples the model had wrong: {wrong})")
    if len(records) > 1:
        for arm in [a for a in ARMS if all(a in r["arms"] for r in records)]:
            curves = [[row["W"] for row in r["arms"][arm]] for r in records]
            n = min(map(len, curves))
            mean = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
            lines.append(f"mean over {len(records)} seeds, {arm:<6}: " + ", ".join(f"{x:.2f}" for x in mean))
    return "\n".join(lines)


def run_active_learning(methods: Sequence[str], plans: Sequence[tuple[int, ExperimentConfig, list[TaskData]]],
                        backbone: Any, out: Path, *, start: int, batch: int, rounds: int,
                        command: str | None, arms: Sequence[str] = ARMS) -> str:
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for seed, exp, tasks in plans:
        for m in methods:
            records.append(run_seed(m, exp, seed, backbone, tasks, start=start, batch=batch, rounds=rounds,
                                    arms=arms))
            table = format_active_table(records)
            doc = {"format": 1, "records": records, "table": table, "command": command}
            (out / ACTIVE_JSON).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            (out / ACTIVE_TXT).write_text(table + "\n", encoding="utf-8")
    return format_active_table(records)
