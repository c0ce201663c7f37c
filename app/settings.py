"""The app's own settings (QSettings): recent projects and the user's choices. Project data lives in the
project's store, never here."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 8
RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def conpet_home() -> Path:
    """Where new projects and the demo go by default: $CONPET_HOME, else ~/ConPET Studio."""
    env = os.environ.get("CONPET_HOME")
    return Path(env).expanduser() if env else Path.home() / "ConPET Studio"


def demo_folder() -> Path:
    return conpet_home() / "Demo"


class AppSettings:
    """Typed access to QSettings. ``path`` gives an INI file (tests use one in a tmp folder)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None and os.environ.get("CONPET_SETTINGS"):
            path = os.environ["CONPET_SETTINGS"]
        if path is not None:
            self._q = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._q = QSettings("ConPET", "ConPET Studio")

    # recent projects, most recent first
    def recent_projects(self) -> list[Path]:
        value = self._q.value("projects/recent", [])
        if isinstance(value, str):
            value = [value]
        return [Path(v) for v in (value or []) if v]

    def add_recent(self, folder: Path) -> None:
        folder = Path(folder).resolve()
        items = [p for p in self.recent_projects() if p.resolve() != folder]
        self._q.setValue("projects/recent", [str(p) for p in [folder, *items][:MAX_RECENT]])
        self._q.sync()

    def remove_recent(self, folder: Path) -> None:
        folder = Path(folder).resolve()
        self._q.setValue("projects/recent", [str(p) for p in self.recent_projects() if p.resolve() != folder])
        self._q.sync()

    # training choices
    def min_examples(self) -> int:
        return int(self._q.value("training/min_examples", 10))

    def set_min_examples(self, n: int) -> None:
        self._q.setValue("training/min_examples", int(n))

    def cpu_threads(self) -> int:
        """torch CPU threads for training and prediction; 0: automatic (the cores other programs leave free,
        ``conpet.core.runtime.default_threads``)."""
        try:
            return max(0, int(self._q.value("compute/cpu_threads", 0)))
        except (TypeError, ValueError):
            return 0

    def set_cpu_threads(self, n: int) -> None:
        self._q.setValue("compute/cpu_threads", max(0, int(n)))

    # who is working (the author recorded on annotations, decisions, type edits and trainings)
    def user_name(self) -> str:
        return str(self._q.value("team/user_name", "") or "")

    def set_user_name(self, name: str) -> None:
        self._q.setValue("team/user_name", name)
        self._q.sync()

    # prediction choices
    def mention_threshold(self) -> float | None:
        """The detector confidence a proposed mention needs (0..1); None: the threshold each model chose on
        its validation sentences when it trained."""
        value = self._q.value("predictions/mention_threshold", "")
        try:
            out = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return out if 0.0 <= out <= 1.0 else None

    def set_mention_threshold(self, value: float | None) -> None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"a mention threshold is a number from 0 to 1, got {value}")
        self._q.setValue("predictions/mention_threshold", "" if value is None else float(value))

    def value(self, key: str, default: object = None) -> object:
        return self._q.value(key, default)

    def set_value(self, key: str, value: object) -> None:
        self._q.setValue(key, value)

    def sync(self) -> None:
        self._q.sync()
