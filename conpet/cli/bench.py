"""The experiment commands: ``conpet bench`` (the continual benchmark), ``conpet bench-threads``,
``conpet detect-bench`` and ``conpet relation-bench``. Argument parsing and printing only; the work is the
plain functions of ``conpet.bench``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conpet.core.errors import ConpetError


def register(subparsers: Any) -> None:
    _register_continual(subparsers)
    _register_threads(subparsers)
    _register_detector(subparsers)
    _register_relation(subparsers)
    _register_mentions(subparsers)


# --- conpet bench ----------------------------------------------------------------------------------------


def _register_continual(subparsers: Any) -> None:
    from conpet.bench import continual

    p = subparsers.add_parser("bench", help="run a continual benchmark and write results.json/csv and a plot",
                              description=continual.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fewrel16", help="fewrel80 | fewrel16 | fewnerd | a data file")
    p.add_argument("--backbone", default="minilm", help="minilm | smollm2-135m | a model folder or GGUF file")
    p.add_argument("--methods", default="dynamic,static",
                   help="comma-separated method names, or 'all' (Table IV's methods and the ablations)")
    p.add_argument("--profile", default="smoke", choices=["smoke", "quick", "paper"])
    p.add_argument("--seeds", default="1", help="comma-separated seeds (task split and training)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tasks", type=int, default=None,
                   help="number of tasks the types are split into (default: 4 for fewrel16, 10 otherwise); at "
                        "most the number of types")
    p.add_argument("--split", default="random", choices=["random", "coarse"],
                   help="random type clusters, or one task per coarse type (Few-NERD)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default on the CPU: 1, which is fastest on a busy machine)")
    p.add_argument("--measure-cache", action="store_true",
                   help="after training, time a prediction pass uncached vs with all logits cached")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a training setting (e.g. --set top_t=2 --set lr=5e-4), repeatable")
    p.add_argument("--protocol", default="class-incremental",
                   choices=["class-incremental", "data-incremental", "active-learning"],
                   help="class-incremental: the paper's task sequence; data-incremental: learn the tasks with "
                        "--start examples per type, then --rounds refresh rounds adding --add per type, against "
                        "the same method with all of them from the start, then the review loop "
                        "(conpet.bench.refresh; writes refresh.json and refresh.txt); active-learning: task 1 "
                        "with --start per type, then --rounds rounds labelling --label-batch pool examples chosen "
                        "by the Next most useful queue against chosen at random, a refresh after each "
                        "(conpet.bench.active; writes active.json and active.txt)")
    p.add_argument("--start", type=int, default=8,
                   help="data-incremental, active-learning: training examples per type at first")
    p.add_argument("--add", type=int, default=8, help="data-incremental: examples per type each round adds")
    p.add_argument("--rounds", type=int, default=3, help="data-incremental, active-learning: refresh rounds")
    p.add_argument("--label-batch", type=int, default=20, metavar="N",
                   help="active-learning: pool examples labelled each round")
    p.add_argument("--arms", default="queue,balanced,random", metavar="ARM,ARM",
                   help="active-learning: how examples are chosen: queue (Next most useful), balanced (the queue "
                        "dealt over predicted types), random")
    p.add_argument("--refresh-shares", default="none,0.5", metavar="S,S",
                   help="data-incremental: the rounds once per refresh_share (none: the router alone)")
    p.add_argument("--review", type=int, default=100, metavar="N",
                   help="data-incremental: wrong validation predictions corrected in the review loop (0: none)")
    p.add_argument("--upper-from", default=None, metavar="DIR",
                   help="data-incremental: take the upper reference (W with all examples from the start) from this "
                        "class-incremental bench output of the same method, seeds and profile instead of training it; "
                        "the review loop then runs on the refreshed model")
    p.add_argument("--map-study", action="store_true",
                   help="data-incremental: instead, compare keeping expert 1's old weights as the feature map with "
                        "recomputing every statistic when expert 1 retrains in a refresh round")
    p.add_argument("--consolidate-after", type=int, default=None, metavar="N",
                   help="class-incremental: consolidate the model after step N (a new feature map on every stored "
                        "example, every statistic recomputed: conpet train --consolidate) and measure W and routing "
                        "before and after, and its CPU seconds against a normal step's; later steps continue from it")
    p.add_argument("--merge", default=None, metavar="DIR,DIR",
                   help="instead of running, combine the results.json of these folders into --out")
    p.add_argument("--rename", action="append", metavar="OLD=NEW",
                   help="with --merge: list method OLD as NEW (e.g. static=emr*, the same method), repeatable")
    p.add_argument("--only", default=None, metavar="METHOD,METHOD",
                   help="with --merge: keep only these methods (names as listed, after --rename)")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from conpet.bench.continual import merge, run_bench
    from conpet.methods.registry import expand_methods

    if (args.rename or args.only) and not args.merge:
        raise ConpetError("--rename and --only only apply with --merge")
    command = "conpet bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else None
    if args.merge:
        only = [m.strip() for m in args.only.split(",") if m.strip()] if args.only else None
        print(merge(args.merge.split(","), Path(args.out), command, rename=parse_rename(args.rename or []),
                    only=only))
        return 0
    protocol: dict[str, Any] = {}
    if args.protocol == "data-incremental":
        from conpet.bench.refresh import parse_shares

        protocol = {"start": args.start, "add": args.add, "rounds": args.rounds,
                    "shares": parse_shares(args.refresh_shares), "review": args.review,
                    "feature_map_study": args.map_study, "upper": args.upper_from}
    elif args.protocol == "active-learning":
        from conpet.bench.active import ARMS

        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        if not arms or set(arms) - set(ARMS):
            raise ConpetError(f"--arms: expected some of {', '.join(ARMS)}, got {args.arms!r}")
        protocol = {"start": args.start, "batch": args.label_batch, "rounds": args.rounds, "arms": arms}
    print(run_bench(data=args.data, backbone=args.backbone, methods=expand_methods(args.methods),
                    profile=args.profile, seeds=[int(s) for s in str(args.seeds).split(",") if s.strip()],
                    out=Path(args.out), n_tasks=args.tasks, split=args.split, device=args.device,
                    threads=args.threads, measure_cache=args.measure_cache, overrides=parse_set(args.set or []),
                    command=command, protocol=args.protocol, protocol_options=protocol,
                    consolidate_after=args.consolidate_after))
    return 0


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as settings; a value is JSON when it parses as JSON, else the text."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConpetError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            out[k.strip()] = v
    return out


def parse_rename(items: Sequence[str]) -> dict[str, str]:
    """``--rename OLD=NEW[,OLD=NEW]`` items as {old: new}."""
    out: dict[str, str] = {}
    for item in items:
        for pair in item.split(","):
            old, sep, new = pair.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise ConpetError(f"--rename expects OLD=NEW, not {pair!r}")
            out[old.strip()] = new.strip()
    return out


# --- conpet bench-threads --------------------------------------------------------------------------------


def _register_threads(subparsers: Any) -> None:
    from conpet.bench import threads

    p = subparsers.add_parser("bench-threads", help="seconds per LoRA training step for each CPU thread setting, "
                                                    "idle and with cores kept busy",
                              description=threads.__doc__)
    p.add_argument("--threads", default="1,2,auto", help="settings to compare: numbers and/or 'auto' (the default "
                   "policy); a '+passive' suffix also sets OMP_WAIT_POLICY=PASSIVE (default 1,2,auto)")
    p.add_argument("--busy", type=int, default=1, help="processes spinning on a core in the busy condition "
                   "(default 1; 0: idle only)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per setting (default 10)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="times each setting runs, taking turns (default 3)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the figures as JSON")
    p.set_defaults(func=_cmd_threads)


def _cmd_threads(args: argparse.Namespace) -> int:
    from conpet.bench.threads import measure, parse_settings

    rows = measure(parse_settings(args.threads), args.busy, args.steps, args.warmup, args.rounds)
    print(f"{'condition':>16}  {'setting':<12} {'threads':>7}  {'s/step':>7}  load average before / after")
    for r in rows:
        print(f"{r['condition']:>16}  {r['setting']:<12} {r['threads']:>7}  {r['seconds_per_step']:7.3f}  "
              f"{r['load_average_before']:.2f} / {r['load_average_after']:.2f}")
    if args.json:
        _write_json(args.json, rows)
    return 0


# --- conpet detect-bench ---------------------------------------------------------------------------------


def _register_detector(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "detect-bench", help="mention-detector F1 on Few-NERD against the capitalised-runs baseline",
        description="Train the mention detector on a sample of Few-NERD inter_dev sentences and report "
                    "type-agnostic exact-match mention precision/recall/F1 on a sample of inter_test, "
                    "beside the capitalised-runs baseline.")
    p.add_argument("--data-root", default=None, help="folder holding fewnerd/ (default: ../shared/data)")
    p.add_argument("--train", type=int, default=600, help="training sentences (default 600)")
    p.add_argument("--test", type=int, default=400, help="test sentences (default 400)")
    p.add_argument("--steps", type=int, default=1, help="continual steps the training sentences are cut into")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the free cores)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar (the step lines still show)")
    p.set_defaults(func=_cmd_detector)


def _cmd_detector(args: argparse.Namespace) -> int:
    from conpet.bench.detector import DetectorBench, run_detector_bench

    report = run_detector_bench(DetectorBench(
        data_root=args.data_root, train=args.train, test=args.test, steps=args.steps, epochs=args.epochs,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, backbone=args.backbone, device=args.device,
        threads=args.threads, quiet=args.quiet))
    d, b = report["detector"], report["baseline_capitalised_runs"]
    print(f"Few-NERD mentions: train {report['train_sentences']} sentences ({report['train_mentions']} mentions), "
          f"test {report['test_sentences']} sentences ({report['test_mentions']} mentions), {report['backbone']}")
    print(f"{'':22} {'P':>6} {'R':>6} {'F1':>6}")
    print(f"{'detector':22} {d['precision']:6.3f} {d['recall']:6.3f} {d['f1']:6.3f}")
    print(f"{'capitalised runs':22} {b['precision']:6.3f} {b['recall']:6.3f} {b['f1']:6.3f}")
    if args.json:
        _write_json(args.json, report)
    return 0


# --- conpet relation-bench -------------------------------------------------------------------------------


def _register_relation(subparsers: Any) -> None:
    from conpet.bench import relation

    p = subparsers.add_parser("relation-bench", help="relation F1 with a no-relation outcome (relatedness gate)",
                              description=relation.__doc__.split("\n\n", 1)[1] if relation.__doc__ else None)
    p.add_argument("--data", default=str(relation.DEMO), help="a labelled JSONL file (default: the demo data)")
    p.add_argument("--test-share", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="quick")
    p.add_argument("--thresholds", default="0,0.3,0.5,0.7,0.9")
    p.add_argument("--project", default=None, metavar="DIR", help="keep the trained project here (new folder)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, metavar="OUT.json")
    p.set_defaults(func=_cmd_relation)


def _cmd_relation(args: argparse.Namespace) -> int:
    from conpet.bench.relation import run_relation_bench

    try:
        thresholds = [float(t) for t in args.thresholds.split(",")]
    except ValueError as exc:
        raise ConpetError(f"--thresholds expects numbers separated by commas, not {args.thresholds!r}") from exc
    report = run_relation_bench(Path(args.data), test_share=args.test_share, seed=args.seed, profile=args.profile,
                                thresholds=thresholds, project=Path(args.project) if args.project else None,
                                threads=args.threads)
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
        _write_json(args.json, report)
        print(f"report written to {args.json}", file=sys.stderr)
    return 0


def _write_json(path: str, doc: Any) -> None:
    Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


# --- conpet mention-bench ----------------------------------------------------------------------------------


def _register_mentions(subparsers: Any) -> None:
    from conpet.bench import mentions

    p = subparsers.add_parser("mention-bench", help="precision / recall of mention proposals by threshold "
                                                    "(Few-NERD, a project's model on raw text)",
                              description=mentions.__doc__.split("\n\n", 1)[1] if mentions.__doc__ else None)
    p.add_argument("--data-root", default=None, help="folder holding fewnerd/ (default: ../shared/data)")
    p.add_argument("--train", type=int, default=1000, help="training sentences (default 1000)")
    p.add_argument("--test", type=int, default=400, help="test sentences (default 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="quick")
    p.add_argument("--thresholds", default=mentions.DEFAULT_THRESHOLDS, help="comma-separated detector scores from 0 to 1")
    p.add_argument("--betas", default="0.5,1,2", help="comma-separated F-beta criteria to compare (default 0.5,1,2)")
    p.add_argument("--project", default=None, metavar="DIR",
                   help="keep the trained project here (a new folder); a folder that holds a trained project "
                        "is reused as it is (no training)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, metavar="OUT.json")
    p.set_defaults(func=_cmd_mentions)


def _mention_row(label: str, row: dict[str, Any]) -> str:
    t, u = row["typed"], row["untyped"]
    ratio = "–" if row["proposals_per_gold"] is None else f"{row['proposals_per_gold']:.2f}"
    return (f"{label:>11} | {100 * t['precision']:5.1f} {100 * t['recall']:5.1f} {100 * t['f1']:5.1f} | "
            f"{100 * u['precision']:5.1f} {100 * u['recall']:5.1f} {100 * u['f1']:5.1f} | {u['predicted']:8d} "
            f"| {ratio}")


def _cmd_mentions(args: argparse.Namespace) -> int:
    from conpet.bench.mentions import run

    if min(args.train, args.test) < 1:
        raise SystemExit("conpet mention-bench: --train and --test must be >= 1")
    report = run(args)
    trained = (f"trained in {report['train_seconds']:.0f} s" if report["train_seconds"] is not None
               else "project reused")
    print(f"Few-NERD inter_dev, seed {report['seed']}: {report['train_sentences']} training sentences "
          f"({report['train_mentions']} mentions), {report['test_sentences']} test sentences "
          f"({report['test_mentions']} mentions) as raw text; {trained}")
    print(f"{'threshold':>11} | typed P     R    F1 |  span P     R    F1 | proposed | per gold")
    for row in report["rows"]:
        print(_mention_row(f"{row['threshold']:.2f}", row))
    print(_mention_row(f"saved {report['saved_threshold']:.3f}", report["saved"]))
    print("chosen on the detector's validation sentences by each criterion:")
    for row in report["criteria"]:
        print(_mention_row(f"F{row['beta']:g} {row['threshold']:.3f}", row))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"report written to {args.json}", file=sys.stderr)
    return 0
