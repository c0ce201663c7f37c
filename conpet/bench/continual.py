"""`conpet bench`: a continual benchmark end to end (the paper's Table IV and Fig. 3 on our data).

    conpet bench --data NAME|PATH --backbone NAME|PATH --methods dynamic,static,sequential,joint \
                 --profile smoke|quick|paper --seeds 1,2 --out DIR [--measure-cache]

Per (method, seed): build the task sequence (types split at random with the seed, 8:1:1 examples),
learn the tasks in order, evaluate on all seen test sets after every step. Prints a Table-IV-like
table (W and A after the last step, mean ± std over seeds) with per-step average accuracy, seconds
per step and peak memory; writes DIR/results.json, DIR/results.csv and DIR/avg_acc.png.
Progress goes to stderr.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conpet.core.config import ExperimentConfig, make_config
from conpet.core.errors import ConpetError
from conpet.core.files import write_text_atomic
from conpet.core.progress_bar import TerminalProgress
from conpet.core.protocols import ProgressEvent
from conpet.data.tasks import SplitError, TaskData
from conpet.eval.metrics import mean_std, peak_rss_mb

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
PLOT_PNG = "avg_acc.png"


# --- data -----------------------------------------------------------------------------------------------


def _cap_per_type(examples: Sequence[Any], cap: int | None) -> tuple[Any, ...]:
    """The first `cap` examples of each type (the split already shuffled them with the seed)."""
    if cap is None:
        return tuple(examples)
    seen: dict[str, int] = {}
    out = []
    for ex in examples:
        if seen.get(ex.label, 0) < cap:
            seen[ex.label] = seen.get(ex.label, 0) + 1
            out.append(ex)
    return tuple(out)


def build_task_sequence(exp: ExperimentConfig, seed: int) -> list[TaskData]:
    """The task sequence of a benchmark: load the data, split the types (random with the seed, or one
    task per example group), split examples 8:1:1, then subsample per type as the profile says."""
    from conpet.data.datasets import load_named

    data = load_named(exp.data)
    try:
        tasks = data.tasks("coarse" if exp.split == "group" else exp.n_tasks, seed)
    except SplitError as exc:
        if exp.split == "group" or exp.n_tasks <= len(data.types):
            raise
        raise SplitError(f"{exp.data}: {exc}; set the number of tasks with --tasks N "
                         f"(N at most {len(data.types)})") from None
    return [TaskData(t.index, t.types, _cap_per_type(t.train, exp.max_train_per_type),
                     _cap_per_type(t.valid, exp.max_valid_per_type),
                     _cap_per_type(t.test, exp.max_test_per_type)) for t in tasks]


# --- one run --------------------------------------------------------------------------------------------


def run_one(method_name: str, exp: ExperimentConfig, seed: int, backbone: Any, tasks: list[TaskData], *,
            measure_cache: bool = False, cache_dir: Path | None = None, quiet: bool = False,
            consolidate_after: int | None = None) -> dict[str, Any]:
    """Train and evaluate one (method, seed); returns its results.json record. ``consolidate_after`` = N: the
    model consolidates (``PETMethod.consolidate``) after step N, measured before and after (the record's
    ``consolidation``); later steps continue from the consolidated model."""
    import torch

    from conpet.eval.continual import run_continual
    from conpet.methods.registry import canonical_name, make_method
    from conpet.model.logit_cache import MemoryLogitCache

    name = canonical_name(method_name)
    torch.manual_seed(seed)
    cache = MemoryLogitCache()
    method = make_method(name, backbone, exp.train, cache=cache)
    sink = TerminalProgress(label=f"{name} seed {seed} ", quiet=quiet, milestone=_step_done)
    t0 = time.monotonic()
    consolidation: dict[str, Any] = {}

    def after_step(record: Any) -> None:
        if consolidate_after is not None and record.step + 1 == consolidate_after:
            if cache_dir is not None:  # the model before it, for a rerun of the consolidation alone
                method.save(cache_dir / f"{name}-seed{seed}-step{consolidate_after}")
            consolidation.update(consolidate_and_measure(method, tasks[:consolidate_after], record))

    try:
        result = run_continual(method, tasks, sink=sink, on_step=after_step)
    finally:
        sink.close()
    total = time.monotonic() - t0
    final = result.matrix.result()
    record: dict[str, Any] = {
        "method": name, "seed": seed, "data": exp.data, "backbone": exp.backbone, "profile": exp.profile,
        "whole_acc": [round(100 * x, 2) for x in result.whole_acc],
        "avg_acc": [round(100 * x, 2) for x in result.avg_acc],
        "seconds_per_step": [round(x, 2) for x in result.seconds_per_step],
        "cpu_seconds_per_step": [round(s.train_cpu_seconds, 2) for s in result.steps],
        "eval_seconds_per_step": [round(s.eval_seconds, 2) for s in result.steps],
        "selector_acc": ([None if x is None else round(100 * x, 2) for x in result.selector_acc]
                         if any(x is not None for x in result.selector_acc) else None),
        "oracle_routing_acc": ([round(100 * s.oracle_routing_acc, 2) for s in result.steps]
                               if all(s.oracle_routing_acc is not None for s in result.steps) else None),
        "routing": _routing_series(result.steps),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "forgetting": _pct(final["forgetting"]), "bwt": _pct(final["bwt"]),
        "accuracy_matrix": [[round(100 * x, 2) for x in row] for row in result.matrix.accuracy()],
        "batches_per_step": [[st["batches"] for st in s.stats["stages"]] for s in result.steps],
        "backbone_examples_per_step": [s.stats["backbone_examples"] for s in result.steps],
        "tasks": [{"types": list(t.types), "train": len(t.train), "valid": len(t.valid), "test": len(t.test)}
                  for t in tasks],
        "total_seconds": round(total, 1),
        "config": exp.replace(train=exp.train.replace(seed=seed)).to_dict(),
        "environment": _environment(backbone),
    }
    if consolidation:
        steps_cpu = record["cpu_seconds_per_step"]
        consolidation["cpu_vs_step2"] = (round(consolidation["cpu_seconds"] / steps_cpu[1], 2)
                                         if len(steps_cpu) > 1 and steps_cpu[1] > 0 else None)
        consolidation["cpu_vs_same_step"] = round(consolidation["cpu_seconds"] / max(
            steps_cpu[consolidate_after - 1], 1e-9), 2)  # type: ignore[operator]
        record["consolidation"] = consolidation
    if measure_cache:
        record["cache"] = measure_cache_speed(method, tasks, cache_dir)
    _close(method)
    return record


def consolidate_and_measure(method: Any, tasks: Sequence[TaskData], record: Any) -> dict[str, Any]:
    """Consolidate the model after the step ``record`` measured (on the seen ``tasks``), then measure again:
    W, the routing diagnostics and the oracle's W before and after, and the consolidation's cost."""
    from conpet.eval.continual import evaluate

    seen_test = [ex for t in tasks for ex in t.test]
    before = {"W": round(100 * record.whole_acc, 2), **_routing_figures(record.routing),
              "oracle_W": None if record.oracle_routing_acc is None else round(100 * record.oracle_routing_acc, 2)}
    print(f"== consolidating after step {len(tasks)} ...", file=sys.stderr, flush=True)
    t0, c0 = time.monotonic(), time.process_time()
    with method.job():
        stats = method.consolidate(list(tasks))
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    with method.job():
        counts, _, _ = evaluate(method, tasks)
        total = sum(n for _, n in counts)
        after = {"W": round(100 * sum(c for c, _ in counts) / max(total, 1), 2),
                 **_routing_figures(method.routing_report(seen_test)),
                 "oracle_W": round(100 * method.oracle_routing_accuracy(seen_test), 2)}
    print(f"== consolidated: W {before['W']:.2f} -> {after['W']:.2f}, routing {before.get('route_top1')} -> "
          f"{after.get('route_top1')}, {cpu:.0f} CPU s", file=sys.stderr, flush=True)
    return {"after_step": len(tasks), "before": before, "after": after, "cpu_seconds": round(cpu, 2),
            "seconds": round(wall, 2), "examples": stats.extra.get("consolidate", {}).get("examples"),
            "batches": [st.batches for st in stats.stages], "backbone_examples": stats.backbone_examples}


def _routing_figures(report: dict[str, float] | None) -> dict[str, float]:
    """The routing diagnostics a consolidation is judged by (in %)."""
    keys = ("route_top1", "route_top2", "route_top3", "router_class_acc")
    return {k: round(report[k], 2) for k in keys if report and k in report}


def _step_done(event: ProgressEvent) -> bool:
    """The runner's end-of-step event (it carries the step's W and A): a line of its own, always."""
    return bool(event.metrics and "whole_acc" in event.metrics)


def _routing_series(steps: Sequence[Any]) -> dict[str, list[float]] | None:
    """A routed method's per-step diagnostics (`routing_report`): {name: [value per step]}."""
    reports = [s.routing for s in steps]
    if not reports or any(r is None for r in reports):
        return None
    return {k: [round(r.get(k, float("nan")), 2) for r in reports] for k in reports[-1]}


