"""Every data format by name: what it reads and writes, and telling a file's format from its name and content.

``FORMATS`` maps a name (what ``--format`` takes) to a ``Format``; ``read_sentences(path, fmt=None,
**options)`` reads any of them into ``Sentence``s, ``write_sentences(path, sentences, fmt, **options)``
writes them, and ``detect_format(path)`` guesses the name (``DataFormatError`` when it cannot, listing the
names to give instead).

Detection: a folder, a ``.ann`` file, or a ``.txt`` with a ``.ann`` beside it is brat; ``.jsonl`` is doccano
when its first line has doccano's keys (``start_offset`` or ``label``), else the project JSONL; ``.json`` is
TACRED when its start holds ``"subj_start"``, Label Studio when it holds a task's ``"data"``, else FewRel;
a first line that is an object with ``sentences`` (and no ``text``) is ACE; a first line
``start<TAB>end<TAB>tokens<TAB>type`` is the OntoNotes / BBN typing layout (detected as ``ontonotes``);
a token-per-line file (``.conll``, ``.bio``, ``.iob``, ``.bioes``, ``.tsv``, or ``.txt`` whose first line
is ``token<TAB>tag``) is CoNLL when it has ``-DOCSTART-``, more than two columns or B-/I-/E-/S- tags, else
Few-NERD; any other ``.txt`` is plain text. Other names are sniffed the same way, except that they are never
taken for plain text (a binary or unknown file should not import as sentences).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from conpet.core.errors import DataFormatError
from conpet.data.documents import PathLike, sentence_list
from conpet.data.example import Example
from conpet.data.jsonl import Sentence


@dataclass(frozen=True)
class Format:
    name: str
    title: str  # shown in the app's format chooser
    extensions: tuple[str, ...]
    read: Callable[..., list[Sentence]] | None
    write: Callable[..., int] | None
    entities: bool = True  # the format holds typed entity mentions
    relations: bool = True  # the format holds relations
    folder: bool = False  # the writer writes a folder


def _read_jsonl(path: PathLike) -> list[Sentence]:
    from conpet.data.jsonl import read_jsonl_sentences

    return read_jsonl_sentences(path)


def _write_jsonl(path: PathLike, sentences: Iterable[Sentence]) -> int:
    from conpet.data.jsonl import write_jsonl

    return write_jsonl(path, sentences)


def _read_fewrel(path: PathLike) -> list[Sentence]:
    from conpet.data.fewrel import read_fewrel

    p = Path(path)
    names = p.with_name("pid2name.json")
    return sentences_from_examples(read_fewrel(p, names if names.is_file() and names != p else None))


def _write_fewrel(path: PathLike, sentences: Iterable[Sentence]) -> int:
    from conpet.data.fewrel import write_fewrel

    return write_fewrel(path, sentences)


def _read_fewnerd(path: PathLike) -> list[Sentence]:
    from conpet.data.fewnerd import read_fewnerd

    return sentences_from_examples(read_fewnerd(path))


def _write_fewnerd(path: PathLike, sentences: Iterable[Sentence]) -> int:
    from conpet.data.conll import write_conll

    return write_conll(path, sentences, scheme="IO")


def _lazy(module: str, name: str) -> Callable:
    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"conpet.data.{module}"), name)(*args, **kwargs)

    call.__name__ = name
    call._target = (module, name)  # type: ignore[attr-defined]
    return call


def _write_labelstudio_predictions(path: PathLike, sentences: Iterable[Sentence], **options) -> int:
    from conpet.data.labelstudio import write_labelstudio

    return write_labelstudio(path, sentences, as_predictions=True, **options)


def _read_labelstudio_predictions(path: PathLike, **options) -> list[Sentence]:
    from conpet.data.labelstudio import read_labelstudio

    return read_labelstudio(path, results="predictions", **options)


_write_labelstudio_predictions._target = ("labelstudio", "write_labelstudio")  # type: ignore[attr-defined]
_read_labelstudio_predictions._target = ("labelstudio", "read_labelstudio")  # type: ignore[attr-defined]

FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("jsonl", "Project JSONL", (".jsonl",), _read_jsonl, _write_jsonl),
    Format("text", "Plain text (one sentence per line, or paragraphs)", (".txt",), _lazy("plaintext", "read_plaintext"),
           _lazy("plaintext", "write_plaintext"), entities=False, relations=False),
    Format("conll", "CoNLL / token per line (BIO, BIOES, IO)", (".conll", ".bio", ".iob", ".bioes", ".tsv"),
           _lazy("conll", "read_conll"), _lazy("conll", "write_conll"), relations=False),
    Format("fewnerd", "Few-NERD (token<TAB>tag, IO)", (".txt",), _read_fewnerd, _write_fewnerd,
           relations=False),
    Format("fewrel", "FewRel JSON", (".json",), _read_fewrel, _write_fewrel, entities=False),
    Format("brat", "brat standoff (.txt + .ann, or a folder)", (".ann",), _lazy("brat", "read_brat"),
           _lazy("brat", "write_brat"), folder=True),
    Format("labelstudio", "Label Studio JSON", (".json",), _lazy("labelstudio", "read_labelstudio"),
           _lazy("labelstudio", "write_labelstudio")),
    Format("labelstudio-predictions", "Label Studio JSON, as predictions to review", (".json",),
           _read_labelstudio_predictions, _write_labelstudio_predictions),
    Format("doccano", "doccano JSONL", (".jsonl",), _lazy("doccano", "read_doccano"),
           _lazy("doccano", "write_doccano")),
    Format("tacred", "TACRED / Re-TACRED JSON", (".json",), _lazy("tacred", "read_tacred"),
           _lazy("tacred", "write_tacred"), entities=False),
    Format("ontonotes", "OntoNotes / BBN entity typing (start, end, tokens, type)", (".txt",),
           _lazy("ontonotes", "read_ontonotes"), _lazy("ontonotes", "write_ontonotes"), relations=False),
    Format("bbn", "BBN entity typing (the OntoNotes layout)", (".txt",), _lazy("ontonotes", "read_ontonotes"),
           _lazy("ontonotes", "write_ontonotes"), relations=False),
    Format("ace", "ACE 2005 relations (DyGIE-style JSONL)", (".jsonl",), _lazy("ace", "read_ace"),
           _lazy("ace", "write_ace"), entities=False),  # entity types only with entity_types=true
)}
NAMES = tuple(FORMATS)


def get_format(name: str, path: PathLike = "") -> Format:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise DataFormatError(path or name, f"unknown format {name!r}; use one of {', '.join(NAMES)}")
    return fmt


def options_of(func: Callable) -> set[str]:
    """The keyword options a reader or writer takes (beyond the path and the sentences)."""
    target = getattr(func, "_target", None)
    if target is not None:
        import importlib

        func = getattr(importlib.import_module(f"conpet.data.{target[0]}"), target[1])
    params = list(inspect.signature(func).parameters.values())
    return {p.name for p in params[1:] if p.name != "sentences" and p.kind != p.VAR_KEYWORD}


def read_sentences(path: PathLike, fmt: str | None = None, **options) -> tuple[str, list[Sentence]]:
    """``(format name, sentences)`` of a data file (or brat folder), the format detected when not given."""
    name = fmt or detect_format(path)
    spec = get_format(name, path)
    if spec.read is None:
        raise DataFormatError(path, f"the {name} format is written, not read")
    _check_options(path, name, spec.read, options)
    return name, spec.read(path, **options)


def write_sentences(path: PathLike, sentences: Iterable[Sentence], fmt: str, **options) -> int:
    """Write sentences in format ``fmt``; returns what the writer counts (sentences, documents or tasks)."""
    spec = get_format(fmt, path)
    if spec.write is None:
        raise DataFormatError(path, f"the {fmt} format is read, not written")
    _check_options(path, fmt, spec.write, options)
    return spec.write(path, sentence_list(sentences), **options)


def _check_options(path: PathLike, name: str, func: Callable, options: dict) -> None:
    allowed = options_of(func) - {"path", "folder"}
    if name == "labelstudio-predictions":
        allowed -= {"as_predictions", "results"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataFormatError(path, f"the {name} format takes no option {', '.join(unknown)}"
                                    + (f" (it takes {', '.join(sorted(allowed))})" if allowed else ""))


def sentences_from_examples(examples: Iterable[Example]) -> list[Sentence]:
    """Examples (one annotation each) gathered into sentences by (source, text), in first-seen order."""
    from conpet.data.documents import Document, pack

    docs: dict[tuple[str, str], Document] = {}
    for ex in examples:
        doc = docs.setdefault((ex.source, ex.text), Document(ex.text, source=ex.source))
        if ex.kind == "entity":
            if (ex.spans[0], ex.label) not in doc.mentions:
                doc.mentions.append((ex.spans[0], ex.label))
        else:
            h, t = doc.mention_index(ex.spans[0]), doc.mention_index(ex.spans[1])
            if (h, t, ex.label) not in doc.relations:
                doc.relations.append((h, t, ex.label))
    return [s for doc in docs.values() for s in pack(doc)]


# ------------------------------------------------------------------------------------------- detection

_TOKEN_SUFFIXES = (".conll", ".bio", ".iob", ".bioes", ".iobes", ".tsv")
_PREFIXED_TAG = re.compile(r"^[BIESLU]-\S")
_TYPING_LINE = re.compile(r"^\d+\t\d+\t[^\t]+\t[^\t]+$")


def detect_format(path: PathLike) -> str:
    """The format name for ``path`` (see the module docstring)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir():
        return _folder_kind(p)
    if not p.exists():
        raise DataFormatError(p, "file not found")
    if suffix == ".ann" or (suffix == ".txt" and p.with_suffix(".ann").is_file()):
        return "brat"
    head = _head(p)
    if suffix == ".jsonl":
        return _jsonl_kind(head)
    if suffix == ".json":
        kind = _json_kind(head)
        if kind == "fewrel" and head.lstrip().startswith("["):
            raise DataFormatError(p, "cannot tell the file's format: a JSON list, but not TACRED examples "
                                     "(subj_start) nor Label Studio tasks (data); give it (--format "
                                     f"{' | '.join(NAMES)})")
        return kind
    if suffix in _TOKEN_SUFFIXES:
        return _token_kind(head) or "conll"
    guess = _sniff(head)
    if guess:
        return guess
    if suffix == ".txt":
        return "text"
    raise DataFormatError(p, f"cannot tell the file's format; give it (--format {' | '.join(NAMES)})")


