"""Adapter bundles: how trained knowledge leaves a project (to another project, a GPU server, or a
Python program), with provenance and without pickles.

A bundle is a folder, or one zip file holding the same layout at its root::

    manifest.json            format + version, conpet version, method, backbone (name, path, SHA-256 of
                             its weights), tasks in order (types with kind and description), encoder
                             settings, training config, metrics per step, data hashes, creation time,
                             the modules, the SHA-256 and size of every other file, and
                             ``manifest_sha256`` over the rest of the manifest (``conpet.bundle_checks``)
    README.md                model card: types, metrics, how to load
    method.json              the engine's method state (`PETMethod.save`)
    selector/ expert_0/ ...  one PET module each (`PETModel.save_module`): adapter_config.json,
    main/                    adapter_model.safetensors (peft), head.safetensors, module.json
    suggestions.json         optional (``conpet.suggestions``): the mention detector (detector/) and the
    detector/ relatedness/   relatedness gate (relatedness/) with its threshold; listed in method.json's
                             ``extra.files`` like a router file, so copied and checksummed as any file

Only ``.json``, ``.safetensors`` and ``.md`` files may appear; anything else (a pickle, a script, a
symlink, a path leaving the bundle) is refused, as are checksum mismatches, missing or undeclared files,
an unknown format version, a manifest that was edited or disagrees with ``method.json`` and the modules
(type names, head sizes, versions) and, when loading, a backbone whose weights differ from the recorded ones.
Each adapter_config.json names the backbone by its public name, not the trainer's local folder.
Every refusal is a ``BundleError`` whose ``reason`` names the case and whose message says what to do.

Writing is atomic: the bundle is built in a temporary sibling of the target and renamed into place
(folder) or written to a temporary sibling file that replaces the target (zip), so a crash never
leaves a half-written bundle at the target path.

Loading from Python::

    from conpet.bundle import Bundle
    bundle = Bundle.load("people.conpet.zip")           # loads the recorded backbone, checks its SHA-256
    for s in bundle.predict([{"text": "Ada Lovelace was born in London.",
                              "entities": [{"start": 0, "end": 12}, {"start": 25, "end": 31}]}]):
        for m in s.mentions:
            print(m.kind, m.text, m.label, round(m.score, 3), m.active_experts)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from conpet import __version__
from conpet.backbones import backbone_info, public_backbone_name  # noqa: F401 (this module's API)
from conpet.bundle_checks import DIGEST_KEY, manifest_digest, manifest_problems
from conpet.data.example import Example, Span
from conpet.errors import ConpetError
from conpet.protocols import ProgressLike, ProgressSink, Reporter, as_sink

__all__ = [
    "ALLOWED_SUFFIXES", "FORMAT", "FORMAT_VERSION", "MANIFEST", "Bundle", "BundleError", "BundleInfo",
    "MentionPrediction", "SentencePrediction", "backbone_info", "model_card", "read_manifest",
    "resolve_backbone", "sentence_prediction", "sentence_queries", "stage_method", "tensor_count", "unpacked",
    "verify_bundle", "write_bundle",
]

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


def _check_member(name: str, where: str | Path) -> str:
    """A bundle member name: relative POSIX path, no '..', no drive, no backslash, no empty parts."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        raise BundleError(where, "unsafe_path", f"refused: member {name!r} is not a relative path inside the bundle")
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") for p in name.split("/")) or not parts:
        raise BundleError(where, "unsafe_path", f"refused: member {name!r} would leave the bundle folder ('..' or '.')")
    return name


def _check_suffix(name: str, where: str | Path, declared: bool) -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        what = "declares" if declared else "contains"
        raise BundleError(where, "file_type",
                          f"refused: the bundle {what} {name!r}, a {suffix or 'suffix-less'} file; bundles hold only "
                          f"{', '.join(ALLOWED_SUFFIXES)} files (never pickles or code)")


def _sha256_stream(chunks: Iterable[bytes]) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for c in chunks:
        h.update(c)
        n += len(c)
    return h.hexdigest(), n


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(_CHUNK), b"")


def file_sha256(path: str | Path) -> str:
    return _sha256_stream(_file_chunks(Path(path)))[0]


