"""Orphaned run and temporary folders under a project's modules/ are collected when a project opens
(the project commands and the app), and nothing that a registered module or an active run uses."""

from __future__ import annotations

from pathlib import Path

from conpet.project.housekeeping import orphaned_folders
from conpet.project.model import open_folder, open_project
from conpet.store import Project


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "module.json").write_text("{}", encoding="utf-8")
    return path


def test_opening_a_project_collects_what_no_module_or_active_run_uses(tmp_path):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        done = p.runs.start("dynamic")
        p.runs.finish(done.id, "ok")
        kept = _folder(p.modules_dir / f"run-{done.id:04d}" / "selector")
        p.modules.register("selector", kept, run_id=done.id)
        failed = p.runs.start("dynamic")
        p.runs.fail(failed.id, "the disk is full")
        orphans = [_folder(p.modules_dir / f".run-{failed.id:04d}.tmp-x1y2" / "model"),  # a failed step's staging
                   _folder(p.modules_dir / "run-0098" / "selector")]  # saved, never registered (killed)
        live = p.runs.start("dynamic")  # this process's: still running, its staging folder stays
        live_tmp = _folder(p.modules_dir / f".run-{live.id:04d}.tmp-abc" / "model")
        mine = _folder(p.modules_dir / "notes")  # not a folder this layer makes
    project, close = open_project(folder)
    try:
        assert close
        left = sorted(c.name for c in project.modules_dir.iterdir())
    finally:
        project.close()
    assert left == sorted([kept.parent.name, live_tmp.parent.name, mine.name])
    assert not any(o.exists() for o in orphans)


def test_nothing_belonging_to_no_run_is_collected_while_a_run_is_active(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        p.runs.start("dynamic")
        _folder(p.modules_dir / ".import-u-1.tmp-q" / "model")  # an import has no run yet: it stays
        stale = _folder(p.modules_dir / "run-0042" / "expert_0").parent
        assert orphaned_folders(p) == [stale]


def test_the_app_opens_a_project_the_same_way(tmp_path):
    from app.viewmodels.project_model import ProjectModel

    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        orphan = _folder(p.modules_dir / ".run-0007.tmp-zz" / "model").parent
        import_staging = _folder(p.modules_dir / ".import-u-1.tmp-q" / "model").parent  # no run is active
    model = ProjectModel.open(folder)
    try:
        assert not orphan.exists() and not import_staging.exists()
    finally:
        model.close()
    with open_folder(folder) as p:
        assert list(p.modules_dir.iterdir()) == []
