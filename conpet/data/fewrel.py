"""FewRel 1.0 JSON reader (relation classification).

Layout: ``{"P177": [{"tokens": [...], "h": [name, wikidata_id, [[token indices], ...]], "t": [...]}, ...], ...}``;
the key is the relation id, ``h`` the head entity, ``t`` the tail; token indices are 0-based. The optional
``pid2name.json`` maps a relation id to ``[name, description]``.

Each item becomes one ``Example(kind="relation")``:

- ``text`` is the tokens joined with single spaces; a span runs from the first character of the lowest
  token index to the last character of the highest index of the entity's *first* index list (FewRel
  lists one list per occurrence; the first is the one that is marked);
- ``label`` is the relation name from pid2name when given, else the relation id;
  ``meta = {"type_id": pid, "description": description-or-None}``;
- ``source`` is the file name (not the full path, so it is the same on any machine);
- ``id`` is a content hash of (text, spans, relation *id*, file name), so it does not depend on whether
  pid2name was given, on the folder the file lives in, or on the order of the items; an exact duplicate
  item within the file gets a distinct id by its occurrence number (see ``_io.IdMaker``).

Every problem raises ``DataFormatError(path, problem, line)``; the reader returns a complete list or raises.

``write_fewrel(path, sentences)`` writes every relation of the sentences under its type name (tokens are
the text's words split at mention boundaries; the entity name is the mention in lower case, its id empty),
atomically; reading the file back gives the same relations.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conpet.core.errors import DataFormatError, raise_problems
from conpet.core.files import write_text_atomic
from conpet.data._io import IdMaker, LineIndex, is_int, read_text
from conpet.data.example import Example, Span

PathLike = str | os.PathLike[str]


def read_pid2name(path: PathLike) -> dict[str, tuple[str, str]]:
    """Read FewRel's ``pid2name.json``: ``{pid: [name, description]}`` → ``{pid: (name, description)}``."""
    text = read_text(path)
    data = _loads(path, text)
    if not isinstance(data, dict):
        raise DataFormatError(path, "expected a JSON object {relation id: [name, description]}", 1)
    out: dict[str, tuple[str, str]] = {}
    lines = LineIndex(text)
    for pid, value in data.items():
        if (
            not isinstance(value, list)
            or len(value) < 1
            or not isinstance(value[0], str)
            or not value[0].strip()
            or (len(value) > 1 and not isinstance(value[1], str))
        ):
            raise DataFormatError(
                path,
                f"entry {pid!r} must be [name, description] with a non-empty name",
                _key_line(text, lines, pid),
            )
        out[pid] = (value[0], value[1] if len(value) > 1 else "")
    return out


def read_fewrel(path: PathLike, pid2name: PathLike | Mapping[str, Any] | None = None) -> list[Example]:
    """Read a FewRel JSON file into relation examples (see the module docstring).

    ``pid2name`` is a path to ``pid2name.json`` or an already loaded mapping ``{pid: [name, description]}``.
    A relation id that pid2name lacks is an error (mixing names and ids as labels would be silent trouble).
    """
    names: Mapping[str, Any] | None
    names_where: str
    if pid2name is None:
        names, names_where = None, ""
    elif isinstance(pid2name, Mapping):
        names, names_where = pid2name, "the pid2name mapping"
    else:
        names, names_where = read_pid2name(pid2name), Path(pid2name).name

    text = read_text(path)
    duplicates: list[str] = []
    data = _loads(path, text, duplicates)
    lines = LineIndex(text)
    if duplicates:
        raise DataFormatError(
            path,
            f"key {duplicates[0]!r} appears twice in one JSON object",
            _key_line(text, lines, duplicates[0]),
        )
    if not isinstance(data, dict):
        raise DataFormatError(path, "expected a JSON object {relation id: [examples]} at the top", 1)

    source = Path(path).name
    ids = IdMaker()
    out: list[Example] = []
    problems: list[tuple[int | None, str]] = []  # every bad example, reported together
    for pid, items in data.items():
        if not isinstance(items, list):
            raise DataFormatError(
                path,
                f"relation {pid!r}: expected a list of examples, got {_typename(items)}",
                _key_line(text, lines, pid),
            )
        label, description = pid, None
        if names is not None:
            if pid not in names:
                raise DataFormatError(
                    path, f"relation {pid!r} has no name in {names_where}", _key_line(text, lines, pid)
                )
            entry = names[pid]
            if isinstance(entry, str):
                label = entry
            else:
                label = entry[0]
                description = entry[1] if len(entry) > 1 else None
        for i, item in enumerate(items):
            try:
                sentence, spans = _parse_item(item)
                eid = ids.make(sentence, spans, pid, source)
                out.append(
                    Example(
                        text=sentence,
                        spans=spans,
                        label=label,
                        kind="relation",
                        id=eid,
                        source=source,
                        meta={"type_id": pid, "description": description},
                    )
                )
            except (_ItemError, ValueError) as exc:
                problems.append((_item_line(text, lines, pid, i), f"relation {pid!r}, example {i}: {exc}"))
    raise_problems(path, problems, "example")
    if not out:
        raise DataFormatError(path, "no examples in the file")
    return out


