"""`conpet detect-bench`: type-agnostic mention F1 of the mention detector on Few-NERD against the
capitalised-runs baseline.

The detector trains on a seeded sample of ``inter_dev`` sentences (every sentence, with or without
mentions; ``--steps K`` cuts them into K continual steps, each replaying the earlier ones) and is scored on
a seeded sample of ``inter_test`` sentences: exact-match span precision / recall / F1, the same for the
baseline. Few-NERD's tags are IO, so a run of tokens with one tag is one mention (as ``read_fewnerd``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from conpet.core.config import ConfigError
from conpet.core.errors import DataFormatError
from conpet.core.progress_bar import TerminalProgress
from conpet.core.protocols import ScaledSink
from conpet.data._io import read_text
from conpet.data.example import Span
from conpet.suggest.mentions import MentionSentence, capitalised_runs, span_scores


def read_fewnerd_sentences(path: str | os.PathLike[str]) -> list[MentionSentence]:
    """Every sentence of a Few-NERD ``token<TAB>tag`` file (also those without mentions), tokens joined
    by single spaces, mentions as maximal runs of one non-``O`` tag."""
    return [MentionSentence(text, tuple(span for span, _ in mentions))
            for text, mentions in read_fewnerd_typed(path)]


def read_fewnerd_typed(path: str | os.PathLike[str]) -> list[tuple[str, list[tuple[Span, str]]]]:
    """Every sentence of a Few-NERD file (also those without mentions) as (text, [(span, tag)]): tokens
    joined by single spaces, a mention a maximal run of one non-``O`` tag (the fine tag, as ``read_fewnerd``)."""
    out: list[tuple[str, list[tuple[Span, str]]]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            out.append((" ".join(tokens), _runs(tokens, tags)))
            tokens.clear()
            tags.clear()

    for lineno, raw in enumerate(read_text(path).split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            flush()
            continue
        tok, sep, tag = line.rpartition("\t")
        if not sep or not tok:
            raise DataFormatError(path, "expected 'token<TAB>tag'", lineno)
        tokens.append(tok)
        tags.append(tag.strip())
    flush()
    if not out:
        raise DataFormatError(path, "no sentences found")
    return out


def _runs(tokens: list[str], tags: list[str]) -> list[tuple[Span, str]]:
    spans, pos, start, prev = [], 0, 0, "O"
    for tok, tag in zip(tokens, tags, strict=True):
        if tag != prev:
            if prev != "O":
                spans.append((Span(start, pos - 1), prev))
            start, prev = pos, tag
        pos += len(tok) + 1
    if prev != "O":
        spans.append((Span(start, pos - 1), prev))
    return spans


def sample(sentences: list[MentionSentence], n: int, seed: int) -> list[MentionSentence]:
    """``n`` sentences drawn without replacement (seeded), in file order."""
    if n >= len(sentences):
        return list(sentences)
    idx = np.sort(np.random.default_rng(seed).choice(len(sentences), size=n, replace=False))
    return [sentences[i] for i in idx]


@dataclass(frozen=True)
class DetectorBench:
    """What `run_detector_bench` measures: sample sizes, the detector's training settings, the machine."""

    data_root: str | None = None  # the folder holding fewnerd/ (None: ../shared/data)
    train: int = 600  # training sentences
    test: int = 400  # test sentences
    steps: int = 1  # continual steps the training sentences are cut into
    epochs: int = 6
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    backbone: str = "minilm"
    device: str | None = None
    threads: int | None = None  # torch CPU threads (None: the free cores)
    quiet: bool = False  # no progress bar

    def __post_init__(self) -> None:
        if min(self.train, self.test, self.steps, self.epochs) < 1:
            raise ConfigError("the detector bench needs --train, --test, --steps and --epochs of at least 1")


def run_detector_bench(b: DetectorBench) -> dict[str, Any]:
    """Train the detector on the sample in `b.steps` steps and score it and the baseline (the report)."""
    from conpet.core.runtime import apply_threads, seed_everything
    from conpet.data.datasets import find_data_root
    from conpet.model.backbones import load_backbone
    from conpet.suggest.detector import DetectorSettings, MentionDetector

    root = find_data_root(b.data_root) / "fewnerd"
    train = sample(read_fewnerd_sentences(root / "inter_dev.txt"), b.train, b.seed)
    test = sample(read_fewnerd_sentences(root / "inter_test.txt"), b.test, b.seed + 1)
    threads = apply_threads(b.threads)
    seed_everything(b.seed)
    backbone = load_backbone(b.backbone, device=b.device)
    settings = DetectorSettings(max_epochs=b.epochs, learning_rate=b.lr, batch_size=b.batch_size, seed=b.seed)
    detector = MentionDetector(backbone, settings)
    gold = [s.spans for s in test]
    texts = [s.text for s in test]
    steps = []
    chunks = np.array_split(np.arange(len(train)), b.steps)
    bar = TerminalProgress(label="detect-bench ", quiet=b.quiet)
    started = time.monotonic()
    try:
        for k, chunk in enumerate(chunks, start=1):
            steps.append(_bench_step(detector, [train[i] for i in chunk], texts, gold, (k, len(chunks)), bar, started))
    finally:
        bar.close()
    baseline = span_scores(gold, [capitalised_runs(t) for t in texts])
    return {
        "data": str(root), "backbone": backbone.name, "threads": threads, "seed": b.seed,
        "train_sentences": len(train), "train_mentions": sum(len(s.spans) for s in train),
        "test_sentences": len(test), "test_mentions": sum(len(g) for g in gold),
        "settings": {"epochs": b.epochs, "lr": b.lr, "batch_size": b.batch_size, "steps": b.steps},
        "detector": steps[-1], "steps": steps, "baseline_capitalised_runs": baseline.to_dict(),
    }


def _bench_step(detector: Any, train: list[MentionSentence], texts: list[str], gold: list[list[Span]],
                step: tuple[int, int], bar: TerminalProgress, started: float) -> dict[str, Any]:
    """Train step k of n and score the proposals on the test texts; the bar shows both parts (its ETA
    counts from ``started``, the first step's start)."""
    import torch

    k, n = step
    lo, hi = (k - 1) / n, k / n
    mid = lo + 0.8 * (hi - lo)  # training costs most of a step
    t0 = time.monotonic()
    detector.train(train, progress=ScaledSink(bar, lo, mid, started, prefix=f"step {k}/{n}: train: "))
    t_train = time.monotonic() - t0
    t0 = time.monotonic()
    with torch.no_grad():
        proposals = detector.propose(texts, progress=ScaledSink(bar, mid, hi, started, prefix=f"step {k}/{n}: propose: "))
    t_propose = time.monotonic() - t0
    scores = span_scores(gold, [[p.span for p in ps] for ps in proposals])
    bar.write_line(f"step {k}: {len(train)} sentences, detector P {scores.precision:.3f} R {scores.recall:.3f} "
                   f"F1 {scores.f1:.3f} (train {t_train:.0f} s, propose {t_propose:.0f} s)")
    return {"step": k, "train_sentences": len(train), "train_seconds": round(t_train, 1),
            "propose_seconds": round(t_propose, 1), **scores.to_dict()}
