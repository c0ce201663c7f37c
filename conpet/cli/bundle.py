"""Bundle commands: ``conpet export``, ``conpet import-bundle``, ``conpet verify-bundle``, ``conpet predict``
and ``conpet bench-predict`` (prediction throughput against one plain forward pass of the backbone; the
measurement is ``conpet.bench.predict``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from conpet.bundle import Bundle, BundleError, sentence_queries
from conpet.cli.thresholds import add_mention_threshold
from conpet.core.errors import ConpetError, DataErrors, DataFormatError
from conpet.core.files import atomic_text_file
from conpet.core.progress_bar import TerminalProgress, cancel_on_sigint
from conpet.project.bundles import export_bundle, import_bundle

CHUNK_MENTIONS = 512  # mentions predicted per call (the method batches them by eval_batch_size)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a project's current model as an adapter bundle",
                              description="Write the project's current model as a bundle: a zip file when OUT "
                                          "ends in .zip, else a folder. Atomic.")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at OUT")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser("import-bundle", help="import a bundle's tasks, types, modules and metrics into a project",
                              description="Import a bundle into a project (created when absent) that has no "
                                          "tasks yet. The bundle is verified and its backbone checked first.")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--backbone", default=None, metavar="NAME|PATH", help="the bundle's backbone, when not found "
                   "where it was recorded")
    p.add_argument("--default-kind", choices=("entity", "relation"), default="entity",
                   help="kind of types the bundle does not describe (default entity)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_import)

    p = subparsers.add_parser("verify-bundle", help="check a bundle's manifest and checksums (no model loaded)")
    p.add_argument("bundle", metavar="BUNDLE")
    p.set_defaults(func=_cmd_verify)

    p = subparsers.add_parser(
        "predict", help="predict with a bundle over a JSONL file, or a project's own mentions and pairs",
        description="BUNDLE INPUT.jsonl: predict every entity (and every listed head/tail pair) of each input line. "
                    "Input: JSONL, one object per line with 'text', 'entities' [{start, end, type?}] (character "
                    "offsets) and 'relations' [{head, tail, type?}] (entity indices). Output: one line per input line "
                    "with its 'line' number and 'predictions': label, score, the selector's scores over experts, the "
                    "active experts, the routed expert's scores over its types and the module versions. A bundle "
                    "with suggesters (a mention detector, a relatedness gate) also proposes mentions on lines "
                    "without entities (a line may be {\"text\": ...} alone, or INPUT a .txt file with one "
                    "sentence per line; expert_scores.detector: the span's confidence) and the pairs of mentions "
                    "above the relation threshold (expert_scores.related). "
                    "PROJECT_DIR: predict every marked mention and pair of the project with its current model, as "
                    "the app's Predict does (stored as a run; cached logits make a re-run fast); output: one line "
                    "per sentence with its 'id', 'text' and 'predictions'.")
    p.add_argument("bundle", metavar="BUNDLE|PROJECT_DIR",
                   help="a bundle (zip or folder) or a project folder (it holds project.sqlite)")
    p.add_argument("input", metavar="INPUT.jsonl", nargs="?", default=None,
                   help="the sentences, JSONL or a .txt file with one per line (a bundle only)")
    p.add_argument("--out", default=None, metavar="OUT.jsonl", help="output file (default: standard output)")
    p.add_argument("--relation-threshold", type=float, default=None, metavar="P",
                   help="propose a pair when the relatedness gate's P(related) is at least P (default: the "
                        "model's saved threshold)")
    add_mention_threshold(p)
    p.add_argument("--backbone", default=None, metavar="NAME|PATH")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=None, help="examples per forward pass (default: the bundle's)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: the cores the load average shows free, at most 4)")
    p.add_argument("--skip-bad", action="store_true",
                   help="predict the good lines and list the bad ones (default: refuse the input, listing "
                        "every bad line, before the model loads)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)

    p = subparsers.add_parser(
        "bench-predict", help="measure a bundle's prediction throughput against a plain backbone forward pass",
        description="Sentences per second of bundle prediction (load in this process, then predict) against one "
                    "plain forward pass of the bare backbone over the same encoded inputs and batches.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("input", metavar="INPUT.jsonl", nargs="?", default=None,
                   help="sentences to predict (default: --data)")
    p.add_argument("--data", default="fewrel16", help="named data set or file when no INPUT is given")
    p.add_argument("--n", type=int, default=256, help="examples to predict (default 256)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    p.add_argument("--device", default=None)
    p.add_argument("--backbone", default=None, metavar="NAME|PATH")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the figures as JSON")
    p.add_argument("--project", default=None, metavar="PROJECT_DIR",
                   help="first compare the bundle's predictions with the ones the project stored for its latest "
                        "training run (same examples)")
    p.set_defaults(func=_cmd_bench)


# --- export / import / verify ------------------------------------------------------------------


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _cmd_export(args: Any) -> int:
    bar = TerminalProgress(label="export ", quiet=args.quiet)
    try:
        out = export_bundle(args.project, args.out, bar, overwrite=args.overwrite)
    finally:
        bar.close()
    from conpet.bundle import read_manifest

    man = read_manifest(out)
    print(f"bundle written: {out} ({_human(_size(out))}, {len(man['files']) + 1} files; "
          f"{man['method']} on {man['backbone'].get('name')}, {len(man['tasks'])} task(s), "
          f"{len(man['types'])} type(s))")
    return 0


def _cmd_import(args: Any) -> int:
    bar = TerminalProgress(label="import ", quiet=args.quiet)
    try:
        res = import_bundle(args.project, args.bundle, bar, backbone=args.backbone, default_kind=args.default_kind)
    finally:
        bar.close()
    print(f"imported into {args.project}: {res.tasks} task(s), {res.types_created} new type(s) "
          f"({res.types_reused} existing), {res.modules} module(s); run {res.run_id}; files in {res.model_folder}")
    return 0


def _cmd_verify(args: Any) -> int:
    from conpet.bundle import verify_bundle

    man = verify_bundle(args.bundle)
    bb = man["backbone"]
    print(f"ok: {args.bundle}: format {man['format_version']}, {len(man['files'])} files checked; "
          f"{man['method']} on {bb.get('name')} (weights {bb.get('sha256', '')[:16]}…), "
          f"{len(man['tasks'])} task(s): " + "; ".join(", ".join(ty["name"] for ty in t["types"]) for t in man["tasks"]))
    return 0


# --- predict -----------------------------------------------------------------------------------


def _read_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed object, None) per non-blank line, or (line number, None, problem) for a line
    that is not JSON; a file that cannot be read at all raises ``DataFormatError``. A ``.txt`` file is plain
    text, one sentence per line (``conpet.data.plaintext``, ``split="line"``): ``{"text": line}`` each."""
    if path.suffix.lower() == ".txt":
        from conpet.data.plaintext import read_plaintext

        for sentence in read_plaintext(path, split="line"):
            yield int(sentence.meta.get("line", 0)), {"text": sentence.text}, None
        return
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line), None
                except ValueError as exc:
                    yield n, None, f"not valid JSON ({exc})"
                except RecursionError:
                    yield n, None, "not valid JSON (nested too deeply)"
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise DataFormatError(path, f"cannot read ({exc.strerror or exc})") from None


