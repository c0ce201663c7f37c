"""Importing and exporting a project in the other formats: detection, --format, reader options, round trips."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conpet.cli.main import main as conpet_main
from conpet.core.errors import DataFormatError
from conpet.store import Project
from conpet.store.exporter import export_file
from conpet.store.importer import import_file

JSONL = [
    {"text": "Ada Lovelace was born in London .",
     "entities": [{"start": 0, "end": 12, "type": "person"}, {"start": 25, "end": 31, "type": "city"}],
     "relations": [{"head": 0, "tail": 1, "type": "place of birth"}]},
    {"text": "Alan Turing worked at Bletchley Park .",
     "entities": [{"start": 0, "end": 11, "type": "person"}, {"start": 22, "end": 36, "type": None}],
     "relations": [{"head": 0, "tail": 1, "type": "employer"}]},
    {"text": "Nothing to see here ."},
]


def _gold(db_path):
    with sqlite3.connect(db_path) as con:
        return sorted(con.execute(
            "SELECT s.text, a.kind, t.name, v.start, v.\"end\", v.tail_start, v.tail_end "
            "FROM annotation_versions v JOIN annotations a ON a.id = v.annotation_id "
            "JOIN sentences s ON s.id = a.sentence_id JOIN knowledge_types t ON t.id = v.type_id "
            "WHERE v.is_current = 1 AND v.status = 'gold'").fetchall())


def _texts(db_path):
    with sqlite3.connect(db_path) as con:
        return sorted(r[0] for r in con.execute("SELECT text FROM sentences"))


@pytest.fixture
def source_project(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in JSONL) + "\n", encoding="utf-8")
    with Project.create(tmp_path / "src") as p:
        import_file(p, f)
    return tmp_path / "src"


@pytest.mark.parametrize("fmt, name", [("brat", "out-brat"), ("labelstudio", "ls.json"), ("doccano", "d.jsonl"),
                                       ("jsonl", "o.jsonl")])
def test_export_then_import_gives_the_same_gold(source_project, tmp_path, fmt, name):
    out = tmp_path / name
    with Project.open(source_project) as p:
        assert export_file(p, out, fmt) == 3
    with Project.create(tmp_path / "dst") as q:
        report = import_file(q, out)  # the format is detected
        assert report.format == fmt
    want = _gold(source_project / "project.sqlite")
    if fmt == "brat":  # brat type names are single tokens
        want = sorted((r[0], r[1], r[2].replace(" ", "_"), *r[3:]) for r in want)
    assert _gold(tmp_path / "dst" / "project.sqlite") == want
    assert _texts(tmp_path / "dst" / "project.sqlite") == _texts(source_project / "project.sqlite")


def test_plain_text_file_imports_as_sentences(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("Ada Lovelace was born in London. She wrote notes.\n\nAlan Turing worked at Bletchley.\n",
                 encoding="utf-8")
    with Project.create(tmp_path / "p") as p:
        report = import_file(p, f)
        assert (report.format, report.added_sentences, report.added_annotations) == ("text", 3, 0)


def test_cli_format_and_tag_column(tmp_path, capsys):
    f = tmp_path / "eng.data"
    f.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n",
                 encoding="utf-8")
    folder = tmp_path / "proj"
    assert conpet_main(["import-data", str(folder), str(f), "--format", "conll", "--tag-column", "2"]) == 0
    assert "(conll)" in capsys.readouterr().out
    with Project.open(folder) as p:
        assert sorted(t.name for t in p.types.list()) == ["NP", "VP"]
    out = tmp_path / "export"
    assert conpet_main(["export-data", str(folder), str(out), "--format", "brat"]) == 0
    assert "note" not in capsys.readouterr().out and (out / "eng.txt").is_file()
    conll = tmp_path / "x.conll"
    assert conpet_main(["export-data", str(folder), str(conll), "--format", "conll", "--option", "scheme=BIOES"]) == 0
    assert "holds no relations" in capsys.readouterr().out
    assert conll.read_text(encoding="utf-8").splitlines()[:2] == ["EU\tS-NP", "rejects\tS-VP"]
    assert conpet_main(["export-data", str(folder), str(conll), "--format", "conll", "--option", "nope=1"]) == 1
    assert "takes no option nope" in capsys.readouterr().err


def test_cli_bad_option_and_bad_file_change_nothing(tmp_path, capsys):
    folder = tmp_path / "proj"
    f = tmp_path / "bad.conll"
    f.write_text("Ada B-PER\nLovelace I-PER\nwas\n", encoding="utf-8")
    assert conpet_main(["import-data", str(folder), str(f)]) == 1
    assert f"{f}:3: expected a token and a tag" in capsys.readouterr().err
    assert conpet_main(["import-data", str(folder), str(f), "--option", "nonsense"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err
    with Project.open(folder) as p:
        assert p.counts()["sentences"] == 0


def test_folder_is_only_read_as_brat(tmp_path):
    (tmp_path / "docs").mkdir()
    with Project.create(tmp_path / "p") as p, pytest.raises(DataFormatError, match="only brat"):
        import_file(p, tmp_path / "docs", "jsonl")
