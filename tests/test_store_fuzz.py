"""Fuzz the importers: hundreds of malformed (and some valid) files. Each one either imports correctly
(and importing it again adds nothing) or raises DataFormatError, leaving the database byte-for-byte the
same as a dump."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conpet.core.errors import DataFormatError
from conpet.store import Project
from conpet.store.importer import import_file

EXAMPLES_PER_FORMAT = 130
FUZZ = settings(max_examples=EXAMPLES_PER_FORMAT, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEED_JSONL = "\n".join(json.dumps(x) for x in [
    {"text": "Ada Lovelace was born in London .",
     "entities": [{"start": 0, "end": 12, "type": "person"}, {"start": 25, "end": 31, "type": None}],
     "relations": [{"head": 0, "tail": 1, "type": "born in"}]},
    {"text": "Grace Hopper lived in New York .", "entities": [{"start": 0, "end": 12, "type": "person"}],
     "source": "notes"},
]) + "\n"
SEED_FEWNERD = ("Ada\tperson-scholar\nLovelace\tperson-scholar\nwas\tO\nin\tO\nLondon\tlocation-GPE\n\n"
                "Bletchley\tbuilding-other\nPark\tbuilding-other\nis\tO\nold\tO\n")
SEED_FEWREL = json.dumps({
    "P19": [{"tokens": ["Ada", "Lovelace", "was", "born", "in", "London"],
             "h": ["ada", "Q1", [[0, 1]]], "t": ["london", "Q2", [[5]]]}],
    "P108": [{"tokens": ["Alan", "worked", "at", "Bletchley", "Park"],
              "h": ["alan", "Q3", [[0]]], "t": ["bp", "Q4", [[3, 4]]]}],
}, indent=1)

_counter = itertools.count()


@st.composite
def mutated(draw, seed: str) -> bytes:
    """The seed file with a few random edits: deletions, insertions, swaps, truncation, stray bytes."""
    data = bytearray(seed.encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "bytes", "duplicate"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        j = draw(st.integers(i, min(len(data), i + 12)))
        if op == "delete":
            del data[i:j]
        elif op == "insert":
            data[i:i] = draw(st.text(alphabet='{}[]",:\t\n 0123456789-aOxé', max_size=6)).encode("utf-8")
        elif op == "replace" and data:
            data[i] = draw(st.sampled_from(b'{}[]",:\t\n -019Oax'))
        elif op == "truncate":
            del data[i:]
        elif op == "bytes":
            data[i:i] = draw(st.binary(min_size=1, max_size=3))
        else:
            data[i:i] = data[i:j]
    return bytes(data)


_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 45), st.floats(allow_nan=True),
                    st.text(max_size=6), st.lists(st.integers(-1, 8), max_size=3), st.just({}))
_type_names = st.one_of(st.sampled_from(["person", "place", "born in", " ", ""]), st.none(), st.integers(),
                        st.text(max_size=4))


@st.composite
def structured_jsonl(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        text = draw(st.sampled_from(["Ada Lovelace was born in London .", "", "   ", "x"])
                    | st.text(min_size=0, max_size=30))
        obj: dict = {"text": draw(st.one_of(st.just(text), _values))}
        if draw(st.booleans()):
            obj["entities"] = draw(st.one_of(_values, st.lists(st.fixed_dictionaries(
                {"start": st.one_of(st.integers(-2, 40), _values), "end": st.one_of(st.integers(-2, 40), _values)},
                optional={"type": _type_names, "bogus": _values}), max_size=4)))
        if draw(st.booleans()):
            obj["relations"] = draw(st.one_of(_values, st.lists(st.fixed_dictionaries(
                {"head": st.one_of(st.integers(-1, 4), _values), "tail": st.one_of(st.integers(-1, 4), _values)},
                optional={"type": _type_names}), max_size=3)))
        for key in draw(st.lists(st.sampled_from(["id", "source", "meta", "entites"]), max_size=2)):
            obj[key] = draw(_values)
        lines.append(json.dumps(obj) if draw(st.integers(0, 9)) else draw(st.text(max_size=10)))
    return "\n".join(lines).encode("utf-8")


@st.composite
def structured_fewnerd(draw) -> bytes:
    tags = st.sampled_from(["O", "O", "person-actor", "location-GPE", "B-PER", "x-", "-y", "", "a b", "misc"])
    tokens = st.one_of(st.sampled_from(["Ada", "London", ".", " ", ""]), st.text(alphabet="abcé \t.", max_size=5))
    out = []
    for _ in range(draw(st.integers(0, 3))):
        for _ in range(draw(st.integers(0, 5))):
            tok, tag = draw(tokens), draw(tags)
            out.append(draw(st.sampled_from([f"{tok}\t{tag}", f"{tok}\t{tag}", f"{tok} {tag}", f"{tok}\t{tag}\tx"])))
        out.append("")
    return "\n".join(out).encode("utf-8")


@st.composite
def structured_fewrel(draw) -> bytes:
    def entity():
        return st.one_of(_values, st.tuples(st.text(max_size=3), st.text(max_size=3), st.one_of(
            _values, st.lists(st.lists(st.one_of(st.integers(-1, 6), _values), max_size=3), max_size=2))).map(list))

    item = st.one_of(_values, st.fixed_dictionaries(
        {"tokens": st.one_of(_values, st.lists(st.one_of(st.sampled_from(["Ada", "x", " ", ""]), _values),
                                                max_size=6))},
        optional={"h": entity(), "t": entity()}))
    data = draw(st.one_of(_values, st.dictionaries(st.sampled_from(["P19", "P108", "P1"]),
                                                   st.one_of(_values, st.lists(item, max_size=3)), max_size=3)))
    return json.dumps(data).encode("utf-8")


def _dump(project: Project) -> str:
    with sqlite3.connect(project.db_path) as con:
        return "\n".join(con.iterdump())


def _check_one(project: Project, folder, content: bytes, suffix: str, fmt: str) -> None:
    path = folder / f"f{next(_counter)}{suffix}"
    path.write_bytes(content)
    before = _dump(project)
    try:
        report = import_file(project, path, format=fmt)
    except DataFormatError as exc:
        assert exc.path == str(path) and exc.problem, exc
        assert str(exc).startswith(str(path))
        assert _dump(project) == before, "a failed import changed the database"
        return
    # accepted: it went in whole, and going in again adds nothing
    assert report.added_annotations >= 0 and report.sentences_in_file >= 1
    again = import_file(project, path, format=fmt)
    assert (again.added_sentences, again.added_annotations, again.types_created) == (0, 0, 0)


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    project = Project.create(folder / "proj")
    yield project, folder
    assert project.integrity_check() == "ok"
    project.close()


@FUZZ
@given(content=st.one_of(mutated(SEED_JSONL), structured_jsonl()))
def test_fuzz_jsonl(fuzz_project, content):
    project, folder = fuzz_project
    _check_one(project, folder, content, ".jsonl", "jsonl")


@FUZZ
@given(content=st.one_of(mutated(SEED_FEWNERD), structured_fewnerd()))
def test_fuzz_fewnerd(fuzz_project, content):
    project, folder = fuzz_project
    _check_one(project, folder, content, ".txt", "fewnerd")


@FUZZ
@given(content=st.one_of(mutated(SEED_FEWREL), structured_fewrel()))
def test_fuzz_fewrel(fuzz_project, content):
    project, folder = fuzz_project
    _check_one(project, folder, content, ".json", "fewrel")


def test_fuzz_inputs_are_mostly_malformed(tmp_path):
    """The generators above really produce broken files (otherwise the fuzz proves little)."""
    failures = 0
    total = 0
    with Project.create(tmp_path / "p") as project:
        @settings(max_examples=40, deadline=None, derandomize=True, database=None)
        @given(content=st.one_of(mutated(SEED_JSONL), structured_jsonl()))
        def probe(content):
            nonlocal failures, total
            path = tmp_path / f"p{next(_counter)}.jsonl"
            path.write_bytes(content)
            total += 1
            try:
                import_file(project, path, format="jsonl")
            except DataFormatError:
                failures += 1

        probe()
    assert total >= 30 and failures >= total // 2