# --- reading a bundle (folder or zip) -----------------------------------------------------------


class _Source:
    """Read-only view of a bundle's members, whichever form it has."""

    path: Path

    def members(self) -> list[str]:
        raise NotImplementedError

    def chunks(self, name: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def close(self) -> None:
        pass


class _FolderSource(_Source):
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
        yield from _file_chunks(self.path / name)


class _ZipSource(_Source):
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
            _check_member(name.rstrip("/") if info.is_dir() else name, self.path)
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

    def close(self) -> None:
        self.zf.close()


def _open_source(path: str | Path) -> _Source:
    p = Path(path)
    if p.is_dir():
        return _FolderSource(p)
    if p.is_file():
        return _ZipSource(p)
    raise BundleError(p, "not_found", "no such bundle (neither a folder nor a zip file)")


def _parse_manifest(raw: bytes, where: Path) -> dict[str, Any]:
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
        _check_member(name, where)
        _check_suffix(name, where, declared=True)
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
        _check_member(folder, where)
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


def _check_consistent(src: _Source, manifest: Mapping[str, Any]) -> None:
    problems = manifest_problems(manifest, src.read)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BundleError(src.path, "inconsistent",
                          f"refused: {MANIFEST} disagrees with the modules ({shown}); re-export the bundle")


def _verify_source(src: _Source, sink: ProgressSink | None = None) -> dict[str, Any]:
    members = src.members()
    for name in members:
        _check_member(name, src.path)
    if MANIFEST not in members:
        raise BundleError(src.path, "not_a_bundle", f"not a bundle: no {MANIFEST} at its root")
    manifest = _parse_manifest(src.read(MANIFEST), src.path)
    files: dict[str, dict[str, Any]] = manifest["files"]
    present = set(members) - {MANIFEST}
    for name in sorted(present - set(files)):
        _check_suffix(name, src.path, declared=False)
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
        sha, size = _sha256_stream(src.chunks(name))
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
    src = _open_source(path)
    try:
        return _verify_source(src, as_sink(progress))
    finally:
        src.close()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest only (checked for format and version, files not hashed)."""
    src = _open_source(path)
    try:
        if MANIFEST not in src.members():
            raise BundleError(src.path, "not_a_bundle", f"not a bundle: no {MANIFEST} at its root")
        return _parse_manifest(src.read(MANIFEST), src.path)
    finally:
        src.close()


@contextmanager
def unpacked(path: str | Path, progress: ProgressLike = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A verified bundle as a folder on disk (a zip is extracted into a temporary folder, removed after)."""
    src = _open_source(path)
    try:
        manifest = _verify_source(src, as_sink(progress))
        if isinstance(src, _FolderSource):
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
            (root / MANIFEST).write_bytes(src.read(MANIFEST))
            yield root, manifest
    finally:
        src.close()


# --- writing -------------------------------------------------------------------------------------


@dataclass
class BundleInfo:
    """What a bundle records beyond the method's own state (all optional but the backbone)."""

    backbone: Mapping[str, Any]  # name, path, sha256 (+ arch, model_type, hidden_size, source)
    tasks: Sequence[Mapping[str, Any]] = ()  # [{index, name, types: [{name, kind, description}]}]
    metrics: Sequence[Mapping[str, Any]] = ()  # one dict per continual step
    data: Mapping[str, Any] = field(default_factory=dict)  # data hashes
    title: str = ""
    source: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"project": name, "run_id": 3}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default) + "\n",
                    encoding="utf-8")


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _clean_json(obj: Any) -> Any:
    """NaN/inf become null, so the manifest stays strict JSON."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    return obj


def tensor_count(path: Path) -> int:
    """How many numbers a safetensors file holds (a module's parameter count)."""
    from safetensors import safe_open

    n = 0
    with safe_open(str(path), framework="pt") as f:
        for k in f.keys():
            shape = f.get_slice(k).get_shape()
            c = 1
            for d in shape:
                c *= int(d)
            n += c
    return n


def _module_entries(stage: Path, state: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in state.get("modules", []):
        folder = stage / name
        missing = [f for f in MODULE_FILES if not (folder / f).is_file()]
        if missing:
            raise BundleError(stage, "missing_file", f"module {name!r} lacks {', '.join(missing)}")
        info = _read_json(folder / "module.json")
        if name == "selector":
            kind, task_index = "selector", None
        elif name.startswith("expert_") and name[7:].isdigit():
            kind, task_index = "expert", int(name[7:])
        else:
            kind, task_index = "static", None
        out.append({
            "name": name, "folder": name, "kind": kind, "task_index": task_index,
            "version": int(state.get("versions", {}).get(name, 0)),
            "n_outputs": int(info.get("n_outputs", 0)),
            "lora": info.get("lora"),
            "parameter_count": tensor_count(folder / "adapter_model.safetensors")
            + tensor_count(folder / "head.safetensors"),
        })
    return out


def _default_tasks(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"index": i, "name": f"Task {i + 1}",
             "types": [{"name": t, "kind": None, "description": ""} for t in ts]}
            for i, ts in enumerate(state.get("tasks", []))]


def _merge_tasks(state: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], where: Path) -> list[dict[str, Any]]:
    """The manifest's task list: the method's task order, described by ``tasks`` when given."""
    base = _default_tasks(state)
    if not tasks:
        return base
    if len(tasks) != len(base):
        raise BundleError(where, "manifest", f"{len(tasks)} task descriptions for a model of {len(base)} tasks")
    out = []
    for b, t in zip(base, tasks, strict=True):
        names = [ty["name"] for ty in t.get("types", [])]
        want = [ty["name"] for ty in b["types"]]
        if sorted(names) != sorted(want):
            raise BundleError(where, "manifest",
                              f"task {b['index'] + 1}: described types {names} differ from the model's {want}")
        by_name = {ty["name"]: ty for ty in t.get("types", [])}
        types = [{"name": n, "kind": by_name[n].get("kind"), "description": by_name[n].get("description", "") or ""}
                 for n in want]  # the model's order (its logits' order)
        out.append({"index": b["index"], "name": t.get("name") or b["name"], "types": types})
    return out


