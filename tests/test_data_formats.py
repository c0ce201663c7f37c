"""The format readers and writers: each format's layout and errors, round trips, conversions, detection."""

from __future__ import annotations

import json

import pytest

from conpet.core.errors import DataFormatError
from conpet.data.brat import read_brat, write_brat
from conpet.data.conll import read_conll, write_conll
from conpet.data.doccano import read_doccano, write_doccano
from conpet.data.documents import annotations, mention_annotations
from conpet.data.formats import FORMATS, detect_format, read_sentences, write_sentences
from conpet.data.jsonl import Entity, Relation, Sentence
from conpet.data.labelstudio import read_labelstudio, write_labelstudio
from conpet.data.plaintext import read_plaintext, split_sentences, write_plaintext
from conpet.data.tacred import read_tacred, write_tacred


def _mentions(sentences):
    return [(s.text[e.start:e.end], e.type) for s in sentences for e in s.entities if e.type]


def _relations(sentences):
    return [(s.text[s.entities[r.head].start:s.entities[r.head].end],
             s.text[s.entities[r.tail].start:s.entities[r.tail].end], r.type) for s in sentences for r in s.relations]


# ------------------------------------------------------------------------------------------- plain text
def test_plaintext_lines_paragraphs_bom_crlf_and_blank_lines(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes("\ufeffAda Lovelace was born in London\r\nAlan Turing worked at Bletchley Park\r\n\r\n\r\n"
                  "This paragraph is wrapped over\r\nseveral lines. Dr. Smith met J. R. R. Tolkien in 1950. It "
                  "ended.\r\n".encode())
    got = read_plaintext(f)
    assert [s.text for s in got] == [
        "Ada Lovelace was born in London", "Alan Turing worked at Bletchley Park",
        "This paragraph is wrapped over several lines.", "Dr. Smith met J. R. R. Tolkien in 1950.", "It ended."]
    assert [s.meta["line"] for s in got] == [1, 2, 5, 5, 5] and got[0].source == "notes.txt"
    assert [s.text for s in read_plaintext(f, split="line")][2] == "This paragraph is wrapped over"
    out = tmp_path / "out.txt"
    assert write_plaintext(out, got) == 5
    assert [s.text for s in read_plaintext(out)] == [s.text for s in got]


def test_plaintext_split_keeps_abbreviations_and_errors():
    assert [t for _, t in split_sentences("He met Mr. Brown, e.g. at noon. Then \"Why?\" Because.")] == [
        "He met Mr. Brown, e.g. at noon.", "Then \"Why?\"", "Because."]


def test_plaintext_empty_file_is_an_error(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty"):
        read_plaintext(f)


# ------------------------------------------------------------------------------------------- CoNLL
CONLL_2003 = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n"
              "call NN I-NP O\n. . O O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n"
              "-DOCSTART- -X- -X- O\n\nLondon NNP B-NP I-LOC\nCalling VBG I-NP O\n")


def test_conll_2003_docstart_columns_detected_tag_column_and_iob1(tmp_path):
    f = tmp_path / "eng.train"
    f.write_text(CONLL_2003, encoding="utf-8")
    got = read_conll(f)
    assert [s.text for s in got] == ["EU rejects German call .", "Peter Blackburn", "London Calling"]
    assert _mentions(got) == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER"), ("London", "LOC")]
    assert got[0].meta["line"] == 3
    # the chunk column, chosen: B-NP ... I-NP runs
    chunks = read_conll(f, tag_column=2)
    assert _mentions(chunks)[:2] == [("EU", "NP"), ("rejects", "VP")]
    with pytest.raises(DataFormatError, match="column 0 holds the tokens"):
        read_conll(f, tag_column=0)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_conll(f, tag_column=7)


def test_conll_bioes_and_io_schemes(tmp_path):
    f = tmp_path / "x.bioes"
    f.write_text("New\tB-LOC\nYork\tE-LOC\nand\tO\nParis\tS-LOC\nParis\tS-LOC\n", encoding="utf-8")
    assert _mentions(read_conll(f)) == [("New York", "LOC"), ("Paris", "LOC"), ("Paris", "LOC")]
    io = tmp_path / "io.tsv"
    io.write_text("Ada\tperson\nLovelace\tperson\nin\tO\nLondon\tcity\n", encoding="utf-8")
    assert _mentions(read_conll(io)) == [("Ada Lovelace", "person"), ("London", "city")]
    with pytest.raises(DataFormatError, match="is BIOES, but the file was read as BIO") as err:
        read_conll(f, scheme="BIO")
    assert err.value.line == 2


@pytest.mark.parametrize("content, line, problem", [
    ("Ada B-PER\nLovelace\n", 2, "expected a token and a tag"),
    ("Ada NNP B-PER\nLovelace I-PER\n", 2, "2 columns here, 3 on the first"),
    ("Ada\tB-PER\nLovelace\tPERSON\n", 2, "not 'O' or a BIO tag"),
    ("Ada\t\tB-PER\n", 1, "empty column"),
])
def test_conll_errors_name_the_line(tmp_path, content, line, problem):
    f = tmp_path / "bad.conll"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=problem) as err:
        read_conll(f, scheme="BIO")
    assert err.value.line == line and str(err.value).startswith(f"{f}:{line}")


