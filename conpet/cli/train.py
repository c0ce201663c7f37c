"""``conpet train PROJECT_DIR``: learn a project's next task headless (``conpet.project.training``)."""

from __future__ import annotations

import sys
from typing import Any

from conpet.core.config import CONVERGE_MAX_EPOCHS, CONVERGE_PATIENCE, PROFILES
from conpet.core.errors import Cancelled
from conpet.core.progress_bar import TerminalProgress, cancel_on_sigint
from conpet.project.crossval import DEFAULT_FOLDS
from conpet.project.training import (
    DEFAULT_METHOD,
    DEFAULT_MIN_EXAMPLES,
    DEFAULT_PROFILE,
    train_project,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="learn a project's next task headless (what the app's Train does)",
        description="Learn the project's next task: its open task, or the types with at least --min-examples "
                    "gold annotations that no task holds yet; and, first, the labels of learnt types added, "
                    "removed or corrected since their task was trained (a refresh: with no new type the step is "
                    "the refresh alone). Stores the run, the modules and the metrics in the project. Ctrl-C stops "
                    "after the current batch.")
    p.add_argument("project", metavar="PROJECT_DIR")
    # no argparse choices: listing the project methods would import every method (and torch) for `--help`
    p.add_argument("--method", default=None, metavar="NAME",
                   help=f"continual method for a new project's model (default {DEFAULT_METHOD}; later steps keep "
                        "it); one that `conpet methods` marks (default) or (project)")
    p.add_argument("--backbone", default=None, metavar="NAME|PATH",
                   help="minilm, smollm2-135m, or a local model folder / GGUF file (default: the model's own, "
                        "else minilm)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--min-examples", type=int, default=DEFAULT_MIN_EXAMPLES,
                   help=f"labelled examples a type needs to join a new task (default {DEFAULT_MIN_EXAMPLES})")
    p.add_argument("--type", action="append", dest="types", metavar="NAME",
                   help="a type of the new task (repeat for several; default: every type with enough examples)")
    p.add_argument("--profile", choices=PROFILES, default=None,
                   help=f"training budget preset of this step, as the app's budget (default: {DEFAULT_PROFILE} "
                        "for a new model; a model that continues keeps its own); converge: no batch limit, up to "
                        f"{CONVERGE_MAX_EPOCHS} epochs, stopping once validation accuracy has not risen for "
                        f"{CONVERGE_PATIENCE} epochs (the best epoch's weights kept)")
    p.add_argument("--epochs", type=int, default=None, help="most epochs per step (overrides the profile)")
    p.add_argument("--batch-limit", type=int, default=None, help="most batches per stage (overrides the profile)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (overrides the profile)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the sampling and the new modules' initial weights (default: the model's, else 1; "
                        "an example's train/valid/test split is fixed when first seen); recorded with the run and "
                        "in an exported bundle")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: the cores the load average shows free, at most 4)")
    p.add_argument("--all-data", action="store_true",
                   help="train the new task on all its labelled examples (no held-out validation and test split); "
                        "its accuracy is then a cross-validated estimate, at the cost of --folds extra trainings of "
                        "the new task")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help=f"cross-validation folds of --all-data (default {DEFAULT_FOLDS})")
    p.add_argument("--refresh", action="append", type=int, default=[], metavar="TASK",
                   help="retrain task TASK's expert on its current labelled data in this step, however little "
                        "changed (repeat for several; the default method; others learn new labels of learnt types "
                        "as `conpet methods` says)")
    p.add_argument("--consolidate", action="store_true",
                   help="instead of a new task: consolidate the model (dynamic-lda): a new feature map trains on every "
                        "stored training example of every learnt type and every type's router statistics are "
                        "recomputed through it; the experts stay. Its cost is said before it runs; the model before "
                        "it stays current until it is saved (Ctrl-C leaves it as it was)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: Any) -> int:
    if args.folds is not None and not args.all_data:
        print("conpet: --folds sets the cross-validation of --all-data; add --all-data or leave --folds out",
              file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    for arg, key in (("epochs", "max_epochs"), ("batch_limit", "batch_limit"), ("lr", "lr"), ("seed", "seed")):
        v = getattr(args, arg)
        if v is not None:
            overrides[key] = v
    bar = TerminalProgress(label="train ", quiet=args.quiet, own_eta=False)  # the ETA of conpet.methods.work_progress
    try:
        with cancel_on_sigint(bar):
            out = train_project(args.project, method=args.method, backbone=args.backbone,
                                min_examples=args.min_examples, profile=args.profile, overrides=overrides,
                                device=args.device, sink=bar, types=args.types, threads=args.threads,
                                notify=lambda line: print(f"conpet: {line}", file=sys.stderr, flush=True),
                                all_data=args.all_data, folds=args.folds or DEFAULT_FOLDS, refresh=args.refresh,
                                consolidate=args.consolidate)
    except Cancelled:
        bar.close()
        print(f"conpet: {'consolidation' if args.consolidate else 'training'} cancelled; the project keeps its "
              "previous model", file=sys.stderr)
        return 130
    finally:
        bar.close()
    from conpet.methods.training_report import accuracy_text
    from conpet.project.crossval import cv_text

    m = out.metrics
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    correct, totals = m.get("test_correct") or [], m.get("test_examples") or []
    if out.refresh:
        r = out.refresh
        experts = ", ".join(str(k) for k in r.get("experts", [])) or "none"
        print(f"run {out.run_id}: refreshed the learnt tasks: {r.get('added', 0)} label(s) added, {r.get('removed', 0)} "
              f"removed or relabelled (router statistics {r.get('router', 'updated')}); experts retrained: {experts}")
    if out.consolidation:
        c = out.consolidation
        print(f"run {out.run_id}: consolidated the model in {out.seconds:.1f} s: a new feature map trained on "
              f"{c.get('examples')} stored examples of {c.get('types')} types, every type's statistics recomputed")
    if out.types:
        print(f"run {out.run_id}: task {out.task_index} ({', '.join(out.types)}) learnt with {out.method} "
              f"in {out.seconds:.1f} s (seed {m.get('seed')}, {m.get('threads')} CPU thread(s))")
    if sum(totals) or not m.get("cv"):  # a first task trained on all its data has no test examples at all
        print(f"whole accuracy {accuracy_text(sum(correct), sum(totals))} of the test examples, average accuracy "
              f"{pct(m.get('avg_acc'))}"
              + (f", selector accuracy {pct(m.get('selector_acc'))}" if m.get("selector_acc") is not None else ""))
        print("per task: " + ", ".join(f"task {k + 1} {accuracy_text(c, n)}"
                                       for k, (c, n) in enumerate(zip(correct, totals, strict=True)))
              + " (each task's test examples of its first step)")
        g_correct, g_totals = m.get("grown_test_correct") or [], m.get("grown_test_examples") or []
        if sum(g_totals):
            print(f"test examples labelled after their task's first step: {accuracy_text(sum(g_correct), sum(g_totals))}")
    if m.get("cv"):
        print(f"task {out.task_index} (trained on all its data): accuracy {cv_text(m['cv'])}")
    for line in out.suggesters:
        print(line)
    print(f"model saved in {out.model_folder}")
    return 0
