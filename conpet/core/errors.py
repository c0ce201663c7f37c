"""The engine's error types. Every message names the file (or thing) and the problem."""

from __future__ import annotations

import errno
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


class StorageError(ConpetError):
    """A file, folder or database that cannot be written or read right now: a full disk, a read-only
    folder, no permission, a lock held by another program. Names the file and what to do."""


# The causes a user can act on, in words (errno -> what to say after the file's name).
_OS_REASONS = {
    errno.ENOSPC: "the disk is full (free some space and try again)",
    errno.EDQUOT: "the disk quota is exceeded (free some space and try again)",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied (the folder is read-only or belongs to another user)",
    errno.EPERM: "permission denied (the folder is read-only or belongs to another user)",
}


def storage_error(exc: OSError, where: str | Path | None = None) -> StorageError:
    """One clear message for an OSError: the file it names (else ``where``) and the cause."""
    path = exc.filename if exc.filename is not None else where
    reason = _OS_REASONS.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__
    return StorageError(f"{path}: {reason}" if path is not None else reason)
