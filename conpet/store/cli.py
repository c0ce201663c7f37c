"""`conpet import-data` and `conpet export-data`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from conpet.store.importer import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-data", help="import a FewRel / Few-NERD / JSONL file into a project",
        description="Import one data file into a project (created when absent). All or nothing: a "
                    "malformed file changes nothing. Progress goes to stderr.")
    p.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the file's format (default: guessed from its name and first line)")
    p.set_defaults(func=_import)

    e = subparsers.add_parser(
        "export-data", help="export a project's sentences and gold annotations as JSONL",
        description="Write every sentence with its current gold annotations as the project JSONL "
                    "(atomic write; importing it gives the same annotations).")
    e.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    e.add_argument("out", type=Path, metavar="OUT.jsonl")
    e.set_defaults(func=_export)


class _StderrProgress:
    def __init__(self) -> None:
        self.last = -1
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if pct == self.last and fraction < 1:
            return
        self.last = pct
        if self.tty:
            print(f"\r{pct:3d}% {message[:70]:<70}", end="", file=sys.stderr, flush=True)
            if fraction >= 1:
                print(file=sys.stderr)
        else:
            print(f"{pct:3d}% {message}", file=sys.stderr, flush=True)


def _import(args: argparse.Namespace) -> int:
    from conpet.store.importer import import_file
    from conpet.store.project import Project

    with Project.open_or_create(args.project_dir) as project:
        report = import_file(project, args.file, args.format, progress=_StderrProgress())
        counts = project.counts()
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
    from conpet.store.exporter import export_jsonl
    from conpet.store.project import Project

    t0 = time.monotonic()
    with Project.open(args.project_dir) as project:
        n = export_jsonl(project, args.out, progress=_StderrProgress())
    print(f"exported {n} sentences to {args.out} in {time.monotonic() - t0:.1f} s")
    return 0
