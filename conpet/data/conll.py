"""CoNLL-2003 and other token-per-line files with BIO, BIOES or IO tags (entity mentions).

Layout: one token per line, its columns separated by tabs or spaces (the token is the first column, the tag
one of the others, by default the last); a blank line ends a sentence; ``-DOCSTART-`` lines (and the blank
line after them) are skipped. Every line of a file has the same number of columns.

- ``tag_column``: the 0-based column that holds the tags (negative counts from the end); ``None`` detects it:
  the last column whose values all look like tags (``O`` or a prefix ``B-``/``I-``/``E-``/``S-``/``L-``/``U-``
  and a type) and that is not the token column; else the last column.
- ``scheme``: ``"BIO"`` (also reads IOB1, where ``I-`` may start a mention), ``"BIOES"`` (``S-`` and ``E-``
  as well; BILOU's ``U-``/``L-`` read the same), ``"IO"`` (bare type names, a run of one type is one
  mention), or ``None`` to detect: IO when no tag has a prefix, else BIOES when some tag starts with
  ``E-``/``S-``/``L-``/``U-``, else BIO. A mention starts at ``B-``/``S-`` or at a type change, and ends at
  ``E-``/``S-``, at ``O`` or at a type change. An ``I-`` or ``E-`` after ``O`` starts a mention (IOB1).

The sentence text is the tokens joined with single spaces; ``meta = {"line": n}`` gives the line of the
first token; ``source`` is the file name. Every problem raises ``DataFormatError(path, problem, line)``.

Writing (``write_conll``) puts ``token<TAB>tag`` lines (BIO by default, or BIOES / IO) with a blank line
after each sentence. Tokens are the sentence's white-space separated words, split further at mention
boundaries, so reading the file back gives the same mentions (the text may gain spaces where a mention ended
inside a word, e.g. ``London.`` → ``London .``). Relations and untyped mentions are not written. Tags
cannot nest, so a sentence whose mentions overlap (held as several ``Sentence``s with the same text) is
written as several blocks with the same tokens, one per ``Sentence``, as Few-NERD repeats a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import read_text
from conpet.data.documents import PathLike, sentence_list, token_spans
from conpet.data.jsonl import Entity, Sentence

SCHEMES = ("BIO", "BIOES", "IO")
_PREFIXED = re.compile(r"^([BIESLU])-(\S+)$")
_DOCSTART = "-DOCSTART-"


def looks_like_tag(value: str) -> bool:
    return value == "O" or bool(_PREFIXED.match(value))


def read_conll(path: PathLike, tag_column: int | None = None, scheme: str | None = None) -> list[Sentence]:
    """Read a token-per-line file into sentences with typed mentions (see the module docstring)."""
    if scheme is not None and scheme.upper() not in SCHEMES:
        raise DataFormatError(path, f"unknown tag scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    text = read_text(path)
    rows = _rows(path, text)
    if not rows:
        raise DataFormatError(path, "no tokens in the file (only -DOCSTART- or blank lines)")
    width = len(rows[0][1])
    column = _tag_column(path, rows, width, tag_column)
    tags = [cols[column] for _, cols in rows if cols]
    chosen = scheme.upper() if scheme else _detect_scheme(tags)
    source = Path(path).name
    out: list[Sentence] = []
    sentence: list[tuple[int, str, str]] = []
    for lineno, cols in rows + [(0, [])]:
        if cols:
            sentence.append((lineno, cols[0], cols[column]))
            continue
        if sentence:
            out.append(_sentence(path, sentence, chosen, source))
            sentence = []
    return out


def _rows(path: PathLike, text: str) -> list[tuple[int, list[str]]]:
    """``(line number, columns)`` per token line, ``(n, [])`` for each sentence break; -DOCSTART- dropped."""
    rows: list[tuple[int, list[str]]] = []
    width = None
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if rows and rows[-1][1]:
                rows.append((lineno, []))
            continue
        cols = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
        if cols[0] == _DOCSTART:
            if rows and rows[-1][1]:
                rows.append((lineno, []))
            continue
        if "" in cols:
            raise DataFormatError(path, "an empty column (two tabs in a row, or a tab at the end)", lineno)
        if len(cols) < 2:
            raise DataFormatError(path, "expected a token and a tag separated by a tab or spaces", lineno)
        if width is None:
            width = len(cols)
        elif len(cols) != width:
            raise DataFormatError(path, f"{len(cols)} columns here, {width} on the first token line", lineno)
        rows.append((lineno, cols))
    while rows and not rows[-1][1]:
        rows.pop()
    return rows


def _tag_column(path: PathLike, rows: list[tuple[int, list[str]]], width: int, chosen: int | None) -> int:
    if chosen is not None:
        if not -width <= chosen < width:
            raise DataFormatError(path, f"tag column {chosen} does not exist (lines have {width} columns)")
        column = chosen % width
        if column == 0:
            raise DataFormatError(path, "column 0 holds the tokens; choose another tag column")
        return column
    for column in range(width - 1, 0, -1):
        if all(looks_like_tag(cols[column]) for _, cols in rows if cols):
            return column
    return width - 1


def _detect_scheme(tags: list[str]) -> str:
    prefixes = {m.group(1) for t in set(tags) if (m := _PREFIXED.match(t))}
    if not prefixes:
        return "IO"
    return "BIOES" if prefixes & {"E", "S", "L", "U"} else "BIO"


def _sentence(path: PathLike, rows: list[tuple[int, str, str]], scheme: str, source: str) -> Sentence:
    text = " ".join(token for _, token, _ in rows)
    entities: list[Entity] = []
    pos = 0
    start: int | None = None
    current: str | None = None
    end = 0
    for lineno, token, tag in rows:
        prefix, type_ = _split_tag(path, tag, scheme, lineno)
        begins = prefix in ("B", "S") or type_ != current
        if current is not None and (type_ is None or begins):
            entities.append(Entity(start, end, current))
            current = None
        if type_ is not None and current is None:
            start, current = pos, type_
        end = pos + len(token)
        if current is not None and prefix in ("E", "S", "L", "U"):
            entities.append(Entity(start, end, current))
            current = None
        pos = end + 1
    if current is not None:
        entities.append(Entity(start, end, current))
    return Sentence(text, tuple(entities), source=source, meta={"line": rows[0][0]})


def _split_tag(path: PathLike, tag: str, scheme: str, lineno: int) -> tuple[str, str | None]:
    """``(prefix, type)``; ``type`` is None for ``O``."""
    if tag == "O":
        return "O", None
    if scheme == "IO":
        return "I", tag
    m = _PREFIXED.match(tag)
    if m is None:
        raise DataFormatError(path, f"tag {tag!r} is not 'O' or a {scheme} tag like 'B-PER'", lineno)
    prefix = {"L": "E", "U": "S"}.get(m.group(1), m.group(1))
    if scheme == "BIO" and prefix in ("E", "S"):
        raise DataFormatError(path, f"tag {tag!r} is BIOES, but the file was read as BIO", lineno)
    return prefix, m.group(2)


def write_conll(path: PathLike, sentences: Iterable[Sentence], scheme: str = "BIO") -> int:
    """Write sentences as ``token<TAB>tag`` lines (atomically); returns the number of sentences written."""
    scheme = scheme.upper()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    blocks: list[str] = []
    last_text = None
    for s in sentence_list(sentences):
        mentions = sorted(((e.span, e.type) for e in s.entities if e.type is not None),
                          key=lambda m: (m[0].start, m[0].end))
        if not mentions and s.text == last_text:
            continue  # a line that only held relations of the sentence just written
        last_text = s.text
        blocks.append("".join(f"{tok}\t{tag}\n" for tok, tag in _tokens_and_tags(s.text, mentions, scheme)))
    write_text_atomic(path, "\n".join(blocks))
    return len(blocks)


def _tokens_and_tags(text: str, mentions: list, scheme: str) -> list[tuple[str, str]]:
    cuts = [p for sp, _ in mentions for p in (sp.start, sp.end)]
    return [(text[a:b], _tag_at(a, b, mentions, scheme)) for a, b in token_spans(text, cuts)]


def _tag_at(a: int, b: int, mentions: list, scheme: str) -> str:
    for sp, type_ in mentions:
        if sp.start <= a and b <= sp.end:
            if scheme == "IO":
                return type_
            first, last = sp.start == a, sp.end == b
            if scheme == "BIOES":
                return f"{'S' if first and last else 'B' if first else 'E' if last else 'I'}-{type_}"
            return f"{'B' if first else 'I'}-{type_}"
    return "O"