class _ItemError(Exception):
    pass


def _parse_item(item: Any) -> tuple[str, tuple[Span, Span]]:
    if not isinstance(item, dict):
        raise _ItemError(f"expected an object with tokens, h, t; got {_typename(item)}")
    for key in ("tokens", "h", "t"):
        if key not in item:
            raise _ItemError(f"missing key {key!r}")
    tokens = item["tokens"]
    if not isinstance(tokens, list) or not tokens:
        raise _ItemError("'tokens' must be a non-empty list of strings")
    starts: list[int] = []
    pos = 0
    for j, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise _ItemError(f"token {j} is {_typename(tok)}, not a string")
        starts.append(pos)
        pos += len(tok) + 1
    sentence = " ".join(tokens)
    spans = []
    for role in ("h", "t"):
        ent = item[role]
        if not isinstance(ent, list) or len(ent) < 3:
            raise _ItemError(f"{role!r} must be [name, id, [[token indices]]]")
        groups = ent[2]
        if not isinstance(groups, list) or not groups or not isinstance(groups[0], list) or not groups[0]:
            raise _ItemError(f"{role!r}: token indices must be a non-empty list of lists, got {groups!r}")
        idx = groups[0]
        for k in idx:
            if not is_int(k):
                raise _ItemError(f"{role!r}: token index {k!r} is not an integer")
            if not 0 <= k < len(tokens):
                raise _ItemError(f"{role!r}: token index {k} is out of range (0..{len(tokens) - 1})")
        lo, hi = min(idx), max(idx)
        start, end = starts[lo], starts[hi] + len(tokens[hi])
        if start >= end or not sentence[start:end].strip():
            raise _ItemError(f"{role!r}: the mention (tokens {lo}..{hi}) is empty or only whitespace")
        spans.append(Span(start, end))
    return sentence, (spans[0], spans[1])


def _loads(path: PathLike, text: str, duplicates: list[str] | None = None) -> Any:
    hook = None
    if duplicates is not None:

        def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            d = dict(pairs)
            if len(d) != len(pairs):
                seen: set[str] = set()
                for k, _ in pairs:
                    if k in seen:
                        duplicates.append(k)
                        break
                    seen.add(k)
            return d

    try:
        return json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            path, f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", exc.lineno
        ) from None
    except RecursionError:
        raise DataFormatError(path, "invalid JSON: nested too deeply") from None


def _typename(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(v), "a number"
    )


def _key_line(text: str, lines: LineIndex, key: str) -> int | None:
    """Line of the first occurrence of ``"key":`` (best effort; only used to report errors)."""
    m = re.search(re.escape(json.dumps(key)) + r"\s*:", text)
    if m is None:
        m = re.search(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:", text)
    return lines.line(m.start()) if m else None


_WS = re.compile(r"[ \t\r\n]*")


def _item_line(text: str, lines: LineIndex, pid: str, index: int) -> int | None:
    """Line where item ``index`` of relation ``pid`` starts, found by re-scanning the (valid) JSON."""
    dec = json.JSONDecoder()
    try:
        pos = _WS.match(text, 0).end()
        if text[pos] != "{":
            return None
        pos = _WS.match(text, pos + 1).end()
        while text[pos] != "}":
            key, pos = dec.raw_decode(text, pos)
            pos = _WS.match(text, pos).end() + 1  # ':'
            pos = _WS.match(text, pos).end()
            if key == pid and text[pos] == "[":
                pos = _WS.match(text, pos + 1).end()
                for _ in range(index):
                    _, pos = dec.raw_decode(text, pos)
                    pos = _WS.match(text, pos).end() + 1  # ','
                    pos = _WS.match(text, pos).end()
                return lines.line(pos)
            _, pos = dec.raw_decode(text, pos)
            pos = _WS.match(text, pos).end()
            if text[pos] == ",":
                pos = _WS.match(text, pos + 1).end()
    except (IndexError, ValueError):
        return None
    return None


def write_fewrel(path: PathLike, sentences) -> int:
    """Write the sentences' relations as FewRel JSON ``{type: [items]}``; returns the number of items."""
    from conpet.data.documents import sentence_list, token_spans

    out: dict[str, list[dict[str, Any]]] = {}
    for s in sentence_list(sentences):
        for r in s.relations:
            head, tail = s.entities[r.head], s.entities[r.tail]
            spans = token_spans(s.text, (head.start, head.end, tail.start, tail.end))
            item: dict[str, Any] = {"tokens": [s.text[a:b] for a, b in spans]}
            for role, e in (("h", head), ("t", tail)):
                inside = [i for i, (a, b) in enumerate(spans) if e.start <= a and b <= e.end]
                item[role] = [s.text[e.start:e.end].lower(), "", [inside]]
            out.setdefault(r.type, []).append(item)
    write_text_atomic(path, json.dumps(out, ensure_ascii=False) + "\n")
    return sum(len(v) for v in out.values())