@pytest.mark.parametrize("scheme", ["BIO", "BIOES", "IO"])
def test_conll_round_trip(tmp_path, scheme):
    f = tmp_path / "eng.conll"
    f.write_text(CONLL_2003, encoding="utf-8")
    first = read_conll(f)
    out = tmp_path / f"out.{scheme}"
    assert write_conll(out, first, scheme) == 3
    back = read_conll(out, scheme=scheme)
    assert [s.text for s in back] == [s.text for s in first]
    assert [s.entities for s in back] == [s.entities for s in first]


def test_conll_writes_overlapping_mentions_as_repeated_sentences(tmp_path):
    nested = Sentence("New York City Hall", (Entity(0, 13, "city"),)), Sentence(
        "New York City Hall", (Entity(0, 18, "building"),))
    out = tmp_path / "nested.conll"
    assert write_conll(out, nested) == 2
    assert annotations(read_conll(out)) == annotations(nested)


# ------------------------------------------------------------------------------------------- brat
BRAT_TXT = "Ada Lovelace was born in\nLondon. She met Babbage.\n\nAlan Turing worked at Bletchley Park.\n"
BRAT_ANN = ("T1\tPerson 0 12\tAda Lovelace\nT2\tCity 25 31\tLondon\nR1\tborn_in Arg1:T1 Arg2:T2\n"
            "T3\tPerson 41 48\tBabbage\nT4\tPerson 51 62\tAlan Turing\nT5\tArgument 73 87\tBletchley Park\n"
            "R2\temployer Arg1:T4 Arg2:T5\nT6\tOrganization 73 87\tBletchley Park\nA1\tNegated T1\n"
            "#1\tAnnotatorNotes T1\tnote\nE1\tMeet:T3\n")


@pytest.fixture
def brat_folder(tmp_path):
    folder = tmp_path / "brat"
    (folder / "sub").mkdir(parents=True)
    (folder / "doc1.txt").write_text(BRAT_TXT, encoding="utf-8")
    (folder / "doc1.ann").write_text(BRAT_ANN, encoding="utf-8")
    (folder / "sub" / "doc2.txt").write_text("Grace Hopper lived.\n", encoding="utf-8")
    (folder / "sub" / "doc2.ann").write_text("T1\tPerson 0 12\tGrace Hopper\n", encoding="utf-8")
    return folder


def test_brat_folder_lines_joined_only_where_annotations_cross(brat_folder):
    got = read_brat(brat_folder)
    texts = [(s.source, s.text) for s in got]
    assert ("doc1.txt", "Ada Lovelace was born in\nLondon. She met Babbage.") in texts  # R1 spans two lines
    assert ("doc1.txt", "Alan Turing worked at Bletchley Park.") in texts
    assert ("sub/doc2.txt", "Grace Hopper lived.") in texts
    assert sorted(_mentions(got)) == sorted([("Ada Lovelace", "Person"), ("London", "City"), ("Babbage", "Person"),
                                             ("Alan Turing", "Person"), ("Bletchley Park", "Organization"),
                                             ("Grace Hopper", "Person")])
    assert sorted(_relations(got)) == [("Ada Lovelace", "London", "born_in"),
                                      ("Alan Turing", "Bletchley Park", "employer")]
    assert read_brat(brat_folder / "doc1.ann") == [s for s in got if s.source == "doc1.txt"]


