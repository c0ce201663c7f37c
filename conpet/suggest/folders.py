"""Writing and reading a suggester's folder (the mention detector's, the relatedness gate's): a folder
replaced as a whole, and a JSON header naming its format and version, checked before anything loads."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def replace_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``folder`` through ``write(staging_folder)`` next to it, then swap it in: a crash or a full
    disk leaves the old folder (or none) in place, never half of a new one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        out = tmp / "new"
        out.mkdir()
        write(out)
        if folder.exists():
            folder.rename(tmp / "old")
        out.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_header(path: Path, info: dict[str, Any]) -> None:
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_header(folder: Path, name: str, fmt: str, version: int, error: type[Exception], what: str) -> dict[str, Any]:
    """``folder/name`` as a dict whose "format" is ``fmt`` and whose "format_version" is at most
    ``version``; otherwise ``error`` with the file and the problem (``what`` names the folder's kind)."""
    path = folder / name
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{folder}: not a {what} folder (no {name})") from exc
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable ({exc})") from exc
    if not isinstance(info, dict) or info.get("format") != fmt:
        raise error(f"{path}: not a {fmt} file")
    if int(info.get("format_version", 0)) > version:
        raise error(f"{path}: format version {info.get('format_version')} is newer than this program reads "
                    f"({version})")
    return info