def build_manifest(stage: Path, info: BundleInfo) -> dict[str, Any]:
    state = _read_json(stage / STATE_FILE)
    tasks = _merge_tasks(state, info.tasks, stage)
    config = state.get("config", {})
    backbone = dict(info.backbone)
    if not backbone.get("sha256"):
        raise BundleError(stage, "manifest", "the backbone's SHA-256 is unknown")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "conpet_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "title": info.title,
        "method": state.get("method"),
        "uid": state.get("uid"),
        "backbone": backbone,
        "tasks": tasks,
        "types": [ty["name"] for t in tasks for ty in t["types"]],
        "encoder": {"max_length_entity": config.get("max_length_entity"),
                    "max_length_relation": config.get("max_length_relation"),
                    "arch": backbone.get("arch")},
        "config": config,
        "seed": config.get("seed"),  # of the latest step's training (each step's is in its metrics)
        "modules": _module_entries(stage, state, tasks),
        "method_files": method_files(state),
        "suggesters": _suggesters_entry(stage),
        "metrics": [dict(m) for m in info.metrics],
        "data": dict(info.data),
        "source": dict(info.source),
        "versions": _library_versions(),
    }
    return _clean_json(manifest)


def _suggesters_entry(stage: Path) -> dict[str, Any] | None:
    """What the manifest says of the suggesters (``conpet.suggestions``): None for a model without them."""
    from conpet.suggestions import read_info

    info = read_info(stage)
    if info is None:
        return None
    return {"detector": bool(info.get("detector")), "relatedness": bool(info.get("relatedness")),
            "relation_threshold": info.get("relation_threshold")}


def _library_versions() -> dict[str, str]:
    out = {"conpet": __version__}
    for mod in ("torch", "transformers", "peft", "safetensors"):
        with suppress(Exception):
            out[mod] = __import__(mod).__version__
    return out


def _pct(v: Any) -> str:
    if isinstance(v, (int, float)) and v == v:
        return f"{100 * v:.1f}" if v <= 1.0 else f"{v:.1f}"
    return "–"