FOLDER_SCAN_LIMIT = 20_000  # entries a folder's detection looks at before it gives up


def _folder_kind(p: Path) -> str:
    """A folder is brat standoff when it holds a .ann file. The search is bounded: a folder typed by hand
    may be "/" or a home folder, whose whole tree (with /proc's vanishing entries) is no data set."""
    seen = 0
    for _root, dirs, files in os.walk(p, onerror=lambda _exc: None):  # unreadable or vanished: skipped
        if any(f.lower().endswith(".ann") for f in files):
            return "brat"
        seen += len(files) + len(dirs)
        if seen > FOLDER_SCAN_LIMIT:
            raise DataFormatError(p, f"is a folder too large to search for brat .ann files (over "
                                     f"{FOLDER_SCAN_LIMIT:,} entries without one); choose a brat folder or a file")
    raise DataFormatError(p, "is a folder with no .ann files; a folder is read as brat standoff")


def _head(p: Path) -> str:
    try:
        with open(p, encoding="utf-8", errors="replace") as f:
            return f.read(65536).lstrip("\ufeff")
    except OSError as exc:
        raise DataFormatError(p, f"cannot read the file ({exc.strerror or exc})") from None


def _first_line(head: str) -> str:
    return next((line for line in head.splitlines() if line.strip()), "").strip()


