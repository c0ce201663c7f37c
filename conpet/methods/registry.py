"""Method names -> classes. Every module in `conpet.methods` is imported on first use, so a new
method file only needs `@register_method("name", aliases=(...))` on its class to appear in
`conpet bench --methods` and `make_method`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conpet.core.config import TrainConfig
from conpet.core.errors import ConpetError
from conpet.core.protocols import LogitCache

_METHODS: dict[str, type] = {}
_ALIASES: dict[str, str] = {}
_discovered = False


def register_method(name: str, aliases: tuple[str, ...] = ()) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        _METHODS[name] = cls
        for a in aliases:
            _ALIASES[a] = name
        return cls

    return deco


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import conpet.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("registry", "base"):
            importlib.import_module(f"conpet.methods.{info.name}")


def _builtin() -> None:
    from conpet.methods.dynamic import DynamicConPET
    from conpet.methods.static import JointRetraining, SequentialLoRA, StaticConPET

    for cls, aliases in ((DynamicConPET, ("dy-conpet", "dynamic-conpet")),
                         (StaticConPET, ("static-conpet",)),  # "emr*" is its Table IV name (emr.py)
                         (SequentialLoRA, ("seq", "finetune")),
                         (JointRetraining, ("joint-retraining",))):
        if cls.name not in _METHODS:
            register_method(cls.name, aliases)(cls)


# `--methods all`: the rows of the paper's Table IV, then the ablations and the two references.
TABLE_IV_METHODS = ("emr", "ea-emr", "crl", "emr*", "ea-emr*", "crl*", "dynamic", "limitless",
                    "dynamic-nosel", "full-ft", "sequential", "joint")


def expand_methods(spec: str) -> list[str]:
    """A comma-separated method list, with `all` standing for TABLE_IV_METHODS (canonical names)."""
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if item:
            out.extend(TABLE_IV_METHODS if item.lower() == "all" else [canonical_name(item)])
    return list(dict.fromkeys(out))


def canonical_name(name: str) -> str:
    _builtin()
    _discover()
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _METHODS:
        raise ConpetError(f"unknown method {name!r}; known: {', '.join(method_names())}")
    return key


def method_names() -> list[str]:
    _builtin()
    _discover()
    return sorted(_METHODS)


def describe_method(name: str) -> str:
    """One line on what method `name` is: its own `description`, else the first line of its own docstring
    (never a parent class's)."""
    cls = method_class(name)
    text = vars(cls).get("description") or (vars(cls).get("__doc__") or "").strip().splitlines()[:1]
    line = text if isinstance(text, str) else (text[0] if text else "")
    return line.rstrip(".:") or name


def method_class(name: str) -> type:
    return _METHODS[canonical_name(name)]


def project_methods() -> list[str]:
    """The methods a project can train with (each class's `in_projects`)."""
    return [n for n in method_names() if getattr(_METHODS[n], "in_projects", False)]


def make_method(name: str, backbone: Any, config: TrainConfig | None = None, *,
                cache: LogitCache | None = None, uid: str | None = None) -> Any:
    """A fresh, untrained method `name` on `backbone`."""
    return method_class(name)(backbone, config or TrainConfig(), cache=cache, uid=uid)


def load_method(folder: str | Path, backbone: Any, *, cache: LogitCache | None = None) -> Any:
    """Restore a method saved with `method.save(folder)` (the class comes from its method.json)."""
    from conpet.methods.base import read_state

    state = read_state(folder)
    return method_class(state["method"]).load(folder, backbone, cache=cache)
