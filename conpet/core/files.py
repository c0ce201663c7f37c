"""Writing files and folders atomically: the new content is written next to the target and swapped in by a
rename, so a crash or a full disk leaves the old file or folder (or none), never half of a new one.

Staging names start with a dot and hold ``.tmp``: ``.NAME.PID-XXXXXXXX.tmp`` for a file, ``.NAME.tmp-XXXX/``
for a folder (what ``conpet.project.housekeeping`` collects when a dead process left one behind)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_text_file(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A UTF-8 text stream (``\\n`` line ends) whose content replaces ``path`` when the block ends without an
    error (flushed to disk first); on an error the target is untouched and the staging file removed. The file
    gets the usual permissions (umask), not a temporary file's private ones."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], content: str) -> None:
    """Write ``content`` as UTF-8 to ``path`` atomically (``atomic_text_file``)."""
    with atomic_text_file(path) as fh:
        fh.write(content)


def replace_folder(folder: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Write ``folder`` through ``write(staging_folder)`` (an empty folder next to it), then swap it in: the
    old folder is moved aside and removed only once the new one is in place."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        out = tmp / "new"
        out.mkdir()
        write(out)
        if folder.exists():
            folder.rename(tmp / "old")
        out.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
