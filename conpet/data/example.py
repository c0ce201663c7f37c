"""The one example type every reader produces and every trainer consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["entity", "relation"]


@dataclass(frozen=True, slots=True)
class Span:
    """A character span ``text[start:end]`` (end exclusive)."""

    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Example:
    """One classification example: a sentence, its marked entities and one gold type.

    ``spans`` holds one span (the mention) for entity typing, two (head, tail) for relations.
    ``id`` is stable across runs and machines: by default a hash of the text, spans, label and source.
    ``group`` is an optional grouping key (Few-NERD's coarse type) used for the "independent" split.
    """

    text: str
    spans: tuple[Span, ...]
    label: str
    kind: Kind
    id: str = ""
    source: str = ""
    group: str | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in ("entity", "relation"):
            raise ValueError(f"kind must be 'entity' or 'relation', not {self.kind!r}")
        want = 1 if self.kind == "entity" else 2
        if len(self.spans) != want:
            raise ValueError(f"a {self.kind} example needs {want} span(s), got {len(self.spans)}")
        for s in self.spans:
            if not (0 <= s.start < s.end <= len(self.text)):
                raise ValueError(f"span {s.start}:{s.end} is outside the text (length {len(self.text)})")
        if not self.id:
            object.__setattr__(self, "id", example_id(self.text, self.spans, self.label, self.source))

    @property
    def input_key(self) -> str:
        """What a model sees of this example (kind, text, spans), hashed: the logit cache's key. A training
        example and the same sentence and spans at prediction (no label) share it."""
        return input_key(self.kind, self.text, self.spans)

    @property
    def mention(self) -> str:
        return self.text[self.spans[0].start : self.spans[0].end]

    @property
    def head(self) -> Span:
        return self.spans[0]

    @property
    def tail(self) -> Span:
        return self.spans[-1]


def example_id(text: str, spans: tuple[Span, ...], label: str, source: str = "") -> str:
    """A 16-hex-digit id that depends only on the content (same on any machine)."""
    key = "\x1f".join([source, text, label, *(f"{s.start}:{s.end}" for s in spans)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def input_key(kind: str, text: str, spans: tuple[Span, ...]) -> str:
    """A 16-hex-digit key of a model's input alone (no label, no source): the same on any machine."""
    key = "\x1f".join(["input", kind, text, *(f"{s.start}:{s.end}" for s in spans)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
