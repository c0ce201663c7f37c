"""Issue 24 (4): the statistical router refuses a type of another kind than the example *before* it
normalises, so with a tight covariance and a far query an entity still gets an entity type."""

from __future__ import annotations

import numpy as np
import pytest

from conpet.core.config import TrainConfig
from conpet.data.example import Example, Span
from conpet.methods.registry import make_method
from conpet.methods.router import GaussianRouter


def _tight_router(dim: int) -> tuple[GaussianRouter, np.ndarray]:
    """Types A, B (entity) and R (relation): three tight clusters on the first three axes."""
    rng = np.random.default_rng(0)
    router = GaussianRouter(dim, shrinkage=0.01)
    centres = np.eye(3, dim)
    for label, centre in zip(("A", "B", "R"), centres, strict=True):
        router.update(centre + 1e-3 * rng.normal(size=(6, dim)), [label] * 6)
    return router, centres


def test_the_router_normalises_over_the_allowed_types_only():
    router, centres = _tight_router(8)
    far = 40.0 * centres[2:3]  # far out on R's side
    plain = router.log_posterior(far)
    assert plain[0].argmax() == 2 and plain[0, :2].max() < -1e4  # the entity types are far below -1e4
    masked = router.log_posterior(far, np.array([[True, True, False]]))
    assert masked[0, 2] == -np.inf
    assert np.isclose(np.logaddexp(masked[0, 0], masked[0, 1]), 0.0)  # A and B share the whole mass


def test_an_entity_far_from_every_entity_type_gets_an_entity_type(minilm, monkeypatch):
    method = make_method("lda-frozen", minilm, TrainConfig(router_normalize=False, top_t=1))
    dim = method.feature_dim
    router, centres = _tight_router(dim)
    method.router = router
    method.task_types = [("A", "B"), ("R",)]
    method.type_kinds.update({"A": "entity", "B": "entity", "R": "relation"})
    far = 40.0 * centres[2:3].astype(np.float32)
    monkeypatch.setattr(method, "features", lambda chunk: (np.repeat(far, len(chunk), axis=0), {}))
    entity = Example("Paris is big", (Span(0, 5),), "", "entity")
    (pred,) = method.predict_batch([entity])
    assert pred.label in ("A", "B"), f"an entity got the relation type {pred.label!r}"
    assert pred.active_experts == [0]
    pair = Example("Paris is in France", (Span(0, 5), Span(12, 18)), "", "relation")
    (pred,) = method.predict_batch([pair])
    assert pred.label == "R"


def test_a_router_mask_of_the_wrong_shape_is_refused():
    from conpet.methods.router import RouterError

    router, centres = _tight_router(8)
    with pytest.raises(RouterError, match="mask"):
        router.log_posterior(centres[:1], np.array([[True, False]]))
