"""A project's current model: where it lives, what it recorded, and the names the store gives its modules.

Each training step saves the whole model in one folder, ``modules/run-NNNN/`` (an imported bundle:
``modules/import-…/``): the engine's ``method.json`` + one folder per module (``PETMethod.save``) and
``training.json`` (the backbone's identity, the type-id → label map, the examples' fixed splits). The
newest registered module's folder is the current model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STATE_FILE = "method.json"
TRAINING_FILE = "training.json"


def open_folder(folder: str | os.PathLike[str]) -> Any:
    """The project at ``folder`` opened (``Project.open``), its orphaned run and temporary folders collected
    first (``conpet.project.housekeeping``): how the app and the project commands open a project."""
    from conpet.project.housekeeping import collect_orphans
    from conpet.store import Project

    project = Project.open(folder)
    try:
        collect_orphans(project)
    except BaseException:
        project.close()
        raise
    return project


def open_project(project: Any) -> tuple[Any, bool]:
    """(Project, whether we opened it and must close it): a folder is opened with ``open_folder``."""
    if isinstance(project, (str, os.PathLike)):
        return open_folder(project), True
    return project, False


def current_model_folder(project: Any) -> Path | None:
    """The folder of the project's current model: the newest registered module whose parent folder holds
    the engine's ``method.json`` (each training saves the whole model in one folder). A model the project
    keeps in its database is first brought to this machine (rebuilt when missing or different), so a
    teammate's machine predicts with the very files the training saved."""
    records = sorted(project.modules.list(), key=lambda m: m.id)
    kept = set(project.files.folders())
    for m in reversed(records):
        folder = project.modules.folder(m).parent
        relative = folder.relative_to(project.folder).as_posix()
        if relative in kept:
            return project.files.materialise(relative)
        if (folder / STATE_FILE).is_file():
            return folder
    return None


def read_model_state(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(method.json, training.json or {}) of a model folder."""
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    side = folder / TRAINING_FILE
    training = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else {}
    return state, training


def step_metrics(project: Any) -> list[dict[str, Any]]:
    """Metrics per continual step, from the project's finished runs (oldest first; a later run's entry
    for the same step wins)."""
    by_step: dict[Any, dict[str, Any]] = {}
    for run in sorted(project.runs.list(status="finished"), key=lambda r: r.id):
        for m in run.metrics:
            if m.get("kind", "step") == "step" and m.get("step") is not None:
                by_step[m["step"]] = {**m, "run_id": run.id}
    return [by_step[k] for k in sorted(by_step)]


def learnt_kinds(project: Any, labels: Mapping[int, str]) -> dict[str, str]:
    """label -> kind ("entity" | "relation") of the types in ``labels`` (type id -> label)."""
    kinds = {t.id: t.kind for t in project.types.list(include_deleted=True)}
    return {label: kinds[i] for i, label in labels.items() if i in kinds}


def module_kind(name: str) -> tuple[str, int | None]:
    """(the store's module kind, the expert's 0-based task) of an engine module name."""
    if name == "selector":
        return "selector", None
    if name.startswith("expert_") and name[7:].isdigit():
        return "expert", int(name[7:])
    return "static", None


def store_name(name: str) -> str:
    """The store's name of an engine module: ``expert_0`` is ``expert-1`` (the store's task index is 1-based)."""
    kind, k = module_kind(name)
    if kind == "expert":
        return f"expert-{k + 1}"
    return "selector" if kind == "selector" else name


def release(method: Any) -> None:
    """Take a job's PET modules off its backbone: a backbone kept for the next job (the app's) would
    otherwise carry every finished job's adapters."""
    if method is not None and getattr(method, "_pet", None) is not None:
        method.pet.close()


def is_project_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a project: a folder holding the project's database, or a ``postgresql://``
    URL (a server project; opening it says whether the database holds one)."""
    from conpet.store.location import DB_NAME, is_server_url

    return is_server_url(path) or (Path(path) / DB_NAME).is_file()


def as_the_model_names_them(examples: Sequence[Any], labels: Mapping[int, str]) -> list[Any]:
    """The examples with each type named as the model learnt it (``training.json``'s type id -> label map), so
    that a type renamed since keeps its examples in its task."""
    from dataclasses import replace

    out = []
    for ex in examples:
        want = labels.get(int(ex.meta.get("type_id", -1)), ex.label)
        out.append(ex if want == ex.label else replace(ex, label=want, meta=dict(ex.meta)))
    return out


def learnt_data(project: Any, state: Mapping[str, Any], training: Mapping[str, Any]) -> list[Any]:
    """The learnt tasks' current data, split as a training step will split it (``conpet.project.splits``)."""
    from conpet.data.tasks import TaskData
    from conpet.project.splits import assign_splits, split_task

    labels = {int(k): v for k, v in (training.get("labels") or {}).items()}
    model_types = [list(ts) for ts in state.get("tasks", [])]
    records = project.tasks.list()[: len(model_types)]
    gold = [project.examples_for_training(list(r.type_ids)) for r in records]
    splits = assign_splits((ex for exs in gold for ex in exs), training.get("splits", {}))
    out = []
    for k, (types, exs) in enumerate(zip(model_types, gold, strict=True)):
        train, valid, test = split_task(as_the_model_names_them(exs, labels), splits)
        out.append(TaskData(k, tuple(types), tuple(train), tuple(valid), tuple(test)))
    return out
