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


class DataErrors(DataFormatError):
    """Every bad line of one file, found in one pass (``problems``: (line or None, problem) in file order).
    The message lists the first ``SHOWN`` as ``file:line: problem`` and counts the rest."""

    SHOWN = 20

    def __init__(self, path: str | Path, problems: list[tuple[int | None, str]], what: str = "line") -> None:
        self.path = str(path)
        self.problems = list(problems)
        self.line, self.problem = self.problems[0] if self.problems else (None, "no problems")
        shown = [f"{self.path}:{n}: {p}" if n is not None else f"{self.path}: {p}"
                 for n, p in self.problems[: self.SHOWN]]
        more = len(self.problems) - len(shown)
        if len(self.problems) == 1:
            message = shown[0]
        else:
            message = f"{self.path}: {len(self.problems)} bad {what}s:\n  " + "\n  ".join(shown)
            if more:
                message += f"\n  … and {more} more"
        ConpetError.__init__(self, message)


def raise_problems(path: str | Path, problems: list[tuple[int | None, str]], what: str = "line") -> None:
    """Raise ``DataErrors`` when ``problems`` is not empty."""
    if problems:
        raise DataErrors(path, problems, what)
