"""brat standoff: a ``NAME.txt`` document with its annotations in ``NAME.ann`` beside it.

Give the reader a ``.ann`` file, its ``.txt`` file, or a folder (every ``*.ann`` in it and its sub-folders,
in name order, each with its ``.txt``). ``.ann`` lines used:

- ``T1<TAB>Person 0 12<TAB>Ada Lovelace``: a mention, type and character offsets into the ``.txt`` (end
  exclusive); the text after the second tab must equal the document's text at those offsets. A mention of
  type ``Argument`` (``documents.UNTYPED``) is a relation argument without an entity type. Discontinuous
  mentions (``0 3;8 12``) are refused with the line named;
- ``R1<TAB>born_in Arg1:T1 Arg2:T3``: a relation from ``Arg1`` (head) to ``Arg2`` (tail);
- ``E`` (events), ``A``/``M`` (attributes), ``N`` (normalisations), ``*`` (equivalences) and ``#`` (notes)
  lines are skipped: they carry nothing a typing model learns from.

The document is split into sentences at line breaks, except where a mention or relation would be cut: the
lines it touches stay together. Each sentence is stripped of surrounding white space and its offsets moved
with it; ``source`` is the document's path relative to the folder given (its name for a single file);
``meta = {"line": n}`` is the document line where the sentence starts. Every problem raises
``DataFormatError(path, problem, line)`` naming the ``.ann`` (or ``.txt``) file.

``write_brat(folder, sentences)`` writes one document per source (``notes.txt`` → ``notes.txt`` +
``notes.ann``; sentences with no source go to ``document.txt``), one sentence per line (a sentence that
holds a line break keeps it; the ``.ann`` shows a mention's line break as a space). brat type names
are single tokens, so white space in a type name is written as ``_``. With ``overwrite=False`` it refuses
to replace an existing document. Nothing is written until every document has been built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import read_text
from conpet.data.documents import (
    UNTYPED,
    Document,
    PathLike,
    pack,
    sentence_list,
    unpack,
)
from conpet.data.example import Span
from conpet.data.jsonl import Sentence

_T_LINE = re.compile(r"^(T\d+)\t(\S+) (\d+ \d+(?:;\d+ \d+)*)\t?(.*)$")
_R_LINE = re.compile(r"^(R\d+)\t(\S+) Arg1:(T\d+) Arg2:(T\d+)\s*$")
_SKIPPED = ("E", "A", "M", "N", "*", "#")


def read_brat(path: PathLike) -> list[Sentence]:
    """Read one brat document (its ``.ann`` or ``.txt``) or every document in a folder."""
    p = Path(path)
    if p.is_dir():
        anns = sorted(p.rglob("*.ann"))
        if not anns:
            raise DataFormatError(p, "no .ann files in this folder (brat keeps annotations in NAME.ann)")
        out: list[Sentence] = []
        for ann in anns:
            out.extend(_read_document(ann, ann.relative_to(p).with_suffix(".txt").as_posix()))
        return out
    if p.suffix.lower() not in (".ann", ".txt"):
        raise DataFormatError(p, "a brat document is a .txt file with a .ann file beside it")
    return _read_document(p.with_suffix(".ann"), p.with_suffix(".txt").name)


def _read_document(ann: Path, source: str) -> list[Sentence]:
    txt = ann.with_suffix(".txt")
    if not txt.is_file():
        raise DataFormatError(ann, f"the document text {txt.name} is missing beside it")
    text = read_text(txt)
    ann_text = read_text(ann) if ann.is_file() and ann.stat().st_size else ""
    doc = Document(text, source=source)
    by_id: dict[str, int] = {}
    for lineno, raw in enumerate(ann_text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith(_SKIPPED):
            continue
        if line.startswith("T"):
            _mention(ann, doc, by_id, line, lineno)
        elif line.startswith("R"):
            _relation(ann, doc, by_id, line, lineno)
        else:
            raise DataFormatError(ann, f"unknown annotation line {line[:30]!r} (expected T, R, E, A, M, N, * "
                                       "or # lines)", lineno)
    return _sentences(ann, doc)


def _mention(ann: Path, doc: Document, by_id: dict[str, int], line: str, lineno: int) -> None:
    m = _T_LINE.match(line)
    if m is None:
        raise DataFormatError(ann, "expected 'T<n><TAB>Type start end<TAB>text'", lineno)
    tid, type_, offsets, shown = m.groups()
    if ";" in offsets:
        raise DataFormatError(ann, f"{tid} is discontinuous ({offsets}); only one start-end span is supported",
                              lineno)
    if tid in by_id:
        raise DataFormatError(ann, f"{tid} is defined twice", lineno)
    start, end = (int(x) for x in offsets.split())
    if not 0 <= start < end <= len(doc.text):
        raise DataFormatError(ann, f"{tid}: span {start}:{end} is empty or outside the text "
                                   f"(length {len(doc.text)})", lineno)
    if shown and _one_line(doc.text[start:end]) != shown:
        raise DataFormatError(ann, f"{tid}: the text at {start}:{end} is {doc.text[start:end]!r}, the .ann "
                                   f"says {shown!r} (offsets count characters of the .txt as saved)", lineno)
    if not doc.text[start:end].strip():
        raise DataFormatError(ann, f"{tid}: the mention is only white space", lineno)
    by_id[tid] = len(doc.mentions)
    doc.mentions.append((Span(start, end), None if type_ == UNTYPED else type_))


def _relation(ann: Path, doc: Document, by_id: dict[str, int], line: str, lineno: int) -> None:
    m = _R_LINE.match(line)
    if m is None:
        raise DataFormatError(ann, "expected 'R<n><TAB>Type Arg1:T<i> Arg2:T<j>'", lineno)
    rid, type_, head, tail = m.groups()
    for arg in (head, tail):
        if arg not in by_id:
            raise DataFormatError(ann, f"{rid}: {arg} is not a mention defined above", lineno)
    if doc.mentions[by_id[head]][0].overlaps(doc.mentions[by_id[tail]][0]):
        raise DataFormatError(ann, f"{rid}: its arguments {head} and {tail} overlap", lineno)
    doc.relations.append((by_id[head], by_id[tail], type_))  # duplicates are dropped by _sentences


def _sentences(ann: Path, doc: Document) -> list[Sentence]:
    """Split the document at line breaks that no annotation crosses (see the module docstring)."""
    text = doc.text
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    ends = [s - 1 for s in starts[1:]] + [len(text)]
    line_of = _LineOf(starts)
    # covered[i] > 0: some annotation runs from line i onto line i + 1, so the break there is kept
    covered = [0] * (len(starts) + 1)
    ranges = [(line_of(sp.start), line_of(sp.end - 1)) for sp, _ in doc.mentions]
    for h, t, _ in doc.relations:
        ranges.append((min(ranges[h][0], ranges[t][0]), max(ranges[h][1], ranges[t][1])))
    for lo, hi in ranges:
        covered[lo] += 1
        covered[hi] -= 1
    group_of: list[int] = []
    groups: list[list[int]] = []
    running = 0
    for i in range(len(starts)):
        if not groups or running == 0:
            groups.append([])
        groups[-1].append(i)
        group_of.append(len(groups) - 1)
        running += covered[i]
    members: list[list[int]] = [[] for _ in groups]  # mention indices per group
    for k, (lo, _) in enumerate(ranges[:len(doc.mentions)]):
        members[group_of[lo]].append(k)
    relations: list[list[tuple[int, int, str]]] = [[] for _ in groups]
    for rel in dict.fromkeys(doc.relations):  # the same relation twice is kept once
        relations[group_of[ranges[rel[0]][0]]].append(rel)
    out: list[Sentence] = []
    for g, lines in enumerate(groups):
        out.extend(_group_sentences(ann, doc, starts[lines[0]], ends[lines[-1]], members[g], relations[g],
                                    lines[0] + 1))
    return out


class _LineOf:
    """The 0-based line index of a character offset."""

    def __init__(self, starts: list[int]) -> None:
        self.starts = starts

    def __call__(self, offset: int) -> int:
        import bisect

        return bisect.bisect_right(self.starts, offset) - 1


def _group_sentences(ann: Path, doc: Document, lo: int, hi: int, members: list[int],
                     group_relations: list[tuple[int, int, str]], line: int) -> list[Sentence]:
    piece = doc.text[lo:hi]
    body = piece.strip()
    if not body:
        return []
    shift = lo + len(piece) - len(piece.lstrip())
    local = {k: i for i, k in enumerate(members)}
    mentions = [(Span(doc.mentions[k][0].start - shift, doc.mentions[k][0].end - shift), doc.mentions[k][1])
                for k in members]
    relations = [(local[h], local[t], r) for h, t, r in group_relations]
    part = Document(body, mentions, relations, source=doc.source, meta={"line": line})
    try:
        return pack(part)
    except ValueError as exc:
        raise DataFormatError(ann, f"line {line} of {doc.source}: {exc}") from None


def write_brat(folder: PathLike, sentences: Iterable[Sentence], overwrite: bool = True) -> int:
    """Write one ``.txt`` + ``.ann`` pair per source document into ``folder``; returns the number of
    documents written."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise DataFormatError(target, "brat writes a folder of .txt/.ann files; this is a file")
    files: dict[str, tuple[str, str]] = {}
    by_source: dict[str, list[Document]] = {}
    for doc in unpack(sentence_list(sentences)):
        by_source.setdefault(_document_name(doc.source), []).append(doc)
    for name, docs in by_source.items():
        files[name] = _render(docs)
    if not overwrite:
        for name in files:
            if (target / name).exists():
                raise DataFormatError(target / name, "already exists (not overwriting)")
    target.mkdir(parents=True, exist_ok=True)
    for name, (txt, ann) in files.items():
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, txt)
        write_text_atomic(out.with_suffix(".ann"), ann)
    return len(files)


