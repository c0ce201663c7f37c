"""A suggester's folder (the mention detector's, the relatedness gate's; written whole with
``conpet.core.files.replace_folder``): a JSON header naming its format and version, checked before anything
loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
