"""Schema versions: the migrations build exactly the models; an old project is backed up and upgraded;
a newer one is refused."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conpet.store import Project, SchemaTooNewError, StoreError, schema
from conpet.store.db import make_engine
from conpet.store.models import Base


def test_migrations_build_exactly_the_models(tmp_path):
    db = tmp_path / "x.sqlite"
    schema.upgrade(db)
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_head_version_counts_the_chain():
    chain = schema.revision_chain()
    assert chain[0] == "0001" and schema.head_version() == len(chain)


def test_v1_fixture_is_backed_up_and_upgraded(tmp_path, fixtures_dir):
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(fixtures_dir / "store" / "project_v1" / "project.sqlite", folder / "project.sqlite")
    original = (folder / "project.sqlite").read_bytes()
    with Project.open(folder) as p:
        head = schema.head_version()
        if head > 1:
            assert p.upgrade is not None and p.upgrade.from_version == 1 and p.upgrade.to_version == head
            backup = p.upgrade.backup
            assert backup is not None and backup.name.startswith("project.sqlite.bak-v1-")
            with sqlite3.connect(backup) as con:
                assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
                assert con.execute("SELECT count(*) FROM annotation_versions").fetchone()[0] == 8
        assert p.info().name == "fixture v1"
        assert p.info().schema_version == head
        # the data of version 1 reads through today's repositories
        assert [t.name for t in p.types.list()] == ["person", "location", "born in", "organisation"]
        s1 = p.annotations.for_sentence(1)
        assert [(a.kind, a.type_name) for a in s1] == [("entity", "person"), ("relation", "born in"),
                                                     ("entity", "location")]
        hist = p.annotations.history(4)
        assert [(h.type_name, h.is_current) for h in hist] == [("location", False), ("person", True)]
        assert p.annotations.get(5).status == "deleted"
        tasks = p.tasks.list()
        assert tasks[0].frozen and tasks[0].type_names == ("person", "location")
        runs = {r.id: r for r in p.runs.list()}
        assert runs[1].status == "finished" and runs[1].metrics[0]["loss"] == 0.5
        assert runs[2].status == "interrupted"  # left 'running' by a process that is gone
        assert p.interrupted_runs == (2,)
        assert p.modules.latest("expert-1").parameter_count == 1234
        assert p.predictions.for_sentence(3)[0].label == "location"
        assert p.logit_cache.get_many([("abc", "expert-1", 1)])[("abc", "expert-1", 1)].tolist() == [0.0, 0.0]
        assert len(p.examples_for_training(["person"])) == 3
        # and it takes new writes
        p.annotations.add_entity(3, 22, 30, "location")
        assert p.integrity_check() == "ok"
    with sqlite3.connect(folder / "project.sqlite") as con:
        ver = con.execute("SELECT version FROM schema_version").fetchone()[0]
        assert ver == schema.head_version()
    assert (fixtures_dir / "store" / "project_v1" / "project.sqlite").read_bytes() == original


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    with Project.create(tmp_path / "p") as p:
        pass
    db = p.db_path
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
        con.execute("UPDATE schema_version SET version = 99")
    before = db.read_bytes()
    with pytest.raises(SchemaTooNewError, match="newer ConPET Studio .schema version 99.*Update ConPET Studio"):
        Project.open(tmp_path / "p")
    assert db.read_bytes() == before
    assert not list((tmp_path / "p").glob("*.bak-*"))


def _checks_in_db(db) -> set[str]:
    import re

    with sqlite3.connect(db) as con:
        sql = "\n".join(r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type = 'table'"))
    return set(re.findall(r"CONSTRAINT (ck_\w+) CHECK", sql))


def _checks_in_models() -> set[str]:
    from sqlalchemy import CheckConstraint

    return {c.name for t in Base.metadata.tables.values() for c in t.constraints
            if isinstance(c, CheckConstraint)}


def test_check_constraints_match_the_models_and_refuse_bad_values(tmp_path, fixtures_dir):
    with Project.create(tmp_path / "new") as p:
        assert _checks_in_db(p.db_path) == _checks_in_models() != set()
        with sqlite3.connect(p.db_path) as con, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            con.execute("INSERT INTO runs (purpose, method, status, progress, message, stage, config, backbone, "
                        "metrics, log, host, created_at, updated_at) VALUES ('train', 'x', 'exploded', 0, '', '', "
                        "'{}', '', '[]', '', '', 0, 0)")
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(fixtures_dir / "store" / "project_v1" / "project.sqlite", old / "project.sqlite")
    assert _checks_in_db(old / "project.sqlite") == set()
    with Project.open(old) as p:
        assert _checks_in_db(p.db_path) == _checks_in_models()
        with sqlite3.connect(p.db_path) as con:  # the partial unique indexes survived the table rebuilds
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"uq_annotation_versions_current", "uq_knowledge_types_live_shortcut"} <= names


def test_upgrade_is_one_transaction(tmp_path, fixtures_dir, monkeypatch):
    """A migration that fails half way leaves the version-1 database as it was (and the backup)."""
    folder = tmp_path / "old"
    folder.mkdir()
    db = folder / "project.sqlite"
    shutil.copy(fixtures_dir / "store" / "project_v1" / "project.sqlite", db)
    with sqlite3.connect(db) as con:  # a value the version-2 checks refuse and the migration does not repair
        con.execute("UPDATE annotations SET kind = 'event' WHERE id = 6")
    with pytest.raises(StoreError, match=r"could not upgrade .* from schema version 1 to \d+: .*CHECK.*unchanged"):
        Project.open(folder)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
        assert con.execute("SELECT kind FROM annotations WHERE id = 6").fetchone()[0] == "event"
    assert len(list(folder.glob("project.sqlite.bak-v1-*"))) == 1
