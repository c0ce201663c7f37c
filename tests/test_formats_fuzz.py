"""Fuzz every format reader: broken files (random edits of a valid one, and valid JSON with random values put
in random places) either read into sentences or raise DataFormatError naming the file, never another
exception; whatever reads is written back in the same format and reads again to the same annotations."""

from __future__ import annotations

import copy
import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_formats import ACE_DOC, BRAT_ANN, BRAT_TXT, CONLL_2003, ONTONOTES, _ls_export, _tacred
from test_store_fuzz import mutated

from conpet.core.errors import DataFormatError
from conpet.data.documents import annotations, mention_annotations
from conpet.data.formats import read_sentences, write_sentences

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
_counter = itertools.count()
_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 60), st.floats(allow_nan=True), st.text(max_size=6),
                    st.lists(st.integers(-1, 12), max_size=5), st.just({}), st.just([[0, 0, "X"]]),
                    st.just({"id": [1]}))

DOCCANO = "\n".join(json.dumps(x) for x in [
    {"id": 1, "text": "Ada Lovelace was born in London.",
     "entities": [{"id": 3, "label": "Person", "start_offset": 0, "end_offset": 12},
                  {"id": 4, "label": "City", "start_offset": 25, "end_offset": 31}],
     "relations": [{"id": 1, "from_id": 3, "to_id": 4, "type": "born in"}]},
    {"text": "Grace Hopper", "label": [[0, 12, "Person"]]}]) + "\n"
PLAIN = "Ada Lovelace was born in London.\nShe met Dr. Babbage.\n\nA wrapped\nparagraph, it goes on.\n"


def _nodes(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nodes(v, (*path, i))


@st.composite
def json_edited(draw, seed) -> bytes:
    """The seed object with a few of its values (or whole branches) replaced by random ones."""
    obj = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _nodes(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = copy.deepcopy(draw(_values))  # st.just values are shared objects
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _jsonl_edited(seed_lines):
    return st.lists(json_edited(seed_lines), min_size=1, max_size=1).map(lambda xs: xs[0]).map(
        lambda b: "\n".join(json.dumps(x) for x in json.loads(b)).encode("utf-8"))


def _check(tmp_path, content: bytes, name: str, fmt: str) -> None:
    folder = tmp_path / f"c{next(_counter)}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(content)
    try:
        got_fmt, sentences = read_sentences(path, fmt)
    except DataFormatError as exc:
        assert exc.problem and str(folder) in exc.path, exc
        return
    assert got_fmt == fmt and sentences
    out = folder / ("again" if fmt == "brat" else f"again{path.suffix}")
    write_sentences(out, sentences, fmt)
    _, back = read_sentences(out, fmt)
    if fmt in ("conll", "tacred", "ontonotes", "ace"):  # these re-tokenise: compare the mentions' text
        assert mention_annotations(back) == mention_annotations(sentences)
    else:
        assert annotations(back) == annotations(sentences)


@FUZZ
@given(content=mutated(PLAIN))
def test_fuzz_plaintext(tmp_path, content):
    _check(tmp_path, content, "notes.txt", "text")


@FUZZ
@given(content=mutated(CONLL_2003))
def test_fuzz_conll(tmp_path, content):
    _check(tmp_path, content, "eng.conll", "conll")


@FUZZ
@given(content=mutated(ONTONOTES))
def test_fuzz_ontonotes(tmp_path, content):
    _check(tmp_path, content, "train.txt", "ontonotes")


@FUZZ
@given(ann=mutated(BRAT_ANN), txt=st.one_of(st.just(BRAT_TXT.encode()), mutated(BRAT_TXT)))
def test_fuzz_brat(tmp_path, ann, txt):
    folder = tmp_path / f"b{next(_counter)}"
    folder.mkdir()
    (folder / "doc.txt").write_bytes(txt)
    (folder / "doc.ann").write_bytes(ann)
    try:
        _, sentences = read_sentences(folder / "doc.ann", "brat")
    except DataFormatError as exc:
        assert exc.problem and str(folder) in exc.path, exc
        return
    write_sentences(folder / "again", sentences, "brat")
    assert annotations(read_sentences(folder / "again", "brat")[1]) == annotations(sentences)


@FUZZ
@given(content=st.one_of(mutated(json.dumps(_ls_export(), indent=1)), json_edited(_ls_export())))
def test_fuzz_labelstudio(tmp_path, content):
    _check(tmp_path, content, "ls.json", "labelstudio")


@FUZZ
@given(content=st.one_of(mutated(DOCCANO), _jsonl_edited([json.loads(x) for x in DOCCANO.splitlines()])))
def test_fuzz_doccano(tmp_path, content):
    _check(tmp_path, content, "d.jsonl", "doccano")


@FUZZ
@given(content=st.one_of(mutated(json.dumps(_tacred(), indent=1)), json_edited(_tacred())))
def test_fuzz_tacred(tmp_path, content):
    _check(tmp_path, content, "train.json", "tacred")


@FUZZ
@given(content=st.one_of(mutated(json.dumps(ACE_DOC)), _jsonl_edited([ACE_DOC, ACE_DOC])))
def test_fuzz_ace(tmp_path, content):
    _check(tmp_path, content, "ace.jsonl", "ace")
