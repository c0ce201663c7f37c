"""Small helpers shared by the readers: strict UTF-8 decoding and line numbers."""

from __future__ import annotations

import bisect
import os
from pathlib import Path

from conpet.core.errors import DataFormatError

_BOM = b"\xef\xbb\xbf"


def read_text(path: str | os.PathLike[str]) -> str:
    """The whole file decoded as strict UTF-8 (a leading BOM is dropped).

    Raises ``DataFormatError`` for a missing/unreadable file, an empty file, or bytes that are not
    UTF-8 (naming the byte offset and the line of the first bad byte).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(p, "file not found") from None
    except IsADirectoryError:
        raise DataFormatError(p, "is a folder, not a data file") from None
    except OSError as exc:
        raise DataFormatError(p, f"cannot read the file ({exc.strerror or exc})") from None
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[start:].decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise DataFormatError(
            p,
            f"not UTF-8 text: byte 0x{data[offset]:02x} at byte offset {offset} cannot be decoded "
            "(save the file as UTF-8)",
            line,
        ) from None
    if not text.strip():
        raise DataFormatError(p, "the file is empty")
    return text


class LineIndex:
    """Maps a character offset in a text to its 1-based line number."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        find = text.find
        i = find("\n")
        while i != -1:
            self._starts.append(i + 1)
            i = find("\n", i + 1)

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


def is_int(value: object) -> bool:
    """True for real integers (JSON numbers without a fraction), not for booleans."""
    return isinstance(value, int) and not isinstance(value, bool)


class IdMaker:
    """Stable, unique example ids within one file.

    The id is ``example_id`` over the content (text, spans, type, file name). Exact duplicates (same
    sentence, spans and type twice in one file) get ``#2``, ``#3`` … appended to the hashed source in
    file order, so they stay distinct while every id is still the same on any machine and in any run.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def make(self, text: str, spans: tuple, type_key: str, source: str) -> str:
        from conpet.data.example import example_id

        base = example_id(text, spans, type_key, source)
        n = self._seen.get(base, 0) + 1
        self._seen[base] = n
        if n == 1:
            return base
        return example_id(text, spans, type_key, f"{source}#{n}")


def read_json(path: str | os.PathLike[str]) -> object:
    """A whole file as JSON (BOM and encoding handled by ``read_text``); a syntax error names its line."""
    import json

    from conpet.core.errors import DataFormatError

    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
