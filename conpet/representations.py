"""What a PET module's head reads, and how many hidden states wide that is (no torch here: the bundle
checks read it too).

- "mask": the final hidden state at [MASK] (the paper).
- "markers": the states at the two start markers and at [MASK], concatenated (a relation: [E1], [E2],
  [MASK]; an entity: [E1], position 0, [MASK]; see `conpet.encoding.Encoded.marker_index`). [MASK] comes
  last, so the last H of "markers" features are the "mask" features.
"""

from __future__ import annotations

REPRESENTATIONS: dict[str, int] = {"mask": 1, "markers": 3}


def check_representation(name: str) -> None:
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; choose one of {', '.join(REPRESENTATIONS)}")
