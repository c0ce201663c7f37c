"""A statistical router: per-type Gaussian statistics over a fixed feature map, scored as LDA.

Each type keeps a count and a mean; all types share one pooled within-type covariance (the sum of
each type's scatter about its own mean, divided by N - C), shrunk towards a scaled identity
(`(1 - s) * S + s * tr(S) / d * I`, Ledoit-Wolf style) so that it is invertible even with fewer
examples than dimensions (32 per type at 1152 dimensions). A type's score is its LDA log-likelihood
(the Mahalanobis distance to its mean under the shared covariance, with a uniform prior), and the
router's log p(type | x) is their log-softmax; a task's score is the log-sum-exp of its types'.

Why closed-form statistics: a trained selector drifts and forgets as tasks arrive, while statistics of
a feature map that never changes are exact. Adding a task only adds its types' statistics (a type that
gets more data later is merged with Chan's parallel update), so the incremental result equals the batch
computation over all data; nothing old has to be revisited. Examples that leave a type (a label removed,
or corrected to another type) are taken out with the reverse update (`downdate`), so statistics follow
the current labels exactly: merge and downdate together equal the batch computation over the type's
current examples.

Saved as safetensors (float64, so routing is identical after a reload) plus the type names in the
file's metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from conpet.core.errors import ConpetError

ROUTER_FILE = "router.safetensors"
ROUTER_FORMAT = "conpet-lda-router"


class RouterError(ConpetError):
    """A router file that cannot be read, or features that do not fit the router."""


class GaussianRouter:
    """Per-type means and a pooled within-type covariance over `dim`-dimensional features."""

    def __init__(self, dim: int, shrinkage: float = 0.1) -> None:
        if dim < 1:
            raise ValueError(f"feature dimension must be >= 1, got {dim}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        self.dim = dim
        self.shrinkage = shrinkage
        self.types: list[str] = []
        self.counts = np.zeros(0, dtype=np.float64)
        self.means = np.zeros((0, dim), dtype=np.float64)
        self.scatter = np.zeros((dim, dim), dtype=np.float64)  # sum over types of their scatter
        self._solved: tuple[torch.Tensor, torch.Tensor] | None = None

    # --- statistics -------------------------------------------------------------------------------

    @property
    def n_examples(self) -> int:
        return int(self.counts.sum())

    def update(self, features: np.ndarray, labels: Sequence[str]) -> None:
        """Add examples (rows of `features`) with their types; new types are appended in first-seen order."""
        x = self._checked(features, labels)
        index = {t: i for i, t in enumerate(self.types)}
        for t in dict.fromkeys(labels):
            rows = x[[i for i, lab in enumerate(labels) if lab == t]]
            n_b = float(len(rows))
            mean_b = rows.mean(axis=0)
            centred = rows - mean_b
            self.scatter += centred.T @ centred
            if t not in index:
                index[t] = len(self.types)
                self.types.append(t)
                self.counts = np.append(self.counts, n_b)
                self.means = np.vstack([self.means, mean_b[None]])
                continue
            j = index[t]
            n_a = self.counts[j]
            if n_a == 0:  # every example was removed earlier: the type starts again
                self.counts[j], self.means[j] = n_b, mean_b
                continue
            delta = mean_b - self.means[j]
            self.scatter += np.outer(delta, delta) * (n_a * n_b / (n_a + n_b))
            self.means[j] += delta * (n_b / (n_a + n_b))
            self.counts[j] = n_a + n_b
        self._solved = None

    def downdate(self, features: np.ndarray, labels: Sequence[str]) -> None:
        """Remove examples (rows of `features`, with the types they were added under): the reverse of
        `update` (Chan's merge solved for the part that leaves). A type left with no example keeps its
        place with count 0 and no scatter; it scores nothing until examples are added again."""
        x = self._checked(features, labels)
        index = {t: i for i, t in enumerate(self.types)}
        for t in dict.fromkeys(labels):  # all checked before anything changes
            if t not in index:
                raise RouterError(f"cannot remove examples of {t!r}: the router has no statistics for it")
            n_b = sum(1 for lab in labels if lab == t)
            if n_b > self.counts[index[t]]:
                raise RouterError(f"cannot remove {n_b} examples of {t!r}: it has {int(self.counts[index[t]])}")
        for t in dict.fromkeys(labels):
            rows = x[[i for i, lab in enumerate(labels) if lab == t]]
            j = index[t]
            n, n_b = self.counts[j], float(len(rows))
            mean_b = rows.mean(axis=0)
            centred = rows - mean_b
            self.scatter -= centred.T @ centred
            n_a = n - n_b
            if n_a == 0:
                self.means[j] = 0.0
            else:
                mean_a = (self.means[j] * n - mean_b * n_b) / n_a
                delta = mean_b - mean_a
                self.scatter -= np.outer(delta, delta) * (n_a * n_b / n)
                self.means[j] = mean_a
            self.counts[j] = n_a
        self.scatter = (self.scatter + self.scatter.T) / 2  # keep it exactly symmetric after the subtractions
        self._solved = None

    def reserve(self, types: Sequence[str]) -> None:
        """Give each of `types` that the router does not hold a place with no example (it scores nothing)."""
        for t in types:
            if t not in self.types:
                self.types.append(t)
                self.counts = np.append(self.counts, 0.0)
                self.means = np.vstack([self.means, np.zeros((1, self.dim))])
        self._solved = None

    def _checked(self, features: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise RouterError(f"features of shape {x.shape} for a router of dimension {self.dim}")
        if len(labels) != len(x):
            raise RouterError(f"{len(labels)} labels for {len(x)} feature rows")
        return x

    def covariance(self) -> np.ndarray:
        """The shrunk pooled within-type covariance (d x d)."""
        dof = max(self.n_examples - int((self.counts > 0).sum()), 1)
        s = self.scatter / dof
        trace = float(np.trace(s)) / self.dim
        shrunk = (1.0 - self.shrinkage) * s
        shrunk[np.diag_indices(self.dim)] += self.shrinkage * (trace if trace > 0 else 1.0)
        return shrunk

    def _solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Precision-weighted means P mu_c (d x C) and the constants -mu_c' P mu_c / 2, once per update."""
        if self._solved is None:
            if not self.types:
                raise RouterError("the router has no types yet")
            cov = torch.as_tensor(self.covariance())
            chol = torch.linalg.cholesky(cov)
            means = torch.as_tensor(self.means)
            pm = torch.cholesky_solve(means.T.contiguous(), chol)  # d x C
            const = -0.5 * (means * pm.T).sum(-1)
            const[torch.as_tensor(self.counts == 0)] = -torch.inf  # a type with no example left scores nothing
            self._solved = (pm, const)
        return self._solved

    # --- scoring ----------------------------------------------------------------------------------

    def log_posterior(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """[N, types]: log p(type | x) under the shared-covariance Gaussians with a uniform prior.
        (The quadratic term x' P x is the same for every type and cancels in the softmax.)"""
        x = torch.as_tensor(np.asarray(features, dtype=np.float64))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise RouterError(f"features of shape {tuple(x.shape)} for a router of dimension {self.dim}")
        pm, const = self._solve()
        scores = x @ pm + const
        return torch.log_softmax(scores, dim=-1).numpy()

    # --- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        meta = {"format": ROUTER_FORMAT, "types": json.dumps(self.types), "shrinkage": repr(self.shrinkage),
                "dim": str(self.dim)}
        save_file({"counts": self.counts, "means": self.means, "scatter": self.scatter}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> GaussianRouter:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise RouterError(f"{path}: the router's statistics are missing")
        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            if meta.get("format") != ROUTER_FORMAT:
                raise RouterError(f"{path}: not a {ROUTER_FORMAT} file")
            router = cls(int(meta["dim"]), float(meta["shrinkage"]))
            router.types = list(json.loads(meta["types"]))
            router.counts = np.asarray(tensors["counts"], dtype=np.float64)
            router.means = np.asarray(tensors["means"], dtype=np.float64).reshape(-1, router.dim)
            router.scatter = np.asarray(tensors["scatter"], dtype=np.float64)
        except RouterError:
            raise
        except Exception as exc:  # a truncated or foreign file: say which
            raise RouterError(f"{path}: unreadable router statistics ({exc})") from exc
        if (len(router.types) != len(router.counts) or router.means.shape[0] != len(router.types)
                or router.scatter.shape != (router.dim, router.dim)):
            raise RouterError(f"{path}: the router's tensors do not agree with its {len(router.types)} types")
        return router


def batch_statistics(features: np.ndarray, labels: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray,
                                                                            np.ndarray]:
    """Types, counts, means and pooled scatter computed in one go (the reference the incremental
    update must equal)."""
    x = np.asarray(features, dtype=np.float64)
    types = list(dict.fromkeys(labels))
    lab = np.asarray(labels)
    counts = np.array([float((lab == t).sum()) for t in types])
    means = np.stack([x[lab == t].mean(axis=0) for t in types])
    centred = x - means[[types.index(t) for t in labels]]
    return types, counts, means, centred.T @ centred
