"""What keeps a bundle's manifest honest: its own digest, and its contents against the modules.

The files' checksums live in ``manifest.json``, so they cannot protect the manifest itself. Two checks
do: ``manifest_sha256`` is the SHA-256 of the rest of the manifest (canonical JSON), which catches any
edit made by hand; and ``manifest_problems`` compares what the manifest says (method, task and type
names, module sizes and versions, encoder settings) with ``method.json`` and each module's
``module.json`` and head, the files the model is really built from. A forger who re-computes every
hash can still make a self-consistent bundle (there is no signing key); what cannot happen any more is
a manifest that says one thing while the modules predict another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conpet.model.representations import REPRESENTATIONS

DIGEST_KEY = "manifest_sha256"
STATE_FILE = "method.json"

Reader = Callable[[str], bytes]


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest without its digest field, as sorted compact JSON."""
    body = {k: v for k, v in manifest.items() if k != DIGEST_KEY}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def safetensors_shapes(raw: bytes) -> dict[str, list[int]]:
    """Tensor name → shape, read from a safetensors file's JSON header (no tensor is loaded)."""
    if len(raw) < 8:
        raise ValueError("too short for a safetensors file")
    n = int.from_bytes(raw[:8], "little")
    if n <= 0 or 8 + n > len(raw):
        raise ValueError("bad safetensors header length")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    return {k: [int(d) for d in v["shape"]] for k, v in header.items() if k != "__metadata__"}


def _json(read: Reader, name: str) -> Any:
    return json.loads(read(name).decode("utf-8"))


def _expected_outputs(module: str, state: Mapping[str, Any]) -> int | None:
    """How many outputs a module's head must have for the method's tasks (None: no rule known)."""
    tasks: Sequence[Sequence[str]] = state.get("tasks") or []
    n_types = sum(len(t) for t in tasks)
    if module == "selector":
        labels = (state.get("config") or {}).get("selector_labels", "task")
        return n_types if labels == "type" else len(tasks)
    if module.startswith("expert_") and module[7:].isdigit():
        k = int(module[7:])
        return len(tasks[k]) if k < len(tasks) else None
    return n_types  # a static module predicts over every type


def _task_problems(manifest: Mapping[str, Any], state: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    model_tasks = [list(t) for t in state.get("tasks") or []]
    described = manifest.get("tasks") or []
    if len(described) != len(model_tasks):
        return [f"the manifest lists {len(described)} task(s), the model has {len(model_tasks)}"]
    for k, (desc, model) in enumerate(zip(described, model_tasks, strict=True)):
        names = [ty.get("name") for ty in desc.get("types", [])] if isinstance(desc, Mapping) else None
        if names != model:
            out.append(f"task {k + 1}: the manifest names its types {names}, the model's are {model}")
    flat = [n for t in model_tasks for n in t]
    if list(manifest.get("types") or []) != flat:
        out.append(f"'types' is {manifest.get('types')}, the model's types are {flat}")
    return out


def _module_problems(manifest: Mapping[str, Any], state: Mapping[str, Any], read: Reader) -> list[str]:
    out: list[str] = []
    entries = [m for m in manifest.get("modules") or [] if isinstance(m, Mapping)]
    names = [m.get("name") for m in entries]
    if names != list(state.get("modules") or []):
        return [f"the manifest lists modules {names}, the model has {state.get('modules')}"]
    hidden = (manifest.get("backbone") or {}).get("hidden_size")
    versions = state.get("versions") or {}
    for entry in entries:
        name, folder = str(entry["name"]), str(entry["folder"])
        info = _json(read, f"{folder}/module.json")
        shapes = safetensors_shapes(read(f"{folder}/head.safetensors"))
        rows, width = (shapes.get("weight") or [None, None])[:2]
        want = _expected_outputs(name, state)
        sizes = {"manifest": entry.get("n_outputs"), "module.json": info.get("n_outputs"), "head": rows}
        if want is not None:
            sizes["tasks"] = want
        if len(set(sizes.values())) != 1:
            out.append(f"module {name!r}: head sizes disagree ("
                       + ", ".join(f"{k} {v}" for k, v in sizes.items()) + ")")
        # a head reads one hidden state per position of its representation ("markers": three)
        positions = REPRESENTATIONS.get(str(info.get("representation", "mask")), 0)
        if hidden is not None and not (width == positions * (info.get("hidden_size") or 0)
                                       and info.get("hidden_size") == hidden):
            out.append(f"module {name!r}: hidden size {width} (head) / {info.get('hidden_size')} (module.json) "
                       f"differs from the backbone's {hidden}")
        if int(entry.get("version", -1)) != int(versions.get(name, 0)):
            out.append(f"module {name!r}: version {entry.get('version')} in the manifest, "
                       f"{versions.get(name, 0)} in {STATE_FILE}")
    return out


def manifest_problems(manifest: Mapping[str, Any], read: Reader) -> list[str]:
    """Every way the manifest disagrees with the files the model is built from (empty when none).
    ``read(name)`` returns a member's bytes; the members' checksums must already have been checked."""
    try:
        state = _json(read, STATE_FILE)
    except ValueError as exc:
        return [f"{STATE_FILE} is not valid JSON ({exc})"]
    out: list[str] = []
    for key in ("method", "uid"):
        if manifest.get(key) != state.get(key):
            out.append(f"{key} is {manifest.get(key)!r} in the manifest, {state.get(key)!r} in {STATE_FILE}")
    config = state.get("config") or {}
    if manifest.get("config") != config:
        out.append(f"the manifest's training config differs from {STATE_FILE}'s")
    if "seed" in manifest and manifest["seed"] != config.get("seed"):
        out.append(f"seed is {manifest['seed']!r} in the manifest, {config.get('seed')!r} in {STATE_FILE}")
    for key in ("max_length_entity", "max_length_relation"):
        if (manifest.get("encoder") or {}).get(key) != config.get(key):
            out.append(f"encoder {key} is {(manifest.get('encoder') or {}).get(key)} in the manifest, "
                       f"{config.get(key)} in {STATE_FILE}")
    out += _task_problems(manifest, state)
    try:
        out += _module_problems(manifest, state, read)
    except (ValueError, KeyError, TypeError) as exc:
        out.append(f"a module's module.json or head cannot be read ({exc})")
    return out
