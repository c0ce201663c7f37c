"""CRL (consistent representation learning, Zhao et al. 2022) with PET only, and CRL* on dynamic replay.

Training loss per batch (new + replayed examples), on the module's [MASK] features h and logits:

    cross-entropy over all seen types
    + lambda_con * supervised contrastive loss of the batch's features, contrasted with the batch and a
      small bank of recent (detached) features of this step, so that an 8-example batch has positives
    + lambda_kd * knowledge distillation on the replayed examples: KL(teacher || student) of the
      softmax at temperature T over the old types, times T^2; the teacher is a frozen copy of the
      previous step's module (its LoRA and head kept under the adapter name "teacher"; being frozen,
      its logits come from the logit cache when present).

Prediction: nearest class prototype (cosine) of h, a prototype being the normalised mean of the
normalised features of a type's memorised examples, recomputed with the final module after each
step. While a step trains (validation), the new types have no prototype yet, so the head predicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from conpet.core.protocols import Reporter
from conpet.data.example import Example
from conpet.data.tasks import TaskData
from conpet.methods.base import Prediction, StepStats, softmax
from conpet.methods.emr import MemoryBaseline
from conpet.methods.registry import register_method

PROTO_FILE = "prototypes.safetensors"


def supervised_contrastive_loss(features: torch.Tensor, labels: torch.Tensor, *, temperature: float = 0.1,
                                bank_features: torch.Tensor | None = None,
                                bank_labels: torch.Tensor | None = None) -> torch.Tensor:
    """SupCon (Khosla et al. 2020) of a batch: for each anchor i with at least one positive,
    -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / tau) / sum_{a != i} exp(z_i.z_a / tau) ),
    z the L2-normalised features, a and p ranging over the batch (but i) and the bank, P(i) those with
    i's label; averaged over the anchors that have a positive (0 when none has)."""
    z = F.normalize(features.float(), dim=-1)
    contrast, clabels = z, labels
    if bank_features is not None and bank_labels is not None and len(bank_labels):
        contrast = torch.cat([z, F.normalize(bank_features.float(), dim=-1)])
        clabels = torch.cat([labels, bank_labels])
    b = z.shape[0]
    sim = z @ contrast.T / temperature
    self_mask = torch.zeros_like(sim, dtype=torch.bool)
    self_mask[torch.arange(b), torch.arange(b)] = True
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels[:, None] == clabels[None, :]) & ~self_mask
    n_pos = pos.sum(dim=1)
    has = n_pos > 0
    if not bool(has.any()):
        return features.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(dim=1)[has] / n_pos[has]
    return per_anchor.mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                      temperature: float = 2.0) -> torch.Tensor:
    """T^2 * mean over examples of KL(softmax(teacher / T) || softmax(student / T))."""
    t = temperature
    log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
    p_t = F.softmax(teacher_logits.float().detach() / t, dim=-1)
    kl = (p_t * (torch.log(p_t.clamp_min(1e-12)) - log_p_s)).sum(dim=-1)
    return kl.mean() * t * t


