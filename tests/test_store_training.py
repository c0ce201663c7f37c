"""What the trainers use: runs, modules, predictions, the logit cache; and a writer thread beside the app."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)
from sqlalchemy import event

from conpet.core.protocols import LogitCache
from conpet.data.example import Span
from conpet.store import NewPrediction, Project, StoreError
from conpet.store.models import Run


@pytest.fixture
def project(project_where):
    """The same tests on a project folder (SQLite) and on a PostgreSQL server."""
    p = Project.create(project_where)
    yield p
    p.close()


def test_run_lifecycle(project):
    run = project.runs.start("dynamic", config={"lr": 1e-3, "seed": 1}, backbone="minilm",
                             backbone_sha256="ab" * 32)
    assert run.status == "running" and run.is_active and run.config == {"lr": 1e-3, "seed": 1}
    project.runs.update_progress(run.id, 0.25, "selector 1/4", stage="selector", metrics={"loss": 1.5}, step=10)
    project.runs.update_progress(run.id, 0.5, "expert", metrics={"loss": 0.5, "acc": 0.8}, step=20)
    project.runs.update_progress(run.id, 7.0, "clamped", metrics={"loss": float("nan"), "acc": np.float32(1)},
                                 step=30)
    project.runs.append_log(run.id, "line one")
    project.runs.append_log(run.id, "line two\n")
    r = project.runs.get(run.id)
    assert (r.progress, r.message, r.stage) == (1.0, "clamped", "selector")
    assert r.metrics == ({"step": 10, "loss": 1.5}, {"step": 20, "loss": 0.5, "acc": 0.8},
                         {"step": 30, "loss": None, "acc": 1.0})
    assert r.log == "line one\nline two\n"
    done = project.runs.finish(run.id)
    assert done.status == "finished" and done.finished_at is not None
    with pytest.raises(StoreError, match="already finished"):
        project.runs.update_progress(run.id, 0.1, "late")
    failed = project.runs.fail(project.runs.start("static").id, "CUDA out of memory")
    assert (failed.status, failed.error) == ("failed", "CUDA out of memory")
    assert project.runs.cancel(project.runs.start("static").id).status == "cancelled"
    queued = project.runs.start("static", queued=True)
    assert queued.status == "queued" and project.runs.mark_running(queued.id).status == "running"
    assert [x.id for x in project.runs.active()] == [queued.id]
    assert [x.status for x in project.runs.list(limit=2)] == ["running", "cancelled"]
    with pytest.raises(StoreError, match="JSON"):
        project.runs.start("x", config={"bad": object()})


def test_runs_of_dead_processes_are_marked_interrupted_on_open(project, tmp_path):
    mine = project.runs.start("dynamic")
    dead = project.runs.start("dynamic")
    with project.transaction() as s:
        row = s.get(Run, dead.id)
        row.pid = 2**22 + 12345  # no such process
    project.close()
    with Project.open(project.location) as again:
        assert again.interrupted_runs == (dead.id,)
        assert again.runs.get(dead.id).status == "interrupted"
        assert "stopped" in again.runs.get(dead.id).error
        assert again.runs.get(mine.id).status == "running"  # this process is alive


def test_modules_register_with_sha256_and_versions(project, tmp_path):
    folder = project.module_folder("expert-1")
    (folder / "adapter_model.safetensors").write_bytes(b"\x00" * 100)
    (folder / "head.safetensors").write_bytes(b"\x01" * 10)
    run = project.runs.start("dynamic")
    m1 = project.modules.register("expert", folder, task_index=1, run_id=run.id, parameter_count=1234)
    assert (m1.name, m1.version, m1.path, m1.parameter_count) == ("expert-1", 1, "modules/expert-1", 1234)
    assert len(m1.sha256) == 64 and project.modules.verify(m1)
    (folder / "head.safetensors").write_bytes(b"\x02" * 10)
    assert not project.modules.verify(m1)
    m2 = project.modules.register("expert", "modules/expert-1", task_index=1)
    assert m2.version == 2 and m2.sha256 != m1.sha256
    assert project.modules.latest("expert-1") == m2
    assert project.modules.folder(m2) == folder.resolve()
    sel = project.module_folder("selector")
    (sel / "a.bin").write_bytes(b"x")
    project.modules.register("selector", sel)
    assert [m.name for m in project.modules.list(latest_only=True)] == ["expert-1", "selector"]
    assert [m.version for m in project.modules.list(kind="expert")] == [1, 2]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "f").write_bytes(b"1")
    with pytest.raises(StoreError, match="outside the project folder"):
        project.modules.register("static", outside)
    with pytest.raises(StoreError, match="kind"):
        project.modules.register("teacher", sel)
    empty = project.module_folder("empty")
    with pytest.raises(StoreError, match="no files"):
        project.modules.register("static", empty)


def test_predictions_bulk_write_read_and_accept(project):
    project.types.add("person")
    project.types.add("place")
    project.types.add("born in", "relation")
    s = project.sentences.add("Ada Lovelace was born in London .")
    run = project.runs.start("dynamic", purpose="predict")
    n = project.predictions.add_many(run.id, [
        NewPrediction(s.id, (Span(0, 12),), "person", 0.9, selector_scores=[0.8, 0.2], active_experts=[0],
                      expert_scores={"expert-1": 0.9}, module_versions={"selector": 1, "expert-1": 1}),
        NewPrediction(s.id, (Span(25, 31),), "place", 0.7),
        NewPrediction(s.id, (Span(0, 12), Span(25, 31)), "born in", 0.6),
        NewPrediction(s.id, (Span(17, 21),), "unknown-label", float("nan")),
    ])
    assert n == 4 and project.predictions.count(run.id) == 4
    preds = project.predictions.for_sentence(s.id)
    assert [p.label for p in preds] == ["person", "born in", "unknown-label", "place"]  # by position
    by_label = {p.label: p for p in preds}
    first = by_label["person"]
    assert first.selector_scores == (0.8, 0.2) and first.active_experts == (0,)
    assert first.module_versions == {"selector": 1, "expert-1": 1} and first.type_id is not None
    assert by_label["unknown-label"].type_id is None and by_label["unknown-label"].score < -1e29
    assert project.sentences.count(status="predicted") == 1
    gold = project.annotations.accept_prediction(first.id)
    assert (gold.status, gold.type_name, gold.start, gold.end) == ("gold", "person", 0, 12)
    assert project.annotations.accept_prediction(first.id).id == gold.id  # idempotent
    rel = project.annotations.accept_prediction(by_label["born in"].id)
    assert rel.kind == "relation" and rel.tail_start == 25
    rej = project.annotations.reject_prediction(by_label["place"].id)
    assert rej.status == "rejected" and project.sentences.count(status="rejected") == 1
    # accepting a prediction with a different type on a gold span retypes it (a new version)
    run2 = project.runs.start("dynamic", purpose="predict")
    project.predictions.add_many(run2.id, [NewPrediction(s.id, (Span(0, 12),), "place", 0.5)])
    retyped = project.annotations.accept_prediction(project.predictions.for_sentence(s.id)[0].id)
    assert (retyped.id, retyped.version, retyped.type_name) == (gold.id, 2, "place")
    assert [p.run_id for p in project.predictions.for_sentence(s.id, run.id)] == [run.id] * 4
    with pytest.raises(StoreError, match="outside sentence"):
        project.predictions.add_many(run.id, [NewPrediction(s.id, (Span(0, 99),), "person", 0.1)])


def test_engine_predictions_are_matched_by_example_id(project):
    project.types.add("person")
    s = project.sentences.add("Ada Lovelace was born in London .")
    project.annotations.add_entity(s.id, 0, 12, "person")
    examples = project.examples_for_training(["person"])
    run = project.runs.start("dynamic")
    engine_pred = SimpleNamespace(example_id=examples[0].id, label="person", score=0.99,
                                  selector_scores=[1.0], active_experts=[0], expert_scores={"expert-1": 0.99},
                                  module_versions={"expert-1": 1})
    assert project.predictions.add_engine_results(run.id, examples, [engine_pred]) == 1
    assert project.predictions.for_run(run.id)[0].example_id == examples[0].id


def test_logit_cache_round_trip_and_one_select_per_batch(project):
    cache = project.logit_cache
    assert isinstance(cache, LogitCache)
    rng = np.random.default_rng(0)
    items = {(f"ex{i}", "expert-1", 1): rng.standard_normal(7).astype(np.float32) for i in range(300)}
    items[("ex0", "selector", 2)] = np.array([1.5, -2.0], dtype=np.float64)
    cache.put_many(items)
    statements = []
    event.listen(project.db.engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: statements.append(stmt))
    keys = [(f"ex{i}", "expert-1", 1) for i in range(0, 300, 5)] + [("ex0", "selector", 2), ("nope", "x", 1),
                                                                     ("ex1", "expert-1", 2)]
    got = cache.get_many(keys)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert set(got) == set(keys[:-2])
    for k in keys[:-2]:
        assert got[k].dtype == np.float32
        np.testing.assert_array_equal(got[k], np.asarray(items[k], dtype=np.float32))
    cache.put_many({("ex0", "selector", 2): np.zeros(2)})  # overwrite
    assert cache.get_many([("ex0", "selector", 2)])[("ex0", "selector", 2)].tolist() == [0.0, 0.0]
    assert cache.get_many([]) == {}
    assert cache.count() == 301 and cache.count("selector") == 1
    assert cache.clear("expert-1") == 300 and cache.count() == 1


def test_progress_writer_thread_beside_annotating_thread(project):
    """A worker writes run progress every few ms while the 'GUI' thread adds annotations."""
    project.types.add("person")
    sentences = [project.sentences.add(f"Person number {i} lives here .") for i in range(150)]
    run = project.runs.start("dynamic")
    errors: list[BaseException] = []
    stop = threading.Event()
    updates = 0

    def trainer() -> None:
        nonlocal updates
        try:
            step = 0
            while not stop.is_set():
                step += 1
                project.runs.update_progress(run.id, min(step / 1000, 1), f"step {step}",
                                             metrics={"loss": 1 / step} if step % 10 == 0 else None, step=step)
                project.logit_cache.put_many({(f"e{step}", "expert-1", 1): np.ones(4)})
                updates += 1
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=trainer)
    worker.start()
    try:
        for s in sentences:
            project.annotations.add_entity(s.id, 0, 13, "person")
            project.sentences.count(status="annotated")
            project.runs.get(run.id)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert errors == []
    assert updates > 10
    assert project.annotations.count() == 150
    assert project.runs.get(run.id).progress > 0
    assert project.integrity_check() == "ok"
