"""A project's model as a bundle and back: export the current model (``conpet export``, the app's Export)
and import a bundle's tasks, types, modules and metrics into a project (``conpet import-bundle``). The
bundle's file format, its checks and loading it outside a project are ``conpet.bundle``'s."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conpet.bundle import (
    BundleError,
    BundleInfo,
    resolve_backbone,
    stage_method,
    tensor_count,
    unpacked,
    write_bundle,
)
from conpet.core.protocols import ProgressLike, Reporter, ScaledSink, as_sink
from conpet.project.lease import confirm_lease, hold_lease
from conpet.project.model import (
    STATE_FILE,
    TRAINING_FILE,
    current_model_folder,
    module_kind,
    open_project,
    read_model_state,
    step_metrics,
    store_name,
)


def project_bundle_info(project: Any, folder: Path) -> BundleInfo:
    """What a project knows about its current model (saved in ``folder``): task names, type kinds and
    descriptions, metrics per step, data hashes, the backbone."""
    state, training = read_model_state(folder)
    labels = {int(k): v for k, v in training.get("labels", {}).items()}
    types = {t.id: t for t in project.types.list(include_deleted=True)}
    tasks = []
    for k, rec in enumerate(project.tasks.list()[: len(state.get("tasks", []))]):
        entries = []
        for tid in rec.type_ids:
            t = types[tid]
            label = labels.get(tid, t.name)
            e = {"name": label, "kind": t.kind, "description": t.description, "colour": t.colour}
            if label != t.name:
                e["current_name"] = t.name
            if t.head_type_ids or t.tail_type_ids:  # the argument rule bundle prediction keeps to
                e.update(head_types=sorted(labels.get(i, types[i].name) for i in t.head_type_ids if i in types),
                         tail_types=sorted(labels.get(i, types[i].name) for i in t.tail_type_ids if i in types))
            entries.append(e)
        tasks.append({"index": k, "name": rec.name, "types": entries})
    metrics = step_metrics(project)
    bb = dict(training.get("backbone") or {})
    if not bb.get("sha256"):
        runs = [r for r in project.runs.list(status="finished") if r.backbone_sha256]
        if runs:
            bb = {"name": runs[0].backbone, "path": runs[0].backbone, "sha256": runs[0].backbone_sha256}
    data = {"scheme": "per task: SHA-256 of the sorted example ids of each split (train/valid/test, 8:1:1 per type)",
            "tasks": metrics[-1].get("data_sha256", []) if metrics else []}
    return BundleInfo(backbone=bb, tasks=tasks, metrics=metrics, data=data, title=project.info().name,
                      source={"project": project.info().name, "run_id": training.get("run_id")})


def export_bundle(project: Any, out_path: str | Path, progress: ProgressLike = None, *,
                  overwrite: bool = False) -> Path:
    """Export the project's current model (its latest training) as a bundle at ``out_path``: a zip file
    when it ends in ``.zip``, else a folder. ``project`` is a project folder or an open ``Project``.
    Atomic; refuses an existing target unless ``overwrite``. Returns the bundle's path."""
    proj, close = open_project(project)
    try:
        folder = current_model_folder(proj)
        if folder is None:
            raise BundleError(proj.where, "project", "the project has no trained model yet (run `conpet train` "
                              "or Train in the app first)")
        return write_bundle(folder, out_path, project_bundle_info(proj, folder), overwrite=overwrite,
                            progress=progress)
    finally:
        if close:
            proj.close()


@dataclass(frozen=True)
class ImportResult:
    run_id: int
    tasks: int
    types_created: int
    types_reused: int
    modules: int
    model_folder: Path


