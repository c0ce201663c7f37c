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

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conpet.core.errors import ConpetError
from conpet.data.example import Span
from conpet.suggest.mentions import span_scores

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo" / "demo.jsonl"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("relation-bench", help="relation F1 with a no-relation outcome (relatedness gate)",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--data", default=str(DEMO), help="a labelled JSONL file (default: the demo data)")
    p.add_argument("--test-share", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="quick")
    p.add_argument("--thresholds", default="0,0.3,0.5,0.7,0.9")
    p.add_argument("--project", default=None, metavar="DIR", help="keep the trained project here (new folder)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, metavar="OUT.json")
    p.set_defaults(func=_cmd)


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    from conpet.bundle import Bundle, read_manifest
    from conpet.core.runtime import apply_threads
    from conpet.data.jsonl import write_jsonl
    from conpet.project.bundles import export_bundle
    from conpet.project.training import train_project
    from conpet.store import Project
    from conpet.store.importer import import_file

    apply_threads(args.threads, "cpu")
    train, test = _split(Path(args.data), args.test_share, args.seed)
    with tempfile.TemporaryDirectory(prefix="conpet-relbench-") as tmp:
        folder = Path(args.project) if args.project else Path(tmp) / "project"
        write_jsonl(Path(tmp) / "train.jsonl", train)
        with Project.create(folder) as p:
            import_file(p, Path(tmp) / "train.jsonl")
        t0 = time.monotonic()
        outcome = train_project(folder, backbone="minilm", device="cpu", profile=args.profile, threads=args.threads,
                                overrides={"seed": args.seed})
        train_s = time.monotonic() - t0
        path = export_bundle(folder, Path(tmp) / "bundle.zip")
        saved = (read_manifest(path).get("suggesters") or {}).get("relation_threshold")
        if saved is None:
            raise ConpetError(f"{args.data}: the training sentences trained no relatedness gate (no relation labels)")
        bundle = Bundle.load(path, device="cpu", relation_threshold=0.0)  # every pair, with its score
        try:
            t1 = time.monotonic()
            proposed = _proposed(bundle.predict_parsed([(s.text, "", _entity_examples(s)) for s in test]))
            gold = [_gold_relations(s) for s in test]
            rows = [_scores(gold, proposed, float(t)) for t in args.thresholds.split(",")]
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
    return {"data": str(args.data), "train_sentences": len(train), "test_sentences": len(test),
            "test_relations": sum(len(g) for g in gold), "test_candidate_pairs": candidates,
            "profile": args.profile, "seed": args.seed, "threads": args.threads, "types": list(outcome.types),
            "train_seconds": train_s, "predict_seconds": predict_s, "gold_mentions": rows,
            "end_to_end": end_to_end, "suggesters": list(outcome.suggesters)}


def _entity_examples(s: Any) -> list[Any]:
    from conpet.data.example import Example

    return [Example(s.text, (Span(e.start, e.end),), e.type or "", "entity") for e in s.entities]


def _cmd(args: argparse.Namespace) -> int:
    report = run(args)
    print(f"{report['train_sentences']} training / {report['test_sentences']} test sentences "
          f"({report['test_relations']} gold relations among {report['test_candidate_pairs']} ordered pairs of "
          f"gold mentions); trained in {report['train_seconds']:.0f} s")
    print("gold mentions given: threshold | typed P / R / F1 | pair P / R / F1 | proposed")
    for row in report["gold_mentions"]:
        t, q = row["typed"], row["pair"]
        print(f"  {row['threshold']:.2f} | {100 * t['precision']:5.1f} {100 * t['recall']:5.1f} "
              f"{100 * t['f1']:5.1f} | {100 * q['precision']:5.1f} {100 * q['recall']:5.1f} {100 * q['f1']:5.1f} "
              f"| {t['predicted']}")
    e = report["end_to_end"]
    print(f"raw text (detector mentions, threshold {e['threshold']}): typed F1 {100 * e['typed']['f1']:.1f}, "
          f"pair F1 {100 * e['pair']['f1']:.1f} ({e['typed']['predicted']} proposed); detector mention F1 "
          f"{100 * e['mentions']['f1']:.1f} ({e['mentions']['true_positives']} of {e['mentions']['gold']} gold, "
          f"{e['mentions']['predicted']} proposed)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"report written to {args.json}", file=sys.stderr)
    return 0
