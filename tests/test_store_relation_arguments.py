"""A relation type's allowed head and tail entity types: stored (schema version 3), enforced on every
gold write, kept consistent when entity types change, carried by the project JSONL."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)

from conpet.core.errors import DataFormatError
from conpet.store import InvalidAnnotationError, Project, StoreError, schema
from conpet.store.exporter import export_file, export_jsonl
from conpet.store.importer import import_file

TEXT = "Ada Lovelace was born in London."
ADA, LONDON = (0, 12), (25, 31)


@pytest.fixture
def project(project_where):
    """The same tests on a project folder (SQLite) and on a PostgreSQL server."""
    with Project.create(project_where) as p:
        for name in ("Person", "City", "Company"):
            p.types.add(name, "entity")
        p.types.add("born_in", "relation")
        p.sentences.add(TEXT)
        yield p


def test_arguments_are_set_and_read_back(project):
    rec = project.types.set_arguments("born_in", head=["Person"], tail=["City", "Company"])
    ids = {t.name: t.id for t in project.types.list()}
    assert rec.head_type_ids == (ids["Person"],) and rec.tail_type_ids == (ids["City"], ids["Company"])
    assert project.types.get("born_in").tail_type_ids == rec.tail_type_ids
    assert rec.allows("head", ids["Person"]) and not rec.allows("head", ids["City"]) and rec.allows("head", None)
    rec = project.types.set_arguments("born_in", tail=[])  # empty: any; head unchanged
    assert rec.head_type_ids == (ids["Person"],) and rec.tail_type_ids == ()


def test_only_entity_types_restrict_only_relation_types(project):
    with pytest.raises(StoreError, match="'born_in' is a relation type, not an entity type"):
        project.types.set_arguments("born_in", head=["born_in"])
    with pytest.raises(StoreError, match="'Person' is an entity type, not a relation type"):
        project.types.set_arguments("Person", head=["City"])
    assert project.types.get("born_in").head_type_ids == ()


def test_a_relation_whose_arguments_do_not_fit_is_refused_naming_the_types(project):
    project.types.set_arguments("born_in", head=["Person"], tail=["City"])
    project.annotations.add_entity(1, *ADA, "Person")
    project.annotations.add_entity(1, *LONDON, "Company")
    with pytest.raises(InvalidAnnotationError,
                       match=r"'born_in' takes a tail of type City, and the tail 'London' is 'Company'"):
        project.annotations.add_relation(1, ADA, LONDON, "born_in")
    assert project.annotations.count(type="born_in") == 0
    # untyped arguments are not restricted; a fitting pair is taken
    project.annotations.add_relation(1, ADA, (17, 21), "born_in")  # Ada -> "born" (no entity label)
    with pytest.raises(InvalidAnnotationError, match="takes a head of type Person"):
        project.annotations.add_relation(1, LONDON, ADA, "born_in")


def test_retyping_a_mention_that_a_relation_uses_is_refused(project):
    project.types.set_arguments("born_in", tail=["City"])
    project.annotations.add_entity(1, *ADA, "Person")
    london = project.annotations.add_entity(1, *LONDON, "City")
    project.annotations.add_relation(1, ADA, LONDON, "born_in")
    with pytest.raises(InvalidAnnotationError, match=r"'London' is the tail of a 'born_in' relation, which takes "
                                                     r"a tail of type City, not 'Company'"):
        project.annotations.edit(london.id, type="Company")
    assert project.annotations.get(london.id).type_name == "City"


def test_narrowing_below_existing_gold_relations_is_refused(project):
    project.annotations.add_entity(1, *ADA, "Person")
    project.annotations.add_entity(1, *LONDON, "Company")
    project.annotations.add_relation(1, ADA, LONDON, "born_in")
    with pytest.raises(StoreError, match=r"cannot restrict the tail of 'born_in' to City: 1 gold relation\(s\) "
                                         r"have a tail of another type: sentence 1 \('Company'\)"):
        project.types.set_arguments("born_in", tail=["City"])
    assert project.types.get("born_in").tail_type_ids == ()


def test_deleting_or_renaming_an_entity_type_keeps_the_lists_consistent(project, tmp_path):
    project.types.set_arguments("born_in", head=["Person", "Company"], tail=["City"])
    project.types.rename("Company", "Organisation")
    out = tmp_path / "out.jsonl"
    export_jsonl(project, out)
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {"relation_type": "born_in", "head_types": ["Organisation", "Person"], "tail_types": ["City"]}
    project.types.delete("Organisation")
    person = project.types.get("Person").id
    assert project.types.get("born_in").head_type_ids == (person,)
    with project.read() as s:
        assert s.connection().exec_driver_sql("SELECT count(*) FROM relation_arguments").scalar() == 2


def test_export_import_round_trip_carries_the_lists(project, tmp_path):
    project.types.set_arguments("born_in", head=["Person"], tail=["City"])
    project.annotations.add_entity(1, *ADA, "Person")
    project.annotations.add_entity(1, *LONDON, "City")
    project.annotations.add_relation(1, ADA, LONDON, "born_in")
    out = tmp_path / "out.jsonl"
    export_file(project, out)  # the CLI's path
    with Project.create(tmp_path / "q") as q:
        import_file(q, out)
        rel = q.types.get("born_in")
        ids = {t.name: t.id for t in q.types.list()}
        assert rel.head_type_ids == (ids["Person"],) and rel.tail_type_ids == (ids["City"],)
        assert q.annotations.count(type="born_in") == 1
        assert "Company" not in ids


def test_an_old_file_without_declarations_still_imports(tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"text": TEXT, "entities": [{"start": 0, "end": 12, "type": "Person"},
                                                          {"start": 25, "end": 31, "type": "City"}],
                               "relations": [{"head": 0, "tail": 1, "type": "born_in"}]}) + "\n")
    with Project.create(tmp_path / "q") as q:
        report = import_file(q, old)
        assert report.added_annotations == 3
        assert q.types.get("born_in").head_type_ids == ()


def test_an_import_whose_relations_do_not_fit_is_refused_and_changes_nothing(project, tmp_path):
    project.types.set_arguments("born_in", head=["Person"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n" + json.dumps({"text": "Acme was born in Paris.",
                                      "entities": [{"start": 0, "end": 4, "type": "Company"},
                                                   {"start": 17, "end": 22, "type": "City"}],
                                      "relations": [{"head": 0, "tail": 1, "type": "born_in"}]}) + "\n")
    before = project.counts()
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: 'born_in' takes a head of type Person, and the head "
                                              r"'Acme' is 'Company'"):
        import_file(project, bad)
    assert project.counts() == before


def test_a_declaration_that_contradicts_the_project_is_refused(project, tmp_path):
    project.types.set_arguments("born_in", head=["Person"])
    f = tmp_path / "decl.jsonl"
    f.write_text(json.dumps({"relation_type": "born_in", "head_types": ["Company"]}) + "\n"
                 + json.dumps({"text": "Paris is big."}) + "\n")
    with pytest.raises(DataFormatError, match="takes a head of type Company in this file, but Person in the project"):
        import_file(project, f)
    assert project.sentences.by_text("Paris is big.") is None


def test_a_bad_declaration_line_is_named(tmp_path):
    f = tmp_path / "decl.jsonl"
    f.write_text(json.dumps({"relation_type": "born_in", "head_types": "Person"}) + "\n"
                 + json.dumps({"text": "Paris is big."}) + "\n")
    with Project.create(tmp_path / "q") as q, pytest.raises(DataFormatError, match=r"decl.jsonl:1: 'head_types' must"):
        import_file(q, f)


def test_a_version_2_project_upgrades_and_takes_lists(tmp_path, fixtures_dir):
    """A database made at schema version 2 (the version-1 fixture brought to 0002) opens, is backed up
    and upgraded to version 3, keeps its data and takes argument lists."""
    folder = tmp_path / "old"
    folder.mkdir()
    db = folder / "project.sqlite"
    shutil.copy(fixtures_dir / "store" / "project_v1" / "project.sqlite", db)
    schema.upgrade(db, "0002")
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT version FROM schema_version").fetchone()[0] == 2
        assert "relation_arguments" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    with Project.open(folder) as p:
        assert p.upgrade is not None and p.upgrade.from_version == 2 and p.upgrade.to_version == schema.head_version()
        assert p.upgrade.backup is not None and p.upgrade.backup.name.startswith("project.sqlite.bak-v2-")
        rel = p.types.get("born in")
        assert rel.head_type_ids == () and rel.tail_type_ids == ()
        assert p.annotations.count(type="born in") == 1
        rel = p.types.set_arguments("born in", head=["person"], tail=["location"])
        assert rel.head_type_ids == (p.types.get("person").id,)
        with pytest.raises(InvalidAnnotationError, match="takes a head of type person"):
            p.annotations.add_relation(1, (25, 31), (0, 12), "born in")
        assert p.integrity_check() == "ok"


def test_accepting_a_predicted_relation_that_does_not_fit_is_refused(project):
    from conpet.data.example import Span
    from conpet.store import NewPrediction

    project.types.set_arguments("born_in", head=["Person"])
    project.annotations.add_entity(1, *LONDON, "City")
    run = project.runs.start("dynamic", purpose="predict")
    project.predictions.add_many(run.id, [NewPrediction(1, (Span(*LONDON), Span(*ADA)), "born_in", 0.9)])
    pred = project.predictions.for_run(run.id)[0]
    with pytest.raises(InvalidAnnotationError, match="'born_in' takes a head of type Person, and the head 'London'"):
        project.annotations.accept_prediction(pred.id)
    assert project.annotations.count(type="born_in") == 0


def test_the_cli_import_refuses_relations_that_do_not_fit(project, tmp_path, capsys):
    from conpet import cli

    project.types.set_arguments("born_in", head=["Person"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "Acme was born in Paris.",
                               "entities": [{"start": 0, "end": 4, "type": "Company"},
                                            {"start": 17, "end": 22, "type": "City"}],
                               "relations": [{"head": 0, "tail": 1, "type": "born_in"}]}) + "\n")
    folder = project.where
    project.close()
    assert cli.main(["import-data", folder, str(bad)]) != 0
    assert "bad.jsonl:1: 'born_in' takes a head of type Person, and the head 'Acme' is 'Company'" in capsys.readouterr().err
