"""The `conpet` command: one module per command group, each with `register(subparsers)`; argument parsing and
the terminal, nothing else. Nothing in `conpet` imports this package."""

from conpet.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