def _suggesters_lines(entry: Any) -> list[str]:
    if not isinstance(entry, Mapping):
        return []
    parts = (["a mention detector (proposes entity spans in text without them)"] if entry.get("detector") else [])
    if entry.get("relatedness"):
        parts.append(f"a relatedness gate (proposes a pair of mentions when P(related) >= "
                     f"{entry.get('relation_threshold')}; below it: no_relation)")
    return [f"- **Suggesters**: {'; '.join(parts)}", ""] if parts else []


def model_card(manifest: Mapping[str, Any], bundle_name: str = "BUNDLE") -> str:
    """The README.md of a bundle: what it knows, how well, and how to use it."""
    bb = manifest["backbone"]
    lines = [f"# {manifest.get('title') or 'ConPET adapter bundle'}", "",
             f"A ConPET Studio adapter bundle (format {manifest['format_version']}, conpet "
             f"{manifest['conpet_version']}), created {manifest['created_at']}.", "",
             f"- **Method**: `{manifest['method']}`",
             f"- **Backbone**: `{bb.get('name')}` (SHA-256 of its weights `{bb.get('sha256')}`); the same "
             "weights are required to load it.",
             f"- **Tasks**: {len(manifest['tasks'])}, **types**: {len(manifest['types'])}",
             "- **Modules**: " + ", ".join(f"`{m['name']}` ({m['parameter_count']:,} parameters)"
                                           for m in manifest["modules"]), "",
             *_suggesters_lines(manifest.get("suggesters")),
             "## Knowledge types, by task", ""]
    for t in manifest["tasks"]:
        lines.append(f"### {t['name']} (task {t['index'] + 1})")
        for ty in t["types"]:
            desc = f": {ty['description']}" if ty.get("description") else ""
            kind = f" ({ty['kind']})" if ty.get("kind") else ""
            lines.append(f"- `{ty['name']}`{kind}{desc}")
        lines.append("")
    metrics = manifest.get("metrics") or []
    if metrics:
        lines += ["## Metrics per step (held-out test examples, %)", "",
                  "| step | whole accuracy | average accuracy | selector accuracy |", "|---|---|---|---|"]
        for i, m in enumerate(metrics):
            lines.append(f"| {m.get('step', i + 1)} | {_pct(m.get('whole_acc'))} | {_pct(m.get('avg_acc'))} | "
                         f"{_pct(m.get('selector_acc'))} |")
        lines.append("")
    lines += [
        "## How to use", "",
        "From the command line (input: one JSON object per line with `text` and character-offset `entities`, "
        "and `relations` as head/tail entity indices):", "",
        "```", f"conpet predict {bundle_name} sentences.jsonl --out predictions.jsonl", "```", "",
        "From Python:", "",
        "```python",
        "from conpet.bundle import Bundle",
        "",
        f'bundle = Bundle.load("{bundle_name}")  # loads and checks the backbone',
        'result = bundle.predict([{"text": "Ada Lovelace was born in London.",',
        '                          "entities": [{"start": 0, "end": 12}, {"start": 25, "end": 31}]}])',
        "for m in result[0].mentions:",
        "    print(m.kind, m.text, m.label, m.score)",
        "```", "",
        "Into another ConPET Studio project: `conpet import-bundle PROJECT_DIR " + bundle_name + "`.", "",
        "Every file's SHA-256 is in `manifest.json`; a bundle that fails its checksums is refused.", "",
    ]
    return "\n".join(lines)


def _fsync_file(path: Path) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _is_zip_target(out: Path) -> bool:
    return out.suffix.lower() == ".zip"


def method_files(state: Mapping[str, Any]) -> list[str]:
    """Files a method keeps beside its module folders (declared in method.json's extra state)."""
    files = (state.get("extra") or {}).get("files") or []
    for rel in files:
        _check_member(rel, STATE_FILE)
    return list(files)


