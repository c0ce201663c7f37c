"""Folders under a project's ``modules/`` that nothing uses, collected when a project opens.

A training step saves its model in ``.run-NNNN.tmp-*`` and renames it to ``run-NNNN`` before the run's
transaction registers its modules; a bundle import does the same with ``import-…``. A process killed in
between (or a step whose cleanup failed) leaves a temporary folder, or a model folder that no registered
module points into; each can hold hundreds of megabytes. Nothing is deleted while a job holds the project's
lease (``conpet.project.lease``: a training, a prediction or an import, in any process, may be writing any
of these folders); a folder whose run is still active is left alone too, and so is everything while any run
is active and the folder belongs to no run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from conpet.core.errors import ConpetError
from conpet.project.lease import hold_lease, lease_holder

_RUN_FOLDER = re.compile(r"^\.?run-(\d+)(?:\.tmp-.*)?$")
_TMP = re.compile(r"^\..+\.tmp-")
_MODEL_FOLDER = re.compile(r"^(run-\d+|import-.+)$")


def orphaned_folders(project: Any) -> list[Path]:
    """The folders directly under ``project.modules_dir`` that no registered module lives in and no
    active run can still be writing; none while a job holds the project's lease."""
    return [] if lease_holder(project) is not None else _unused_folders(project)


def _unused_folders(project: Any) -> list[Path]:
    root: Path = project.modules_dir
    if not root.is_dir():
        return []
    resolved = root.resolve()
    used = set()
    for m in project.modules.list():
        folder = project.modules.folder(m).resolve()
        if folder.is_relative_to(resolved) and folder != resolved:
            used.add(folder.relative_to(resolved).parts[0])
    active = {r.id for r in project.runs.active()}
    out = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.is_symlink() or child.name in used:
            continue
        if not (_TMP.match(child.name) or _MODEL_FOLDER.match(child.name)):
            continue  # not a folder this layer makes: not ours to delete
        run = _RUN_FOLDER.match(child.name)
        if run is not None and int(run.group(1)) in active:
            continue
        if run is None and active:
            continue
        out.append(child)
    return out


def collect_orphans(project: Any) -> list[Path]:
    """Delete ``orphaned_folders(project)``; returns what was deleted. A folder that cannot be deleted
    (permissions, a read-only disk) stays: collecting is best-effort and never stops a project opening. It
    holds the project's lease while it deletes (skipped when a job holds it)."""
    if not orphaned_folders(project):  # the usual case: no write at all
        return []
    gone = []
    try:
        with hold_lease(project, "housekeeping"):  # no job can start (and make a folder) while we delete
            for folder in _unused_folders(project):
                shutil.rmtree(folder, ignore_errors=True)
                if not folder.exists():
                    gone.append(folder)
    except ConpetError:  # a job started meanwhile (LeaseHeldError), a locked database: the next open collects
        return gone
    return gone
