"""OntoNotes 5.0 and BBN in the entity-typing layout the paper's code reads (``train.txt``, ``dev.txt``,
``test.txt``; the data come with a licence, so bring your own copy).

One mention per line, four tab-separated fields::

    5<TAB>7<TAB>Officials said on Friday that Acme Corp would close its plant .<TAB>/organization/company

- the 0-based index of the mention's first token and the index just after its last (end exclusive);
- the sentence's tokens, separated by single spaces;
- the mention's type (OntoNotes: fine-grained paths such as ``/person/artist``, 86 types; BBN: 46 types).

Blank lines are skipped. A sentence that has several mentions is repeated, once per line; the reader keeps
each line as its own sentence (the importer merges sentences with the same text). The sentence text is the
tokens joined by single spaces; ``meta = {"line": n}``; ``source`` is the file name. Every problem raises
``DataFormatError(path, problem, line)``.

``write_ontonotes`` writes one line per typed mention (tokens: the words split at the mention's boundaries);
relations and untyped mentions are not written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import read_text
from conpet.data.documents import PathLike, sentence_list, token_spans
from conpet.data.jsonl import Entity, Sentence


def read_ontonotes(path: PathLike) -> list[Sentence]:
    """Read an OntoNotes / BBN entity-typing file (see the module docstring)."""
    text = read_text(path)
    source = Path(path).name
    out: list[Sentence] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise DataFormatError(path, f"expected 4 tab-separated fields (start, end, tokens, type), found "
                                        f"{len(fields)}", lineno)
        start, end, tokens, label = fields
        if not (start.strip().isdigit() and end.strip().isdigit()):
            raise DataFormatError(path, f"start and end must be token indices, got {start!r}, {end!r}", lineno)
        words = tokens.split()
        lo, hi = int(start), int(end)
        if not 0 <= lo < hi <= len(words):
            raise DataFormatError(path, f"tokens {lo}..{hi} are not a mention of this {len(words)}-token "
                                        "sentence (need 0 <= start < end <= tokens)", lineno)
        if not label.strip():
            raise DataFormatError(path, "the type is empty", lineno)
        char_start = sum(len(w) + 1 for w in words[:lo])
        char_end = char_start + len(" ".join(words[lo:hi]))
        out.append(Sentence(" ".join(words), (Entity(char_start, char_end, label.strip()),), source=source,
                            meta={"line": lineno}))
    if not out:
        raise DataFormatError(path, "no mentions in the file")
    return out


def write_ontonotes(path: PathLike, sentences: Iterable[Sentence]) -> int:
    """Write one line per typed mention (atomically); returns the number of lines."""
    lines: list[str] = []
    for s in sentence_list(sentences):
        for e in s.entities:
            if e.type is None:
                continue
            if "\t" in e.type or "\n" in e.type:
                raise DataFormatError(path, f"the type {e.type!r} holds a tab or line break; this layout cannot")
            spans = token_spans(s.text, (e.start, e.end))
            inside = [i for i, (a, b) in enumerate(spans) if e.start <= a and b <= e.end]
            tokens = " ".join(s.text[a:b] for a, b in spans)
            lines.append(f"{inside[0]}\t{inside[-1] + 1}\t{tokens}\t{e.type}")
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
    return len(lines)
