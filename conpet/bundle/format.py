"""The bundle format on disk: its constants, reading a folder or a zip through one interface, and every check
(member names, suffixes, sizes, SHA-256, the manifest's own digest and its agreement with the modules) before
anything is trusted. Every refusal is a ``BundleError``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from conpet import __version__
from conpet.bundle.checks import DIGEST_KEY, manifest_digest, manifest_problems
from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressLike, ProgressSink, Reporter, as_sink

FORMAT = "conpet-bundle"
FORMAT_VERSION = 2  # 2: the manifest carries its own digest and must agree with the modules
MANIFEST = "manifest.json"
README = "README.md"
STATE_FILE = "method.json"
ALLOWED_SUFFIXES = (".json", ".safetensors", ".md")
MODULE_FILES = ("adapter_config.json", "adapter_model.safetensors", "head.safetensors", "module.json")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_FILES = 10_000
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class BundleError(ConpetError):
    """A bundle that cannot be written, read or used. ``reason`` is one of: ``not_found``,
    ``not_a_bundle``, ``manifest``, ``format_version``, ``unsafe_path``, ``file_type``, ``extra_file``,
    ``missing_file``, ``checksum`` (a file, or the manifest itself, changed), ``inconsistent`` (the manifest
    disagrees with the modules), ``backbone``, ``exists``, ``project``."""

    def __init__(self, path: str | Path, reason: str, problem: str) -> None:
        self.path = str(path)
        self.reason = reason
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --- paths and hashes ----------------------------------------------------------------------------


def check_member(name: str, where: str | Path) -> str:
    """A bundle member name: relative POSIX path, no '..', no drive, no backslash, no empty parts."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        raise BundleError(where, "unsafe_path", f"refused: member {name!r} is not a relative path inside the bundle")
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") for p in name.split("/")) or not parts:
        raise BundleError(where, "unsafe_path", f"refused: member {name!r} would leave the bundle folder ('..' or '.')")
    return name


def check_suffix(name: str, where: str | Path, declared: bool) -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        what = "declares" if declared else "contains"
        raise BundleError(where, "file_type",
                          f"refused: the bundle {what} {name!r}, a {suffix or 'suffix-less'} file; bundles hold only "
                          f"{', '.join(ALLOWED_SUFFIXES)} files (never pickles or code)")


def sha256_stream(chunks: Iterable[bytes]) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for c in chunks:
        h.update(c)
        n += len(c)
    return h.hexdigest(), n


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(_CHUNK), b"")


def file_sha256(path: str | Path) -> str:
    return sha256_stream(file_chunks(Path(path)))[0]


# --- reading a bundle (folder or zip) -----------------------------------------------------------