def _jsonl_kind(head: str) -> str:
    try:
        obj = json.loads(_first_line(head))
    except ValueError:
        return "jsonl"  # the JSONL reader names the bad line
    if isinstance(obj, dict) and isinstance(obj.get("sentences"), list) and "text" not in obj:
        return "ace"
    if isinstance(obj, dict):
        ents = obj.get("entities")
        if "label" in obj or "labels" in obj or (
                isinstance(ents, list) and ents and isinstance(ents[0], dict) and "start_offset" in ents[0]):
            return "doccano"
    return "jsonl"


def _json_kind(head: str) -> str:
    if head.lstrip().startswith("{") and _jsonl_kind(head) == "ace":
        return "ace"
    if re.search(r'"subj_start"\s*:', head):
        return "tacred"
    if re.search(r'"data"\s*:\s*\{', head) and (head.lstrip().startswith("[")
                                               or re.search(r'"(annotations|predictions|completions)"', head)):
        return "labelstudio"
    return "fewrel"


def _token_kind(head: str) -> str | None:
    """``conll`` or ``fewnerd`` when the start of the file looks token-per-line, else None."""
    lines = [line.rstrip("\r") for line in head.splitlines()[:200] if line.strip()]
    if len(head) == 65536 and lines:
        lines = lines[:-1]  # the last line may be cut off
    if not lines:
        return None
    if any(line.startswith("-DOCSTART-") for line in lines):
        return "conll"
    if _TYPING_LINE.match(lines[0]):
        return "ontonotes"
    if "\t" in lines[0]:  # a tab-separated token file (a line without a tab is the reader's to report)
        columns = [line.split("\t") for line in lines if "\t" in line]
        if any(len(c) > 2 for c in columns) or any(_PREFIXED_TAG.match(c[-1].strip()) for c in columns):
            return "conll"
        return "fewnerd"
    columns = [line.split() for line in lines]
    if all(len(c) >= 2 for c in columns) and all(_looks_like_tag(c[-1]) for c in columns):
        return "conll"
    return None


def _looks_like_tag(value: str) -> bool:
    return value == "O" or bool(_PREFIXED_TAG.match(value))


def _sniff(head: str) -> str | None:
    first = _first_line(head)
    if first.startswith("{") and first.endswith("}"):
        try:
            if isinstance(json.loads(first), dict):
                return _jsonl_kind(head)
        except ValueError:
            pass
    if first.startswith(("{", "[")):
        return _json_kind(head)
    return _token_kind(head)


def count_annotations(sentences: Iterable[Sentence]) -> tuple[int, int]:
    """``(typed mentions, relations)`` in the sentences."""
    entities = relations = 0
    for s in sentences:
        entities += sum(1 for e in s.entities if e.type is not None)
        relations += len(s.relations)
    return entities, relations


__all__ = ["FORMATS", "NAMES", "Format", "count_annotations", "detect_format", "get_format", "read_sentences",
           "sentences_from_examples", "write_sentences"]
