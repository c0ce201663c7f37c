"""The `conpet` command. Each feature module registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from conpet import __version__
from conpet.core.errors import ConpetError, storage_error
from conpet.core.runtime import passive_omp_wait

# Modules with a `register(subparsers)` function; each adds its subcommands.
COMMAND_MODULES: list[str] = ["conpet.bench.continual", "conpet.cli.methods", "conpet.cli.data", "conpet.cli.train",
                              "conpet.cli.bundle", "conpet.cli.evaluate", "conpet.bench.threads", "conpet.bench.detector",
                              "conpet.bench.relation", "conpet.bench.mentions"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conpet", description="ConPET Studio engine (headless)")
    parser.add_argument("--version", action="version", version=f"conpet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    passive_omp_wait()  # before torch loads: waiting threads sleep instead of spinning on a shared CPU
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConpetError as exc:
        print(f"conpet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("conpet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`conpet bench ... | head`): not an error of ours; silence the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a full disk or a read-only folder that no layer below named: still one line
        print(f"conpet: error: {storage_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
