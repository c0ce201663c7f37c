"""The engine's error types. Every message names the file (or thing) and the problem."""

from __future__ import annotations

from pathlib import Path


class ConpetError(Exception):
    """Base class for errors a user can act on (shown as-is by the CLI and the app)."""


class DataFormatError(ConpetError):
    """A data file is malformed. Names the file, the line (1-based, when known) and the problem."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class BackboneError(ConpetError):
    """A backbone name or path that is not a usable model (names the path and what is missing)."""


class Cancelled(ConpetError):
    """Raised inside a long job when its progress sink asks it to stop (between batches)."""
