"""The `conpet` command. Each module of `conpet.cli` registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from conpet import __version__
from conpet.core.errors import ConpetError, storage_error
from conpet.core.runtime import passive_omp_wait
from conpet.store.identity import choose_user

# Modules with a `register(subparsers)` function; each adds its subcommands.
COMMAND_MODULES: list[str] = ["conpet.cli.methods", "conpet.cli.data", "conpet.cli.train", "conpet.cli.bundle",
                              "conpet.cli.evaluate", "conpet.cli.copy", "conpet.cli.bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conpet", description="ConPET Studio engine (headless)")
    parser.add_argument("--version", action="version", version=f"conpet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # every command may write to a project: each says who works
        command.add_argument("--user", default=None, metavar="NAME",
                             help="who is working: the author recorded on annotations, type edits and runs "
                                  "(default: $CONPET_USER, else the operating-system user)")
    return parser


def quiet_libraries() -> None:
    """``--quiet``: no progress bar from the libraries either (transformers' "Loading weights", the hub's)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when huggingface_hub loads (transformers too)
    if "transformers" in sys.modules:  # loaded already: its switch has been read
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    passive_omp_wait()  # before torch loads: waiting threads sleep instead of spinning on a shared CPU
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "quiet", False):
        quiet_libraries()
    try:
        choose_user(getattr(args, "user", None))
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
    finally:
        choose_user(None)  # the name was this command's (main may run again in one process)


if __name__ == "__main__":
    sys.exit(main())
