"""Folders the project keeps in its database as content-addressed blobs (SHA-256): a trained model's
folder (adapter weights, router statistics, suggesters, method.json) is stored when the training records
it, so any machine with the database (a teammate with only the server's URL) rebuilds the same folder,
byte for byte, under its own project folder. Files on disk are this machine's copy; the database is the
source of truth."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy import select

from conpet.store.errors import StoreError
from conpet.store.models import Blob, StoredFile

if TYPE_CHECKING:
    from conpet.store.db import Database


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FileRepository:
    def __init__(self, db: Database, project_folder: Path) -> None:
        self._db = db
        self._root = project_folder.resolve()

    def _relative(self, folder: str | Path) -> str:
        path = Path(folder)
        full = (path if path.is_absolute() else self._root / path).resolve()
        try:
            return full.relative_to(self._root).as_posix()
        except ValueError:
            raise StoreError(f"folder {full} is outside the project folder {self._root}") from None

    def store_folder(self, folder: str | Path) -> int:
        """Keep every file under ``folder`` (inside the project folder) in the database, replacing what was
        kept for it before; returns how many files. Joins the caller's transaction."""
        rel = self._relative(folder)
        full = self._root / rel
        files = sorted(p for p in full.rglob("*") if p.is_file())
        if not files:
            raise StoreError(f"folder {full} holds no files to store")
        with self._db.transaction() as s:
            for old in s.scalars(select(StoredFile).where(StoredFile.folder == rel)):
                s.delete(old)
            s.flush()
            for p in files:
                data = p.read_bytes()
                digest = _sha256(data)
                if s.get(Blob, digest) is None:
                    s.add(Blob(sha256=digest, size=len(data), data=data))
                s.add(StoredFile(folder=rel, path=p.relative_to(full).as_posix(), sha256=digest))
            s.flush()
        return len(files)

    def manifest(self, folder: str | Path) -> dict[str, str]:
        """path -> SHA-256 of the files kept for ``folder`` (empty when none)."""
        rel = self._relative(folder)
        with self._db.read() as s:
            return dict(s.execute(select(StoredFile.path, StoredFile.sha256).where(StoredFile.folder == rel)).all())

    def folders(self) -> list[str]:
        """The folders kept in the database, relative to the project folder."""
        with self._db.read() as s:
            return sorted(set(s.scalars(select(StoredFile.folder))))

    def is_current(self, folder: str | Path) -> bool:
        """Whether the folder on this machine holds exactly the kept files (by SHA-256)."""
        manifest = self.manifest(folder)
        full = self._root / self._relative(folder)
        for path, digest in manifest.items():
            p = full / path
            if not p.is_file() or _file_sha256(p) != digest:
                return False
        return bool(manifest)

    def materialise(self, folder: str | Path) -> Path:
        """This machine's copy of a kept folder, written from the database when missing or different (each
        blob checked against its SHA-256; the folder appears complete or not at all). Returns its path."""
        rel = self._relative(folder)
        full = self._root / rel
        manifest = self.manifest(rel)
        if not manifest:
            raise StoreError(f"the project keeps no files for {rel}")
        if self.is_current(rel):
            return full
        full.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{full.name}.tmp-fetch-", dir=full.parent))
        try:
            with self._db.read() as s:
                for path, digest in sorted(manifest.items()):
                    target = tmp / PurePosixPath(path)
                    if ".." in PurePosixPath(path).parts:
                        raise StoreError(f"{rel}: a stored path leaves its folder: {path!r}")
                    data = s.scalar(select(Blob.data).where(Blob.sha256 == digest))
                    if data is None or _sha256(bytes(data)) != digest:
                        raise StoreError(f"{rel}/{path}: the stored content is missing or does not match "
                                         f"its SHA-256 {digest[:12]}…")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(bytes(data))
            if full.exists():
                shutil.rmtree(full)
            os.replace(tmp, full)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return full
