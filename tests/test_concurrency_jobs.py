"""Issue 24 on real (tiny) trainings with minilm: two trainings of one project (defect 1), opening a project
while a bundle import is in progress (defect 2), a numerical failure in a step (defect 5) and a step whose
project changed under it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from demo_data import demo_project

from conpet.core.errors import ConpetError
from conpet.project.bundles import export_bundle, import_bundle
from conpet.project.model import current_model_folder
from conpet.project.training import TrainError, train_project
from conpet.store import Project

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


def _train(folder: Path, minilm, **kw):
    return train_project(folder, backbone=minilm, profile="smoke", overrides=TINY, min_examples=5, threads=1, **kw)


def _sound(folder: Path) -> Project:
    """The project reopened: integrity ok and every module row's folder present."""
    p = Project.open(folder)
    assert p.integrity_check() == "ok"
    assert all(p.modules.folder(m).is_dir() for m in p.modules.list())
    return p


@pytest.fixture(scope="module")
def bundle(minilm, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("trained")
    folder = demo_project(tmp / "proj", ("Person", "City"), 8, tmp)
    _train(folder, minilm)
    return export_bundle(folder, tmp / "model.zip")


def test_a_second_training_is_refused_while_one_runs_and_goes_ahead_when_it_died(minilm, tmp_path):
    folder = demo_project(tmp_path / "proj", ("Person", "City"), 8, tmp_path)
    script = textwrap.dedent(f"""
        import sys
        import conpet.project.training as t
        real = t._record_step
        def waiting(*a, **k):
            print("recording", flush=True)
            sys.stdin.readline()
            return real(*a, **k)
        t._record_step = waiting
        out = t.train_project({str(folder)!r}, profile="smoke", overrides={TINY!r}, min_examples=5, threads=1)
        print("finished", out.run_id, flush=True)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    try:
        assert first.stdout.readline().strip() == "recording"  # trained, about to record
        with pytest.raises(ConpetError, match=rf"busy: a training \(process {first.pid} "):  # LeaseHeldError
            _train(folder, minilm)
        os.kill(first.pid, signal.SIGKILL)  # killed at the worst moment: model saved, nothing recorded
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    outcome = _train(folder, minilm)
    with _sound(folder) as p:
        runs = {r.id: r.status for r in p.runs.list()}
        assert sorted(runs.values()) == ["finished", "interrupted"] and runs[outcome.run_id] == "finished"
        assert [t.frozen for t in p.tasks.list()] == [True]
        assert current_model_folder(p) == outcome.model_folder
        assert sorted(c.name for c in p.modules_dir.iterdir()) == [outcome.model_folder.name]


def test_opening_the_project_in_another_process_during_an_import_keeps_the_import(bundle, minilm, tmp_path):
    target = tmp_path / "target"
    Project.create(target).close()
    proj = Project.open(target)
    real_start = proj.runs.start
    reached, go = threading.Event(), threading.Event()

    def paused_start(*a, **k):  # the import's model folder is in place, its run not yet recorded
        reached.set()
        assert go.wait(120)
        return real_start(*a, **k)

    proj.runs.start = paused_start
    result: dict[str, object] = {}

    def run_import() -> None:
        try:
            result["ok"] = import_bundle(proj, bundle, backbone=minilm)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            result["error"] = exc

    t = threading.Thread(target=run_import)
    t.start()
    try:
        assert reached.wait(120)
        placed = [c for c in target.joinpath("modules").iterdir() if c.name.startswith("import-")]
        opener = subprocess.run(
            [sys.executable, "-c", "import sys; from conpet.project.model import open_folder; "
             "open_folder(sys.argv[1]).close(); print('opened')", str(target)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert opener.returncode == 0 and "opened" in opener.stdout, opener.stderr[-2000:]
        assert all(c.is_dir() for c in placed), "opening the project deleted the import in progress"
    finally:
        go.set()
        t.join(300)
        proj.close()
    assert "error" not in result, result.get("error")
    with _sound(target) as p:
        assert len(p.tasks.list()) == 1 and p.modules.list()


def test_a_numerical_failure_in_a_step_is_a_clear_error_and_changes_nothing(minilm, tmp_path, monkeypatch):
    from conpet.methods.dynamic_lda import RoutedByStatistics

    folder = demo_project(tmp_path / "proj", ("Person", "City"), 8, tmp_path)

    def singular(self, *a, **k):
        raise torch.linalg.LinAlgError("linalg.cholesky: The factorization could not be completed")

    monkeypatch.setattr(RoutedByStatistics, "learn_task", singular)
    with pytest.raises(TrainError, match="numerically.*the model is unchanged"):
        _train(folder, minilm)
    with _sound(folder) as p:
        (run,) = p.runs.list()
        assert run.status == "failed" and "LinAlgError" in (run.error or "")
        assert p.modules.list() == [] and [t.frozen for t in p.tasks.list()] == [False]


def test_a_step_whose_project_got_another_model_meanwhile_records_nothing(minilm, tmp_path, monkeypatch):
    import conpet.project.training as training

    folder = demo_project(tmp_path / "proj", ("Person", "City"), 8, tmp_path)
    calls = {"n": 0}
    real = training.current_model_folder

    def another_model_at_record_time(project):
        calls["n"] += 1
        return tmp_path / "someone-elses-model" if calls["n"] > 1 else real(project)

    monkeypatch.setattr(training, "current_model_folder", another_model_at_record_time)
    with pytest.raises(TrainError, match="model changed while task 1 trained"):
        _train(folder, minilm)
    with _sound(folder) as p:
        assert p.modules.list() == [] and [r.status for r in p.runs.list()] == ["failed"]
        assert not any(p.modules_dir.iterdir())
