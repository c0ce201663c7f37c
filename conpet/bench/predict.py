"""``conpet bench-predict``'s measurements (the command is in ``conpet.cli.bundle``): a bundle's prediction
throughput against one plain forward pass of its bare backbone, and its predictions against the ones its
project stored."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from conpet.bundle import Bundle, BundleError


def _sync(device: Any) -> None:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_predict(bundle: Bundle, examples: list[Any], batch_size: int = 32, repeats: int = 3) -> dict[str, Any]:
    """Median seconds of bundle prediction and of one plain forward pass of the bare backbone (no adapter,
    the examples encoded the same way, in batches of ``batch_size`` ordered by length as the engine's
    prediction orders them) over ``examples``; sentences per second of each and the ratio."""
    import torch

    method = bundle.method
    method.config = method.config.replace(eval_batch_size=batch_size)
    method.cache = None  # measure the model, not a cache
    bb = bundle.backbone
    enc = method.encoder
    model = bb.model
    pet = method.pet

    # The same order as the method's own prediction batches (by text length: least padding).
    ordered = sorted(examples, key=lambda e: len(e.text))

    def plain() -> None:
        with torch.no_grad(), pet._no_adapter():
            for i in range(0, len(ordered), batch_size):
                batch = enc.batch(ordered[i:i + batch_size]).to(bb.device)
                model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        _sync(bb.device)

    def predicted() -> None:
        method.predict(examples)
        _sync(bb.device)

    def timed(fn: Any) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    forwards0 = method.backbone_forwards
    predicted()  # warm-up (also counts the passes)
    passes = method.backbone_forwards - forwards0
    plain()
    # Interleaved, so that a change in the machine's load hits both sides alike.
    pairs = [(timed(predicted), timed(plain)) for _ in range(repeats)]
    t_pred = statistics.median(p for p, _ in pairs)
    t_plain = statistics.median(q for _, q in pairs)
    n = len(examples)
    return {
        "examples": n, "batch_size": batch_size, "repeats": repeats,
        "method": bundle.method_name, "backbone": getattr(bb, "name", "?"), "device": str(bb.device),
        "tasks": len(bundle.tasks), "forward_passes_per_predict": passes,
        "plain_batches": -(-n // batch_size),
        "predict_seconds": t_pred, "plain_forward_seconds": t_plain,
        "predict_per_second": n / t_pred, "plain_forward_per_second": n / t_plain,
        "predict_over_plain": statistics.median(p / q for p, q in pairs),
        "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def compare_with_project(bundle: Bundle, project_dir: str | Path) -> dict[str, Any]:
    """The bundle's predictions against those the project stored for its latest finished training run."""
    from conpet.data.example import Example
    from conpet.store import Project

    with Project.open(project_dir) as p:
        runs = [r for r in p.runs.list(status="finished") if r.purpose == "train" and p.predictions.count(r.id)]
        if not runs:
            raise BundleError(project_dir, "project", "the project stored no predictions of a finished training")
        run = runs[0]
        recs = p.predictions.for_run(run.id)
        sents = p.sentences.get_many([r.sentence_id for r in recs])
    examples = [Example(sents[r.sentence_id].text, r.spans, "", r.kind, id=r.example_id) for r in recs]
    got = bundle.predict_examples(examples)
    diffs = [abs(g.score - r.score) for g, r in zip(got, recs, strict=True)]
    sel = [max(abs(a - b) for a, b in zip(g.selector_scores, r.selector_scores, strict=True))
           for g, r in zip(got, recs, strict=True) if g.selector_scores is not None and r.selector_scores]
    return {"run_id": run.id, "examples": len(recs),
            "same_label": sum(g.label == r.label for g, r in zip(got, recs, strict=True)),
            "same_experts": sum(list(g.active_experts or []) == list(r.active_experts or [])
                                for g, r in zip(got, recs, strict=True)),
            "same_module_versions": sum(g.module_versions == r.module_versions for g, r in zip(got, recs, strict=True)),
            "identical_scores": sum(d == 0.0 for d in diffs),
            "max_score_diff": max(diffs, default=0.0), "max_selector_score_diff": max(sel, default=0.0)}
