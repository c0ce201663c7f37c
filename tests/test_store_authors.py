"""Who did what: every annotation, decision, type edit and run records its author (the project's user:
``--user``, else $CONPET_USER, else the operating-system user), on SQLite and on PostgreSQL."""

from __future__ import annotations

import getpass
import json

import pytest
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)

from conpet.cli.main import main as conpet_main
from conpet.data.example import Span
from conpet.store import NewPrediction, Project, StoreError
from conpet.store.identity import check_user, default_user

TEXT = "Ada Lovelace was born in London ."


def test_the_default_user_is_conpet_user_else_the_os_user(monkeypatch):
    monkeypatch.delenv("CONPET_USER", raising=False)
    assert default_user() == getpass.getuser()
    monkeypatch.setenv("CONPET_USER", "ana")
    assert default_user() == "ana"
    assert check_user("  Ana   Lima ") == "Ana Lima"
    with pytest.raises(StoreError, match="must not be empty"):
        check_user("   ")
    with pytest.raises(StoreError, match="at most 200"):
        check_user("x" * 201)


def test_annotations_decisions_type_edits_and_runs_record_their_author(project_where, monkeypatch):
    monkeypatch.setenv("CONPET_USER", "ana")
    with Project.create(project_where) as p:
        assert p.user == "ana"
        p.types.add("person")
        p.types.add("place")
        s = p.sentences.add(TEXT)
        a = p.annotations.add_entity(s.id, 0, 12, "person")
        assert a.author == "ana"
        p.user = "bob"
        assert p.annotations.edit(a.id, span=(4, 12)).author == "bob"
        p.types.rename("place", "city")
        p.types.describe("city", "a town")
        run = p.runs.start("dynamic")
        assert run.started_by == "bob" and p.runs.get(run.id).started_by == "bob"
        p.predictions.add_many(run.id, [NewPrediction(sentence_id=s.id, spans=(Span(25, 31),), label="city",
                                                      score=0.9)])
        pred = p.predictions.for_sentence(s.id)[0]
        p.user = "carol"
        assert p.annotations.accept_prediction(pred.id).author == "carol"
        assert p.annotations.delete(a.id).author == "carol"
        city = p.types.get("city")
        assert (city.created_by, city.edited_by) == ("ana", "bob")
        assert [(e[0], e[2]) for e in p.types.edits("city")] == [("add", "ana"), ("rename", "bob"),
                                                                  ("describe", "bob")]
        assert p.types.edits("city")[1][1] == "place -> city"
        with pytest.raises(StoreError, match="must not be empty"):
            p.user = ""
        assert [h.author for h in p.annotations.history(a.id)] == ["ana", "bob", "carol"]


def test_the_cli_records_its_user(project_where, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONPET_USER", "ana")
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"text": TEXT, "entities": [{"start": 0, "end": 12, "type": "person"}]}) + "\n")
    assert conpet_main(["import-data", project_where, str(data), "--quiet", "--user", "dora"]) == 0
    with Project.open(project_where) as p:
        assert [a.author for a in p.annotations.for_sentence(1)] == ["dora (import one.jsonl)"]
        assert p.types.get("person").created_by == "dora (import one.jsonl)"
        assert p.user == "ana"  # the name was the command's only
    assert conpet_main(["import-data", project_where, str(data), "--quiet", "--user", " "]) == 1
    assert "user name must not be empty" in capsys.readouterr().err


def test_the_jsonl_export_names_who_made_each_annotation(project_where, tmp_path):
    with Project.create(project_where) as p:
        p.user = "ana"
        p.types.add("person")
        p.types.add("place")
        p.types.add("born in", "relation")
        s = p.sentences.add(TEXT)
        p.annotations.add_entity(s.id, 25, 31, "place")
        p.user = "bob"
        p.annotations.add_entity(s.id, 0, 12, "person")
        p.annotations.add_relation(s.id, (0, 12), (25, 31), "born in")
        out = tmp_path / "out.jsonl"
        from conpet.store.exporter import export_jsonl
        from conpet.store.importer import import_file

        export_jsonl(p, out)
    line = json.loads(out.read_text().splitlines()[-1])
    assert [e["type"] for e in line["entities"]] == ["person", "place"]  # in text order, as before
    assert line["meta"]["by"] == {"entities": ["bob", "ana"], "relations": ["bob"]}
    with Project.create(tmp_path / "again") as q:  # the export still imports
        assert import_file(q, out).added_annotations == 3
