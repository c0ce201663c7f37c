"""`conpet bench --protocol data-incremental`: learning more about the types a model already knows.

Per seed, on the profile's task sequence (types split at random with the seed, 8:1:1 examples, the same test
sets throughout):

1. Data-incremental rounds. The method learns the tasks with `--start` training examples per type (8); then
   `--rounds` refresh rounds (3) each add `--add` more per type (8), and a refresh step learns them
   (`PETMethod.refresh`, no new task). W on the test sets after each round, against the same method trained
   with start + rounds x add per type from the start (the upper reference) and with no refresh (the lower:
   the model after the tasks, which new labels never reach). The share of the lower-to-upper gap that the
   last round recovers, and the rounds' CPU seconds against those of learning the tasks.
   `--refresh-shares` runs the rounds once per expert setting (`refresh_share`: none = the router alone),
   each from the same saved model.
2. Review loop (`--review N`, 100): the upper model predicts the validation examples; N of those it gets
   wrong (in an order drawn with the seed) are corrected, i.e. they join their task's training data with
   their gold label, as a Routing review's Correct adds a gold label of a learnt type; one refresh step;
   routing accuracy and W on the disjoint test sets before and after.

3. With `--map-study`, instead: the feature map's two ways when expert 1 (the map) retrains. After the tasks,
   one refresh round that also retrains expert 1 (`retrain=[0]`, the other experts left alone), once with
   `refresh_map="keep"` (the old weights stay the frozen map) and once with `"recompute"` (every statistic
   through the new expert): CPU seconds of the refresh, of the prediction pass after it, and W.

Writes DIR/refresh.json and DIR/refresh.txt (the table).
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
from conpet.data.tasks import TaskData

REFRESH_JSON = "refresh.json"
REFRESH_TXT = "refresh.txt"


def capped(tasks: Sequence[TaskData], per_type: int) -> list[TaskData]:
    """The tasks with the first `per_type` training examples of each type (the split shuffled them)."""
    out = []
    for t in tasks:
        seen: dict[str, int] = {}
        train = []
        for ex in t.train:
            if seen.get(ex.label, 0) < per_type:
                seen[ex.label] = seen.get(ex.label, 0) + 1
                train.append(ex)
        out.append(replace(t, train=tuple(train)))
    return out


def measure(method: Any, tasks: Sequence[TaskData]) -> dict[str, float]:
    """W on the tasks' test sets and the routing diagnostics (in %)."""
    from conpet.eval.continual import evaluate

    with method.job():
        counts, _, _ = evaluate(method, tasks)
        routing = method.routing_report([ex for t in tasks for ex in t.test]) if hasattr(method, "routing_report") \
            else {}
    out = {"W": round(100 * sum(c for c, _ in counts) / max(sum(n for _, n in counts), 1), 2)}
    out.update({k: round(v, 2) for k, v in routing.items() if k in ("route_top1", "router_class_acc")})
    return out


def learn(method: Any, tasks: Sequence[TaskData]) -> float:
    """Learn the tasks in order (no evaluation between steps); CPU seconds of this process."""
    from conpet.eval.continual import run_continual

    c0 = time.process_time()
    run_continual(method, list(tasks), evaluate_each_step=False)
    return time.process_time() - c0


def refresh_rounds(method: Any, tasks: Sequence[TaskData], start: int, add: int, rounds: int) -> list[dict[str, Any]]:
    out = []
    for r in range(1, rounds + 1):
        current = capped(tasks, start + r * add)
        c0 = time.process_time()
        with method.job():
            stats = method.refresh(current)
        cpu = time.process_time() - c0
        out.append({"round": r, "per_type": start + r * add, "cpu_seconds": round(cpu, 2),
                    "refresh": stats.extra.get("refresh", {}), **measure(method, current)})
        print(f"   round {r}: {out[-1]}", flush=True)
    return out


