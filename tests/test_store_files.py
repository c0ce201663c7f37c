"""A trained model's folder is kept in the project database (content-addressed blobs, SHA-256): a second
machine with only the database URL rebuilds it byte for byte and predicts exactly what the trainer's
machine predicts."""

from __future__ import annotations

import hashlib

import pytest
from demo_data import demo_subset
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)
from sqlalchemy import update

from conpet.store import Project, StoreError
from conpet.store.models import Blob

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


def _folder(project, name="run-0001"):
    folder = project.modules_dir / name
    (folder / "expert_0").mkdir(parents=True)
    (folder / "method.json").write_text('{"modules": ["expert_0"]}')
    (folder / "expert_0" / "adapter.safetensors").write_bytes(bytes(range(256)) * 10)
    (folder / "expert_0" / "copy.bin").write_bytes(bytes(range(256)) * 10)  # the same content: one blob
    return folder


def test_a_folder_is_kept_once_per_content_and_rebuilt_on_another_machine(project_where, tmp_path, monkeypatch):
    with Project.create(project_where) as p:
        folder = _folder(p)
        assert p.files.store_folder(folder) == 3
        manifest = p.files.manifest("modules/run-0001")
        assert manifest["expert_0/adapter.safetensors"] == hashlib.sha256(bytes(range(256)) * 10).hexdigest()
        assert manifest["expert_0/adapter.safetensors"] == manifest["expert_0/copy.bin"]
        with p.read() as s:
            assert s.query(Blob).count() == 2
        assert p.files.is_current("modules/run-0001")
        where = p.location
    if not where.is_server:
        return  # a folder project is the machine's own copy; the server case below is the teammate's
    monkeypatch.setenv("CONPET_HOME", str(tmp_path / "second-machine"))
    with Project.open(project_where) as teammate:
        assert teammate.folder != where.folder and not (teammate.modules_dir / "run-0001").exists()
        got = teammate.files.materialise("modules/run-0001")
        assert (got / "expert_0" / "adapter.safetensors").read_bytes() == bytes(range(256)) * 10
        assert (got / "method.json").read_text() == '{"modules": ["expert_0"]}'
        (got / "method.json").write_text("changed here")  # a local copy that drifted is rebuilt
        assert not teammate.files.is_current("modules/run-0001")
        teammate.files.materialise("modules/run-0001")
        assert (got / "method.json").read_text() == '{"modules": ["expert_0"]}'


def test_a_damaged_blob_is_refused_and_nothing_half_written_stays(project_where, tmp_path):
    with Project.create(project_where) as p:
        folder = _folder(p)
        p.files.store_folder(folder)
        with p.transaction() as s:
            s.execute(update(Blob).where(Blob.size == 2560).values(data=b"not the stored bytes"))
        import shutil

        shutil.rmtree(folder)
        with pytest.raises(StoreError, match="does not match its SHA-256"):
            p.files.materialise(folder)
        assert not folder.exists() and not list(p.modules_dir.glob(".*tmp-fetch*"))
        with pytest.raises(StoreError, match="keeps no files"):
            p.files.materialise(p.modules_dir / "run-0002")


@pytest.mark.slow
def test_a_teammate_with_only_the_url_predicts_what_the_trainer_predicts(postgres_url, tmp_path, minilm,
                                                                       monkeypatch):
    from conpet.project.predict import predict_project
    from conpet.project.training import train_project
    from conpet.store.importer import import_file

    with Project.create(postgres_url) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
    train_project(postgres_url, backbone=minilm, profile="smoke", overrides=TINY)
    provider = lambda name, device: minilm  # noqa: E731 (the same backbone on both machines)
    mine = predict_project(postgres_url, backbone_provider=provider, device="cpu")
    with Project.open(postgres_url) as p:
        trainer = sorted((r.sentence_id, r.start, r.end, r.label, round(r.score, 5))
                         for r in p.predictions.for_run(mine.run_id))
        p.logit_cache.clear()  # the teammate computes every logit from the rebuilt adapters
    monkeypatch.setenv("CONPET_HOME", str(tmp_path / "teammate"))  # another machine: no local files at all
    theirs = predict_project(postgres_url, backbone_provider=provider, device="cpu")
    with Project.open(postgres_url) as p:
        assert not str(p.folder).startswith(str(tmp_path / "conpet-home"))
        teammate = sorted((r.sentence_id, r.start, r.end, r.label, round(r.score, 5))
                          for r in p.predictions.for_run(theirs.run_id))
        assert theirs.backbone_passes > 0
    assert trainer and teammate == trainer