def _queries(path: Path, kinds: set[str] | None) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, (text, id, examples), None) per good line, (line number, None, problem) per bad one."""
    for line_no, obj, problem in _read_lines(path):
        if problem is not None:
            yield line_no, None, problem
            continue
        try:
            yield line_no, sentence_queries(obj, kinds), None
        except ValueError as exc:
            yield line_no, None, str(exc)


@dataclass(frozen=True)
class InputCheck:
    """What a prediction input holds: its good sentences and mentions, and every bad line."""

    path: Path
    sentences: int
    mentions: int
    bad: list[tuple[int | None, str]]


def check_input(path: str | Path) -> InputCheck:
    """Read and check the whole input without a model (a relation-only bundle would ask fewer questions,
    so ``mentions`` is an upper bound). An empty input raises ``DataFormatError``."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(path, "is a folder, not a JSONL file")
    sentences = mentions = 0
    bad: list[tuple[int | None, str]] = []
    for line_no, query, problem in _queries(path, None):
        if problem is not None:
            bad.append((line_no, problem))
        else:
            sentences += 1
            mentions += len(query[2])
    if not sentences and not bad:
        raise DataFormatError(path, "the input is empty: no sentences to predict (one JSON object per line)")
    if not sentences:
        raise DataErrors(path, bad)  # nothing would be left to predict, even with --skip-bad
    return InputCheck(path, sentences, mentions, bad)