def _document_name(source: str) -> str:
    """``notes.txt`` for the source ``notes.txt`` or ``notes``; safe relative parts only."""
    parts = [re.sub(r"[^\w.-]+", "_", part) for part in Path(source or "document").parts
             if part not in ("", ".", "..", "/") and not part.endswith(":\\")]
    name = Path(*parts) if parts else Path("document")
    return name.with_suffix(".txt").as_posix() if name.suffix.lower() != ".txt" else name.as_posix()


def _render(docs: list[Document]) -> tuple[str, str]:
    """The ``.txt`` (one sentence per line) and ``.ann`` text of one document's sentences."""
    lines: list[str] = []
    ann: list[str] = []
    offset = 0
    n_t = n_r = 0
    for doc in docs:
        line = doc.text
        ids: dict[int, str] = {}
        for k, (span, type_) in enumerate(doc.mentions):
            n_t += 1
            ids[k] = f"T{n_t}"
            start, end = offset + span.start, offset + span.end
            ann.append(f"T{n_t}\t{_brat_type(type_ or UNTYPED)} {start} {end}\t{_one_line(line[span.start:span.end])}")
        for h, t, type_ in doc.relations:
            n_r += 1
            ann.append(f"R{n_r}\t{_brat_type(type_)} Arg1:{ids[h]} Arg2:{ids[t]}")
        lines.append(line)
        offset += len(line) + 1
    return "".join(f"{line}\n" for line in lines), "".join(f"{a}\n" for a in ann)


def _one_line(mention: str) -> str:
    """The mention as the .ann shows it: a line break inside it becomes a space."""
    return mention.replace("\r", " ").replace("\n", " ")


def _brat_type(name: str) -> str:
    """brat types are single tokens: white space becomes ``_`` (``place of birth`` → ``place_of_birth``)."""
    return re.sub(r"\s+", "_", name.strip())
