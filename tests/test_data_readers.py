"""Readers: FewRel JSON, Few-NERD token/tag files, the project's JSONL; every malformed case fails cleanly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conpet.core.errors import ConpetError, DataFormatError
from conpet.data import (
    Entity,
    Relation,
    Sentence,
    load_named,
    read_any,
    read_fewnerd,
    read_fewrel,
    read_jsonl,
    read_jsonl_sentences,
    write_jsonl,
)


@pytest.fixture()
def data_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "data"


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def _expect(path: Path, line: int | None, *words: str, reader=None) -> DataFormatError:
    reader = reader or read_any
    with pytest.raises(DataFormatError) as info:
        reader(path)
    err = info.value
    assert Path(err.path).name == path.name
    assert path.name in str(err)
    assert err.line == line, str(err)
    for w in words:
        assert w.lower() in err.problem.lower(), str(err)
    return err


# ---------------------------------------------------------------- FewRel


def test_fewrel_reads_spans_labels_and_meta(data_dir: Path) -> None:
    exs = read_fewrel(data_dir / "fewrel_small.json", data_dir / "pid2name_small.json")
    assert len(exs) == 6
    assert all(e.kind == "relation" and len(e.spans) == 2 for e in exs)
    first = exs[0]
    assert first.text == "Marie Curie married Pierre Curie in 1895 ."
    assert first.text[first.head.start : first.head.end] == "Marie Curie"
    assert first.text[first.tail.start : first.tail.end] == "Pierre Curie"
    assert first.label == "spouse"
    assert first.meta == {"type_id": "P26", "description": "the subject has the object as their spouse"}
    assert first.source == "fewrel_small.json"
    unicode = exs[1]
    assert unicode.text[unicode.tail.start : unicode.tail.end] == "Tomás Ortiz"
    # several index lists: the first one is the marked occurrence
    sp = exs[4]
    assert sp.text[sp.tail.start : sp.tail.end] == "São Paulo"
    assert {e.label for e in exs} == {
        "spouse",
        "place of birth",
        "located in the administrative territorial entity",
    }


def test_fewrel_without_pid2name_uses_ids_and_keeps_ids_stable(data_dir: Path) -> None:
    named = read_fewrel(data_dir / "fewrel_small.json", data_dir / "pid2name_small.json")
    plain = read_fewrel(data_dir / "fewrel_small.json")
    assert [e.label for e in plain][:3] == ["P26", "P26", "P26"]
    assert plain[0].meta["description"] is None
    # the id does not depend on whether names were given, nor on the run
    assert [e.id for e in named] == [e.id for e in plain]
    assert [e.id for e in read_fewrel(data_dir / "fewrel_small.json")] == [e.id for e in plain]


def test_fewrel_exact_duplicates_get_distinct_ids(data_dir: Path) -> None:
    exs = read_fewrel(data_dir / "fewrel_small.json")
    assert exs[0].text == exs[2].text and exs[0].spans == exs[2].spans
    assert exs[0].id != exs[2].id
    assert len({e.id for e in exs}) == len(exs)


def test_fewrel_ids_do_not_depend_on_folder(data_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "fewrel_small.json"
    copy.write_bytes((data_dir / "fewrel_small.json").read_bytes())
    assert [e.id for e in read_fewrel(copy)] == [e.id for e in read_fewrel(data_dir / "fewrel_small.json")]


def test_fewrel_index_out_of_range_fixture(data_dir: Path) -> None:
    _expect(data_dir / "fewrel_index_out_of_range.json", 3, "out of range", "P26", "example 0")


def _fewrel_item(tokens=None, h=None, t=None) -> dict:
    return {
        "tokens": tokens if tokens is not None else ["A", "met", "B", "."],
        "h": h if h is not None else ["a", "Q1", [[0]]],
        "t": t if t is not None else ["b", "Q2", [[2]]],
    }


def _fewrel_file(tmp_path: Path, bad_item) -> Path:
    good = json.dumps(_fewrel_item())
    return _write(tmp_path, "rel.json", '{\n"P1": [\n' + good + ",\n" + json.dumps(bad_item) + "\n]\n}\n")


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ({"tokens": ["A"], "h": ["a", "Q", [[0]]]}, ["missing key 't'"]),
        (_fewrel_item(tokens="A met B"), ["tokens"]),
        (_fewrel_item(tokens=[]), ["tokens"]),
        (_fewrel_item(tokens=["A", 3, "B"]), ["token 1"]),
        (_fewrel_item(h=["a", "Q1"]), ["'h'"]),
        (_fewrel_item(h=["a", "Q1", []]), ["'h'"]),
        (_fewrel_item(h=["a", "Q1", [[]]]), ["'h'"]),
        (_fewrel_item(t=["b", "Q2", [[9]]]), ["out of range"]),
        (_fewrel_item(t=["b", "Q2", [[-1]]]), ["out of range"]),
        (_fewrel_item(t=["b", "Q2", [["2"]]]), ["not an integer"]),
        (_fewrel_item(t=["b", "Q2", [[True]]]), ["not an integer"]),
        (_fewrel_item(tokens=["A", "met", "", "."]), ["empty"]),
        (_fewrel_item(tokens=["A", "met", " ", "."]), ["whitespace"]),
        ("just a string", ["expected an object"]),
    ],
)
def test_fewrel_malformed_items(tmp_path: Path, item, words) -> None:
    err = _expect(_fewrel_file(tmp_path, item), 4, *words)
    assert "example 1" in err.problem


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ('{\n"P1": [\n{"tokens": ["a"],}\n]\n}', 3, ["invalid json", "column"]),
        ("[1, 2]", 1, ["top"]),
        ('{\n"P1": {"tokens": []}\n}', 2, ["list of examples"]),
        ("{}", None, ["no examples"]),
        ('{"P1": []}', None, ["no examples"]),
        ("", None, ["empty"]),
        ("  \n\n ", None, ["empty"]),
    ],
)
def test_fewrel_malformed_files(tmp_path: Path, content: str, line, words) -> None:
    _expect(_write(tmp_path, "rel.json", content), line, *words)


def test_fewrel_duplicate_relation_key(tmp_path: Path) -> None:
    item = json.dumps(_fewrel_item())
    p = _write(tmp_path, "rel.json", '{\n"P1": [' + item + '],\n"P1": [' + item + "]\n}")
    _expect(p, 2, "appears twice")


def test_fewrel_unknown_relation_in_pid2name(data_dir: Path, tmp_path: Path) -> None:
    names = _write(tmp_path, "pid2name.json", '{"P26": ["spouse", "x"]}')
    with pytest.raises(DataFormatError) as info:
        read_fewrel(data_dir / "fewrel_small.json", names)
    assert "P19" in info.value.problem and "pid2name.json" in info.value.problem
    assert info.value.line is not None


def test_fewrel_bad_pid2name(data_dir: Path, tmp_path: Path) -> None:
    names = _write(tmp_path, "pid2name.json", '{\n"P26": ["spouse", "x"],\n"P19": [3]\n}')
    with pytest.raises(DataFormatError) as info:
        read_fewrel(data_dir / "fewrel_small.json", names)
    assert info.value.path.endswith("pid2name.json") and info.value.line == 3


def test_fewrel_pid2name_beside_file_is_used_by_read_any(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "train.json").write_bytes((data_dir / "fewrel_small.json").read_bytes())
    assert read_any(tmp_path / "train.json")[0].label == "P26"
    (tmp_path / "pid2name.json").write_bytes((data_dir / "pid2name_small.json").read_bytes())
    assert read_any(tmp_path / "train.json")[0].label == "spouse"


# ---------------------------------------------------------------- Few-NERD


def test_fewnerd_mentions(data_dir: Path) -> None:
    exs = read_fewnerd(data_dir / "fewnerd_small.txt")
    got = [(e.mention, e.label, e.group) for e in exs]
    assert got == [
        ("Hoch Auditorium", "building-other", "building"),
        ("Richard", "person-other", "person"),
        ("Lilli", "person-other", "person"),
        ("Bodleian Library", "building-library", "building"),
        ("Zoë", "person-actor", "person"),
        ("São Paulo", "location-GPE", "location"),
    ]
    for e in exs:
        assert e.kind == "entity" and e.text[e.spans[0].start : e.spans[0].end] == e.mention
        assert e.source == "fewnerd_small.txt"
    assert exs[0].text == "On June 15 , Hoch Auditorium burned ."
    assert [e.meta["sentence"] for e in exs] == [0, 1, 1, 1, 3, 3]
    assert len({e.id for e in exs}) == len(exs)


def test_fewnerd_adjacent_same_tag_merges_and_crlf(tmp_path: Path) -> None:
    p = _write(tmp_path, "x.txt", "New\tlocation-GPE\r\nYork\tlocation-GPE\r\nParis\tlocation-GPE\r\n\r\n")
    (e,) = read_fewnerd(p)
    assert e.mention == "New York Paris"


def test_fewnerd_duplicate_sentences_get_distinct_ids(tmp_path: Path) -> None:
    block = "Ada\tperson-scholar\nwrote\tO\n\n"
    exs = read_fewnerd(_write(tmp_path, "x.txt", block * 3))
    assert len({e.id for e in exs}) == 3
    assert [e.id for e in exs] == [e.id for e in read_fewnerd(tmp_path / "x.txt")]


def test_fewnerd_no_tab_fixture(data_dir: Path) -> None:
    _expect(data_dir / "fewnerd_no_tab.txt", 3, "no tab")


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("A\tO\nB\tperson-x\tmore\n", 2, ["one tab"]),
        ("A\tO\n\tperson-x\n", 2, ["empty token"]),
        ("A\tO\nB\t\n", 2, ["empty tag"]),
        ("A\tO\nB\tB-PER\n", 2, ["bio"]),
        ("A\tO\nB\tperson-\n", 2, ["coarse-fine"]),
        ("A\tO\n\u00a0\tperson-x\nC\tO\n", 2, ["whitespace"]),
        ("A\tO\nB\tO\n\nC\tO\n", None, ["no entity mentions"]),
        ("", None, ["empty"]),
        ("\n\n", None, ["empty"]),
    ],
)
def test_fewnerd_malformed(tmp_path: Path, content: str, line, words) -> None:
    _expect(_write(tmp_path, "ner.txt", content), line, *words, reader=read_fewnerd)


def test_latin1_file_rejected_with_offset_and_line(data_dir: Path) -> None:
    err = _expect(data_dir / "fewnerd_latin1.txt", 1, "utf-8", "byte offset 3")
    assert "0xe9" in err.problem


def test_non_utf8_on_a_later_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "x.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    _expect(p, 2, "utf-8", "byte offset 28")


def test_bom_accepted(data_dir: Path) -> None:
    (e,) = read_fewnerd(data_dir / "fewnerd_bom.txt")
    assert e.text == "Zoë smiled" and e.mention == "Zoë"


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        read_fewnerd(tmp_path / "nope.txt")
    with pytest.raises(DataFormatError, match="folder"):
        read_any(tmp_path)


# ---------------------------------------------------------------- JSONL


def test_jsonl_sentences_and_examples(data_dir: Path) -> None:
    sents = read_jsonl_sentences(data_dir / "sentences.jsonl")
    assert len(sents) == 4
    assert sents[0].id == "s1" and sents[0].source == "notes.txt"
    assert sents[0].entities[1] == Entity(25, 31, None)
    assert sents[2].entities == () and sents[2].relations == ()
    exs = read_jsonl(data_dir / "sentences.jsonl")
    kinds = [(e.kind, e.label, e.text[e.spans[0].start : e.spans[0].end]) for e in exs]
    assert kinds == [
        ("entity", "person", "Ada Lovelace"),  # the untyped "London" gives no entity example
        ("relation", "place of birth", "Ada Lovelace"),
        ("entity", "person", "Zoë Baker"),
        ("entity", "city", "São Paulo"),
        ("entity", "museum", "Louvre"),
        ("entity", "city", "Paris"),
        ("relation", "located in", "Louvre"),
        ("relation", "contains", "Paris"),
    ]
    rel = exs[1]
    assert rel.text[rel.tail.start : rel.tail.end] == "London"
    assert rel.source == "notes.txt" and exs[2].source == "sentences.jsonl"
    assert rel.meta == {"sentence_id": "s1", "line": 1}
    assert exs[4].meta["line"] == 5  # the blank line counts
    assert len({e.id for e in exs}) == len(exs)


def test_jsonl_bad_json_fixture(data_dir: Path) -> None:
    _expect(data_dir / "sentences_bad_json.jsonl", 2, "invalid json", "column")


def _line(**kw) -> str:
    obj = {"text": "Ada met Bob.", "entities": [{"start": 0, "end": 3, "type": "person"}], "relations": []}
    obj.update(kw)
    return json.dumps(obj)


ENTS2 = [{"start": 0, "end": 3, "type": "person"}, {"start": 8, "end": 11, "type": None}]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ('{"text": "x", "entities": [', ["invalid json", "column"]),
        ("[1, 2]", ["json object"]),
        (json.dumps({"entities": []}), ["missing key 'text'"]),
        (_line(text=3), ["'text' must be a string"]),
        (_line(text="   "), ["non-empty"]),
        (_line(entites=[]), ["unknown key"]),
        (_line(entities={"start": 0}), ["'entities' must be a list"]),
        (_line(relations="none"), ["'relations' must be a list"]),
        (_line(entities=[{"start": 0, "type": "p"}]), ["missing key 'end'"]),
        (_line(entities=[{"start": "0", "end": 3, "type": "p"}]), ["integers"]),
        (_line(entities=[{"start": 0, "end": 3.0, "type": "p"}]), ["integers"]),
        (_line(entities=[{"start": 0, "end": 30, "type": "p"}]), ["out of range"]),
        (_line(entities=[{"start": -1, "end": 3, "type": "p"}]), ["out of range"]),
        (_line(entities=[{"start": 3, "end": 3, "type": "p"}]), ["start < end"]),
        (_line(entities=[{"start": 5, "end": 2, "type": "p"}]), ["start < end"]),
        (_line(entities=[{"start": 3, "end": 4, "type": "p"}]), ["whitespace"]),
        (_line(entities=[{"start": 0, "end": 3, "type": ""}]), ["type"]),
        (_line(entities=[{"start": 0, "end": 3, "type": 5}]), ["type"]),
        (
            _line(entities=[{"start": 0, "end": 3, "type": "p"}, {"start": 2, "end": 6, "type": "q"}]),
            ["overlap"],
        ),
        (
            _line(entities=[{"start": 0, "end": 3, "type": "p"}, {"start": 0, "end": 3, "type": "q"}]),
            ["overlap"],
        ),
        (_line(entities=[{"start": 0, "end": 3, "type": "p", "label": "x"}]), ["unknown key"]),
        (_line(entities=ENTS2, relations=[{"head": 0, "tail": 2, "type": "r"}]), ["tail 2", "entity index"]),
        (_line(entities=ENTS2, relations=[{"head": -1, "tail": 1, "type": "r"}]), ["head -1"]),
        (_line(entities=ENTS2, relations=[{"head": 1, "tail": 1, "type": "r"}]), ["same entity"]),
        (_line(entities=ENTS2, relations=[{"head": 0, "tail": 1}]), ["missing key 'type'"]),
        (_line(entities=ENTS2, relations=[{"head": 0, "tail": 1, "type": None}]), ["relation type"]),
        (_line(entities=ENTS2, relations=[{"head": "0", "tail": 1, "type": "r"}]), ["integers"]),
        (_line(entities=ENTS2, relations=[{"head": 0, "tail": 1, "type": "r"}] * 2), ["duplicate"]),
        (_line(id=7), ["'id' must be a string"]),
        (_line(source=["a"]), ["'source' must be a string"]),
        (_line(meta=[1]), ["'meta' must be an object"]),
    ],
)
def test_jsonl_malformed_lines(tmp_path: Path, bad: str, words: list[str]) -> None:
    p = _write(tmp_path, "data.jsonl", _line() + "\n\n" + bad + "\n" + _line() + "\n")
    _expect(p, 3, *words, reader=read_jsonl)


def test_jsonl_empty_and_annotation_free(tmp_path: Path) -> None:
    _expect(_write(tmp_path, "a.jsonl", ""), None, "empty", reader=read_jsonl)
    _expect(_write(tmp_path, "b.jsonl", "\n \n"), None, "empty", reader=read_jsonl)
    p = _write(tmp_path, "c.jsonl", '{"text": "Nothing marked."}\n')
    assert len(read_jsonl_sentences(p)) == 1
    _expect(p, None, "no typed entities", reader=read_jsonl)


def test_jsonl_round_trip(data_dir: Path, tmp_path: Path) -> None:
    sents = read_jsonl_sentences(data_dir / "sentences.jsonl")
    out = tmp_path / "out.jsonl"
    assert write_jsonl(out, sents) == len(sents)
    again = read_jsonl_sentences(out)
    assert again == sents
    assert [s.meta for s in again] == [s.meta for s in sents]
    assert "Zoë" in out.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes
    assert [e.id for e in read_jsonl(out)][:1] == [e.id for e in read_jsonl(data_dir / "sentences.jsonl")][:1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_jsonl_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    write_jsonl(out, [Sentence("Old text.")])
    before = out.read_bytes()

    def items():
        yield Sentence("New text.")
        raise RuntimeError("crash while producing sentences")

    with pytest.raises(RuntimeError):
        write_jsonl(out, items())
    assert out.read_bytes() == before
    with pytest.raises(TypeError):
        write_jsonl(out, [{"text": "a dict is not a Sentence"}])
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_sentence_validates_on_construction() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Sentence("Ada met Bob.", (Entity(0, 3, "p"), Entity(1, 2, "q")))
    with pytest.raises(ValueError, match="same entity"):
        Sentence("Ada met Bob.", (Entity(0, 3, "p"),), (Relation(0, 0, "r"),))


def test_read_any_sniffs_content(data_dir: Path, tmp_path: Path) -> None:
    for src, name in [
        ("sentences.jsonl", "a.data"),
        ("fewnerd_small.txt", "b.data"),
        ("fewrel_small.json", "c.data"),
    ]:
        (tmp_path / name).write_bytes((data_dir / src).read_bytes())
        assert read_any(tmp_path / name)
    _expect(_write(tmp_path, "d.data", "just some words\n"), 1, "unknown data format")


# ---------------------------------------------------------------- property tests


_token = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(_token, min_size=1, max_size=3), st.sampled_from(["O", "person-actor", "art-music"])
        ),
        min_size=1,
        max_size=8,
    )
)
def test_fewnerd_offsets_round_trip(tmp_path_factory, runs) -> None:
    lines, expected = [], []
    for toks, tag in runs:
        lines += [f"{t}\t{tag}" for t in toks]
    # merge adjacent runs of the same tag, as the format says
    merged: list[tuple[list[str], str]] = []
    for toks, tag in runs:
        if merged and merged[-1][1] == tag:
            merged[-1][0].extend(toks)
        else:
            merged.append((list(toks), tag))
    expected = [(" ".join(toks), tag) for toks, tag in merged if tag != "O"]
    p = tmp_path_factory.mktemp("ner") / "x.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not expected:
        with pytest.raises(DataFormatError):
            read_fewnerd(p)
        return
    got = [(e.text[e.spans[0].start : e.spans[0].end], e.label) for e in read_fewnerd(p)]
    assert got == expected


@st.composite
def _sentences(draw):
    text = draw(st.text(min_size=1, max_size=40).filter(lambda s: s.strip()))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=6)))
    entities = []
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        if a < b and text[a:b].strip():
            entities.append(Entity(a, b, draw(st.one_of(st.none(), st.sampled_from(["p", "q", "ß"])))))
    relations = []
    if len(entities) >= 2:
        relations.append(Relation(0, len(entities) - 1, draw(st.sampled_from(["r", "s"]))))
    return Sentence(text, tuple(entities), tuple(relations), draw(st.sampled_from(["", "id1"])), "")


@settings(max_examples=40, deadline=None)
@given(st.lists(_sentences(), min_size=1, max_size=5))
def test_jsonl_round_trip_property(tmp_path_factory, sents) -> None:
    p = tmp_path_factory.mktemp("jsonl") / "x.jsonl"
    write_jsonl(p, sents)
    assert read_jsonl_sentences(p) == sents


# ---------------------------------------------------------------- real data (../shared/data)


@pytest.mark.shared_data
def test_named_sets_on_shared_data(shared_data: Path) -> None:
    fewrel80 = load_named("fewrel80", shared_data)
    assert len(fewrel80) == 14409 and len(fewrel80.types) == 80 and fewrel80.kind == "relation"
    assert "place served by transport hub" in fewrel80.types
    fewrel16 = load_named("fewrel16", shared_data)
    assert len(fewrel16) == 11200 and len(fewrel16.types) == 16
    for ds in (fewrel80, fewrel16):
        assert len({e.id for e in ds}) == len(ds)
        e = ds[0]
        assert e.text[e.head.start : e.head.end].strip() == e.text[e.head.start : e.head.end]


@pytest.mark.shared_data
def test_fewnerd_on_shared_data_is_read_in_one_pass(shared_data: Path, monkeypatch) -> None:
    """Reading Few-NERD stays linear in the file (it used to be guarded by a wall-clock limit): each file is
    read once, each distinct tag is validated once (not once per token), each mention's id is hashed once."""
    import conpet.data.example as example_module
    import conpet.data.fewnerd as fewnerd_module

    calls: Counter = Counter()

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(fewnerd_module, "read_text", counted("read_text", fewnerd_module.read_text))
    monkeypatch.setattr(fewnerd_module, "_check_tag", counted("check_tag", fewnerd_module._check_tag))
    monkeypatch.setattr(example_module, "example_id", counted("example_id", example_module.example_id))
    ds = load_named("fewnerd", shared_data)
    assert len(ds.types) == 30
    assert 60_000 < len(ds) < 66_000
    assert len({e.id for e in ds}) == len(ds)
    assert len(ds.default_tasks("coarse")) == 8
    assert all(e.text[e.spans[0].start : e.spans[0].end] == e.mention for e in ds.examples[:2000])
    assert calls["read_text"] == 2  # inter_dev.txt and inter_test.txt, once each
    assert calls["check_tag"] == len({(e.source, e.label) for e in ds})  # once per tag and file
    # one hash per mention, and a second one for each exact duplicate (its id gets an occurrence number)
    duplicates = len(ds) - len({(e.text, e.spans, e.label, e.source) for e in ds})
    assert calls["example_id"] == len(ds) + duplicates


def test_load_named_errors(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ConpetError, match="neither a named data set"):
        load_named(tmp_path / "missing.jsonl")
    with pytest.raises(ConpetError, match="missing"):
        load_named("fewrel80", tmp_path)
    monkeypatch.setenv("CONPET_DATA", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    import conpet.data.datasets as ds

    monkeypatch.setattr(ds, "_REPO_ROOT", tmp_path / "repo")
    with pytest.raises(ConpetError) as info:
        load_named("fewnerd")
    assert "nowhere" in str(info.value) and "looked in" in str(info.value)


def test_load_named_file(data_dir: Path) -> None:
    ds = load_named(data_dir / "fewnerd_small.txt")
    assert ds.name == "fewnerd_small" and len(ds) == 6 and ds.default_k == 5
    assert ds.default_tasks(2, seed=1)
