"""The `conpet mention-bench` study (parsed in ``conpet.cli.bench``): the precision-recall trade-off of mention proposals on real text (Few-NERD).

A seeded sample of Few-NERD ``inter_dev`` sentences (every sentence, with or without mentions) is split
into training and test sentences. A new project imports the training sentences (fine types, e.g.
``person-actor``) and learns them in one step (``conpet.project.training``: the method and the mention
detector, which holds some sentences out and chooses its mention threshold on them), and is exported as a
bundle. The bundle then reads the test sentences as raw text: the detector proposes mentions, the experts
type them, and every proposal is scored at each threshold of ``--thresholds`` and at the one the model
chose: exact-match precision / recall / F1 of span + type (``typed``) and of the span alone
(``untyped``), and proposals per gold mention. Threshold 0 keeps every proposal: what a model proposed
before it had a threshold. ``criteria``: the threshold each F-beta of ``--betas`` chooses on the same
held-out validation sentences of the detector (what a model trained with that criterion saves) and its
scores on the test sentences.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from conpet.core.errors import ConpetError
from conpet.data.example import Span
from conpet.suggest.mention_threshold import scores_at

DEFAULT_THRESHOLDS = "0,0.5,0.6,0.7,0.8,0.85,0.9,0.95"
Tagged = tuple[str, list[tuple[Span, str]]]


def split_sample(sentences: list[Tagged], n_train: int, n_test: int, seed: int) -> tuple[list[Tagged], list[Tagged]]:
    """Disjoint seeded samples of training and test sentences, each in file order."""
    if n_train + n_test > len(sentences):
        raise ConpetError(f"asked for {n_train} + {n_test} sentences, the file has {len(sentences)}")
    idx = np.random.default_rng(seed).choice(len(sentences), size=n_train + n_test, replace=False)
    return ([sentences[i] for i in np.sort(idx[:n_train])], [sentences[i] for i in np.sort(idx[n_train:])])


def threshold_rows(gold: list[list[tuple[Span, str]]], proposed: list[list[tuple[Span, str, float]]],
                   thresholds: list[float]) -> list[dict[str, Any]]:
    """Per threshold: typed and span-only exact-match scores of the proposals at or above it."""
    typed = [[((span, label), score) for span, label, score in ps] for ps in proposed]
    spans = [[(span, score) for span, _, score in ps] for ps in proposed]
    gold_spans = [[span for span, _ in g] for g in gold]
    rows = []
    for t in thresholds:
        ty, un = scores_at(gold, typed, t), scores_at(gold_spans, spans, t)
        rows.append({"threshold": t, "typed": ty.to_dict(), "untyped": un.to_dict(),
                     "proposals_per_gold": un.n_predicted / un.n_gold if un.n_gold else None})
    return rows


def _train(folder: Path, train: list[Tagged], args: Any) -> float | None:
    """Create and train the project (seconds), or None when ``folder`` already holds a trained one."""
    from conpet.data.jsonl import Entity, Sentence, write_jsonl
    from conpet.project.model import current_model_folder, is_project_folder
    from conpet.project.training import train_project
    from conpet.store import Project
    from conpet.store.importer import import_file

    if is_project_folder(folder):
        with Project.open(folder) as p:
            if current_model_folder(p) is None:
                raise ConpetError(f"{folder}: a project without a trained model; give a new folder")
        return None
    with tempfile.TemporaryDirectory(prefix="conpet-mentionbench-") as tmp:
        path = Path(tmp) / "train.jsonl"
        write_jsonl(path, [Sentence(text, tuple(Entity(s.start, s.end, tag) for s, tag in mentions))
                           for text, mentions in train])
        with Project.create(folder) as p:
            import_file(p, path)
    t0 = time.monotonic()
    train_project(folder, backbone="minilm", device="cpu", profile=args.profile, threads=args.threads,
                  overrides={"seed": args.seed})
    return time.monotonic() - t0


def validation_sentences(folder: Path) -> list[Any]:
    """The sentences the project's detector held out to choose its threshold (``detector_validation``)."""
    from conpet.project.model import current_model_folder, read_model_state
    from conpet.project.suggesters import STATE_KEY, detector_sentences, detector_validation
    from conpet.store import Project

    with Project.open(folder) as p:
        data = detector_sentences(p)
        model = current_model_folder(p)
    assert model is not None
    _, training = read_model_state(model)
    saved = (training.get(STATE_KEY) or {}).get("detector") or {}
    return [data[i] for i in sorted(detector_validation(data, saved))]


def criteria_rows(detector: Any, validation: list[Any], betas: list[float], gold: list[list[tuple[Span, str]]],
                  proposed: list[list[tuple[Span, str, float]]]) -> list[dict[str, Any]]:
    """Per beta: the threshold it chooses on the validation sentences and the test scores there."""
    from conpet.suggest.mention_threshold import choose_threshold

    found = detector.propose([s.text for s in validation], min_score=0.0)
    scored = [[(p.span, p.score) for p in props] for props in found]
    rows = []
    for beta in betas:
        choice = choose_threshold([s.spans for s in validation], scored, beta)
        if choice is not None:
            rows.append({"beta": beta, "validation": choice.to_dict(),
                         **threshold_rows(gold, proposed, [choice.threshold])[0]})
    return rows


def run(args: Any) -> dict[str, Any]:
    from conpet.bench.detector import read_fewnerd_typed
    from conpet.bundle import Bundle, read_manifest
    from conpet.core.runtime import apply_threads
    from conpet.data.datasets import find_data_root
    from conpet.eval.span_metrics import scored_mentions
    from conpet.project.bundles import export_bundle

    apply_threads(args.threads, "cpu")
    thresholds = sorted({float(t) for t in args.thresholds.split(",")})
    path = find_data_root(args.data_root) / "fewnerd" / "inter_dev.txt"
    train, test = split_sample(read_fewnerd_typed(path), args.train, args.test, args.seed)
    with tempfile.TemporaryDirectory(prefix="conpet-mentionbench-") as tmp:
        folder = Path(args.project) if args.project else Path(tmp) / "project"
        train_s = _train(folder, train, args)
        bundle_path = export_bundle(folder, Path(tmp) / "bundle.zip")
        saved = (read_manifest(bundle_path).get("suggesters") or {}).get("mention_threshold")
        if saved is None:
            raise ConpetError(f"{folder}: the model has no mention detector")
        bundle = Bundle.load(bundle_path, device="cpu", mention_threshold=0.0)  # every proposal, with its score
        try:
            t0 = time.monotonic()
            proposed = scored_mentions(bundle, [text for text, _ in test])
            predict_s = time.monotonic() - t0
            choice = bundle.suggesters.detector.threshold_choice
            gold = [mentions for _, mentions in test]
            betas = [float(b) for b in args.betas.split(",")]
            criteria = criteria_rows(bundle.suggesters.detector, validation_sentences(folder), betas, gold, proposed)
        finally:
            bundle.close()
    return {"data": str(path), "seed": args.seed, "profile": args.profile, "threads": args.threads,
            "train_sentences": len(train), "train_mentions": sum(len(m) for _, m in train),
            "test_sentences": len(test), "test_mentions": sum(len(g) for g in gold),
            "train_seconds": train_s, "predict_seconds": predict_s, "saved_threshold": saved,
            "threshold_choice": choice, "rows": threshold_rows(gold, proposed, thresholds),
            "saved": threshold_rows(gold, proposed, [float(saved)])[0], "criteria": criteria}
