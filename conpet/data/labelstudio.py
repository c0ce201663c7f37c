"""Label Studio JSON: the tasks list that Label Studio exports ("JSON"), and a file it imports as predictions.

Reading: the file is a JSON list of tasks (a single task object is accepted too). Each task has
``data`` (the text under ``text_key``, by default ``"text"``, or else the task's only string value) and
``annotations`` (older exports: ``completions``), each with a ``result`` list. The annotation used is the
one marked ``ground_truth``, else the last one that was not cancelled (``was_cancelled``); a task with none
is read as an unannotated sentence. ``results="predictions"`` reads the task's first prediction instead
(to load suggestions back). In a result list:

- ``{"id": "r1", "type": "labels", "value": {"start": 0, "end": 12, "text": "Ada Lovelace",
  "labels": ["Person"]}}`` is a mention (one per label; the label ``Argument`` is a relation argument with
  no entity type). Label Studio counts offsets in UTF-16 units, as JavaScript does; when the offsets do
  not select ``value.text`` but the UTF-16 reading does, that reading is used;
- ``{"type": "relation", "from_id": "r1", "to_id": "r2", "direction": "right", "labels": ["born in"]}`` a
  relation: ``right`` (and ``bi``) go from ``from_id`` (head) to ``to_id`` (tail), ``left`` the other way;
  a relation needs one label or more (one relation per label);
- other result types (choices, text areas, ratings …) are skipped.

``id`` is the task's id, ``source`` the file name, ``meta = {"task": n}`` (0-based position in the list).
Every problem raises ``DataFormatError(path, problem, line)`` naming the task.

Writing: ``write_labelstudio(path, sentences)`` writes one task per sentence text as an annotation;
``as_predictions=True`` writes the annotations as ``predictions`` (``model_version`` names them), which
Label Studio shows as pre-annotations a team can accept or fix. Offsets are written in UTF-16 units. Both use the labelling config
``<Labels name="label" toName="text">`` + ``<Relations>`` (``from_name`` / ``to_name`` change the names).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conpet.core.errors import DataFormatError
from conpet.core.files import write_text_atomic
from conpet.data._io import is_int, read_json
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

RESULT_SOURCES = ("annotations", "predictions")


class _TaskError(Exception):
    pass


def read_labelstudio(path: PathLike, text_key: str = "text", results: str = "annotations") -> list[Sentence]:
    """Read a Label Studio JSON export (see the module docstring)."""
    if results not in RESULT_SOURCES:
        raise DataFormatError(path, f"results must be one of {', '.join(RESULT_SOURCES)}, not {results!r}")
    data = read_json(path)
    tasks = [data] if isinstance(data, dict) else data
    if not isinstance(tasks, list):
        raise DataFormatError(path, "expected a JSON list of Label Studio tasks", 1)
    source = Path(path).name
    out: list[Sentence] = []
    for n, task in enumerate(tasks):
        try:
            out.extend(pack(_task_document(task, n, text_key, results, source)))
        except (_TaskError, ValueError) as exc:
            tid = task.get("id") if isinstance(task, dict) else None
            name = f"task {n}" + (f" (id {tid})" if tid is not None else "")
            raise DataFormatError(path, f"{name}: {exc}") from None
    if not out:
        raise DataFormatError(path, "no tasks in the file")
    return out


def _task_document(task: Any, n: int, text_key: str, results: str, source: str) -> Document:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        raise _TaskError("a task is an object with a 'data' object")
    text = _task_text(task["data"], text_key)
    tid = task.get("id")
    doc = Document(text, id="" if tid is None else str(tid), source=source, meta={"task": n})
    result = _chosen_result(task, results)
    regions: dict[str, list[int]] = {}
    for k, item in enumerate(result):
        if not isinstance(item, dict):
            raise _TaskError(f"result {k} is not an object")
        untyped_region = item.get("type") is None and isinstance(item.get("value"), dict) and "labels" in item["value"]
        if item.get("type") in ("labels", "hypertextlabels") or untyped_region:
            regions.setdefault(str(item.get("id", f"#{k}")), []).extend(_region(doc, item, k))
    for k, item in enumerate(result):
        if item.get("type") == "relation":
            _relation(doc, regions, item, k)
    return doc


def _task_text(data: dict, text_key: str) -> str:
    if text_key in data:
        text = data[text_key]
    else:
        strings = [v for v in data.values() if isinstance(v, str)]
        if len(strings) != 1:
            raise _TaskError(f"data has no {text_key!r} key (name the text's key)")
        text = strings[0]
    if not isinstance(text, str) or not text.strip():
        raise _TaskError(f"data[{text_key!r}] must be a non-empty string")
    return text


def _chosen_result(task: dict, results: str) -> list:
    if results == "predictions":
        predictions = task.get("predictions") or []
        if not isinstance(predictions, list):
            raise _TaskError("'predictions' must be a list")
        chosen = predictions[0] if predictions else None
    else:
        annotations = task.get("annotations", task.get("completions")) or []
        if not isinstance(annotations, list):
            raise _TaskError("'annotations' must be a list")
        usable = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
        truth = [a for a in usable if a.get("ground_truth")]
        chosen = truth[0] if truth else usable[-1] if usable else None
    if chosen is None:
        return []
    if not isinstance(chosen, dict) or not isinstance(chosen.get("result", []), list):
        raise _TaskError("an annotation's 'result' must be a list")
    return chosen.get("result", [])


def _region(doc: Document, item: dict, k: int) -> list[int]:
    value = item.get("value")
    if not isinstance(value, dict):
        raise _TaskError(f"result {k}: 'value' must be an object")
    start, end, labels = value.get("start"), value.get("end"), value.get("labels")
    if not (is_int(start) and is_int(end)):
        raise _TaskError(f"result {k}: value.start and value.end must be integers")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
        raise _TaskError(f"result {k}: value.labels must be a non-empty list of names")
    start, end = _python_offsets(doc.text, start, end, value.get("text"))
    if not 0 <= start < end <= len(doc.text) or not doc.text[start:end].strip():
        raise _TaskError(f"result {k}: span {start}:{end} is empty or outside the text (length {len(doc.text)})")
    return [doc.mention_index(Span(start, end), None if label == UNTYPED else label) for label in labels]


def _python_offsets(text: str, start: int, end: int, shown: Any) -> tuple[int, int]:
    """Offsets into the Python string: as given, or read as UTF-16 units when only that matches ``shown``."""
    if not isinstance(shown, str) or text[start:end] == shown:
        return start, end
    units = text.encode("utf-16-le")
    try:
        head = units[:2 * start].decode("utf-16-le")
        body = units[2 * start:2 * end].decode("utf-16-le")
    except UnicodeDecodeError:
        return start, end
    if body == shown:
        return len(head), len(head) + len(body)
    raise _TaskError(f"the text at {start}:{end} is {text[start:end]!r}, the result says {shown!r}")


def _relation(doc: Document, regions: dict[str, list[int]], item: dict, k: int) -> None:
    a, b = str(item.get("from_id")), str(item.get("to_id"))
    for rid in (a, b):
        if rid not in regions:
            raise _TaskError(f"result {k}: relation end {rid!r} is not a labelled region of this annotation")
    labels = item.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
        raise _TaskError(f"result {k}: the relation {a} → {b} has no label (Label Studio's <Relations> "
                         "gives relations their labels)")
    if item.get("direction") == "left":
        a, b = b, a
    head, tail = regions[a][0], regions[b][0]
    for label in labels:
        if (head, tail, label) not in doc.relations:
            doc.relations.append((head, tail, label))


def write_labelstudio(path: PathLike, sentences: Iterable[Sentence], *, as_predictions: bool = False,
                      model_version: str = "conpet", from_name: str = "label", to_name: str = "text") -> int:
    """Write one Label Studio task per sentence text (atomically); returns the number of tasks."""
    tasks = []
    for n, doc in enumerate(unpack(sentence_list(sentences)), start=1):
        result = _result(doc, n, from_name, to_name)
        task: dict[str, Any] = {"data": {to_name: doc.text}}
        if as_predictions:
            task["predictions"] = [{"model_version": model_version, "result": result}]
        else:
            task["annotations"] = [{"result": result}]
        if doc.id:
            task["meta"] = {"conpet_id": doc.id}  # Label Studio numbers tasks itself; keep ours here
        tasks.append(task)
    body = ",\n".join(json.dumps(task, ensure_ascii=False) for task in tasks)
    write_text_atomic(path, f"[\n{body}\n]\n")
    return len(tasks)


def _utf16(text: str, offset: int) -> int:
    """The offset in UTF-16 units (what Label Studio counts) of a Python string offset."""
    return len(text[:offset].encode("utf-16-le")) // 2


def _result(doc: Document, n: int, from_name: str, to_name: str) -> list[dict]:
    out: list[dict] = []
    wide = any(ord(c) > 0xFFFF for c in doc.text)
    for k, (span, type_) in enumerate(doc.mentions):
        start, end = (_utf16(doc.text, span.start), _utf16(doc.text, span.end)) if wide else (span.start, span.end)
        out.append({"id": f"t{n}r{k}", "from_name": from_name, "to_name": to_name, "type": "labels",
                    "value": {"start": start, "end": end, "text": doc.text[span.start:span.end],
                              "labels": [type_ or UNTYPED]}})
    for h, t, label in doc.relations:
        out.append({"from_id": f"t{n}r{h}", "to_id": f"t{n}r{t}", "type": "relation", "direction": "right",
                    "labels": [label]})
    return out