def stage_method(source: Any, stage: Path) -> None:
    """Write a model (a saved folder or a loaded method) to ``stage`` as a bundle holds it, device-neutral."""
    if isinstance(source, (str, os.PathLike)):
        src = Path(source)
        if not (src / STATE_FILE).is_file():
            raise BundleError(src, "not_a_bundle", f"not a saved model folder ({STATE_FILE} is missing)")
        state = _read_json(src / STATE_FILE)
        stage.mkdir(parents=True)
        shutil.copy2(src / STATE_FILE, stage / STATE_FILE)
        for name in state.get("modules", []):
            for f in MODULE_FILES:
                if not (src / name / f).is_file():
                    raise BundleError(src, "missing_file", f"module {name!r} lacks {f}")
            shutil.copytree(src / name, stage / name)
        for rel in method_files(state):  # e.g. a statistical router's router.safetensors
            if not (src / rel).is_file():
                raise BundleError(src, "missing_file", f"the model's file {rel!r} is missing")
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)  # e.g. detector/module/
            shutil.copy2(src / rel, stage / rel)
    else:
        source.save(stage)
    # A bundle is device-neutral: the loading machine's backbone decides the device.
    state = _read_json(stage / STATE_FILE)
    if isinstance(state.get("config"), dict):
        state["config"]["device"] = None
    _write_json(stage / STATE_FILE, state)


def _name_base_model(stage: Path, backbone: Mapping[str, Any]) -> None:
    """peft writes the trainer's local backbone folder into each adapter_config.json; a bundle names the
    backbone publicly instead (peft loads an adapter onto whatever base model it is given)."""
    public = str(backbone.get("public_name") or public_backbone_name(str(backbone.get("name") or "")))
    for config_file in sorted(stage.glob("**/adapter_config.json")):  # the suggesters' modules too
        config = _read_json(config_file)
        config["base_model_name_or_path"] = public
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_bundle(source: Any, out: str | Path, info: BundleInfo, *, overwrite: bool = False,
                 progress: ProgressLike = None) -> Path:
    """Write a bundle of ``source`` (a trained ``ContinualMethod``, or a folder saved by its ``save``)
    to ``out``: a zip file when ``out`` ends in ``.zip``, else a folder. Atomic; refuses to replace an
    existing target unless ``overwrite``. Returns ``out``."""
    out = Path(out).expanduser().absolute()
    sink = as_sink(progress)
    rep = Reporter(sink)
    if out.exists() and not overwrite:
        raise BundleError(out, "exists", "already exists (choose another name, or overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        stage = tmp / "bundle"
        rep(0.05, "saving modules", "export")
        stage_method(source, stage)
        _name_base_model(stage, info.backbone)
        rep(0.4, "writing manifest", "export")
        manifest = build_manifest(stage, info)
        (stage / README).write_text(model_card(manifest, out.name), encoding="utf-8")
        files: dict[str, dict[str, Any]] = {}
        mode = 0o644 & ~_umask()
        for p in sorted(stage.rglob("*")):
            if p.is_file():
                os.chmod(p, mode)  # peft/safetensors may write 0600; a bundle is meant to be shared
                rel = p.relative_to(stage).as_posix()
                _check_suffix(rel, stage, declared=True)
                sha, size = _sha256_stream(_file_chunks(p))
                files[rel] = {"sha256": sha, "size": size}
        manifest["files"] = files
        manifest[DIGEST_KEY] = manifest_digest(manifest)
        _write_json(stage / MANIFEST, manifest)
        _verify_source(_FolderSource(stage))  # what we wrote must read back
        rep(0.6, "writing " + ("zip" if _is_zip_target(out) else "folder"), "export")
        if _is_zip_target(out):
            part = tmp / "bundle.zip"
            with zipfile.ZipFile(part, "w") as zf:
                for rel in [MANIFEST, *sorted(files)]:
                    comp = zipfile.ZIP_STORED if rel.endswith(".safetensors") else zipfile.ZIP_DEFLATED
                    zf.write(stage / rel, rel, compress_type=comp)
            _fsync_file(part)
            os.replace(part, out)
        else:
            for p in stage.rglob("*"):
                if p.is_file():
                    _fsync_file(p)
            old = tmp / "old"
            if out.exists():
                if out.is_dir() and not out.is_symlink():
                    out.rename(old)
                else:
                    raise BundleError(out, "exists", "exists and is not a folder; refusing to replace it")
            stage.rename(out)
        _fsync_dir(out.parent)
        rep(1.0, f"bundle written to {out}", "export")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- prediction inputs and outputs ---------------------------------------------------------------


@dataclass(frozen=True)
class MentionPrediction:
    """One predicted mention (entity) or pair (relation) of a sentence."""

    kind: str
    spans: tuple[Span, ...]
    text: str  # the mention, or "head -> tail"
    label: str
    score: float
    gold: str | None = None
    selector_scores: list[float] | None = None
    active_experts: list[int] | None = None
    expert_scores: dict[str, float] = field(default_factory=dict)
    module_versions: dict[str, int] = field(default_factory=dict)
    example_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "entity":
            d.update(start=self.spans[0].start, end=self.spans[0].end, mention=self.text)
        else:
            d.update(head={"start": self.spans[0].start, "end": self.spans[0].end},
                     tail={"start": self.spans[1].start, "end": self.spans[1].end}, pair=self.text)
        d.update(label=self.label, score=self.score)
        if self.gold is not None:
            d["gold"] = self.gold
        d.update(selector_scores=self.selector_scores, active_experts=self.active_experts,
                 expert_scores=self.expert_scores, module_versions=self.module_versions)
        return d


@dataclass(frozen=True)
class SentencePrediction:
    text: str
    id: str
    mentions: list[MentionPrediction]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text}
        if self.id:
            d["id"] = self.id
        d["predictions"] = [m.to_dict() for m in self.mentions]
        return d


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be an integer, got {v!r}")
    return v


