"""What a PET module's head reads, and how many hidden states wide that is (no torch here: the bundle
checks read it too).

- "mask": the final hidden state at [MASK] (the paper).
- "markers": the states at the two start markers and at [MASK], concatenated (a relation: [E1], [E2],
  [MASK]; an entity: [E1], position 0, [MASK]; see `conpet.model.encoding.Encoded.marker_index`). [MASK] comes
  last, so the last H of "markers" features are the "mask" features.
"""

from __future__ import annotations

REPRESENTATIONS: dict[str, int] = {"mask": 1, "markers": 3}


def check_representation(name: str) -> None:
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; choose one of {', '.join(REPRESENTATIONS)}")


# Which layers' hidden states a feature map reads (the statistical router's `router_layers`), in the
# order they are concatenated. "middle" is the output of layer n // 2 of n; "last" is the final
# hidden state and always comes last, so that the last H * width of the features are what a
# module's head reads.
FEATURE_LAYERS: dict[str, tuple[str, ...]] = {"last": ("last",), "last+middle": ("middle", "last")}


def layer_index(layer: str, n_layers: int) -> int:
    """Index into a transformer's `hidden_states` (0: the embeddings, n_layers: the last layer)."""
    if layer == "last":
        return n_layers
    if layer == "middle":
        return n_layers // 2
    raise ValueError(f"unknown layer {layer!r}; 'last' or 'middle'")