class Source:
    """Read-only view of a bundle's members, whichever form it has."""

    path: Path

    def members(self) -> list[str]:
        raise NotImplementedError

    def chunks(self, name: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def size(self, name: str) -> int:
        """The member's size as its container records it (a zip's header, a file's length), read nothing."""
        raise NotImplementedError

    def read_bounded(self, name: str, limit: int, what: str) -> bytes:
        """The member's bytes when it has at most ``limit``: checked from the recorded size first, then while
        reading (a header may lie), so a small zip entry that inflates to gigabytes is never held in memory."""
        too_big = BundleError(self.path, "manifest", f"{what} is larger than {limit} bytes")
        if self.size(name) > limit:
            raise too_big
        parts: list[bytes] = []
        total = 0
        for chunk in self.chunks(name):
            total += len(chunk)
            if total > limit:
                raise too_big
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        pass


class FolderSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path

    def members(self) -> list[str]:
        out: list[str] = []
        for root, dirs, files in os.walk(self.path, followlinks=False):
            r = Path(root)
            for d in dirs:
                if (r / d).is_symlink():
                    raise BundleError(self.path, "unsafe_path",
                                      f"refused: {(r / d).relative_to(self.path).as_posix()!r} is a symbolic link")
            for f in files:
                p = r / f
                rel = p.relative_to(self.path).as_posix()
                mode = p.lstat().st_mode
                if stat.S_ISLNK(mode):
                    raise BundleError(self.path, "unsafe_path", f"refused: {rel!r} is a symbolic link")
                if not stat.S_ISREG(mode):
                    raise BundleError(self.path, "file_type", f"refused: {rel!r} is not a regular file")
                out.append(rel)
                if len(out) > MAX_FILES:
                    raise BundleError(self.path, "not_a_bundle", f"more than {MAX_FILES} files: not a bundle")
        return sorted(out)

    def chunks(self, name: str) -> Iterator[bytes]:
        yield from file_chunks(self.path / name)

    def size(self, name: str) -> int:
        return (self.path / name).stat().st_size


class ZipSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise BundleError(path, "not_a_bundle", f"not a readable zip file ({exc})") from exc
        self.prefix = ""
        self._names: dict[str, zipfile.ZipInfo] = {}

    def members(self) -> list[str]:
        infos = self.zf.infolist()
        if len(infos) > MAX_FILES:
            raise BundleError(self.path, "not_a_bundle", f"more than {MAX_FILES} entries: not a bundle")
        files: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            check_member(name.rstrip("/") if info.is_dir() else name, self.path)
            kind = (info.external_attr >> 16) & 0o170000
            if kind == stat.S_IFLNK:
                raise BundleError(self.path, "unsafe_path", f"refused: zip entry {name!r} is a symbolic link")
            if info.is_dir():
                continue
            if name in files:
                raise BundleError(self.path, "unsafe_path", f"refused: zip entry {name!r} appears twice")
            files[name] = info
        # A zip made by zipping the bundle folder itself holds everything under one top folder.
        if MANIFEST not in files:
            tops = {n.split("/", 1)[0] for n in files}
            if len(tops) == 1 and "/" in next(iter(files), ""):
                top = next(iter(tops))
                if f"{top}/{MANIFEST}" in files:
                    self.prefix = top + "/"
        self._names = {n[len(self.prefix):]: i for n, i in files.items()}
        return sorted(self._names)

    def chunks(self, name: str) -> Iterator[bytes]:
        if not self._names:
            self.members()
        info = self._names[name]
        try:
            with self.zf.open(info) as f:
                yield from iter(lambda: f.read(_CHUNK), b"")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a corrupt member reads as a bad checksum
            raise BundleError(self.path, "checksum", f"refused: {name!r} cannot be read from the zip ({exc})") from exc

    def size(self, name: str) -> int:
        if not self._names:
            self.members()
        return int(self._names[name].file_size)

    def close(self) -> None:
        self.zf.close()


def open_source(path: str | Path) -> Source:
    p = Path(path)
    if p.is_dir():
        return FolderSource(p)
    if p.is_file():
        return ZipSource(p)
    raise BundleError(p, "not_found", "no such bundle (neither a folder nor a zip file)")


def read_manifest_bytes(src: Source) -> bytes:
    """The manifest's bytes, refused by its recorded size before any is read (``Source.read_bounded``)."""
    return src.read_bounded(MANIFEST, MAX_MANIFEST_BYTES, MANIFEST)


def parse_manifest(raw: bytes, where: Path) -> dict[str, Any]:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(where, "manifest", f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(where, "manifest", f"{MANIFEST} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(where, "not_a_bundle", f"{MANIFEST} is not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(where, "format_version", f"{MANIFEST} has no integer format_version ({version!r})")
    if version != FORMAT_VERSION:
        newer = "newer than" if version > FORMAT_VERSION else "older than any"
        raise BundleError(where, "format_version",
                          f"refused: bundle format version {version} is {newer} this program reads "
                          f"(version {FORMAT_VERSION}, conpet {__version__}); "
                          + ("update ConPET Studio to load it" if version > FORMAT_VERSION else "re-export it"))
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(where, "manifest", f"{MANIFEST} lists no files")
    for name, entry in files.items():
        check_member(name, where)
        check_suffix(name, where, declared=True)
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) or not isinstance(entry.get("size"), int)):
            raise BundleError(where, "manifest", f"{MANIFEST}: entry for {name!r} needs a sha256 (64 hex) and a size")
    for key in ("method", "backbone", "tasks", "modules"):
        if key not in manifest:
            raise BundleError(where, "manifest", f"{MANIFEST} lacks {key!r}")
    if not isinstance(manifest["backbone"], dict) or not manifest["backbone"].get("sha256"):
        raise BundleError(where, "manifest", f"{MANIFEST}: the backbone's sha256 is missing")
    if not isinstance(manifest["modules"], list) or not isinstance(manifest["tasks"], list):
        raise BundleError(where, "manifest", f"{MANIFEST}: 'tasks' and 'modules' must be lists")
    for m in manifest["modules"]:
        folder = m.get("folder") if isinstance(m, dict) else None
        if not isinstance(folder, str):
            raise BundleError(where, "manifest", f"{MANIFEST}: a module entry has no folder")
        check_member(folder, where)
        for f in MODULE_FILES:
            if f"{folder}/{f}" not in files:
                raise BundleError(where, "missing_file",
                                  f"refused: module {folder!r} lacks {f} in the manifest's file list")
    if STATE_FILE not in files:
        raise BundleError(where, "missing_file", f"refused: {STATE_FILE} is not in the manifest's file list")
    _check_digest(manifest, where)
    return manifest


def _check_digest(manifest: Mapping[str, Any], where: Path) -> None:
    recorded = manifest.get(DIGEST_KEY)
    if not isinstance(recorded, str):
        raise BundleError(where, "manifest", f"refused: {MANIFEST} has no {DIGEST_KEY} (re-export the bundle)")
    actual = manifest_digest(manifest)
    if actual != recorded:
        raise BundleError(where, "checksum",
                          f"refused: {MANIFEST} was changed after export (its contents hash to {actual[:12]}…, "
                          f"it records {recorded[:12]}…); re-export the bundle instead of editing its manifest")


def _check_consistent(src: Source, manifest: Mapping[str, Any]) -> None:
    problems = manifest_problems(manifest, src.read)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BundleError(src.path, "inconsistent",
                          f"refused: {MANIFEST} disagrees with the modules ({shown}); re-export the bundle")


def verify_source(src: Source, sink: ProgressSink | None = None) -> dict[str, Any]:
    members = src.members()
    for name in members:
        check_member(name, src.path)
    if MANIFEST not in members:
        raise BundleError(src.path, "not_a_bundle", f"not a bundle: no {MANIFEST} at its root")
    manifest = parse_manifest(read_manifest_bytes(src), src.path)
    files: dict[str, dict[str, Any]] = manifest["files"]
    present = set(members) - {MANIFEST}
    for name in sorted(present - set(files)):
        check_suffix(name, src.path, declared=False)
        raise BundleError(src.path, "extra_file",
                          f"refused: {name!r} is in the bundle but not declared in {MANIFEST} (was it tampered with?)")
    missing = sorted(set(files) - present)
    if missing:
        raise BundleError(src.path, "missing_file",
                          f"refused: {len(missing)} declared file(s) missing: {', '.join(missing[:5])}")
    rep = Reporter(sink) if sink is not None else None
    total = sum(int(e["size"]) for e in files.values()) or 1
    done = 0
    for name in sorted(files):
        sha, size = sha256_stream(src.chunks(name))
        if sha != files[name]["sha256"] or size != files[name]["size"]:
            raise BundleError(src.path, "checksum",
                              f"refused: checksum mismatch for {name!r} (manifest {files[name]['sha256'][:12]}…, "
                              f"file {sha[:12]}…): the file was changed or damaged")
        done += size
        if rep is not None:
            rep(done / total, f"verified {name}", "verify")
    _check_consistent(src, manifest)
    return manifest


def verify_bundle(path: str | Path, progress: ProgressLike = None) -> dict[str, Any]:
    """Check a bundle (folder or zip) completely without loading a model; returns its manifest.
    Raises ``BundleError`` with the reason when it must be refused."""
    src = open_source(path)
    try:
        return verify_source(src, as_sink(progress))
    finally:
        src.close()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest only (checked for format and version, files not hashed)."""
    src = open_source(path)
    try:
        if MANIFEST not in src.members():
            raise BundleError(src.path, "not_a_bundle", f"not a bundle: no {MANIFEST} at its root")
        return parse_manifest(read_manifest_bytes(src), src.path)
    finally:
        src.close()


@contextmanager
def unpacked(path: str | Path, progress: ProgressLike = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A verified bundle as a folder on disk (a zip is extracted into a temporary folder, removed after)."""
    src = open_source(path)
    try:
        manifest = verify_source(src, as_sink(progress))
        if isinstance(src, FolderSource):
            yield src.path, manifest
            return
        with tempfile.TemporaryDirectory(prefix="conpet-bundle-") as tmp:
            root = Path(tmp)
            for name, entry in manifest["files"].items():
                dest = root / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with open(dest, "wb") as f:
                    for c in src.chunks(name):
                        h.update(c)
                        f.write(c)
                if h.hexdigest() != entry["sha256"]:  # changed between verification and extraction
                    raise BundleError(src.path, "checksum", f"refused: checksum mismatch for {name!r}")
            (root / MANIFEST).write_bytes(read_manifest_bytes(src))
            yield root, manifest
    finally:
        src.close()


# --- writing -------------------------------------------------------------------------------------