def predict_file(bundle: Bundle, path: str | Path, out: TextIO, progress: Any = None, *,
                 skip_bad: bool = False, checked: InputCheck | None = None) -> tuple[int, int]:
    """Predict every line of a JSONL file into ``out`` (one line per good input line, in order, with its
    ``line`` number), in chunks of about ``CHUNK_MENTIONS`` mentions. Bad lines raise ``DataErrors``
    (all of them at once) unless ``skip_bad``; ``checked`` is the input's ``check_input`` when the caller
    has it. Returns (sentences, mentions)."""
    from conpet.core.protocols import EtaEstimator, ProgressEvent

    path = Path(path)
    checked = checked or check_input(path)
    if checked.bad and not skip_bad:
        raise DataErrors(path, checked.bad)
    total = checked.sentences
    kinds = bundle.kinds
    done_s = done_m = 0
    pending: list[tuple[int, str, str, list[Any]]] = []
    t0 = time.monotonic()
    eta = EtaEstimator(started=t0)

    def flush() -> None:
        nonlocal done_s, done_m
        results = bundle.predict_parsed([(text, sid, exs) for _, text, sid, exs in pending])
        for (line_no, *_), sp in zip(pending, results, strict=True):
            out.write(json.dumps({"line": line_no, **sp.to_dict()}, ensure_ascii=False) + "\n")
        done_s += len(pending)
        done_m += sum(len(sp.mentions) for sp in results)
        pending.clear()
        if progress is not None:
            el = time.monotonic() - t0
            f = done_s / max(total, 1)
            progress.report(ProgressEvent(f, f"{done_s}/{total} sentences, {done_m} mentions "
                                             f"({done_s / max(el, 1e-9):.1f} sentences/s)", "predict",
                                          eta.update(f)))

    n_pending = 0
    for line_no, query, problem in _queries(path, kinds):
        if problem is not None:
            continue  # listed by check_input; only reached with skip_bad
        text, sid, exs = query
        pending.append((line_no, text, sid, exs))
        n_pending += len(exs)
        if n_pending >= CHUNK_MENTIONS:
            flush()
            n_pending = 0
    if pending:
        flush()
    return done_s, done_m


def _report_skipped(checked: InputCheck) -> None:
    shown = DataErrors.SHOWN
    print(f"skipped {len(checked.bad)} bad line(s) of {checked.path}:", file=sys.stderr)
    for line_no, problem in checked.bad[:shown]:
        print(f"  {checked.path}:{line_no}: {problem}", file=sys.stderr)
    if len(checked.bad) > shown:
        print(f"  … and {len(checked.bad) - shown} more", file=sys.stderr)


