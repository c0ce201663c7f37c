"""Plain text: sentences to annotate, with no annotations.

Reading (UTF-8, a BOM and CRLF line ends accepted):

- blank lines separate paragraphs; within a paragraph a line that does not end a sentence (no final
  ``.``, ``!``, ``?``, ``…``, possibly followed by a closing quote or bracket) is joined with the next line
  by one space when it ends with ``,``, ``;``, ``:`` or ``-`` or the next line starts with a lower-case
  letter (a paragraph wrapped over several lines); otherwise each line stands on its own;
- each line or joined paragraph is then split into sentences after ``.``, ``!``, ``?`` or ``…`` followed by
  white space and an upper-case letter, a digit or an opening quote, except after common abbreviations
  (``Dr.``, ``e.g.``, ``U.S.`` …) and single-letter initials (``J. R. R. Tolkien``);
- ``split="line"`` keeps every non-blank line as one sentence, as it is (no joining, no splitting).

Each sentence is stripped of surrounding white space; its ``meta`` is ``{"line": n}`` (the 1-based line where
it starts) and its ``source`` the file name. A file with no text is an error.

Writing puts one sentence per line (a line break inside a sentence becomes a space, so offsets keep their
meaning); the same text twice in a row (one sentence packed as several) is written once. Annotations are not
written: plain text has no place for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import read_text
from conpet.data.documents import PathLike, sentence_list
from conpet.data.jsonl import Sentence

SPLIT_MODES = ("auto", "line")

_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_BOUNDARY = re.compile(r"(?<=[.!?…])([\"'”’)\]]*)(\s+)(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al", "inc",
    "ltd", "co", "corp", "no", "vol", "fig", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "u.s", "u.k", "u.n", "gen", "gov", "sen", "rep", "col", "lt", "sgt", "capt", "rev",
}


def split_sentences(text: str) -> list[tuple[int, str]]:
    """``(offset, sentence)`` for each sentence of ``text`` (see the module docstring)."""
    out: list[tuple[int, str]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.start(2)
        word = text[start:m.start()].rstrip(".!?…\"'”’)]").rsplit(None, 1)
        last = word[-1].lower() if word else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        _add(out, text, start, end)
        start = m.end()
    _add(out, text, start, len(text))
    return out


def _add(out: list[tuple[int, str]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        out.append((start + len(piece) - len(piece.lstrip()), stripped))


def split_text(text: str, split: str = "auto") -> list[tuple[int, str]]:
    """``(line number, sentence)`` for each sentence of a text (a file's or pasted; see the module
    docstring). A leading BOM is dropped and CRLF line ends are read as LF."""
    if split not in SPLIT_MODES:
        raise ValueError(f"unknown split mode {split!r}; use one of {', '.join(SPLIT_MODES)}")
    out: list[tuple[int, str]] = []
    for first_line, lines in _blocks(text.removeprefix("\ufeff")):
        units = list(enumerate(lines, start=first_line)) if split == "line" else _join_wrapped(first_line, lines)
        for lineno, unit in units:
            pieces = [(0, unit)] if split == "line" else split_sentences(unit)
            out.extend((lineno, sentence) for _, sentence in pieces)
    return out


def read_plaintext(path: PathLike, split: str = "auto") -> list[Sentence]:
    """Read a plain text file into unannotated sentences (see the module docstring)."""
    if split not in SPLIT_MODES:
        raise DataFormatError(path, f"unknown split mode {split!r}; use one of {', '.join(SPLIT_MODES)}")
    source = Path(path).name
    out = [Sentence(sentence, source=source, meta={"line": lineno})
           for lineno, sentence in split_text(read_text(path), split)]
    if not out:
        raise DataFormatError(path, "no sentences in the file")
    return out


def _join_wrapped(first_line: int, lines: list[str]) -> list[tuple[int, str]]:
    """``(line number, text)`` for each line, with wrapped continuations joined onto their first line."""
    units: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, start=first_line):
        if units and _continues(units[-1][1], line):
            units[-1] = (units[-1][0], f"{units[-1][1]} {line}")
        else:
            units.append((lineno, line))
    return units


def _continues(previous: str, line: str) -> bool:
    if _END.search(previous):
        return False
    return previous[-1] in ",;:-–" or line[0].islower()


def _blocks(text: str) -> Iterable[tuple[int, list[str]]]:
    """``(first line number, stripped lines)`` for each run of non-blank lines."""
    lines: list[str] = []
    first = 0
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            if lines:
                yield first, lines
            lines = []
            continue
        if not lines:
            first = lineno
        lines.append(line)
    if lines:
        yield first, lines


def write_plaintext(path: PathLike, sentences: Iterable[Sentence]) -> int:
    """Write one sentence per line (atomically); returns the number of lines written."""
    lines: list[str] = []
    for s in sentence_list(sentences):
        line = s.text.replace("\r", " ").replace("\n", " ")
        if not lines or lines[-1] != line:
            lines.append(line)
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
    return len(lines)
