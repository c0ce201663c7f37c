"""Writing a bundle: staging a method's files, building the manifest (files with their SHA-256, tasks, metrics,
provenance) and placing the result atomically, as a folder or a zip."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conpet import __version__
from conpet.bundle.card import model_card
from conpet.bundle.checks import DIGEST_KEY, manifest_digest
from conpet.bundle.format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MODULE_FILES,
    README,
    STATE_FILE,
    BundleError,
    FolderSource,
    check_member,
    check_suffix,
    file_chunks,
    sha256_stream,
    verify_source,
)
from conpet.core.protocols import ProgressLike, Reporter, as_sink
from conpet.model.backbones import public_backbone_name


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
        types = [_type_entry(n, by_name[n]) for n in want]  # the model's order (its logits' order)
        out.append({"index": b["index"], "name": t.get("name") or b["name"], "types": types})
    return out


def _type_entry(name: str, described: Mapping[str, Any]) -> dict[str, Any]:
    """A type of the manifest: name, kind, description and, for a relation type that restricts its
    arguments, the entity type names its head and tail take (``conpet.data.argument_rules``)."""
    out = {"name": name, "kind": described.get("kind"), "description": described.get("description", "") or ""}
    for role in ("head_types", "tail_types"):
        if described.get(role):
            out[role] = sorted(str(n) for n in described[role])
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
    """What the manifest says of the suggesters (``conpet.suggest.suggestions``): None for a model without them."""
    from conpet.suggest.suggestions import read_info

    info = read_info(stage)
    if info is None:
        return None
    return {"detector": bool(info.get("detector")), "relatedness": bool(info.get("relatedness")),
            "relation_threshold": info.get("relation_threshold"),
            "mention_threshold": info.get("mention_threshold")}


def _library_versions() -> dict[str, str]:
    out = {"conpet": __version__}
    for mod in ("torch", "transformers", "peft", "safetensors"):
        with suppress(Exception):
            out[mod] = __import__(mod).__version__
    return out


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
        check_member(rel, STATE_FILE)
    return list(files)


def stage_method(source: Any, stage: Path) -> None:
    """Write a model (a saved folder or a loaded method) to ``stage`` as a bundle holds it, device-neutral."""
    if isinstance(source, (str, os.PathLike)):
        src = Path(source)
        if not (src / STATE_FILE).is_file():
            raise BundleError(src, "not_a_bundle", f"not a saved model folder ({STATE_FILE} is missing)")
        state = _read_json(src / STATE_FILE)
        stage.mkdir(parents=True, exist_ok=True)  # empty: replace_folder's staging folder, or new
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


def _staging_prefix(out: Path) -> str:
    """The name start of a writer's temporary folder beside ``out``: the host and process that write it, so
    that a later writer can tell a killed writer's leftover from a live one's."""
    return f".{out.name}.tmp-{os.getpid()}@{socket.gethostname()}-"


def _remove_dead_writers_folders(out: Path) -> None:
    """Delete the temporary folders beside ``out`` left by writers of this host that were killed (their
    process is gone); a live writer's, another host's and an unnamed one's stay."""
    start = f".{out.name}.tmp-"
    for leftover in out.parent.glob(f"{glob.escape(start)}*@*"):
        pid, _, rest = leftover.name[len(start):].partition("@")
        host = rest.rsplit("-", 1)[0]  # mkdtemp's random suffix has no "-"
        if (pid.isdigit() and host == socket.gethostname() and leftover.is_dir() and not leftover.is_symlink()
                and not _process_exists(int(pid))):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace_folder(stage: Path, out: Path, old: Path) -> None:
    """Rename ``stage`` to ``out``, an existing ``out`` first moved to ``old``; when the new one cannot take its
    place the old one is moved back before the error goes on (the caller deletes ``old``'s parent after)."""
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise BundleError(out, "exists", "exists and is not a folder; refusing to replace it")
        out.rename(old)
    try:
        stage.rename(out)
    except BaseException:
        if old.exists() and not out.exists():
            old.rename(out)
        raise


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
    _remove_dead_writers_folders(out)
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(out), dir=out.parent))
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
                check_suffix(rel, stage, declared=True)
                sha, size = sha256_stream(file_chunks(p))
                files[rel] = {"sha256": sha, "size": size}
        manifest["files"] = files
        manifest[DIGEST_KEY] = manifest_digest(manifest)
        _write_json(stage / MANIFEST, manifest)
        verify_source(FolderSource(stage))  # what we wrote must read back
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
            _replace_folder(stage, out, tmp / "old")
        _fsync_dir(out.parent)
        rep(1.0, f"bundle written to {out}", "export")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- prediction inputs and outputs ---------------------------------------------------------------