def test_brat_round_trip(brat_folder, tmp_path):
    first = read_brat(brat_folder)
    assert write_brat(tmp_path / "out", first) == 2
    assert (tmp_path / "out" / "sub" / "doc2.ann").is_file()
    assert annotations(read_brat(tmp_path / "out")) == annotations(first)


@pytest.mark.parametrize("ann, line, problem", [
    ("T1\tPerson 0 5\tAda Lo\n", 1, "the .ann says 'Ada Lo'"),
    ("T1\tPerson 0 3;4 12\tAda Lovelace\n", 1, "discontinuous"),
    ("T1\tPerson 0 3\tAda\nR1\tknows Arg1:T1 Arg2:T9\n", 2, "T9 is not a mention"),
    ("T1\tPerson 0 3\tAda\nT1\tPerson 4 12\tLovelace\n", 2, "defined twice"),
    ("T1\tPerson 0 999\tAda\n", 1, "outside the text"),
    ("X1\tsomething\n", 1, "unknown annotation line"),
])
def test_brat_errors_name_the_ann_line(tmp_path, ann, line, problem):
    (tmp_path / "d.txt").write_text("Ada Lovelace\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text(ann, encoding="utf-8")
    with pytest.raises(DataFormatError, match=problem) as err:
        read_brat(tmp_path / "d.ann")
    assert err.value.path == str(tmp_path / "d.ann") and err.value.line == line


def test_brat_missing_text_and_empty_folder(tmp_path):
    (tmp_path / "lonely.ann").write_text("T1\tPerson 0 3\tAda\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="lonely.txt is missing"):
        read_brat(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no .ann files"):
        read_brat(tmp_path / "empty")


# ------------------------------------------------------------------------------------------- Label Studio
def _ls_export():
    """Two tasks the way Label Studio's JSON export writes them (trimmed)."""
    return [
        {"id": 11, "data": {"text": "Ada Lovelace 🙂 was born in London."},
         "annotations": [
             {"id": 1, "was_cancelled": True, "result": []},
             {"id": 2, "completed_by": 1, "result": [
                 {"id": "a1", "from_name": "label", "to_name": "text", "type": "labels",
                  "value": {"start": 0, "end": 12, "text": "Ada Lovelace", "labels": ["Person"]}},
                 # offsets after the emoji count UTF-16 units, as Label Studio does
                 {"id": "a2", "from_name": "label", "to_name": "text", "type": "labels",
                  "value": {"start": 28, "end": 34, "text": "London", "labels": ["City"]}},
                 {"from_id": "a2", "to_id": "a1", "type": "relation", "direction": "left",
                  "labels": ["place of birth"]},
                 {"id": "c", "from_name": "sentiment", "to_name": "text", "type": "choices",
                  "value": {"choices": ["neutral"]}},
             ]}]},
        {"id": 12, "data": {"text": "Nothing here."}, "annotations": []},
    ]


def test_labelstudio_export_read(tmp_path):
    f = tmp_path / "project-1-at-2024.json"
    f.write_text(json.dumps(_ls_export(), ensure_ascii=False), encoding="utf-8")
    got = read_labelstudio(f)
    assert [s.id for s in got] == ["11", "12"] and got[1].entities == ()
    assert _mentions(got) == [("Ada Lovelace", "Person"), ("London", "City")]
    assert _relations(got) == [("Ada Lovelace", "London", "place of birth")]


@pytest.mark.parametrize("as_predictions", [False, True])
def test_labelstudio_round_trip_and_predictions(tmp_path, as_predictions):
    f = tmp_path / "ls.json"
    f.write_text(json.dumps(_ls_export(), ensure_ascii=False), encoding="utf-8")
    first = read_labelstudio(f)
    out = tmp_path / "out.json"
    assert write_labelstudio(out, first, as_predictions=as_predictions, model_version="m1") == 2
    tasks = json.loads(out.read_text(encoding="utf-8"))
    if as_predictions:
        assert tasks[0]["predictions"][0]["model_version"] == "m1" and "annotations" not in tasks[0]
        assert tasks[0]["predictions"][0]["result"][1]["value"]["start"] == 28  # UTF-16 again
        back = read_labelstudio(out, results="predictions")
    else:
        back = read_labelstudio(out)
    assert annotations(back) == annotations(first)


def test_labelstudio_errors_name_the_task(tmp_path):
    tasks = _ls_export()
    tasks[0]["annotations"][1]["result"][2]["labels"] = []
    f = tmp_path / "ls.json"
    f.write_text(json.dumps(tasks), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"task 0 \(id 11\): result 2: the relation a2 → a1 has no label"):
        read_labelstudio(f)
    f.write_text("[{\"data\": 3}]", encoding="utf-8")
    with pytest.raises(DataFormatError, match="task 0: a task is an object with a 'data' object"):
        read_labelstudio(f)


# ------------------------------------------------------------------------------------------- doccano
def test_doccano_both_layouts_round_trip_and_errors(tmp_path):
    f = tmp_path / "admin.jsonl"
    f.write_text(json.dumps({"id": 7, "text": "Ada Lovelace was born in London.", "Comments": [],
                             "entities": [{"id": 3, "label": "Person", "start_offset": 0, "end_offset": 12},
                                          {"id": 4, "label": "City", "start_offset": 25, "end_offset": 31}],
                             "relations": [{"id": 1, "from_id": 3, "to_id": 4, "type": "born in"}]}) + "\n\n"
                 + json.dumps({"text": "Grace Hopper", "label": [[0, 12, "Person"]]}) + "\n", encoding="utf-8")
    got = read_doccano(f)
    assert _mentions(got) == [("Ada Lovelace", "Person"), ("London", "City"), ("Grace Hopper", "Person")]
    assert _relations(got) == [("Ada Lovelace", "London", "born in")] and got[0].meta["line"] == 1
    out = tmp_path / "out.jsonl"
    write_doccano(out, got)
    assert detect_format(out) == "doccano"
    assert annotations(read_doccano(out)) == annotations(got)
    f.write_text(json.dumps({"text": "Ada", "entities": [], "relations": [{"from_id": 1, "to_id": 2,
                                                                           "type": "x"}]}), encoding="utf-8")
    with pytest.raises(DataFormatError, match="from_id 1 is not an entity id") as err:
        read_doccano(f)
    assert err.value.line == 1


# ------------------------------------------------------------------------------------------- TACRED
def _tacred():
    return [
        {"id": "e1", "docid": "APW_1", "relation": "per:title",
         "token": ["Chief", "Financial", "Officer", "Douglas", "Flint", "-LRB-", "CFO", "-RRB-", "said", "."],
         "subj_start": 3, "subj_end": 4, "obj_start": 0, "obj_end": 2, "subj_type": "PERSON", "obj_type": "TITLE",
         "stanford_pos": ["NNP"] * 10},
        {"id": "e2", "docid": "APW_1", "relation": "no_relation",
         "token": ["Flint", "met", "Smith", "."], "subj_start": 0, "subj_end": 0, "obj_start": 2, "obj_end": 2,
         "subj_type": "PERSON", "obj_type": "PERSON"},
    ]


def test_tacred_read_no_relation_and_round_trip(tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps(_tacred()), encoding="utf-8")
    got = read_tacred(f)
    assert got[0].text == "Chief Financial Officer Douglas Flint ( CFO ) said ."
    assert _relations(got) == [("Douglas Flint", "Chief Financial Officer", "per:title"),
                               ("Flint", "Smith", "no_relation")]
    assert got[0].meta["subj_type"] == "PERSON" and not _mentions(got)
    dropped = read_tacred(f, no_relation="drop")
    assert _relations(dropped) == _relations(got)[:1] and len(dropped) == 2
    assert _mentions(read_tacred(f, entity_types=True))[:2] == [("Douglas Flint", "PERSON"),
                                                               ("Chief Financial Officer", "TITLE")]
    out = tmp_path / "out.json"
    assert write_tacred(out, got) == 2
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written[0]["subj_start"] == 3 and written[0]["subj_end"] == 4 and written[0]["subj_type"] == "PERSON"
    assert annotations(read_tacred(out)) == annotations(got)


def test_tacred_errors_name_the_example(tmp_path):
    items = _tacred()
    items[1]["obj_end"] = 9
    f = tmp_path / "dev.json"
    f.write_text(json.dumps(items), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"example 1 \(id e2\): obj_start..obj_end must be token indices"):
        read_tacred(f)


# ------------------------------------------------------------------------------------------- conversions
def _rich():
    """Entities (one nested in another), a typed and an untyped relation argument."""
    return [
        Sentence("Ada Lovelace was born in London .", (Entity(0, 12, "person"), Entity(25, 31, "city")),
                 (Relation(0, 1, "place of birth"),), source="a"),
        Sentence("Alan Turing worked at Bletchley Park .", (Entity(0, 11, "person"), Entity(22, 36, None)),
                 (Relation(0, 1, "employer"),), source="a"),
        Sentence("Grace Hopper visited New York City .", (Entity(0, 12, "person"), Entity(21, 34, "city")),
                 source="b"),
    ]


_TARGETS = {"jsonl": "x.jsonl", "doccano": "x.jsonl", "labelstudio": "x.json", "tacred": "x.json",
            "fewrel": "x.json", "conll": "x.conll", "fewnerd": "x.txt", "text": "x.txt", "brat": "x",
            "ontonotes": "x.txt", "ace": "x.jsonl"}


@pytest.mark.parametrize("fmt", sorted(_TARGETS))
def test_every_writer_converts_what_its_format_holds(tmp_path, fmt):
    source = _rich()
    out = tmp_path / fmt / _TARGETS[fmt]
    out.parent.mkdir()
    write_sentences(out, source, fmt)
    assert detect_format(out) == fmt
    _, back = read_sentences(out)
    spec = FORMATS[fmt]
    want = {a for a in mention_annotations(source)
            if (a[0] == "entity" and spec.entities) or (a[0] == "relation" and spec.relations)}
    if fmt == "brat":  # brat type names are single tokens
        want = {a[:-1] + (a[-1].replace(" ", "_"),) for a in want}
    assert mention_annotations(back) == want
    kept = [s for s in source if s.relations] if fmt in ("fewrel", "tacred") else source  # one item per pair
    assert sorted({s.text.replace(" ", "") for s in back}) == sorted({s.text.replace(" ", "") for s in kept})


def test_conversion_chain_brat_to_labelstudio_to_doccano(brat_folder, tmp_path):
    first = read_brat(brat_folder)
    write_labelstudio(tmp_path / "ls.json", first)
    write_doccano(tmp_path / "d.jsonl", read_labelstudio(tmp_path / "ls.json"))
    assert annotations(read_doccano(tmp_path / "d.jsonl")) == annotations(first)


def test_detection_by_extension_and_content(tmp_path, brat_folder):
    cases = {
        "a.txt": "Just a sentence.\nAnother one.\n",
        "fewnerd.txt": "Ada\tperson-scholar\nLovelace\tperson-scholar\n",
        "bio.txt": "Ada\tB-PER\nLovelace\tI-PER\n",
        "wide.txt": "Ada\tNNP\tB-PER\n",
        "eng.train": CONLL_2003,
        "tacred.json": json.dumps(_tacred()),
        "ls.json": json.dumps(_ls_export()),
        "fewrel.json": json.dumps({"P1": []}),
        "p.jsonl": json.dumps({"text": "x", "entities": []}),
        "d.jsonl": json.dumps({"text": "x", "label": []}),
    }
    want = {"a.txt": "text", "fewnerd.txt": "fewnerd", "bio.txt": "conll", "wide.txt": "conll",
            "eng.train": "conll", "tacred.json": "tacred", "ls.json": "labelstudio", "fewrel.json": "fewrel",
            "p.jsonl": "jsonl", "d.jsonl": "doccano"}
    for name, content in cases.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        assert detect_format(tmp_path / name) == want[name], name
    assert detect_format(brat_folder) == "brat" and detect_format(brat_folder / "doc1.txt") == "brat"
    (tmp_path / "list.json").write_text('[{"sentence": "x"}]', encoding="utf-8")
    with pytest.raises(DataFormatError, match="a JSON list, but not TACRED"):
        detect_format(tmp_path / "list.json")
    (tmp_path / "notes.dat").write_text("words and more words\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="cannot tell the file's format; give it .*text.*brat"):
        detect_format(tmp_path / "notes.dat")


def test_unknown_option_is_refused(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("A sentence.\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="takes no option tag_column .*split"):
        read_sentences(f, "text", tag_column=2)


def test_a_failed_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "keep.json"
    out.write_text("old", encoding="utf-8")
    with pytest.raises(TypeError, match="item 1 is str, not a Sentence"):
        write_sentences(out, [Sentence("New York City", (Entity(0, 8, "city"),)), "not a sentence"], "labelstudio")
    assert out.read_text(encoding="utf-8") == "old" and list(tmp_path.iterdir()) == [out]


# ------------------------------------------------------------------------------------------- OntoNotes / BBN, ACE
ONTONOTES = ("5\t7\tOfficials said on Friday that Acme Corp would close its plant .\t/organization/company\n"
             "\n"
             "0\t1\tOfficials said on Friday that Acme Corp would close its plant .\t/person\n"
             "0\t2\tAda Lovelace wrote notes .\t/person/author\n")


def test_ontonotes_bbn_layout_read_write_and_errors(tmp_path):
    from conpet.data.ontonotes import read_ontonotes, write_ontonotes

    f = tmp_path / "train.txt"
    f.write_text(ONTONOTES, encoding="utf-8")
    assert detect_format(f) == "ontonotes"
    got = read_ontonotes(f)
    assert _mentions(got) == [("Acme Corp", "/organization/company"), ("Officials", "/person"),
                              ("Ada Lovelace", "/person/author")]
    assert [s.meta["line"] for s in got] == [1, 3, 4]
    out = tmp_path / "out.txt"
    assert write_ontonotes(out, got) == 3
    assert out.read_text(encoding="utf-8").splitlines()[0] == ONTONOTES.splitlines()[0]
    assert annotations(read_ontonotes(out)) == annotations(got)
    f.write_text("3\t9\tAda Lovelace wrote notes .\t/person\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="tokens 3..9 are not a mention") as err:
        read_ontonotes(f)
    assert err.value.line == 1
    f.write_text("0\t1\tAda\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected 4 tab-separated fields"):
        read_ontonotes(f)


ACE_DOC = {"doc_key": "CNN_1", "sentences": [["Ada", "lives", "in", "London", "."],
                                             ["She", "works", "for", "Acme", "Corp", "."]],
           "ner": [[[0, 0, "PER"], [3, 3, "GPE"]], [[5, 5, "PER"], [8, 9, "ORG"]]],
           "relations": [[[0, 0, 3, 3, "PHYS"]], [[5, 5, 8, 9, "ORG-AFF"]]], "clusters": []}


def test_ace_jsonl_document_offsets_round_trip_and_errors(tmp_path):
    from conpet.data.ace import read_ace, write_ace

    f = tmp_path / "ace2005.jsonl"
    f.write_text(json.dumps(ACE_DOC) + "\n", encoding="utf-8")
    assert detect_format(f) == "ace"
    got = read_ace(f)
    assert [s.text for s in got] == ["Ada lives in London .", "She works for Acme Corp ."]
    assert _relations(got) == [("Ada", "London", "PHYS"), ("She", "Acme Corp", "ORG-AFF")]
    assert not _mentions(got) and got[0].source == "CNN_1"
    typed = read_ace(f, entity_types=True)
    assert _mentions(typed) == [("Ada", "PER"), ("London", "GPE"), ("She", "PER"), ("Acme Corp", "ORG")]
    out = tmp_path / "out.jsonl"
    assert write_ace(out, typed) == 2
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["relations"] == ACE_DOC["relations"] and written["ner"] == ACE_DOC["ner"]
    assert annotations(read_ace(out, entity_types=True)) == annotations(typed)
    bad = dict(ACE_DOC, relations=[[[0, 0, 7, 7, "PHYS"]], []])
    f.write_text(json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="sentence 0, relation 0 tail: tokens 7..7 are not inside") as err:
        read_ace(f)
    assert err.value.line == 1