def sentence_queries(item: Any, kinds: set[str] | None = None) -> tuple[str, str, list[Example]]:
    """(text, id, examples to classify) for one input: a JSONL-style dict (``text``, ``entities`` with
    ``start``/``end`` and optional ``type``, ``relations`` with ``head``/``tail`` indices and optional
    ``type``), a ``conpet.data.jsonl.Sentence``, or an ``Example``. ``kinds`` limits what is asked
    (a relation-only model gets no entity questions). ``ValueError`` says what is wrong."""
    if isinstance(item, Example):
        return item.text, item.id, [item]
    if hasattr(item, "to_json") and hasattr(item, "entities"):
        item = item.to_json()
    if not isinstance(item, Mapping):
        raise ValueError(f"expected a sentence object (text, entities, relations), got {type(item).__name__}")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    sid = item.get("id", "")
    sid = str(sid) if sid is not None else ""
    source = str(item.get("source", "") or "")
    ents_raw = item.get("entities", []) or []
    rels_raw = item.get("relations", []) or []
    if not isinstance(ents_raw, list) or not isinstance(rels_raw, list):
        raise ValueError("'entities' and 'relations' must be lists")
    spans: list[tuple[Span, str | None]] = []
    for i, e in enumerate(ents_raw):
        if not isinstance(e, Mapping):
            raise ValueError(f"entity {i} must be an object with start and end")
        s, t = _int(e.get("start"), f"entity {i} start"), _int(e.get("end"), f"entity {i} end")
        if not 0 <= s < t <= len(text):
            raise ValueError(f"entity {i}: span {s}:{t} is outside the text (length {len(text)})")
        ty = e.get("type")
        spans.append((Span(s, t), ty if isinstance(ty, str) and ty else None))
    want_entity = kinds is None or "entity" in kinds
    want_relation = kinds is None or "relation" in kinds
    out: list[Example] = []
    if want_entity:
        for sp, ty in spans:
            out.append(Example(text, (sp,), ty or "", "entity", source=source, meta={"sentence_id": sid}))
    for j, r in enumerate(rels_raw):
        if not isinstance(r, Mapping):
            raise ValueError(f"relation {j} must be an object with head and tail")
        h, t = _int(r.get("head"), f"relation {j} head"), _int(r.get("tail"), f"relation {j} tail")
        for role, k in (("head", h), ("tail", t)):
            if not 0 <= k < len(spans):
                have = f"indices 0..{len(spans) - 1}" if spans else "no entities"
                raise ValueError(f"relation {j}: {role} {k} is not an entity index (this line has "
                                 f"{len(spans)} entit{'y' if len(spans) == 1 else 'ies'}: {have})")
        if h == t:
            raise ValueError(f"relation {j}: head and tail are the same entity ({h}); a relation needs two")
        if want_relation:
            ty = r.get("type")
            out.append(Example(text, (spans[h][0], spans[t][0]), ty if isinstance(ty, str) else "", "relation",
                               source=source, meta={"sentence_id": sid}))
    return text, sid, out


