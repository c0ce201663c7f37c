"""Which ConPET Studio window has a project open: a small marker file in the project folder, so that a
second app instance opening the same project warns (both would write the same store, and neither's views
would show the other's edits). The marker names the process and the computer; a marker whose process is
gone (a crash) is taken over without a word."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path

MARKER = ".studio-open.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def holder(folder: Path) -> str | None:
    """Who else has the project open, in words; None when nobody (or a process that is gone) does."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
        pid, host, since = int(data["pid"]), str(data["host"]), str(data.get("since", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname():
        if pid == os.getpid() or not _alive(pid):
            return None
        return f"another ConPET Studio (process {pid}) on this computer, since {since}"
    return f"ConPET Studio on {host} (process {pid}), since {since}"


def claim(folder: Path) -> None:
    """Mark the project as open in this process (best effort: a read-only folder is not an error)."""
    data = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")}
    tmp = Path(folder) / (MARKER + ".tmp")
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, Path(folder) / MARKER)
    except OSError:
        pass


def release(folder: Path) -> None:
    """Take this process's marker away (another process's is left)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data.get("pid", -1)) == os.getpid() and data.get("host") == socket.gethostname():
            path.unlink()
    except (OSError, ValueError, TypeError):
        pass
