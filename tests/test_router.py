"""The statistical router (conpet.methods.router): incremental statistics equal batch ones, the shrunk covariance
is invertible with fewer examples than dimensions, scores are LDA posteriors, and files round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from conpet.methods.router import GaussianRouter, RouterError, batch_statistics


def _data(rng: np.random.Generator, types: list[str], per_type: int, dim: int) -> tuple[np.ndarray, list[str]]:
    centres = {t: rng.normal(0, 3, dim) for t in types}
    labels = [t for t in types for _ in range(per_type)]
    x = np.stack([centres[t] + rng.normal(0, 1, dim) for t in labels])
    order = rng.permutation(len(labels))
    return x[order], [labels[i] for i in order]


def test_incremental_statistics_equal_batch_statistics():
    rng = np.random.default_rng(0)
    x1, y1 = _data(rng, ["a", "b", "c"], 20, 16)
    x2, y2 = _data(rng, ["d", "e"], 15, 16)
    x3, y3 = _data(rng, ["a", "e", "f"], 7, 16)  # more data for old types, merged (Chan's update)
    router = GaussianRouter(16)
    for x, y in ((x1, y1), (x2, y2), (x3, y3)):
        router.update(x, y)
    types, counts, means, scatter = batch_statistics(np.vstack([x1, x2, x3]), y1 + y2 + y3)
    order = [router.types.index(t) for t in types]
    np.testing.assert_allclose(router.counts[order], counts)
    np.testing.assert_allclose(router.means[order], means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(router.scatter, scatter, rtol=1e-10, atol=1e-9)


def test_merge_and_downdate_equal_batch_statistics_over_the_current_examples():
    """Add, remove, relabel (a removal from one type and an addition to another), in several rounds: the
    statistics equal a batch computation over what is left."""
    rng = np.random.default_rng(3)
    x, y = _data(rng, ["a", "b", "c", "d"], 12, 8)
    router = GaussianRouter(8)
    router.update(x[:30], y[:30])
    router.update(x[30:], y[30:])  # merge into types that already have data
    keep = np.ones(len(y), dtype=bool)
    gone = [0, 5, 9, 17, 33]
    router.downdate(x[gone], [y[i] for i in gone])  # removed labels
    keep[gone] = False
    moved = [2, 11, 40]  # corrected: out of their type, into "e" (a new type) or "a"
    new_labels = ["e", "a", "e"]
    router.downdate(x[moved], [y[i] for i in moved])
    router.update(x[moved], new_labels)
    labels = list(y)
    for i, lab in zip(moved, new_labels, strict=True):
        labels[i] = lab
    types, counts, means, scatter = batch_statistics(x[keep], [lab for lab, k in zip(labels, keep, strict=True) if k])
    order = [router.types.index(t) for t in types]
    np.testing.assert_allclose(router.counts[order], counts)
    np.testing.assert_allclose(router.means[order], means, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(router.scatter, scatter, rtol=1e-9, atol=1e-8)


def test_a_type_whose_examples_all_left_scores_nothing_until_it_gets_more():
    rng = np.random.default_rng(4)
    x, y = _data(rng, ["a", "b", "c"], 6, 5)
    router = GaussianRouter(5)
    router.update(x, y)
    rows = [i for i, lab in enumerate(y) if lab == "b"]
    router.downdate(x[rows], ["b"] * len(rows))
    post = router.log_posterior(x)
    assert np.isneginf(post[:, router.types.index("b")]).all()
    router.update(x[rows[:2]], ["b", "b"])
    assert np.isfinite(router.log_posterior(x)).all()
    with pytest.raises(RouterError, match="has 2"):
        router.downdate(x[rows], ["b"] * len(rows))
    with pytest.raises(RouterError, match="no statistics"):
        router.downdate(x[:1], ["zzz"])


def test_shrunk_covariance_is_invertible_with_fewer_examples_than_dimensions():
    rng = np.random.default_rng(1)
    x, y = _data(rng, ["a", "b", "c"], 32, 1152)  # 96 examples, 1152 dimensions: the raw covariance is singular
    router = GaussianRouter(1152, shrinkage=0.1)
    router.update(x, y)
    raw = router.scatter / (len(x) - 3)
    assert np.linalg.matrix_rank(raw) < 1152
    eig = np.linalg.eigvalsh(router.covariance())
    assert eig.min() > 0
    post = router.log_posterior(x)
    assert np.isfinite(post).all()
    assert (np.array(router.types)[post.argmax(-1)] == np.array(y)).mean() > 0.95


def test_scores_are_the_lda_posterior():
    rng = np.random.default_rng(2)
    x, y = _data(rng, ["a", "b"], 10, 4)
    router = GaussianRouter(4, shrinkage=0.3)
    router.update(x, y)
    cov = router.covariance()
    prec = np.linalg.inv(cov)
    q = rng.normal(0, 2, (5, 4))
    maha = np.stack([np.einsum("nd,de,ne->n", q - m, prec, q - m) for m in router.means], axis=-1)
    logits = -0.5 * maha
    want = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - \
        logits.max(-1, keepdims=True)
    np.testing.assert_allclose(router.log_posterior(q), want, rtol=1e-9, atol=1e-9)


def test_shrinkage_follows_the_formula():
    rng = np.random.default_rng(3)
    x, y = _data(rng, ["a", "b"], 6, 5)
    router = GaussianRouter(5, shrinkage=0.25)
    router.update(x, y)
    s = router.scatter / (len(x) - 2)
    np.testing.assert_allclose(router.covariance(), 0.75 * s + 0.25 * np.trace(s) / 5 * np.eye(5))


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    x, y = _data(rng, ["a", "b", "c"], 8, 12)
    router = GaussianRouter(12, shrinkage=0.2)
    router.update(x, y)
    router.save(tmp_path / "router.safetensors")
    again = GaussianRouter.load(tmp_path / "router.safetensors")
    assert again.types == router.types and again.shrinkage == 0.2
    np.testing.assert_array_equal(again.log_posterior(x), router.log_posterior(x))


def test_bad_files_and_shapes_are_refused(tmp_path):
    router = GaussianRouter(3)
    with pytest.raises(RouterError, match="shape"):
        router.update(np.zeros((2, 4)), ["a", "b"])
    with pytest.raises(RouterError, match="no types"):
        router.log_posterior(np.zeros((1, 3)))
    with pytest.raises(RouterError, match="missing"):
        GaussianRouter.load(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RouterError, match="junk.safetensors: unreadable"):
        GaussianRouter.load(tmp_path / "junk.safetensors")