# Per-step rows of the routing diagnostics that the table prints (results.json keeps them all).
ROUTING_ROWS = (("route_top2", "router top-2 task accuracy per step (%)"),
                ("route_top3", "router top-3 task accuracy per step (%)"),
                ("router_class_acc", "router alone, class accuracy per step (%)"),
                ("whole_t1", "whole accuracy with t = 1 per step (%)"),
                ("whole_t2", "whole accuracy with t = 2 per step (%)"),
                ("whole_t3", "whole accuracy with t = 3 per step (%)"))


def _pct(x: float) -> float | None:
    return None if x != x else round(100 * x, 2)


def _close(method: Any) -> None:
    pet = getattr(method, "_pet", None)
    if pet is not None and hasattr(pet, "close"):
        pet.close()


def _environment(backbone: Any) -> dict[str, Any]:
    import torch

    return {"device": str(getattr(backbone, "device", "cpu")), "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "machine": platform.machine()}


def measure_cache_speed(method: Any, tasks: Sequence[TaskData], cache_dir: Path | None = None) -> dict[str, Any]:
    """Time a prediction pass over all test examples with an empty cache (every module through the
    backbone; it fills the cache on the way, so the figure is if anything a little slow), then the same
    pass with every frozen module's logits cached: in memory, and in SQLite (filled from the memory
    cache) when `cache_dir` is given. The cached passes must give the same predictions."""
    from conpet.model.logit_cache import MemoryLogitCache, SqliteLogitCache

    examples = [ex for t in tasks for ex in t.test]
    saved = method.cache
    out: dict[str, Any] = {"examples": len(examples)}
    memory = MemoryLogitCache()
    method.cache = memory
    f0 = method.backbone_forwards
    t0 = time.perf_counter()
    base = method.predict(examples)
    out["uncached_seconds"] = round(time.perf_counter() - t0, 4)
    out["uncached_backbone_passes"] = method.backbone_forwards - f0
    caches: list[tuple[str, Any]] = [("memory", memory)]
    if cache_dir is not None:
        sqlite = SqliteLogitCache(cache_dir / f"logits-{method.name}-{method.uid}.sqlite")
        sqlite.put_many(memory.items())
        caches.append(("sqlite", sqlite))
    for kind, cache in caches:
        method.cache = cache
        f0 = method.backbone_forwards
        t0 = time.perf_counter()
        again = method.predict(examples)
        secs = time.perf_counter() - t0
        same = all(a.label == b.label and abs(a.score - b.score) < 1e-4 for a, b in zip(base, again, strict=True))
        out[f"{kind}_cached_seconds"] = round(secs, 4)
        out[f"{kind}_backbone_passes"] = method.backbone_forwards - f0
        out[f"{kind}_speedup"] = round(out["uncached_seconds"] / max(secs, 1e-9), 1)
        out[f"{kind}_same_predictions"] = same
        if kind == "sqlite":
            cache.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{cache.path}{suffix}").unlink(missing_ok=True)
    method.cache = saved
    return out


# --- reporting ------------------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    m, s = mean_std(values)
    return "  n/a" if m != m else f"{m:6.2f} ± {s:4.2f}"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Table IV layout (W / A after the last step, mean ± std over seeds, %), then per-step curves."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    mw = max(13, *(len(m) for m in methods))  # the method column fits the longest name
    first = records[0]
    seeds = sorted({r["seed"] for r in records})
    lines = [f"data {first['data']}, backbone {first['backbone']}, profile {first['profile']}, "
             f"seeds {','.join(map(str, seeds))} (mean ± std over seeds; accuracies in %)", ""]
    head = f"{'method':<{mw}} {'W (whole)':>15} {'A (average)':>15} {'sel acc':>15} {'s/step 2':>9} " \
           f"{'s/step last':>11} {'last/2':>7} {'cpu s last':>10} {'cpu last/2':>10} {'total s':>8} {'peak MB':>8}"
    lines += [head, "-" * len(head)]
    for m in methods:
        rs = [r for r in records if r["method"] == m]
        w = [r["whole_acc"][-1] for r in rs]
        a = [r["avg_acc"][-1] for r in rs]
        sel = [r["selector_acc"][-1] for r in rs if r.get("selector_acc") and r["selector_acc"][-1] is not None]
        sps = [r["seconds_per_step"] for r in rs]
        s2 = [s[1] for s in sps if len(s) > 1]
        sl = [s[-1] for s in sps]
        ratio = [s[-1] / s[1] for s in sps if len(s) > 1 and s[1] > 0]
        cps = [r["cpu_seconds_per_step"] for r in rs if "cpu_seconds_per_step" in r]
        cpu_last = mean_std([c[-1] for c in cps])[0] if cps else float("nan")
        cpu_ratio = mean_std([c[-1] / c[1] for c in cps if len(c) > 1 and c[1] > 0])[0] if cps else float("nan")
        lines.append(f"{m:<{mw}} {_ms(w):>15} {_ms(a):>15} {(_ms(sel) if sel else '-'):>15} "
                     f"{(mean_std(s2)[0] if s2 else float('nan')):9.1f} {mean_std(sl)[0]:11.1f} "
                     f"{(mean_std(ratio)[0] if ratio else float('nan')):7.2f} "
                     f"{cpu_last:10.1f} {cpu_ratio:10.2f} "
                     f"{mean_std([r['total_seconds'] for r in rs])[0]:8.0f} "
                     f"{max(r['peak_rss_mb'] for r in rs):8.0f}")
    n_steps = max(len(r["avg_acc"]) for r in records)
    for title, key in (("average accuracy A per step (%)", "avg_acc"), ("whole accuracy W per step (%)", "whole_acc"),
                       ("training seconds per step (wall clock)", "seconds_per_step"),
                       ("training CPU seconds per step (one thread: steadier than wall clock on a busy machine)",
                        "cpu_seconds_per_step")):
        if not all(key in r for r in records):
            continue
        lines += ["", title, f"{'method':<{mw}} " + " ".join(f"{i + 1:>6}" for i in range(n_steps))]
        for m in methods:
            rs = [r for r in records if r["method"] == m]
            vals = [mean_std([r[key][i] for r in rs if len(r[key]) > i])[0] for i in range(n_steps)]
            lines.append(f"{m:<{mw}} " + " ".join(f"{v:6.1f}" for v in vals))
    for title, key in (("selector top-1 accuracy per step (%)", "selector_acc"),
                       ("whole accuracy with oracle routing (every example to its gold task's expert) per step (%)",
                        "oracle_routing_acc")):
        rows = [m for m in methods if any(r.get(key) for r in records if r["method"] == m)]
        if rows:
            lines += ["", title, f"{'method':<{mw}} " + " ".join(f"{i + 1:>6}" for i in range(n_steps))]
            for m in rows:
                rs = [r for r in records if r["method"] == m and r.get(key)]
                vals = [mean_std([r[key][i] for r in rs])[0] for i in range(n_steps)]
                lines.append(f"{m:<{mw}} " + " ".join(f"{v:6.1f}" for v in vals))
    for key, title in ROUTING_ROWS:
        rows = [m for m in methods if all((r.get("routing") or {}).get(key) for r in records if r["method"] == m)]
        if rows:
            lines += ["", title, f"{'method':<{mw}} " + " ".join(f"{i + 1:>6}" for i in range(n_steps))]
            for m in rows:
                rs = [r["routing"][key] for r in records if r["method"] == m]
                vals = [mean_std([v[i] for v in rs])[0] for i in range(n_steps)]
                lines.append(f"{m:<{mw}} " + " ".join(f"{v:6.1f}" for v in vals))
    consolidated = [r for r in records if r.get("consolidation")]
    if consolidated:
        lines += ["", "consolidation (a new feature map on every stored example, every statistic recomputed): "
                      "before -> after, and its CPU seconds against a normal step's"]
        for r in consolidated:
            c = r["consolidation"]
            b, a = c["before"], c["after"]
            figures = ", ".join(f"{k} {b.get(k)} -> {a.get(k)}" for k in ("W", "route_top1", "route_top3",
                                                                          "router_class_acc", "oracle_W"))
            lines.append(f"{r['method']:<{mw}} seed {r['seed']}, after step {c['after_step']}: {figures}; "
                         f"{c['cpu_seconds']:.0f} CPU s ({c['cpu_vs_step2']}x step 2, {c['cpu_vs_same_step']}x "
                         f"step {c['after_step']}), {c['examples']} examples, {c['batches']} batches")
    caches = [r for r in records if r.get("cache")]
    if caches:
        lines += ["", "prediction pass over all test examples, uncached vs cached (seconds)"]
        for r in caches:
            c = r["cache"]
            sql = (f", sqlite {c['sqlite_cached_seconds']:.3f} s ({c['sqlite_speedup']:.0f}x)"
                   if "sqlite_cached_seconds" in c else "")
            lines.append(f"{r['method']:<{mw}} seed {r['seed']}: {c['examples']} examples, uncached "
                         f"{c['uncached_seconds']:.2f} s ({c['uncached_backbone_passes']} backbone passes), memory "
                         f"{c['memory_cached_seconds']:.3f} s ({c['memory_speedup']:.0f}x, "
                         f"{c['memory_backbone_passes']} passes){sql}")
    return "\n".join(lines)


def write_csv(records: Sequence[dict[str, Any]], path: Path) -> None:
    """One row per (method, seed, step)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "seed", "step", "whole_acc", "avg_acc", "selector_acc", "seconds", "cpu_seconds",
                    "eval_seconds", "peak_rss_mb", "data", "backbone", "profile"])
        for r in records:
            for i in range(len(r["avg_acc"])):
                sel = r["selector_acc"][i] if r.get("selector_acc") else ""
                w.writerow([r["method"], r["seed"], i + 1, r["whole_acc"][i], r["avg_acc"][i],
                            "" if sel is None else sel, r["seconds_per_step"][i],
                            r.get("cpu_seconds_per_step", [""] * (i + 1))[i], r["eval_seconds_per_step"][i],
                            r["peak_rss_mb"], r["data"], r["backbone"], r["profile"]])


PLOT_INSTALL = ("conpet bench draws avg_acc.png with matplotlib, which is not installed; install the benches' "
                "extra with `pip install 'conpet-studio[bench]'` (or `pip install matplotlib`)")


def check_plotting() -> None:
    """Refuse before any work when matplotlib (an optional dependency: the ``bench`` extra) is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ConpetError(PLOT_INSTALL) from exc


def plot_avg_acc(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Fig. 3 style: average accuracy after each step, mean over seeds with a ± std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for m in dict.fromkeys(r["method"] for r in records):
        rs = [r["avg_acc"] for r in records if r["method"] == m]
        n = min(len(x) for x in rs)
        arr = np.array([x[:n] for x in rs], dtype=float)
        x = np.arange(1, n + 1)
        mean, std = arr.mean(0), arr.std(0)
        ax.plot(x, mean, marker="o", ms=3, label=m)
        if len(rs) > 1:
            ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    first = records[0]
    ax.set_title(f"{first['data']} · {first['backbone']} · {first['profile']}")
    ax.set_xlabel("task (continual step)")
    ax.set_ylabel("average accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(records: list[dict[str, Any]], out: Path, command: str | None = None) -> str:
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(records)
    doc = {"format": 1, "records": records, "table": table}
    if command:
        doc["command"] = command
    write_text_atomic(out / RESULTS_JSON, json.dumps(doc, indent=2) + "\n")
    write_csv(records, out / RESULTS_CSV)
    plot_avg_acc(records, out / PLOT_PNG)
    (out / "table.txt").write_text(table + "\n", encoding="utf-8")
    return table


# --- the benchmark --------------------------------------------------------------------------------------


def run_bench(*, data: str, backbone: str, methods: Sequence[str], profile: str, seeds: Sequence[int], out: Path,
              n_tasks: int | None = None, split: str = "random", device: str | None = None, threads: int = 0,
              measure_cache: bool = False, overrides: dict[str, Any] | None = None,
              command: str | None = None, protocol: str = "class-incremental",
              protocol_options: dict[str, Any] | None = None, consolidate_after: int | None = None) -> str:
    """Every (method, seed) of the benchmark in turn (`methods`: registered names), with results written to `out` after each (partial
    results survive an interrupted bench); returns the table. `split` "coarse": one task per coarse type.
    `overrides` are training settings, or the experiment's caps (max_train_per_type, ...). `threads` 0: one
    on a CPU without CUDA, torch's default otherwise. `protocol` "data-incremental": the refresh study of
    `conpet.bench.refresh`, "active-learning": the queue-against-random study of `conpet.bench.active`
    (`protocol_options`: the study's settings), instead of the class-incremental sequence. `consolidate_after`
    N: each model consolidates after step N (`run_one`)."""
    check_plotting()
    import torch

    from conpet.core.runtime import apply_threads
    from conpet.methods.registry import method_class
    from conpet.model.backbones import load_backbone

    if consolidate_after is not None:
        check_consolidation(methods, protocol, consolidate_after, n_tasks)
    threads = threads or (1 if (device or "cpu") == "cpu" and not torch.cuda.is_available() else 0)
    if threads:
        # One thread per process: on a shared CPU, two threads fighting other jobs run 5-20x slower.
        apply_threads(threads)
    overrides = dict(overrides or {})
    exp_overrides = {k: overrides.pop(k) for k in list(overrides)
                     if k in ("max_train_per_type", "max_valid_per_type", "max_test_per_type")}
    out.mkdir(parents=True, exist_ok=True)
    # Every task sequence is built before the backbone loads: a data set too small for the split fails at once.
    plans: list[tuple[int, str, ExperimentConfig, list[TaskData]]] = []
    for seed in seeds:
        tasks_cache: dict[tuple[Any, ...], list[TaskData]] = {}
        for m in methods:
            exp = make_config(profile, data=data, backbone=backbone, dynamic=method_class(m).dynamic_family,
                              seed=seed, n_tasks=n_tasks, **overrides)
            exp = exp.replace(split="group" if split == "coarse" else "random", **exp_overrides)
            key = (exp.n_tasks, exp.split, exp.max_train_per_type, exp.max_valid_per_type, exp.max_test_per_type)
            if key not in tasks_cache:
                tasks_cache[key] = build_task_sequence(exp, seed)
            plans.append((seed, m, exp, tasks_cache[key]))
    print(f"loading backbone {backbone} ...", file=sys.stderr, flush=True)
    model = load_backbone(backbone, device=device)
    if protocol == "data-incremental":
        from conpet.bench.refresh import run_data_incremental

        by_seed = list({seed: (seed, exp, tasks) for seed, _, exp, tasks in plans}.values())
        return run_data_incremental(list(methods), by_seed, model, out, command=command, **(protocol_options or {}))
    if protocol == "active-learning":
        from conpet.bench.active import run_active_learning

        by_seed = list({seed: (seed, exp, tasks) for seed, _, exp, tasks in plans}.values())
        return run_active_learning(list(methods), by_seed, model, out, command=command, **(protocol_options or {}))
    records: list[dict[str, Any]] = []
    for seed, m, exp, tasks in plans:
        print(f"== {m}, seed {seed}: {len(tasks)} tasks, "
              f"{sum(len(t.train) for t in tasks)} train / {sum(len(t.test) for t in tasks)} test examples",
              file=sys.stderr, flush=True)
        rec = run_one(m, exp, seed, model, tasks, measure_cache=measure_cache, cache_dir=out,
                      consolidate_after=consolidate_after)
        records.append(rec)
        print(f"== {m}, seed {seed}: W {rec['whole_acc'][-1]:.2f}  A {rec['avg_acc'][-1]:.2f}  "
              f"{rec['total_seconds']:.0f} s", file=sys.stderr, flush=True)
        write_outputs(records, out, command)
    return write_outputs(records, out, command)


def merge(sources: Sequence[str | Path], out: Path, command: str | None = None,
          rename: dict[str, str] | None = None, only: Sequence[str] | None = None) -> str:
    """Combine the records of several bench output folders (e.g. seeds run in parallel) into one: rows
    in Table IV's order (`TABLE_IV_METHODS`), other methods after them in order of first appearance;
    each method's records by seed.

    `rename` maps method names to the names the merged table should use (e.g. the engine's `static`
    to Table IV's `emr*`, the same method); a renamed record keeps its old name in `renamed_from`.
    The same (method, seed) twice, or records of different data, backbones or profiles, are refused:
    either would make a row's mean meaningless. `only` keeps just those methods (names after renaming).
    """
    check_plotting()
    rename = rename or {}
    records: list[dict[str, Any]] = []
    origin: dict[tuple[str, int], str] = {}
    for src in sources:
        path = Path(src) / RESULTS_JSON
        if not path.is_file():
            raise ConpetError(f"{src}: no {RESULTS_JSON} to merge")
        try:
            recs = json.loads(path.read_text(encoding="utf-8"))["records"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConpetError(f"{path}: not a bench {RESULTS_JSON} ({e})") from e
        for r in recs:
            if r["method"] in rename:
                r = {**r, "method": rename[r["method"]], "renamed_from": r["method"]}
            if only is not None and r["method"] not in only:
                continue
            key = (r["method"], r["seed"])
            if key in origin:
                raise ConpetError(f"{r['method']} seed {r['seed']} is in both {origin[key]} and {src}; "
                                  "merge only one of them")
            origin[key] = str(src)
            records.append(r)
    if not records:
        raise ConpetError("nothing to merge")
    kinds = {(r.get("data"), r.get("backbone"), r.get("profile")) for r in records}
    if len(kinds) > 1:
        listed = "; ".join(f"data {d}, backbone {b}, profile {p}" for d, b, p in sorted(kinds, key=str))
        raise ConpetError(f"the folders hold runs of different settings ({listed}); merge like with like")
    from conpet.methods.registry import TABLE_IV_METHODS

    seen = list(dict.fromkeys(r["method"] for r in records))
    order = [m for m in TABLE_IV_METHODS if m in seen] + [m for m in seen if m not in TABLE_IV_METHODS]
    records.sort(key=lambda r: (order.index(r["method"]), r["seed"]))
    return write_outputs(records, out, command)


def check_consolidation(methods: Sequence[str], protocol: str, after: int, n_tasks: int | None) -> None:
    """A consolidation after step `after` needs methods that consolidate and a step that exists (said before
    any training)."""
    from conpet.methods.registry import method_class

    if protocol != "class-incremental":
        raise ConpetError("--consolidate-after applies to the class-incremental protocol")
    if after < 1:
        raise ConpetError(f"--consolidate-after must be a step number (1 or more), not {after}")
    if n_tasks is not None and after > n_tasks:
        raise ConpetError(f"--consolidate-after {after}: there are only {n_tasks} tasks")
    unable = [m for m in methods if not getattr(method_class(m), "consolidates", False)]
    if unable:
        raise ConpetError(f"--consolidate-after: {', '.join(unable)} has no consolidation step (dynamic-lda has)")