def import_bundle(project: Any, bundle_path: str | Path, progress: ProgressLike = None, *,
                  backbone: Any = None, default_kind: str = "entity") -> ImportResult:
    """Import a bundle into a project (a folder, created when absent, or an open ``Project``): its tasks,
    types (with descriptions), modules and metrics appear, in one transaction; annotations are not part
    of a bundle. The bundle is verified first, and its backbone (``backbone``, else the recorded one) must
    have the recorded weights. Refused when the project already has tasks. Types without a recorded kind
    get ``default_kind``."""
    from conpet.store import Project

    sink = as_sink(progress)
    rep = Reporter(sink)
    bundle_path = Path(bundle_path).expanduser()
    if isinstance(project, (str, os.PathLike)):
        proj, close = Project.open_or_create(project), True
    else:
        proj, close = project, False
    folder: Path | None = None
    try:
        with hold_lease(proj, "import"), unpacked(bundle_path, ScaledSink(sink, 0.0, 0.4)) as (root, manifest):
            rep(0.4, "checking the backbone", "import")
            bb = resolve_backbone(manifest, backbone, where=bundle_path)
            existing = proj.tasks.list()
            if existing:
                raise BundleError(bundle_path, "project",
                                  f"refused: project {proj.where} already has {len(existing)} task(s); import a "
                                  "bundle into a project without trained tasks (a new project)")
            types_now = {(t.kind, t.name): t for t in proj.types.list()}
            for t in manifest["tasks"]:
                for ty in t["types"]:
                    have = types_now.get((ty.get("kind") or default_kind, ty["name"]))
                    if have is not None and have.task_id is not None:
                        raise BundleError(bundle_path, "project", f"refused: type {ty['name']!r} already belongs "
                                          "to a task of this project")
            rep(0.6, "copying modules", "import")
            uid = str(manifest.get("uid") or "bundle")
            folder = proj.modules_dir / f"import-{uid}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=proj.modules_dir))
            try:
                stage = tmp / "model"
                stage_method(root, stage)
                state = json.loads((stage / STATE_FILE).read_text(encoding="utf-8"))
                result = _import_records(proj, manifest, state, stage, folder, bb, default_kind, bundle_path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            rep(1.0, f"imported {result['tasks']} task(s) from {bundle_path.name}", "import")
            return ImportResult(model_folder=folder, **result)
    finally:
        if close:
            proj.close()


def _import_records(proj: Any, manifest: Mapping[str, Any], state: Mapping[str, Any], stage: Path, folder: Path,
                    bb: Any, default_kind: str, where: Path) -> dict[str, Any]:
    """One transaction: the staged model folder moved to ``folder`` once the transaction holds the write
    lock, then the run, types, tasks, modules and metrics recorded (the folder deleted again when the
    commit fails): the folder is adopted by its run in the transaction that records it, so no committed
    module points at a missing folder, and the import's lease keeps housekeeping away meanwhile."""
    try:
        return _record_import(proj, manifest, state, stage, folder, bb, default_kind, where)
    except BaseException:
        if not stage.exists():  # moved into place, not committed: nothing points at it
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _record_import(proj: Any, manifest: Mapping[str, Any], state: Mapping[str, Any], stage: Path, folder: Path,
                   bb: Any, default_kind: str, where: Path) -> dict[str, Any]:
    created = reused = 0
    labels: dict[str, str] = {}
    with proj.transaction():
        confirm_lease(proj)  # also takes the write lock first: the folder moves in while the import holds it
        stage.rename(folder)
        run = proj.runs.start(str(manifest["method"]), purpose="import",
                              config={"bundle": str(where), "bundle_created_at": manifest.get("created_at"),
                                      "train": manifest.get("config", {}), "source": manifest.get("source", {})},
                              backbone=str(manifest["backbone"].get("name", "")),
                              backbone_sha256=bb.weights_sha256())
        for t in manifest["tasks"]:
            ids = []
            for ty in t["types"]:
                kind = ty.get("kind") or default_kind
                found = proj.types.find(ty["name"], kind)
                if found is None:
                    found = proj.types.add(ty["name"], kind, description=ty.get("description", "") or "",
                                           colour=ty.get("colour"))
                    created += 1
                else:
                    reused += 1
                    if ty.get("description") and not found.description:
                        proj.types.describe(found.id, ty["description"])
                ids.append(found.id)
                labels[str(found.id)] = ty["name"]
            task = proj.tasks.create_next(ids, name=t.get("name") or "")
            proj.tasks.freeze(task.id)
        n_modules = 0
        for name in state.get("modules", []):
            kind, k = module_kind(name)
            proj.modules.register(kind, folder / name, name=store_name(name),
                                  task_index=(k + 1) if k is not None else None, run_id=run.id,
                                  parameter_count=tensor_count(folder / name / "adapter_model.safetensors")
                                  + tensor_count(folder / name / "head.safetensors"))
            n_modules += 1
        for i, m in enumerate(manifest.get("metrics") or []):
            proj.runs.update_progress(run.id, 1.0, "imported", metrics={**m, "kind": "step", "imported": True},
                                      step=m.get("step", i + 1))
        proj.runs.finish(run.id, f"imported from {where.name}")
        # Written before the commit: a committed import always has it (a crash before the commit leaves an
        # unregistered folder, which nothing uses and housekeeping collects once the lease is gone).
        training = {"backbone": dict(manifest["backbone"]), "labels": labels, "run_id": run.id,
                    "imported_from": str(where)}
        (folder / TRAINING_FILE).write_text(json.dumps(training, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        proj.files.store_folder(folder)  # in the database: a teammate's machine rebuilds the same folder
    return {"run_id": run.id, "tasks": len(manifest["tasks"]), "types_created": created, "types_reused": reused,
            "modules": n_modules}
