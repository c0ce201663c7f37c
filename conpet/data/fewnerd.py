"""Few-NERD token/tag reader (entity typing).

Format: one ``token<TAB>tag`` per line, a blank line between sentences; tags are IO (not BIO): ``O`` or
``coarse-fine`` (e.g. ``building-library``). A run of consecutive tokens with the same tag is one mention
(two adjacent mentions of the same type merge, as in the official data). Each mention becomes one
``Example(kind="entity")``: the sentence is the tokens joined with single spaces, the span covers the
mention's tokens (character offsets), ``label`` is the full fine tag (``building-library``) and ``group``
its coarse part (``building``), used for the "independent" task split. A tag with no ``-`` is its own
group. BIO-style tags (``B-PER``) are refused with a clear message rather than misread.

``source`` is the file name; ``id`` hashes (sentence, span, tag, file name), with an occurrence number
for exact duplicates within the file (repeated sentences), so ids are stable and unique.
``meta = {"sentence": n}`` gives the 0-based sentence number in the file.

Errors raise ``DataFormatError(path, problem, line)``; the reader returns a complete list or raises.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from conpet.core.errors import DataFormatError
from conpet.data._io import IdMaker, read_text
from conpet.data.example import Example, Span

_BIO = re.compile(r"^[BIESLU]-")


def read_fewnerd(path: str | os.PathLike[str]) -> list[Example]:
    """Read a Few-NERD ``token<TAB>tag`` file into entity-typing examples (see the module docstring)."""
    text = read_text(path)
    source = Path(path).name
    ids = IdMaker()
    out: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    n_sentences = 0
    tag_info: dict[str, tuple[str, str]] = {}  # tag -> (label, group), also caches validation

    def flush() -> None:
        nonlocal n_sentences
        if not tokens:
            return
        sentence = " ".join(tokens)
        pos = 0
        prev = "O"
        start = 0
        # character start of each token, and mentions as maximal runs of one non-O tag
        for j, (tok, tag) in enumerate(zip(tokens, tags, strict=False)):
            if tag != prev:
                if prev != "O":
                    _emit(sentence, start, pos - 1, prev, j)
                start = pos
                prev = tag
            pos += len(tok) + 1
        if prev != "O":
            _emit(sentence, start, pos - 1, prev, len(tokens))
        n_sentences += 1
        tokens.clear()
        tags.clear()

    def _emit(sentence: str, start: int, end: int, tag: str, j_end: int) -> None:
        mention = sentence[start:end]
        if not mention.strip():
            line = first_line + j_end - 1
            raise DataFormatError(path, f"the {tag!r} mention ending here is empty or only whitespace", line)
        label, group = tag_info[tag]
        span = (Span(start, end),)
        out.append(
            Example(
                text=sentence,
                spans=span,
                label=label,
                kind="entity",
                id=ids.make(sentence, span, label, source),
                source=source,
                group=group,
                meta={"sentence": n_sentences},
            )
        )

    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            flush()
            continue
        tok, sep, tag = line.rpartition("\t")
        if not sep:
            raise DataFormatError(path, "expected 'token<TAB>tag', found no tab", lineno)
        if not tok:
            raise DataFormatError(path, "empty token before the tab", lineno)
        if "\t" in tok:
            raise DataFormatError(path, "expected one tab per line ('token<TAB>tag'), found more", lineno)
        tag = tag.strip()
        if tag not in tag_info and tag != "O":
            problem = _check_tag(tag)
            if problem:
                raise DataFormatError(path, problem, lineno)
            coarse, dash, _fine = tag.partition("-")
            tag_info[tag] = (tag, coarse if dash else tag)
        if not tokens:
            first_line = lineno
        tokens.append(tok)
        tags.append(tag)
    flush()
    if not out:
        raise DataFormatError(
            path, f"no entity mentions found in {n_sentences} sentence(s) (every tag is 'O')"
        )
    return out


def _check_tag(tag: str) -> str | None:
    if not tag:
        return "empty tag after the tab"
    if any(c.isspace() for c in tag):
        return f"tag {tag!r} contains whitespace"
    if _BIO.match(tag):
        return f"tag {tag!r} looks like BIO; Few-NERD files use IO tags ('O' or 'coarse-fine')"
    if tag.startswith("-") or tag.endswith("-"):
        return f"tag {tag!r} must be 'O' or 'coarse-fine'"
    return None
