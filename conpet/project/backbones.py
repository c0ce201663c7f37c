"""Which backbone a project's model runs on, and one loaded backbone kept for the jobs of a long-lived
process (the app): loading a backbone takes seconds to minutes, a job should not pay it every time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

BackboneProvider = Callable[[str, "str | None"], Any]  # (name or path, device or None) -> a loaded Backbone


def recorded_backbone(record: Mapping[str, Any]) -> str:
    """The backbone to load for a model's recorded backbone (``training.json``'s ``"backbone"``): its public
    name when it has one, else its path, else ``minilm``."""
    from conpet.model.backbones import BACKBONES

    name = record.get("name")
    return name if name in BACKBONES else (record.get("path") or "minilm")


class KeptBackbone:
    """A ``BackboneProvider`` that keeps the backbone it loaded last: the next job asking for the same
    backbone on the same device gets it at once; another one replaces it (one backbone in memory).
    Thread-safe: jobs run on worker threads."""

    def __init__(self, loader: Callable[..., Any] | None = None) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._backbone: Any = None
        self.loads = 0  # how many times a backbone was loaded (the app's status, the tests)

    def __call__(self, name: str, device: str | None = None) -> Any:
        with self._lock:
            if self._key != (str(name), device) or self._backbone is None:
                self._backbone = None  # the old one goes before the new one loads: never two in memory
                self._backbone = self._load(str(name), device)
                self._key = (str(name), device)
                self.loads += 1
            return self._backbone

    def _load(self, name: str, device: str | None) -> Any:
        if self._loader is not None:
            return self._loader(name, device=device)
        from conpet.model.backbones import load_backbone

        return load_backbone(name, device=device)

    def clear(self) -> None:
        """Forget the kept backbone (its memory goes with the last reference)."""
        with self._lock:
            self._key, self._backbone = None, None
