"""Errors the store raises; all are ConpetError, so the CLI and the app show their message as-is."""

from __future__ import annotations

from conpet.core.errors import ConpetError, StorageError


class StoreError(ConpetError):
    """A project store operation that cannot be done (the message says why)."""


class NotAProjectError(StoreError):
    """The folder holds no project database."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer ConPET Studio than this one."""


class NotFoundError(StoreError):
    """A record id that does not exist (or no longer exists)."""


class InvalidAnnotationError(StoreError):
    """An annotation that does not fit its sentence (range, emptiness, overlap, unknown type)."""


class StaleSentenceError(StoreError):
    """An edit to a sentence that someone else changed since the editor last read it (optimistic
    concurrency): refused, naming who changed it; the editor reloads the sentence and decides again."""

    def __init__(self, message: str, *, sentence_id: int, author: str, revision: int) -> None:
        super().__init__(message)
        self.sentence_id = sentence_id
        self.author = author
        self.revision = revision  # the sentence's revision now


class TypeInUseError(StoreError):
    """A knowledge type that cannot be deleted because a task (or a trained module) depends on it."""


class DatabaseAccessError(StoreError, StorageError):
    """The project database cannot be used right now: locked by another program, on a full disk, in a
    read-only folder (names the file)."""


class LeaseHeldError(StoreError):
    """Model-changing work refused because another job (this or another process or machine) holds the
    project's lease; the message names the holder."""


class LeaseLostError(StoreError):
    """A job's lease was taken over (it expired) before the job could record its result."""
