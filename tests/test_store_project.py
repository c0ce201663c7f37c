"""Project store: opening and creating, types, sentences, annotations with history, records."""

from __future__ import annotations

import dataclasses

import pytest
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)

from conpet.core.errors import ConpetError
from conpet.store import (
    AnnotationRecord,
    InvalidAnnotationError,
    NotAProjectError,
    Project,
    SentenceRecord,
    StoreError,
    TypeInUseError,
    TypeRecord,
)

TEXT = "Ada Lovelace was born in London."


@pytest.fixture
def project(project_where):
    """The same tests on a project folder (SQLite) and on a PostgreSQL server."""
    p = Project.create(project_where, name="test")
    yield p
    p.close()


def test_create_lays_out_the_folder_and_open_reads_it_back(tmp_path):
    folder = tmp_path / "p"
    with Project.create(folder, name="My project") as p:
        assert (folder / "project.sqlite").is_file()
        assert (folder / "modules").is_dir()
        info = p.info()
        assert info.name == "My project" and info.schema_version >= 1
    with Project.open(folder) as p:
        assert p.info().name == "My project"
        assert p.upgrade is None
    with pytest.raises(StoreError, match="already holds a project"):
        Project.create(folder)
    with Project.open_or_create(folder) as p:
        assert p.info().name == "My project"
    with Project.open_or_create(tmp_path / "q", name="Q") as p:
        assert p.info().name == "Q"