def class_prototypes(features: np.ndarray, labels: Sequence[str], types: Sequence[str]) -> np.ndarray:
    """[len(types), d]: per type, the normalised mean of its normalised feature rows (zeros if none)."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    out = np.zeros((len(types), f.shape[1]))
    lab = np.asarray(labels)
    for i, t in enumerate(types):
        rows = f[lab == t]
        if len(rows):
            m = rows.mean(axis=0)
            out[i] = m / max(np.linalg.norm(m), 1e-12)
    return out.astype(np.float32)


def prototype_scores(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Cosine similarity of each feature row to each prototype: [n, n_types]."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return f @ np.asarray(prototypes, dtype=np.float64).T


class ContrastiveMemoryBaseline(MemoryBaseline):
    """CRL: CE + supervised contrastive + distillation from the previous step's module; prototypes."""

    TEACHER: ClassVar[str] = "teacher"
    lambda_con: ClassVar[float] = 1.0
    lambda_kd: ClassVar[float] = 1.0
    con_temperature: ClassVar[float] = 0.1
    kd_temperature: ClassVar[float] = 2.0
    bank_size: ClassVar[int] = 64
    proto_temperature: ClassVar[float] = 0.1  # softmax of cosine scores, for Prediction.score

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prototypes: np.ndarray | None = None  # rows in self.types order
        self._bank_f: torch.Tensor | None = None
        self._bank_l: torch.Tensor | None = None
        self._teacher_types = 0

    # --- training -----------------------------------------------------------------------------------

    def begin_step(self, task: TaskData) -> dict[str, Any]:
        state = super().begin_step(task)
        state["prototypes"] = self.prototypes
        return state

    def rollback_step(self, state: dict[str, Any]) -> None:
        super().rollback_step(state)
        self.prototypes = state["prototypes"]
        self.remove_module(self.TEACHER)
        self._teacher_types = 0

    def prepare_step(self, task: TaskData, history: list[TaskData]) -> None:
        """Freeze a copy of the previous step's module (LoRA + head over the old types) as the teacher."""
        self.remove_module(self.TEACHER)
        self._teacher_types = 0
        self._bank_f = self._bank_l = None
        if not self.has_module(self.current):
            return
        n_old = self.pet.n_outputs(self.adapter(self.current))
        self.add_module(self.TEACHER, n_old, init_from=self.current)
        with torch.no_grad():
            src = self.pet.heads[self.adapter(self.current)]
            dst = self.pet.heads[self.adapter(self.TEACHER)]
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        self.bump_version(self.TEACHER)  # never a version an earlier teacher's cached logits used
        self._teacher_types = n_old

    def commit_step(self, state: dict[str, Any]) -> None:
        super().commit_step(state)
        self.remove_module(self.TEACHER)  # only needed while a step trains

    def batch_loss(self, batch: list[Example], index: dict[str, int]) -> tuple[torch.Tensor, dict[str, float]]:
        h = self.hidden_states(batch, grad=True)
        logits = self.mask_by_kind(batch, self.head(h), self.kinds_of(self.types))
        gold = torch.tensor([index[ex.label] for ex in batch], device=logits.device)
        ce = F.cross_entropy(logits, gold)
        con = supervised_contrastive_loss(h, gold, temperature=self.con_temperature,
                                          bank_features=self._bank_f, bank_labels=self._bank_l)
        self._push_bank(h.detach(), gold)
        loss = ce + self.lambda_con * con
        info = {"acc": float((logits.argmax(-1) == gold).float().mean()), "ce": float(ce.detach()), "con": float(con.detach())}
        n_old = self._teacher_types
        old_rows = [i for i, ex in enumerate(batch) if index[ex.label] < n_old]
        if n_old and old_rows:
            old = [batch[i] for i in old_rows]
            teacher = self.mask_by_kind(old, self.module_logits(self.TEACHER, old), self.kinds_of(self.types[:n_old]))
            kd = distillation_loss(logits[old_rows, :n_old], teacher, temperature=self.kd_temperature)
            loss = loss + self.lambda_kd * kd
            info["kd"] = float(kd.detach())
        return loss, info

    def _push_bank(self, f: torch.Tensor, labels: torch.Tensor) -> None:
        if self._bank_f is None or self._bank_l is None:
            self._bank_f, self._bank_l = f, labels
        else:
            self._bank_f = torch.cat([f, self._bank_f])[: self.bank_size]
            self._bank_l = torch.cat([labels, self._bank_l])[: self.bank_size]

    def after_training(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        self.select_memory(task, stats)
        rep.check_cancel()
        self._bank_f = self._bank_l = None
        mem = self.memory.examples()
        feats = self.representations(mem)
        self.prototypes = class_prototypes(feats, [ex.label for ex in mem], self.types)
        stats.extra["prototypes"] = {"types": len(self.types), "from_examples": len(mem)}

    # --- prediction ---------------------------------------------------------------------------------

    def prototypes_ready(self) -> bool:
        return self.prototypes is not None and len(self.prototypes) == len(self.types)

    def predict_batch(self, batch: list[Example]) -> list[Prediction]:
        if not self.prototypes_ready():
            return super().predict_batch(batch)  # during training: the head (new types lack prototypes)
        assert self.prototypes is not None
        scores = prototype_scores(self.representations(batch), self.prototypes)
        scores = self.mask_by_kind(batch, torch.as_tensor(scores), self.kinds_of(self.types)).numpy()
        return self.single_module_predictions(batch, softmax(scores / self.proto_temperature))

    # --- save / load --------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        super().save(folder)
        if self.prototypes is not None:
            save_file({"prototypes": np.ascontiguousarray(self.prototypes)}, str(Path(folder) / PROTO_FILE))

    def load_weights(self, folder: Path) -> None:
        from safetensors.numpy import load_file

        if (folder / PROTO_FILE).is_file():
            self.prototypes = load_file(str(folder / PROTO_FILE))["prototypes"]


@register_method("crl", aliases=("crl-pet",))
class CRL(ContrastiveMemoryBaseline):
    """CRL with PET only: K-Means memory replay, contrastive + distillation, prototype prediction."""

    name = "crl"
    description = (
        "CRL with PET only: K-Means memory, contrastive learn"
        "ing and distillation, prototype prediction (baseline)")


@register_method("crl*", aliases=("crl-star", "crl_star"))
class CRLStar(ContrastiveMemoryBaseline):
    """CRL* (Static ConPET version): dynamic replay of all history with the batch limit; the memory
    holds the examples the prototypes are built from."""

    name = "crl*"
    description = (
        "CRL on dynamic replay of all history with the "
        "batch limit (the paper's Static ConPET version)")
    limited_memory = False
    new_labels = "replay"
    new_labels_text = ("learns labels added to learnt types at its next new task, which replays every learnt "
                       "task's current training data")