def review_loop(method: Any, tasks: Sequence[TaskData], n: int, seed: int) -> dict[str, Any]:
    """Correct `n` wrongly predicted validation examples (they join their task's training data), refresh."""
    before = measure(method, tasks)
    valid = [ex for t in tasks for ex in t.valid]
    with method.job():
        preds = method.predict(valid)
    wrong = [ex for ex, p in zip(valid, preds, strict=True) if p.label != ex.label]
    random.Random(seed).shuffle(wrong)
    chosen = {ex.id for ex in wrong[:n]}
    grown = [replace(t, train=(*t.train, *[ex for ex in t.valid if ex.id in chosen]),
                     valid=tuple(ex for ex in t.valid if ex.id not in chosen)) for t in tasks]
    c0 = time.process_time()
    with method.job():
        stats = method.refresh(grown)
    cpu = time.process_time() - c0
    after = measure(method, grown)
    return {"validation": len(valid), "wrong": len(wrong), "corrected": len(chosen), "before": before,
            "after": after, "cpu_seconds": round(cpu, 2), "refresh": stats.extra.get("refresh", {})}


def run_seed(method_name: str, exp: ExperimentConfig, seed: int, backbone: Any, tasks: list[TaskData], *,
             start: int, add: int, rounds: int, shares: Sequence[float | None], review: int) -> dict[str, Any]:
    import torch

    from conpet.methods.registry import canonical_name, load_method, make_method
    from conpet.model.logit_cache import MemoryLogitCache

    name = canonical_name(method_name)
    config = exp.train.replace(seed=seed)
    rec: dict[str, Any] = {"method": name, "seed": seed, "data": exp.data, "profile": exp.profile,
                           "start": start, "add": add, "rounds": rounds}
    cache = MemoryLogitCache()
    first = capped(tasks, start)
    torch.manual_seed(seed)
    m = make_method(name, backbone, config, cache=cache)
    rec["learn_cpu_seconds"] = round(learn(m, first), 2)
    rec["lower"] = measure(m, first)
    print(f"== {name} seed {seed}: {start} per type, lower {rec['lower']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        m.save(Path(tmp) / "model")
        _close(m)
        rec["variants"] = []
        for share in shares:
            mv = load_method(Path(tmp) / "model", backbone, cache=cache)
            mv.config = mv.config.replace(refresh_share=share)
            print(f"== refresh_share {share}", flush=True)
            rows = refresh_rounds(mv, tasks, start, add, rounds)
            _close(mv)
            rec["variants"].append({"refresh_share": share, "rounds": rows,
                                    "rounds_cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 2)})
    full = capped(tasks, start + rounds * add)
    torch.manual_seed(seed)
    up = make_method(name, backbone, config, cache=MemoryLogitCache())
    rec["upper_learn_cpu_seconds"] = round(learn(up, full), 2)
    rec["upper"] = measure(up, full)
    print(f"== upper ({start + rounds * add} per type): {rec['upper']}", flush=True)
    for v in rec["variants"]:
        gap = rec["upper"]["W"] - rec["lower"]["W"]
        v["gap_recovered"] = round((v["rounds"][-1]["W"] - rec["lower"]["W"]) / gap, 3) if gap else None
        v["cost_share"] = round(v["rounds_cpu_seconds"] / rec["learn_cpu_seconds"], 3)
    if review:
        rec["review"] = review_loop(up, full, review, seed)
        print(f"== review loop: {rec['review']}", flush=True)
    _close(up)
    return rec


def map_study(method_name: str, exp: ExperimentConfig, seed: int, backbone: Any, tasks: list[TaskData], *,
              start: int, add: int) -> dict[str, Any]:
    """Expert 1 (the feature map) retrained in a refresh round: keep its old weights as the map, or recompute
    every statistic through the new one. CPU seconds of the refresh and of the evaluation after it, and W."""
    import torch

    from conpet.methods.registry import canonical_name, load_method, make_method
    from conpet.model.logit_cache import MemoryLogitCache

    name = canonical_name(method_name)
    rec: dict[str, Any] = {"method": name, "seed": seed, "data": exp.data, "profile": exp.profile, "start": start,
                           "add": add, "study": "feature-map"}
    cache = MemoryLogitCache()
    torch.manual_seed(seed)
    m = make_method(name, backbone, exp.train.replace(seed=seed), cache=cache)
    first = capped(tasks, start)
    rec["learn_cpu_seconds"] = round(learn(m, first), 2)
    rec["before"] = measure(m, first)  # fills the cache with the test features and logits, as a project's would be
    current = capped(tasks, start + add)
    with tempfile.TemporaryDirectory() as tmp:
        m.save(Path(tmp) / "model")
        _close(m)
        rec["modes"] = {}
        for mode in ("keep", "recompute"):
            mv = load_method(Path(tmp) / "model", backbone, cache=cache)
            mv.config = mv.config.replace(refresh_share=None, refresh_map=mode)
            c0 = time.process_time()
            with mv.job():
                stats = mv.refresh(current, retrain=[0])
            refresh_cpu = time.process_time() - c0
            c1 = time.process_time()
            result = measure(mv, current)
            rec["modes"][mode] = {"refresh_cpu_seconds": round(refresh_cpu, 2),
                                  "evaluation_cpu_seconds": round(time.process_time() - c1, 2),
                                  "backbone_examples": stats.backbone_examples, **result}
            print(f"== feature map {mode}: {rec['modes'][mode]}", flush=True)
            _close(mv)
    return rec


def _close(method: Any) -> None:
    pet = getattr(method, "_pet", None)
    if pet is not None:
        pet.close()


def format_refresh_table(records: Sequence[dict[str, Any]]) -> str:
    lines = []
    for r in records:
        if r.get("study") == "feature-map":
            lines.append(f"{r['data']} {r['profile']}, {r['method']}, seed {r['seed']}: expert 1 (the feature map) "
                         f"retrained in a refresh round ({r['start']} -> {r['start'] + r['add']} per type); before: W "
                         f"{r['before']['W']:.2f}")
            for mode, v in r["modes"].items():
                lines.append(f"  {mode:<9}: W {v['W']:.2f} (routing {v.get('route_top1', float('nan')):.2f}); refresh "
                             f"{v['refresh_cpu_seconds']:.1f} CPU s ({v['backbone_examples']} backbone examples), "
                             f"evaluation after it {v['evaluation_cpu_seconds']:.1f} CPU s")
            continue
        lines.append(f"{r['data']} {r['profile']}, {r['method']}, seed {r['seed']}: learning the tasks with "
                     f"{r['start']} per type {r['learn_cpu_seconds']:.0f} CPU s; lower (no refresh) W "
                     f"{r['lower']['W']:.2f}; upper ({r['start'] + r['rounds'] * r['add']} per type from the start) W "
                     f"{r['upper']['W']:.2f} ({r['upper_learn_cpu_seconds']:.0f} CPU s)")
        for v in r["variants"]:
            ws = ", ".join(f"{x['W']:.2f}" for x in v["rounds"])
            routes = ", ".join(f"{x.get('route_top1', float('nan')):.2f}" for x in v["rounds"])
            rec = "-" if v["gap_recovered"] is None else f"{100 * v['gap_recovered']:.1f} %"
            lines.append(f"  refresh_share {v['refresh_share']}: W after rounds {ws} (routing {routes}); gap "
                         f"recovered {rec}; rounds {v['rounds_cpu_seconds']:.1f} CPU s = "
                         f"{100 * v['cost_share']:.1f} % of learning the tasks")
        if r.get("review"):
            rv = r["review"]
            lines.append(f"  review loop: {rv['corrected']} of {rv['wrong']} wrong validation predictions corrected; "
                         f"routing {rv['before'].get('route_top1', float('nan')):.2f} -> "
                         f"{rv['after'].get('route_top1', float('nan')):.2f}, W {rv['before']['W']:.2f} -> "
                         f"{rv['after']['W']:.2f} ({rv['cpu_seconds']:.1f} CPU s)")
    return "\n".join(lines)


def run_data_incremental(methods: Sequence[str], plans: Sequence[tuple[int, ExperimentConfig, list[TaskData]]],
                         backbone: Any, out: Path, *, start: int, add: int, rounds: int,
                         shares: Sequence[float | None], review: int, command: str | None,
                         feature_map_study: bool = False) -> str:
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for seed, exp, tasks in plans:
        for m in methods:
            if feature_map_study:
                records.append(map_study(m, exp, seed, backbone, tasks, start=start, add=add))
            else:
                records.append(run_seed(m, exp, seed, backbone, tasks, start=start, add=add, rounds=rounds,
                                        shares=shares, review=review))
            table = format_refresh_table(records)
            doc = {"format": 1, "records": records, "table": table, "command": command}
            (out / REFRESH_JSON).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            (out / REFRESH_TXT).write_text(table + "\n", encoding="utf-8")
    return format_refresh_table(records)


def parse_shares(text: str) -> list[float | None]:
    """'none,0.5' -> [None, 0.5] (none: experts never refresh)."""
    out: list[float | None] = []
    for item in text.split(","):
        item = item.strip().lower()
        if item:
            out.append(None if item in ("none", "null") else float(item))
    return out
