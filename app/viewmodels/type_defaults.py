"""Defaults that keep types apart at a glance: a colour no live type has, and a free shortcut key.
New types (added in the Types tab or created by an import) get them, so two types never look alike
and every type can be applied with one key."""

from __future__ import annotations

import colorsys
from collections.abc import Iterable

from conpet.store import TypeRecord

# Readable under black text and on the editor's white background; after these, hues spaced by the
# golden angle.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#1f77b4", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e",
)
RESERVED_KEYS = {"h", "t"}  # the annotate view's keys for a relation's head and tail
SHORTCUT_KEYS = "123456789abcdefgijklmnopqrsuvwxyz0"


def free_colour(types: Iterable[TypeRecord]) -> str:
    used = {t.colour.lower() for t in types}
    for colour in PALETTE:
        if colour not in used:
            return colour
    for i in range(1, 1000):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.55, 0.85)
        colour = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        if colour not in used:
            return colour
    return PALETTE[0]


def free_shortcut(types: Iterable[TypeRecord]) -> str:
    used = {(t.shortcut or "").lower() for t in types}
    for key in SHORTCUT_KEYS:
        if key not in used and key not in RESERVED_KEYS:
            return key
    return ""


def same_name(types: Iterable[TypeRecord], name: str, kind: str, *, exclude: int | None = None) -> TypeRecord | None:
    """A live type of ``kind`` whose name differs from ``name`` only in case (or not at all)."""
    folded = name.strip().casefold()
    return next((t for t in types if t.kind == kind and t.id != exclude and t.name.casefold() == folded), None)