def test_open_refuses_what_is_not_a_project(tmp_path):
    with pytest.raises(NotAProjectError, match="no project.sqlite"):
        Project.open(tmp_path)
    (tmp_path / "project.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(NotAProjectError):
        Project.open(tmp_path)
    assert issubclass(NotAProjectError, ConpetError)


def test_every_connection_has_wal_foreign_keys_and_busy_timeout(project):
    if project.is_server:
        pytest.skip("SQLite's settings (a server project has none of these)")
    with project.read() as s:
        conn = s.connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert project.integrity_check() == "ok"


def test_types_add_rename_describe_colour_shortcut(project):
    t = project.types.add("person", description="a human", shortcut="1")
    assert isinstance(t, TypeRecord) and t.kind == "entity" and t.colour.startswith("#")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "x"  # type: ignore[misc]
    r = project.types.add("born in", "relation")
    assert r.kind == "relation"
    with pytest.raises(StoreError, match="already"):
        project.types.add("person")
    with pytest.raises(StoreError, match="shortcut '1' is already used by type 'person'"):
        project.types.add("place", shortcut="1")
    with pytest.raises(StoreError, match="kind"):
        project.types.add("x", "event")
    with pytest.raises(StoreError, match="empty"):
        project.types.add("  ")
    assert project.types.rename(t.id, "human").name == "human"
    assert project.types.describe("human", "people").description == "people"
    assert project.types.set_colour(t.id, "#AABBCC").colour == "#aabbcc"
    with pytest.raises(StoreError, match="#rrggbb"):
        project.types.set_colour(t.id, "red")
    assert project.types.set_shortcut(t.id, None).shortcut is None
    project.types.add("place", shortcut="1")
    with pytest.raises(StoreError, match="another entity type is called 'place'"):
        project.types.rename(t.id, "place")
    assert [x.name for x in project.types.list("entity")] == ["human", "place"]
    assert project.types.find("born in").id == r.id


def test_type_delete_refused_when_a_task_uses_it_and_marks_otherwise(project):
    a = project.types.add("person")
    b = project.types.add("place")
    s = project.sentences.add(TEXT)
    ann = project.annotations.add_entity(s.id, 25, 31, "place")
    project.tasks.create_next(["person"])
    with pytest.raises(TypeInUseError, match="task 1 uses it"):
        project.types.delete(a.id)
    project.types.delete(b.id)
    assert [t.name for t in project.types.list()] == ["person"]
    assert project.annotations.get(ann.id).status == "deleted"
    assert [v.status for v in project.annotations.history(ann.id)] == ["gold", "deleted"]
    # the name can be used again; the old annotations stay deleted
    again = project.types.add("place")
    assert again.id == b.id and project.annotations.for_sentence(s.id) == []


def test_sentences_add_dedupe_search_filter_count(project):
    project.types.add("person")
    a = project.sentences.add(TEXT, source="wiki")
    assert isinstance(a, SentenceRecord) and len(a.content_hash) == 64
    assert project.sentences.add(TEXT).id == a.id  # same text: same sentence
    b = project.sentences.add("Alan Turing worked at Bletchley Park 100% of the_time.")
    project.sentences.add("Nothing here.")
    project.annotations.add_entity(b.id, 0, 11, "person")
    assert [x.id for x in project.sentences.search("lovelace")] == [a.id]
    assert [x.id for x in project.sentences.search("100%")] == [b.id]
    assert project.sentences.search("0%_") == []  # LIKE wildcards are escaped
    assert [x.id for x in project.sentences.search("the_time")] == [b.id]
    assert [x.id for x in project.sentences.search(type="person")] == [b.id]
    assert project.sentences.count() == 3
    assert project.sentences.count(status="annotated") == 1
    assert project.sentences.count(status="unannotated") == 2
    assert project.sentences.count(source="wiki") == 1
    assert len(project.sentences.search(limit=2)) == 2
    assert project.sentences.ids(status="unannotated") == [a.id, a.id + 2]
    with pytest.raises(StoreError, match="status"):
        project.sentences.count(status="odd")
    with pytest.raises(StoreError, match="empty"):
        project.sentences.add("   ")


def test_annotation_validation_messages(project):
    project.types.add("person")
    project.types.add("born in", "relation")
    s = project.sentences.add(TEXT)
    with pytest.raises(InvalidAnnotationError, match="outside sentence"):
        project.annotations.add_entity(s.id, 25, 99, "person")
    with pytest.raises(InvalidAnnotationError, match="empty"):
        project.annotations.add_entity(s.id, 3, 3, "person")
    with pytest.raises(InvalidAnnotationError, match="white space"):
        project.annotations.add_entity(s.id, 3, 4, "person")
    with pytest.raises(ConpetError, match="unknown type 'animal'"):
        project.annotations.add_entity(s.id, 0, 3, "animal")
    with pytest.raises(ConpetError, match="'born in' is a relation type, not an entity type"):
        project.annotations.add_entity(s.id, 0, 3, "born in")
    with pytest.raises(InvalidAnnotationError, match="is a relation type, not an entity type"):
        project.annotations.add_entity(s.id, 0, 3, project.types.find("born in").id)
    with pytest.raises(ConpetError, match="no sentence with id 999"):
        project.annotations.add_entity(999, 0, 3, "person")
    first = project.annotations.add_entity(s.id, 0, 12, "person")
    with pytest.raises(InvalidAnnotationError, match="overlaps the 'person' mention 'Ada Lovelace'"):
        project.annotations.add_entity(s.id, 4, 16, "person")
    # touching spans do not overlap; rejected annotations are not checked for overlap
    project.annotations.add_entity(s.id, 12, 16, "person")
    project.annotations.add_entity(s.id, 4, 16, "person", status="rejected")
    rel = project.annotations.add_relation(s.id, (0, 12), (25, 31), "born in")
    assert rel.spans[1].start == 25
    with pytest.raises(InvalidAnnotationError, match="already has this 'born in' relation"):
        project.annotations.add_relation(s.id, (0, 12), (25, 31), "born in")
    project.annotations.add_relation(s.id, (25, 31), (0, 12), "born in")  # the other direction is new
    with pytest.raises(InvalidAnnotationError, match="different, non-overlapping spans"):
        project.annotations.add_relation(s.id, (0, 12), (0, 12), "born in")
    with pytest.raises(InvalidAnnotationError, match="different, non-overlapping spans"):
        project.annotations.add_relation(s.id, (0, 12), (4, 16), "born in")
    assert isinstance(first, AnnotationRecord)


def test_edit_and_delete_keep_history(project):
    project.types.add("person")
    project.types.add("place")
    s = project.sentences.add(TEXT)
    a = project.annotations.add_entity(s.id, 0, 3, "person")
    b = project.annotations.edit(a.id, span=(0, 12))
    assert (b.id, b.version, b.end) == (a.id, 2, 12)
    assert project.annotations.edit(a.id, span=(0, 12)).version == 2  # no change, no version
    c = project.annotations.edit(a.id, type="place", author="bob")
    assert (c.version, c.type_name, c.author) == (3, "place", "bob")
    d = project.annotations.delete(a.id)
    assert d.status == "deleted" and d.version == 4
    hist = project.annotations.history(a.id)
    assert [(h.version, h.end, h.type_name, h.status, h.is_current) for h in hist] == [
        (1, 3, "person", "gold", False), (2, 12, "person", "gold", False),
        (3, 12, "place", "gold", False), (4, 12, "place", "deleted", True)]
    assert project.annotations.for_sentence(s.id) == []
    with pytest.raises(StoreError, match="deleted"):
        project.annotations.edit(a.id, type="person")
    # deletion frees the span; restoring is refused while something else holds it
    other = project.annotations.add_entity(s.id, 0, 12, "person")
    with pytest.raises(InvalidAnnotationError, match="overlaps"):
        project.annotations.restore(a.id)
    project.annotations.delete(other.id)
    assert project.annotations.restore(a.id).status == "gold"
    # an edit that would overlap another gold mention is refused
    e = project.annotations.add_entity(s.id, 25, 31, "place")
    with pytest.raises(InvalidAnnotationError, match="overlaps"):
        project.annotations.edit(e.id, span=(10, 30))
    with project.read() as s:  # nothing was ever destroyed
        assert s.connection().exec_driver_sql("SELECT count(*) FROM annotation_versions").scalar() == 8


def test_transaction_groups_calls_and_rolls_back_together(project):
    project.types.add("person")
    s = project.sentences.add(TEXT)
    with pytest.raises(InvalidAnnotationError):
        with project.transaction():
            project.annotations.add_entity(s.id, 0, 12, "person")
            project.sentences.add("Another sentence.")
            project.annotations.add_entity(s.id, 0, 3, "person")  # overlaps the first: all is undone
    assert project.annotations.for_sentence(s.id) == []
    assert project.sentences.count() == 1
    with project.transaction():
        project.annotations.add_entity(s.id, 0, 12, "person")
        project.sentences.add("Another sentence.")
    assert project.sentences.count() == 2 and len(project.annotations.for_sentence(s.id)) == 1
    # a nested call that fails undoes only its own writes
    project.types.add("place")
    project.tasks.create_next(["place"])
    with project.transaction():
        project.sentences.add("Third sentence.")
        with pytest.raises(TypeInUseError):
            project.types.delete("place")
        project.types.add("thing")
    assert project.sentences.count() == 3 and project.types.find("thing") is not None


def test_examples_for_training_and_pending_types(project):
    project.types.add("person", group="people")
    project.types.add("place")
    project.types.add("born in", "relation")
    s = project.sentences.add(TEXT, source="wiki")
    a = project.annotations.add_entity(s.id, 0, 12, "person")
    project.annotations.add_entity(s.id, 25, 31, "place")
    project.annotations.add_relation(s.id, (0, 12), (25, 31), "born in")
    project.annotations.add_entity(s.id, 17, 21, "place", status="rejected")
    ex = project.examples_for_training(["person", "born in"])
    assert [(e.kind, e.label, e.group) for e in ex] == [("entity", "person", "people"),
                                                      ("relation", "born in", None)]
    assert ex[0].mention == "Ada Lovelace" and ex[0].meta["annotation_id"] == a.id
    assert ex[1].spans[1].start == 25
    again = project.examples_for_training(["person"])
    assert again[0].id == ex[0].id  # stable ids
    assert [t.name for t in project.pending_types(1)] == ["person", "place", "born in"]
    assert project.pending_types(2) == []
    project.tasks.create_next(["person", "place"])
    assert [t.name for t in project.pending_types(1)] == ["born in"]


def test_tasks_are_ordered_disjoint_and_freeze(project):
    for n in ("a", "b", "c"):
        project.types.add(n)
    t1 = project.tasks.create_next(["a"])
    t2 = project.tasks.create_next(["b"], name="second")
    assert (t1.index, t2.index, t2.name, t2.type_names) == (1, 2, "second", ("b",))
    with pytest.raises(StoreError, match="already belong to a task"):
        project.tasks.create_next(["a", "c"])
    assert project.types.get("a").task_index == 1
    project.tasks.freeze(t1.id)
    with pytest.raises(StoreError, match="frozen"):
        project.tasks.add_types(t1.id, ["c"])
    assert project.tasks.add_types(t2.id, ["c"]).type_names == ("b", "c")
    assert [t.frozen for t in project.tasks.list()] == [True, False]
    with pytest.raises(StoreError, match="at least one type"):
        project.tasks.create_next([])


def test_recorded_run_ends_cancelled_or_failed_and_reraises(project):
    from conpet.core.errors import Cancelled

    a = project.runs.start("dynamic")
    with pytest.raises(Cancelled), project.runs.recorded(a.id):
        raise Cancelled("stop")
    assert project.runs.get(a.id).status == "cancelled"

    b = project.runs.start("dynamic")
    with pytest.raises(ValueError), project.runs.recorded(b.id):
        raise ValueError("bad head size")
    rec = project.runs.get(b.id)
    assert rec.status == "failed" and rec.error == "ValueError: bad head size"

    c = project.runs.start("dynamic")
    with pytest.raises(RuntimeError), project.runs.recorded(c.id):
        project.runs.finish(c.id, "done")
        raise RuntimeError("after the end")
    assert project.runs.get(c.id).status == "finished"  # an ended run is left as it was