def _cmd_predict(args: Any) -> int:
    from conpet.project.model import is_project_folder

    if is_project_folder(args.bundle):
        return _cmd_predict_project(args)
    if args.input is None:
        what = "a bundle" if Path(args.bundle).exists() else "not found; a bundle"
        raise ConpetError(f"{args.bundle}: {what} predicts an INPUT.jsonl file, give one (a project folder, "
                          "which holds project.sqlite, predicts its own sentences)")
    # The whole input is checked before the model loads (seconds), and every bad line is reported.
    checked = check_input(args.input)
    if checked.bad and not args.skip_bad:
        raise DataErrors(checked.path, checked.bad)
    from conpet.core.runtime import apply_threads

    apply_threads(args.threads, args.device)
    bar = TerminalProgress(label="predict ", quiet=args.quiet)
    t0 = time.monotonic()
    try:
        bundle = Bundle.load(args.bundle, args.backbone, device=args.device,
                             relation_threshold=args.relation_threshold, mention_threshold=args.mention_threshold)
        if args.batch_size:
            bundle.method.config = bundle.method.config.replace(eval_batch_size=args.batch_size)
        t_load = time.monotonic() - t0
        n_s, n_m = _written(args.out, lambda f: predict_file(bundle, args.input, f, bar, skip_bad=args.skip_bad,
                                                             checked=checked))
    finally:
        bar.close()
    if checked.bad:
        _report_skipped(checked)
    el = time.monotonic() - t0
    print(f"predicted {n_m} mention(s) in {n_s} sentence(s) in {el:.1f} s (bundle loaded in {t_load:.1f} s)"
          + (f"; written to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def _written(out: str | None, write: Callable[[TextIO], Any]) -> Any:
    """``write(stream)`` to standard output, or atomically to the file ``out`` (a crash leaves no half file)."""
    if not out:
        return write(sys.stdout)
    with atomic_text_file(out) as f:
        return write(f)


def _cmd_predict_project(args: Any) -> int:
    """``conpet predict PROJECT_DIR``: the app's Predict (``conpet.project.predict``), then the run's predictions."""
    from conpet.project.predict import predict_project, write_run_predictions
    from conpet.store import Project

    if args.input is not None:
        raise ConpetError(f"{args.bundle}: a project predicts its own sentences; INPUT ({args.input}) is for a bundle")
    bar = TerminalProgress(label="predict ", quiet=args.quiet)
    try:
        with cancel_on_sigint(bar):
            outcome = predict_project(args.bundle, bar, device=args.device, threads=args.threads,
                                      relation_threshold=args.relation_threshold,
                                      mention_threshold=args.mention_threshold)
    finally:
        bar.close()
    with Project.open(args.bundle) as project:
        n_s = _written(args.out, lambda f: write_run_predictions(project, outcome.run_id, f))
    print(f"run {outcome.run_id}: predicted {outcome.predictions} mention(s) and pair(s) in {n_s} sentence(s) in "
          f"{outcome.seconds:.1f} s ({outcome.backbone_passes} backbone passes)"
          + (f"; written to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


# --- bench-predict ---------------------------------------------------------------------------------


def _bench_examples(bundle: Bundle, args: Any) -> list[Any]:
    if args.input:
        out: list[Any] = []
        for line_no, query, problem in _queries(Path(args.input), bundle.kinds):
            if problem is not None:
                raise DataFormatError(args.input, problem, line_no)
            out.extend(query[2])
            if len(out) >= args.n:
                break
        return out[: args.n]
    from conpet.data.datasets import load_named

    data = list(load_named(args.data))
    step = max(1, len(data) // args.n)
    return data[::step][: args.n]


def _cmd_bench(args: Any) -> int:
    from conpet.bench.predict import bench_predict, compare_with_project

    t0 = time.monotonic()
    bundle = Bundle.load(args.bundle, args.backbone, device=args.device)
    t_load = time.monotonic() - t0
    comparison = None
    if args.project:
        c = comparison = compare_with_project(bundle, args.project)
        print(f"against project {args.project} (run {c['run_id']}, {c['examples']} stored predictions): "
              f"same label {c['same_label']}/{c['examples']}, same experts {c['same_experts']}/{c['examples']}, "
              f"same module versions {c['same_module_versions']}/{c['examples']}, bit-identical scores "
              f"{c['identical_scores']}/{c['examples']}, max |score diff| {c['max_score_diff']:.2e}, "
              f"max |selector score diff| {c['max_selector_score_diff']:.2e}")
    examples = _bench_examples(bundle, args)
    if not examples:
        raise BundleError(args.bundle, "manifest", "no examples to predict")
    res = bench_predict(bundle, examples, args.batch_size, args.repeats)
    res["load_seconds"] = t_load
    res["bundle_bytes"] = _size(Path(args.bundle))
    res["against_project"] = comparison
    print(f"bundle {args.bundle}: {res['method']} on {res['backbone']} ({res['device']}, {res['threads']} threads), "
          f"{res['tasks']} task(s), {_human(res['bundle_bytes'])} on disk, loaded in {t_load:.1f} s")
    print(f"{res['examples']} examples, batch {res['batch_size']}, median of {res['repeats']}:")
    print(f"  bundle predict     {res['predict_per_second']:8.1f} sentences/s  ({res['predict_seconds']:.2f} s, "
          f"{res['forward_passes_per_predict']} backbone passes)")
    print(f"  plain forward pass {res['plain_forward_per_second']:8.1f} sentences/s  ({res['plain_forward_seconds']:.2f} s, "
          f"{res['plain_batches']} passes)")
    print(f"  predict / plain    {res['predict_over_plain']:8.2f}x the time (median of the interleaved pairs; "
          f"load average {res['load_average']:.1f})" if res["load_average"] is not None else
          f"  predict / plain    {res['predict_over_plain']:8.2f}x the time")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0
