"""The `conpet evaluate BUNDLE|PROJECT_DIR FILE` command: reads the file before any model loads, scores it
with a bundle (``conpet.eval.labelled_file``) or a project's current model (``conpet.project.evaluate``, which writes
nothing to the project), prints the report (and a bundle detector's span scores) and writes ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from conpet.cli.thresholds import add_mention_threshold
from conpet.core.errors import ConpetError
from conpet.eval.labelled_file import EvalReport, evaluate_sentences, format_report


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a bundle or a project's model on a labelled data file (accuracy, macro-F1, per type, routing)",
        description="Predict every gold mention and relation of a labelled file (any import format) with a "
                    "bundle or a project's current model and report accuracy, macro-F1, per-type precision/recall/F1 and support, the most "
                    "frequent confusions and, for routed methods, routing and oracle-routing accuracy.")
    p.add_argument("bundle", metavar="BUNDLE|PROJECT_DIR",
                   help="a bundle (zip or folder) or a project folder (its current model; nothing is written to it)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", default=None, help="the file's format (default: detected)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a reader option")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the report as JSON")
    p.add_argument("--backbone", default=None, metavar="NAME|PATH")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: the free cores)")
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle-routing pass (one more pass)")
    add_mention_threshold(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from conpet.cli.data import parse_options
    from conpet.core.files import write_text_atomic
    from conpet.core.progress_bar import TerminalProgress, cancel_on_sigint
    from conpet.data.formats import read_sentences
    from conpet.eval.span_metrics import format_pair_metrics, format_span_metrics

    t0 = time.monotonic()
    name, sentences = read_sentences(args.file, args.format, **parse_options(args.option))  # before the model
    bar = TerminalProgress(label="evaluate ", quiet=args.quiet)
    try:
        with cancel_on_sigint(bar):
            report = _evaluate_target(args, name, sentences, bar, t0)
    finally:
        bar.close()
    print(format_report(report))
    if report.spans is not None:
        print(format_span_metrics(report.spans))
    if report.pairs is not None:
        print(format_pair_metrics(report.pairs))
    if args.json:
        write_text_atomic(args.json, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        print(f"report written to {args.json}", file=sys.stderr)
    return 0


def _evaluate_target(args: argparse.Namespace, name: str, sentences: Sequence[Any], bar: Any, t0: float
                     ) -> EvalReport:
    """A project folder's current model (``conpet.project.evaluate``; nothing written to it) or a bundle;
    either's report carries the span scores of its mention detector on the raw text (None without one)."""
    from conpet.project.model import is_project_folder

    if is_project_folder(args.bundle):
        from conpet.project.evaluate import evaluate_project

        if args.backbone:
            raise ConpetError("--backbone is for a bundle: a project's model uses the backbone it was trained on")
        return evaluate_project(args.bundle, args.file, sink=bar, oracle=not args.no_oracle, device=args.device,
                                threads=args.threads, sentences=(name, sentences),
                                mention_threshold=args.mention_threshold)
    from conpet.bundle import Bundle
    from conpet.core.runtime import apply_threads
    from conpet.eval.span_metrics import pair_metrics, span_metrics

    bundle = Bundle.load(args.bundle, args.backbone, device=args.device, mention_threshold=args.mention_threshold)
    apply_threads(args.threads, bundle.backbone.device)
    try:
        report = evaluate_sentences(bundle, sentences, args.file, name, bar, oracle=not args.no_oracle, started=t0)
        report.spans = span_metrics(bundle, sentences, bar)  # None unless the bundle has a mention detector
        report.pairs = pair_metrics(bundle, sentences, bar)  # None unless it has a relatedness gate
        return report
    finally:
        bundle.close()
