"""Trained PET modules: their adapter folders live in the project folder, the database holds the
relative path, a version and the SHA-256 of the files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from conpet.store.errors import NotFoundError, StoreError
from conpet.store.models import MODULE_KINDS, Module, Run
from conpet.store.records import ModuleRecord

if TYPE_CHECKING:
    from conpet.store.db import Database


def folder_sha256(folder: Path) -> str:
    """SHA-256 over every file under ``folder``: its relative path, then its bytes, in path order."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def module_record(m: Module) -> ModuleRecord:
    return ModuleRecord(id=m.id, name=m.name, kind=m.kind, task_index=m.task_index, path=m.path,
                        version=m.version, sha256=m.sha256, parameter_count=m.parameter_count,
                        run_id=m.run_id, created_at=m.created_at)


class ModuleRepository:
    def __init__(self, db: Database, project_folder: Path) -> None:
        self._db = db
        self._root = project_folder.resolve()

    def folder(self, module: ModuleRecord) -> Path:
        """The module's adapter folder on this machine."""
        return self._root / module.path

    def register(self, kind: str, folder: str | Path, *, name: str | None = None,
                 task_index: int | None = None, run_id: int | None = None,
                 parameter_count: int = 0) -> ModuleRecord:
        """Record the adapter saved in ``folder`` (absolute or relative to the project folder; it must lie
        inside it) as the next version of module ``name`` (default: "expert-<task_index>", "selector" or
        "static"), with the SHA-256 computed from its files."""
        if kind not in MODULE_KINDS:
            raise StoreError(f"a module's kind is one of {', '.join(MODULE_KINDS)}, not {kind!r}")
        if kind == "expert" and task_index is None and name is None:
            raise StoreError("an expert module needs its task index (or a name)")
        path = Path(folder)
        full = (path if path.is_absolute() else self._root / path).resolve()
        try:
            rel = full.relative_to(self._root)
        except ValueError:
            raise StoreError(f"module folder {full} is outside the project folder {self._root}; save "
                             "adapters under the project's modules/ folder") from None
        if not full.is_dir():
            raise StoreError(f"module folder {full} does not exist")
        if not any(p.is_file() for p in full.rglob("*")):
            raise StoreError(f"module folder {full} holds no files")
        sha = folder_sha256(full)
        name = name or (f"expert-{task_index}" if kind == "expert" else kind)
        with self._db.transaction() as s:
            if run_id is not None and s.get(Run, run_id) is None:
                raise NotFoundError(f"there is no run with id {run_id}")
            version = int(s.scalar(select(func.max(Module.version)).where(Module.name == name)) or 0) + 1
            m = Module(name=name, kind=kind, task_index=task_index, path=rel.as_posix(), version=version,
                       sha256=sha, parameter_count=int(parameter_count), run_id=run_id)
            s.add(m)
            s.flush()
            return module_record(m)

    def get(self, module_id: int) -> ModuleRecord:
        with self._db.read() as s:
            m = s.get(Module, module_id)
            if m is None:
                raise NotFoundError(f"there is no module with id {module_id}")
            return module_record(m)

    def latest(self, name: str) -> ModuleRecord | None:
        with self._db.read() as s:
            m = s.scalars(select(Module).where(Module.name == name).order_by(Module.version.desc())).first()
            return module_record(m) if m is not None else None

    def list(self, *, kind: str | None = None, run_id: int | None = None,
             latest_only: bool = False) -> list[ModuleRecord]:
        """By name then version (only each name's newest version with ``latest_only``)."""
        with self._db.read() as s:
            q = select(Module).order_by(Module.name, Module.version)
            if kind is not None:
                q = q.where(Module.kind == kind)
            if run_id is not None:
                q = q.where(Module.run_id == run_id)
            rows = [module_record(m) for m in s.scalars(q)]
        if latest_only:
            newest: dict[str, ModuleRecord] = {}
            for r in rows:
                newest[r.name] = r
            rows = list(newest.values())
        return rows

    def verify(self, module: ModuleRecord) -> bool:
        """True when the files on disk still have the recorded SHA-256."""
        folder = self.folder(module)
        return folder.is_dir() and folder_sha256(folder) == module.sha256
