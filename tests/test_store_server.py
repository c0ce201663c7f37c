"""A project on a PostgreSQL server: the same migrations build the same schema, every earlier schema
upgrades on both databases, and `conpet copy` moves a project between a folder and a server, both ways,
with every table checked equal."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)
from sqlalchemy import MetaData, Table, create_engine

from conpet.cli.main import main as conpet_main
from conpet.data.example import Span
from conpet.store import NewPrediction, NotAProjectError, Project, StoreError, schema
from conpet.store.db import engine_for, sync_id_sequences
from conpet.store.location import locate, sqlite_location
from conpet.store.models import Base
from conpet.store.transfer import compare_projects, copy_project, table_digests

TEXT = "Ada Lovelace was born in London ."


def test_migrations_build_exactly_the_models_on_postgresql(postgres_url):
    where = locate(postgres_url)
    schema.upgrade(where)
    engine = engine_for(where)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_a_server_project_is_created_opened_and_refused_where_it_must_be(postgres_url, tmp_path):
    with pytest.raises(NotAProjectError, match="holds no ConPET project"):
        Project.open(postgres_url)
    with Project.create(postgres_url, name="shared") as p:
        assert p.is_server and p.db_path is None and p.info().name == "shared"
        assert "postgresql://" in p.info().location and p.modules_dir.is_dir()
        assert p.integrity_check() == "ok"
    with pytest.raises(StoreError, match="already holds a project"):
        Project.create(postgres_url)
    with Project.open_or_create(postgres_url) as p:
        assert p.info().name == "shared" and p.upgrade is None
    with pytest.raises(StoreError, match="names no database"):
        Project.open("postgresql://someone@localhost")


def _fill_from_fixture(target, fixture_db) -> None:
    """The rows of the version-1 fixture written into ``target`` (a database at some older schema), as an
    older ConPET Studio would have left them."""
    source = create_engine(f"sqlite:///{fixture_db}")
    engine = engine_for(target, foreign_keys=False)
    try:
        old = MetaData()
        old.reflect(source)
        with source.connect() as src, engine.begin() as dst:
            for table in old.sorted_tables:
                if table.name in ("alembic_version", "schema_version"):
                    continue
                rows = [dict(r) for r in src.execute(table.select()).mappings()]
                there = Table(table.name, MetaData(), autoload_with=dst)
                if rows:
                    dst.execute(there.insert(), rows)
            sync_id_sequences(dst, [t.name for t in old.sorted_tables if "id" in t.c])
    finally:
        source.dispose()
        engine.dispose()


@pytest.mark.parametrize("revision", schema.revision_chain()[:-1])
def test_every_earlier_schema_upgrades_on_both_databases(project_where, revision, fixtures_dir, tmp_path):
    fixture = fixtures_dir / "store" / "project_v1" / "project.sqlite"
    where = locate(project_where)
    if not where.is_server:
        where.folder.mkdir(parents=True)
        schema.upgrade(sqlite_location(where.folder / "project.sqlite"), revision)
    else:
        schema.upgrade(where, revision)
    _fill_from_fixture(where if where.is_server else sqlite_location(where.folder / "project.sqlite"), fixture)
    with Project.open(project_where) as p:
        start = schema.revision_chain().index(revision) + 1
        assert p.upgrade is not None and (p.upgrade.from_version, p.upgrade.to_version) == (start,
                                                                                         schema.head_version())
        assert (p.upgrade.backup is None) == p.is_server  # a server upgrades in one transaction, no copy
        assert p.info().name == "fixture v1"
        assert [t.name for t in p.types.list()] == ["person", "location", "born in", "organisation"]
        assert [(a.kind, a.type_name) for a in p.annotations.for_sentence(1)] == [
            ("entity", "person"), ("relation", "born in"), ("entity", "location")]
        assert [(h.type_name, h.is_current) for h in p.annotations.history(4)] == [("location", False),
                                                                                  ("person", True)]
        assert p.runs.get(1).metrics[0]["loss"] == 0.5
        assert len(p.examples_for_training(["person"])) == 3
        new = p.annotations.add_entity(3, 22, 30, "location")  # and it takes new writes, with fresh ids
        assert new.id > 6
        assert p.integrity_check() == "ok"


def _rich_project(where: str, tmp_path) -> None:
    """A project with a row in every table: types with argument lists, history, a run with metrics, a
    module with files, predictions and cached logits."""
    with Project.create(where, name="rich") as p:
        p.types.add("person", description="a human", shortcut="1")
        p.types.add("place")
        p.types.add("born in", "relation")
        p.types.set_arguments("born in", head=["person"], tail=["place"])
        s = p.sentences.add(TEXT, source="wiki")
        p.sentences.add("Nothing here .")
        a = p.annotations.add_entity(s.id, 0, 12, "person")
        p.annotations.add_entity(s.id, 25, 31, "place")
        p.annotations.add_relation(s.id, (0, 12), (25, 31), "born in")
        p.annotations.edit(a.id, span=(4, 12))
        task = p.tasks.create_next(["person", "place"], name="first")
        run = p.runs.start("dynamic", task_id=task.id, config={"lr": 1e-3}, backbone="minilm")
        p.runs.update_progress(run.id, 0.5, "half", metrics={"loss": 0.25}, step=1)
        folder = p.module_folder("run-0001/expert_0")
        (folder / "adapter.bin").write_bytes(bytes(range(256)))
        p.modules.register("expert", folder, task_index=1, run_id=run.id, parameter_count=42)
        p.files.store_folder(folder.parent)
        p.runs.finish(run.id)
        p.predictions.add_many(run.id, [NewPrediction(sentence_id=s.id, spans=(Span(0, 12),), label="person",
                                                      score=0.75, expert_scores={"e": 0.1})])
        p.logit_cache.put_many({("ex1", "expert-1", 1): np.array([0.5, -1.0], dtype=np.float32)})


def test_copy_folder_to_server_and_back_is_equal(tmp_path, postgres_url, capsys):
    folder = tmp_path / "rich"
    _rich_project(str(folder), tmp_path)
    assert conpet_main(["copy", str(folder), postgres_url]) == 0
    assert "every table checked equal" in capsys.readouterr().out
    back = tmp_path / "back"
    report = copy_project(postgres_url, back)
    assert report.rows["annotation_versions"] == 4 and report.files == 1
    with Project.open(folder) as a, Project.open(postgres_url) as b, Project.open(back) as c:
        assert table_digests(a) == table_digests(b) == table_digests(c)
        assert all(n > 0 for n, _ in table_digests(a).values())  # every table took part
        assert compare_projects(a, c) == []
        assert (c.modules_dir / "run-0001" / "expert_0" / "adapter.bin").read_bytes() == bytes(range(256))
        assert c.modules.verify(c.modules.latest("expert-1"))
        # the server copy takes new rows with fresh ids (its sequences follow the copied ids)
        t = b.types.add("organisation")
        assert t.id == max(x.id for x in a.types.list()) + 1
        b.annotations.add_entity(1, 25, 31, "organisation", status="rejected")
        assert compare_projects(a, b) != []
    capsys.readouterr()
    # a target that holds a project is refused, and left as it was
    assert conpet_main(["copy", str(folder), str(back)]) == 1
    assert "already holds a project" in capsys.readouterr().err


def test_a_failed_copy_leaves_no_project_behind(tmp_path, postgres_url, monkeypatch):
    folder = tmp_path / "rich"
    _rich_project(str(folder), tmp_path)
    url = postgres_url
    from conpet.store import transfer

    def broken(*_args, **_kwargs):
        raise RuntimeError("the network went away")

    monkeypatch.setattr(transfer, "sync_id_sequences", broken)
    with pytest.raises(RuntimeError, match="network"):
        copy_project(folder, url)
    assert not Project.exists(url)  # the schema and the rows went with the transaction
    with pytest.raises(RuntimeError, match="network"):
        copy_project(folder, tmp_path / "copy")
    assert not (tmp_path / "copy" / "project.sqlite").exists()
    assert not list((tmp_path / "copy").glob(".project.sqlite*"))


def test_without_a_server_the_postgresql_variants_skip_with_the_reason_or_fail_in_ci(monkeypatch):
    import postgres_server

    monkeypatch.setattr(postgres_server, "_state", {"error": "FileNotFoundError: no initdb"})
    monkeypatch.delenv("CONPET_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server for the tests: FileNotFoundError"):
        postgres_server.server_url()
    monkeypatch.setenv("CONPET_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="CONPET_REQUIRE_POSTGRES=1"):
        postgres_server.server_url()


def test_the_project_commands_take_the_url_and_name_it(postgres_url, tmp_path, capsys):
    shown = locate(postgres_url).display  # the URL without its password
    with Project.create(postgres_url) as p:
        p.types.add("person")
    data = tmp_path / "gold.jsonl"
    data.write_text('{"text": "Ada Lovelace .", "entities": [{"start": 0, "end": 12, "type": "person"}]}\n')
    for argv, words in ((["predict", postgres_url, "--quiet"], "nothing to predict with yet"),
                        (["evaluate", postgres_url, str(data), "--quiet"], "nothing to evaluate with yet"),
                        (["export", postgres_url, str(tmp_path / "b.zip"), "--quiet"], "no trained model yet")):
        assert conpet_main(argv) == 1
        err = capsys.readouterr().err
        assert words in err and shown in err and "conpet_test_" in shown, err