def _mention_text(ex: Example) -> str:
    if ex.kind == "entity":
        return ex.mention
    h, t = ex.spans
    return f"{ex.text[h.start:h.end]} -> {ex.text[t.start:t.end]}"


def sentence_prediction(text: str, sid: str, examples: Sequence[Example], preds: Sequence[Any]) -> SentencePrediction:
    """One sentence's result from its examples and the engine's predictions for them (same order)."""
    ms = [MentionPrediction(ex.kind, ex.spans, _mention_text(ex), p.label, float(p.score), ex.label or None,
                            list(p.selector_scores) if p.selector_scores is not None else None,
                            list(p.active_experts) if p.active_experts is not None else None,
                            dict(p.expert_scores), dict(p.module_versions), ex.id)
          for ex, p in zip(examples, preds, strict=True)]
    return SentencePrediction(text, sid, ms)


# --- loading and predicting ----------------------------------------------------------------------


class Bundle:
    """A loaded bundle: its manifest and the method ready to predict.

    ``Bundle.load(path)`` verifies the files, loads the recorded backbone (or uses ``backbone``, a name,
    path or loaded ``Backbone``), refuses it when its weights' SHA-256 differs, and restores the modules.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], method: Any, backbone: Any,
                 suggesters: Any = None) -> None:
        from conpet.suggestions import Suggesters

        self.path = path
        self.manifest = manifest
        self.method = method
        self.backbone = backbone
        # the mention detector and the relatedness gate, when the bundle has them (conpet.suggestions)
        self.suggesters = suggesters if suggesters is not None else Suggesters()

    # --- what it knows ---
    @property
    def method_name(self) -> str:
        return str(self.manifest["method"])

    @property
    def types(self) -> list[str]:
        return list(self.manifest["types"])

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return list(self.manifest["tasks"])

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("metrics") or [])

    @property
    def kinds(self) -> set[str] | None:
        ks = {ty.get("kind") for t in self.tasks for ty in t["types"]}
        return None if None in ks or not ks else {str(k) for k in ks}

    @classmethod
    def load(cls, path: str | Path, backbone: Any = None, *, device: str | None = None, cache: Any = None,
             progress: ProgressLike = None, relation_threshold: float | None = None) -> Bundle:
        """``relation_threshold`` replaces the relatedness gate's saved threshold (a bundle with one)."""
        from conpet.methods.registry import load_method
        from conpet.suggestions import load_suggesters

        path = Path(path).expanduser()
        with unpacked(path, progress) as (folder, manifest):
            bb = resolve_backbone(manifest, backbone, device=device, where=path)
            try:
                method = load_method(folder, bb, cache=cache)
                suggesters = load_suggesters(folder, bb, relation_threshold)
            except BundleError:
                raise
            except ConpetError as exc:
                raise BundleError(path, "manifest", f"the bundle's modules cannot be loaded: {exc}") from exc
        return cls(path, manifest, method, bb, suggesters)

    def with_suggestions(self, parsed: Sequence[tuple[str, str, list[Example]]]
                         ) -> tuple[list[list[Example]], dict[str, dict[str, float]]]:
        """Per sentence (``sentence_queries`` results), its questions plus the suggesters' proposals (mentions
        on a sentence without entities, candidate pairs above the threshold), and the proposals' scores by
        example id (to add to their predictions' ``expert_scores``). A bundle without suggesters adds none."""
        from conpet.suggestions import SentenceInput, suggest

        questions = [list(exs) for _, _, exs in parsed]
        if self.suggesters.detector is None and self.suggesters.relatedness is None:
            return questions, {}
        inputs = []
        for text, _sid, exs in parsed:
            mentions = tuple(dict.fromkeys(sp for ex in exs for sp in ex.spans))
            pairs = frozenset(ex.spans for ex in exs if ex.kind == "relation")
            inputs.append(SentenceInput(text, mentions, labelled=any(ex.kind == "entity" for ex in exs),
                                        pairs=pairs, relations_labelled=bool(pairs)))
        kinds = set(self.method.type_kinds.values()) or (self.kinds or {"entity", "relation"})
        scores: dict[str, dict[str, float]] = {}
        for sug in suggest(self.suggesters, inputs, kinds):
            if sug.example.id not in scores:
                questions[sug.sentence].append(sug.example)
                scores[sug.example.id] = sug.scores
        return questions, scores

    def predict_examples(self, examples: Sequence[Example], progress: ProgressLike = None) -> list[Any]:
        """The engine's ``Prediction`` per example (what the method itself returns)."""
        with self.method.job():  # each example is encoded once for the selector's and the experts' passes
            return list(self.method.predict(list(examples), as_sink(progress)))

    def predict(self, sentences: Iterable[Any], progress: ProgressLike = None) -> list[SentencePrediction]:
        """Predict every marked entity (and listed head/tail pair) of each sentence, and, with a bundle that
        has suggesters, the proposed mentions and pairs (``with_suggestions``; a sentence may then be text
        alone). A sentence is a dict in the JSONL form, a ``conpet.data.jsonl.Sentence`` or an ``Example``."""
        parsed = [sentence_queries(s, self.kinds) for s in sentences]
        return self.predict_parsed(parsed, progress)

    def predict_parsed(self, parsed: Sequence[tuple[str, str, list[Example]]],
                       progress: ProgressLike = None) -> list[SentencePrediction]:
        """``predict`` on ``sentence_queries`` results."""
        from conpet.suggestions import with_scores

        questions, scores = self.with_suggestions(parsed)
        flat = [ex for exs in questions for ex in exs]
        preds = self.predict_examples(flat, progress) if flat else []
        preds = [with_scores(p, scores[p.example_id]) if p.example_id in scores else p for p in preds]
        out, pos = [], 0
        for (text, sid, _), exs in zip(parsed, questions, strict=True):
            out.append(sentence_prediction(text, sid, exs, preds[pos:pos + len(exs)]))
            pos += len(exs)
        return out

    def close(self) -> None:
        """Remove this bundle's modules (and its suggesters') from the (possibly shared) backbone."""
        pet = getattr(self.method, "_pet", None)
        if pet is not None and hasattr(pet, "close"):
            pet.close()
        self.suggesters.close()


