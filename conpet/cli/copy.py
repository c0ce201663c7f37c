"""`conpet copy SRC DST`: move a project between a folder and a PostgreSQL server, either way."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "copy", help="copy a project between a folder and a PostgreSQL server (either way)",
        description="Copy every table of the project SRC (a folder or a postgresql:// URL) into DST (a new "
                    "folder or an empty PostgreSQL database), with the files of its modules/ folder, then "
                    "check that each table of DST equals SRC's. All or nothing: a failed copy leaves DST "
                    "without a project.")
    p.add_argument("source", metavar="SRC", help="a project folder or a postgresql:// URL")
    p.add_argument("target", metavar="DST", help="a new folder or an empty database's postgresql:// URL")
    p.add_argument("--quiet", action="store_true", help="no per-table lines")
    p.set_defaults(func=_copy)


def _copy(args: argparse.Namespace) -> int:
    from conpet.store.transfer import copy_project

    def say(line: str) -> None:
        if not args.quiet:
            print(f"  {line}", file=sys.stderr)

    report = copy_project(args.source, args.target, progress=say)
    print(f"copied {report.source} to {report.target}: {sum(report.rows.values())} rows in "
          f"{len(report.rows)} tables, {report.files} module files, in {report.seconds:.1f} s; "
          "every table checked equal")
    return 0
