"""`conpet relation-bench`: relation F1 with an explicit no-relation outcome, from a labelled JSONL file
(default: the demo project's data).

The file's sentences are split by sentence (seeded, ``--test-share``); a new project learns the training
sentences in one step (``conpet.project.training``: the method, the mention detector and the relatedness
gate) and is exported as a bundle. Every ordered pair of a test sentence's gold mentions is a candidate;
the gold relations are the positives and every other pair is no_relation. For each threshold the gate's
pairs at or above it are proposed and typed by the relation experts: micro precision / recall / F1 over
(head, tail, type) (TACRED's scoring: a no_relation pair counts only when proposed), and the same for the
pair alone (the gate's own F1). Threshold 0 proposes every pair: the score without a no-relation outcome.
``end_to_end`` starts from raw text instead: the detector's mentions, then the gate at the saved threshold.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conpet.core.errors import ConpetError
from conpet.data.example import Span
from conpet.suggest.mentions import span_scores

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "demo.jsonl"  # the repository's demo data


def _split(path: Path, share: float, seed: int) -> tuple[list[Any], list[Any]]:
    from conpet.data.jsonl import read_jsonl_sentences

    sentences = read_jsonl_sentences(path)
    random.Random(seed).shuffle(sentences)
    n_test = max(1, round(len(sentences) * share))
    return sentences[n_test:], sentences[:n_test]


def _gold_relations(s: Any) -> set[tuple[Span, Span, str]]:
    ents = s.entities
    return {(Span(ents[r.head].start, ents[r.head].end), Span(ents[r.tail].start, ents[r.tail].end), r.type)
            for r in s.relations if r.type}


def _proposed(results: list[Any]) -> list[list[tuple[Span, Span, str, float]]]:
    from conpet.suggest.suggestions import RELATED_KEY

    return [[(m.spans[0], m.spans[1], m.label, m.expert_scores[RELATED_KEY]) for m in r.mentions
             if m.kind == "relation" and RELATED_KEY in m.expert_scores] for r in results]


def _scores(gold: list[set[Any]], proposed: list[list[Any]], threshold: float) -> dict[str, Any]:
    kept = [[p for p in ps if p[3] >= threshold] for ps in proposed]
    typed = span_scores(gold, [[p[:3] for p in ps] for ps in kept])
    pairs = span_scores([[g[:2] for g in gs] for gs in gold], [[p[:2] for p in ps] for ps in kept])
    return {"threshold": threshold, "typed": typed.to_dict(), "pair": pairs.to_dict()}


def run_relation_bench(data: Path, *, test_share: float = 0.2, seed: int = 0, profile: str = "quick",
                       thresholds: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 0.9), project: Path | None = None,
                       threads: int = 1) -> dict[str, Any]:
    """Train a project on the training share of `data`, export it, and score the bundle's relations on the
    test share at each threshold and from raw text (the report the command prints). `project`: keep the
    trained project there (a new folder) instead of in a temporary one."""
    from conpet.bundle import Bundle, read_manifest
    from conpet.core.runtime import apply_threads
    from conpet.data.jsonl import write_jsonl
    from conpet.project.bundles import export_bundle
    from conpet.project.training import train_project
    from conpet.store import Project
    from conpet.store.importer import import_file

    apply_threads(threads, "cpu")
    train, test = _split(data, test_share, seed)
    with tempfile.TemporaryDirectory(prefix="conpet-relbench-") as tmp:
        folder = project or Path(tmp) / "project"
        write_jsonl(Path(tmp) / "train.jsonl", train)
        with Project.create(folder) as p:
            import_file(p, Path(tmp) / "train.jsonl")
        t0 = time.monotonic()
        outcome = train_project(folder, backbone="minilm", device="cpu", profile=profile, threads=threads,
                                overrides={"seed": seed})
        train_s = time.monotonic() - t0
        path = export_bundle(folder, Path(tmp) / "bundle.zip")
        saved = (read_manifest(path).get("suggesters") or {}).get("relation_threshold")
        if saved is None:
            raise ConpetError(f"{data}: the training sentences trained no relatedness gate (no relation labels)")
        bundle = Bundle.load(path, device="cpu", relation_threshold=0.0)  # every pair, with its score
        try:
            t1 = time.monotonic()
            proposed = _proposed(bundle.predict_parsed([(s.text, "", _entity_examples(s)) for s in test]))
            gold = [_gold_relations(s) for s in test]
            rows = [_scores(gold, proposed, float(t)) for t in thresholds]
            gate = bundle.suggesters.relatedness
            gate.settings = dataclasses.replace(gate.settings, threshold=float(saved))
            raw_results = bundle.predict_parsed([(s.text, "", []) for s in test])
            end_to_end = _scores(gold, _proposed(raw_results), gate.settings.threshold)
            end_to_end["mentions"] = span_scores(
                [[Span(e.start, e.end) for e in s.entities] for s in test],
                [[m.spans[0] for m in r.mentions if m.kind == "entity"] for r in raw_results]).to_dict()
            predict_s = time.monotonic() - t1
        finally:
            bundle.close()
    candidates = sum(len(s.entities) * (len(s.entities) - 1) for s in test)
    return {"data": str(data), "train_sentences": len(train), "test_sentences": len(test),
            "test_relations": sum(len(g) for g in gold), "test_candidate_pairs": candidates,
            "profile": profile, "seed": seed, "threads": threads, "types": list(outcome.types),
            "train_seconds": train_s, "predict_seconds": predict_s, "gold_mentions": rows,
            "end_to_end": end_to_end, "suggesters": list(outcome.suggesters)}


def _entity_examples(s: Any) -> list[Any]:
    from conpet.data.example import Example

    return [Example(s.text, (Span(e.start, e.end),), e.type or "", "entity") for e in s.entities]