def resolve_backbone(manifest: Mapping[str, Any], backbone: Any = None, *, device: str | None = None,
                     where: str | Path = "") -> Any:
    """The backbone a bundle needs: ``backbone`` (loaded, or a name/path) or the recorded one; refused
    when its weights' SHA-256 differs from the manifest's."""
    from conpet.backbones import BACKBONES, load_backbone
    from conpet.errors import BackboneError

    rec = manifest["backbone"]
    if backbone is None or isinstance(backbone, (str, os.PathLike)):
        candidates = [str(backbone)] if backbone is not None else [
            c for c in (rec.get("name"), rec.get("path")) if c and (c in BACKBONES or Path(c).exists())]
        if not candidates:
            raise BundleError(where, "backbone",
                              f"the backbone {rec.get('name')!r} ({rec.get('path')}) is not available here; "
                              "pass the path of the same weights (backbone=... / --backbone)")
        try:
            backbone = load_backbone(candidates[0], device=device)
        except BackboneError as exc:
            raise BundleError(where, "backbone", f"cannot load the bundle's backbone: {exc}") from exc
    sha = backbone.weights_sha256()
    if sha != rec["sha256"]:
        raise BundleError(where, "backbone",
                          f"refused: backbone mismatch: the bundle was trained on {rec.get('name')!r} with weights "
                          f"SHA-256 {rec['sha256'][:16]}…, but {getattr(backbone, 'name', '?')!r} has {sha[:16]}…")
    if int(rec.get("hidden_size") or backbone.hidden_size) != int(backbone.hidden_size):
        raise BundleError(where, "backbone", "refused: backbone hidden size differs from the bundle's")
    return backbone
