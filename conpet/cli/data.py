"""`conpet import-data` and `conpet export-data`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from conpet.core.errors import ConpetError
from conpet.core.progress_bar import TerminalProgress
from conpet.data.formats import FORMATS as _ALL_FORMATS
from conpet.store.importer import FORMATS

WRITABLE = tuple(name for name, spec in _ALL_FORMATS.items() if spec.write is not None)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-data", help="import a data file (JSONL, text, CoNLL, brat, Label Studio, doccano, TACRED, "
                            "FewRel, Few-NERD) into a project",
        description="Import one data file (or a brat folder) into a project (created when absent). All or "
                    "nothing: a malformed file changes nothing. Progress goes to stderr.")
    p.add_argument("project_dir", metavar="PROJECT", help="a project folder or a postgresql:// URL")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the file's format (default: guessed from its name and content)")
    p.add_argument("--tag-column", type=int, default=None, metavar="N",
                   help="CoNLL: the 0-based column holding the tags (default: detected)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a reader option, e.g. scheme=BIOES (conll), split=line (text), no_relation=drop "
                        "(tacred), text_key=sentence (labelstudio)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_import)

    e = subparsers.add_parser(
        "export-data", help="export a project's sentences and gold annotations (JSONL or another format)",
        description="Write every sentence with its current gold annotations, as the project JSONL or in "
                    "another format (atomic write; importing a JSONL, brat, Label Studio or doccano export "
                    "gives the same annotations; formats without relations or entities leave them out).")
    e.add_argument("project_dir", metavar="PROJECT", help="a project folder or a postgresql:// URL")
    e.add_argument("out", type=Path, metavar="OUT")
    e.add_argument("--format", choices=WRITABLE, default="jsonl",
                   help="the format to write (default jsonl; brat writes a folder)")
    e.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a writer option, e.g. scheme=BIOES (conll), model_version=v2 (labelstudio-predictions)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_export)


def parse_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings as keyword options; integers and true/false are converted."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConpetError(f"--option {pair!r}: expected KEY=VALUE")
        text = value.strip()
        if text.lower() in ("true", "false"):
            out[key.strip()] = text.lower() == "true"
        elif text.lstrip("-").isdigit():
            out[key.strip()] = int(text)
        else:
            out[key.strip()] = text
    return out


def _import(args: argparse.Namespace) -> int:
    from conpet.store.importer import import_file
    from conpet.store.project import Project

    options = parse_options(args.option)
    if args.tag_column is not None:
        options["tag_column"] = args.tag_column
    bar = TerminalProgress(label="import ", quiet=args.quiet)
    try:
        with Project.open_or_create(args.project_dir) as project:
            report = import_file(project, args.file, args.format, progress=bar, options=options)
            counts = project.counts()
    finally:
        bar.close()
    print(f"imported {args.file} ({report.format}) into {args.project_dir} in {report.seconds:.1f} s")
    print(f"  sentences added:      {report.added_sentences}")
    print(f"  annotations added:    {report.added_annotations}")
    print(f"  duplicates skipped:   {report.duplicates_skipped}")
    if report.conflicts_skipped:
        print(f"  conflicts skipped:    {report.conflicts_skipped} (overlapping an existing gold mention)")
    print(f"  types created:        {report.types_created}")
    print(f"  project now holds {counts['sentences']} sentences, {counts['annotations']} gold "
          f"annotations, {counts['types']} types")
    return 0


def _export(args: argparse.Namespace) -> int:
    from conpet.store.exporter import export_file
    from conpet.store.project import Project

    options = parse_options(args.option)
    t0 = time.monotonic()
    bar = TerminalProgress(label="export ", quiet=args.quiet)
    try:
        with Project.open(args.project_dir) as project:
            n = export_file(project, args.out, args.format, progress=bar, **options)
    finally:
        bar.close()
    print(f"exported {n} sentences to {args.out} ({args.format}) in {time.monotonic() - t0:.1f} s")
    spec = _ALL_FORMATS[args.format]
    if not spec.relations or not spec.entities:
        left_out = "relations" if not spec.relations else "entity types"
        print(f"  note: the {args.format} format holds no {left_out}; they were not written")
    return 0
