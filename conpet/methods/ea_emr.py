"""EA-EMR (embedding-aligned EMR, Wang et al. 2019) with PET only, and EA-EMR* on dynamic replay.

The head reads `A(h)`: a linear alignment layer A (H x H, identity at first) over the PET module's
[MASK] hidden state h. A is frozen while the module trains on a task. After each step:
1. the new task's memory is selected and each memorised example's aligned representation A(h) is
   stored (what it looked like when it was learnt);
2. A is refitted so that the *current* hidden states of all memorised examples map onto their stored
   representations: ridge regression pulled towards the previous A (`fit_alignment`; closed form,
   deterministic), so directions the memory does not cover stay as they were;
3. A is applied at prediction (unlike the authors' LLaMA code, which trains it and never applies it).

The step's stats record the memory's drift (mean distance to the stored representations) before and
after the alignment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from conpet.core.protocols import Reporter
from conpet.data.tasks import TaskData
from conpet.methods.base import StepStats
from conpet.methods.emr import MemoryBaseline
from conpet.methods.registry import register_method

ALIGN_FILE = "alignment.safetensors"


def fit_alignment(x: np.ndarray, y: np.ndarray, prior_w: np.ndarray, prior_b: np.ndarray, *,
                  ridge: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) minimising ||x W^T + b - y||^2 + lam ||[W b] - [prior_w prior_b]||^2, in closed form.

    `x`, `y`: [n, d] (current and stored representations); `lam = ridge * mean squared row norm of x`,
    so the pull towards the prior is independent of the representations' scale."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    xa = np.concatenate([x, np.ones((n, 1))], axis=1)
    theta0 = np.concatenate([np.asarray(prior_w, np.float64).T, np.asarray(prior_b, np.float64)[None, :]], axis=0)
    lam = ridge * float((x**2).sum(axis=1).mean()) if n else 1.0
    lam = max(lam, 1e-8)
    gram = xa.T @ xa + lam * np.eye(d + 1)
    theta = np.linalg.solve(gram, xa.T @ y + lam * theta0)
    return theta[:d].T.copy(), theta[d].copy()


class AlignedMemoryBaseline(MemoryBaseline):
    """EA-EMR: a memory baseline whose head reads aligned representations."""

    ridge: ClassVar[float] = 0.1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        h = self.backbone.hidden_size
        self.align = nn.Linear(h, h).to(self._device, torch.float32)
        with torch.no_grad():
            self.align.weight.copy_(torch.eye(h))
            self.align.bias.zero_()
        self.align.requires_grad_(False)

    def transform(self, h: torch.Tensor) -> torch.Tensor:
        return self.align(h)

    def begin_step(self, task: TaskData) -> dict[str, Any]:
        state = super().begin_step(task)
        state["align"] = {k: v.clone() for k, v in self.align.state_dict().items()}
        return state

    def rollback_step(self, state: dict[str, Any]) -> None:
        super().rollback_step(state)
        self.align.load_state_dict(state["align"])

    def after_training(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        self.select_memory(task, stats)  # stores A(h) of the new memory with the current A
        rep.check_cancel()
        mem = self.memory.examples()
        x = self.representations(mem, raw=True)
        y = self.memory.stored(mem)
        w0 = self.align.weight.detach().cpu().numpy()
        b0 = self.align.bias.detach().cpu().numpy()
        before = float(np.linalg.norm(x @ w0.T + b0 - y, axis=1).mean())
        w, b = fit_alignment(x, y, w0, b0, ridge=self.ridge)
        with torch.no_grad():
            self.align.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            self.align.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        after = float(np.linalg.norm(x @ w.T + b - y, axis=1).mean())
        # the module's function changed: cached logits of the old alignment must never be served
        self.bump_version(self.current)
        stats.extra["alignment"] = {"memory": len(mem), "drift_before": round(before, 4),
                                    "drift_after": round(after, 4)}

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        super().save(folder)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.align.state_dict().items()},
                  str(Path(folder) / ALIGN_FILE))

    def load_weights(self, folder: Path) -> None:
        from safetensors.torch import load_file

        if (folder / ALIGN_FILE).is_file():
            self.align.load_state_dict({k: v.to(self._device) for k, v in load_file(str(folder / ALIGN_FILE)).items()})


@register_method("ea-emr", aliases=("eaemr", "ea_emr"))
class EAEMR(AlignedMemoryBaseline):
    """EA-EMR with PET only: K-Means memory replay + embedding alignment."""

    name = "ea-emr"
    description = "EA-EMR with PET only: K-Means memory replay plus embedding alignment (baseline)"


@register_method("ea-emr*", aliases=("ea-emr-star", "eaemr*", "ea_emr_star"))
class EAEMRStar(AlignedMemoryBaseline):
    """EA-EMR* (Static ConPET version): dynamic replay of all history with the batch limit; the memory
    is only the alignment's anchor set."""

    name = "ea-emr*"
    description = "EA-EMR on dynamic replay of all history with the batch limit (Static ConPET version)"
    limited_memory = False
    new_labels = "replay"
    new_labels_text = ("learns labels added to learnt types at its next new task, which replays every learnt "
                       "task's current training data")
