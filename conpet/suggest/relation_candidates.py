"""Relation candidates with an explicit no-relation outcome: which pairs of mentions in a sentence are
worth proposing to the relation experts at all.

Design: one binary *relatedness* PET module (``RELATEDNESS_MODULE``: LoRA + a two-row head, ``no_relation``
and ``related``, over the ``markers`` representation) beside the continual method, not a ``no_relation``
type inside it. Why: the continual methods' label spaces are the project's types, task by task (a
no-relation row in every relation task would be one type shared by all tasks, which the per-task experts
and the statistical router cannot hold without changing what they compute and what their bundles mean);
a separate gate keeps those label spaces intact and is the simplest thing that gives TACRED's
``no_relation`` outcome: a pair the gate scores below ``threshold`` is not proposed, a pair above it is
typed by the relation experts with their usual scores.

Training data (``conpet.project.suggesters`` builds it from a project): positives are gold relation pairs;
negatives are ordered pairs of labelled mentions in a sentence that has relation labels but no relation
between them (the reverse of a gold pair included, so the direction is learnt), and rejected relation
annotations on pairs without a gold relation. Continual in the detector's way: each ``train`` call is one
step whose batches mix the new pairs with replayed earlier steps' pairs (``ReplaySampler``).

Saved as a folder: ``relatedness.json`` (format, settings with the threshold, steps) beside ``module/``
(``PETModel.save_module``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from conpet.core.errors import ConpetError
from conpet.core.files import replace_folder
from conpet.core.protocols import ProgressSink, Reporter
from conpet.data.example import Example
from conpet.methods.replay import ReplaySampler
from conpet.model.backbones import Backbone
from conpet.model.modules import LoraSettings, ModuleError, PETModel
from conpet.suggest.folders import read_header, write_header

RELATEDNESS_MODULE = "relatedness"
RELATEDNESS_FORMAT = "conpet-relatedness"
RELATEDNESS_FORMAT_VERSION = 1
NO_RELATION, RELATED = "no_relation", "related"
OUTCOMES = (NO_RELATION, RELATED)


class RelatednessError(ConpetError):
    """A relatedness folder that cannot be loaded (names the file and the problem)."""


@dataclass(frozen=True, slots=True)
class RelatednessSettings:
    """How the gate trains, and the threshold above which a pair is proposed."""

    batch_size: int = 16
    learning_rate: float = 1e-3
    max_epochs: int = 4
    batch_limit: int | None = None
    new_old_ratio: float = 1.0
    seed: int = 0
    threshold: float = 0.5  # P(related) a pair needs to be proposed
    max_mentions: int = 12  # per sentence: pairs grow as n², so a longer list keeps its first n mentions

    def __post_init__(self) -> None:
        if self.batch_size < 2 or self.learning_rate <= 0 or self.max_epochs < 1:
            raise ValueError("batch_size must be >= 2, learning_rate > 0 and max_epochs >= 1")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.batch_limit is not None and self.batch_limit < 1:
            raise ValueError(f"batch_limit must be >= 1 or None, got {self.batch_limit}")
        if self.max_mentions < 2:
            raise ValueError(f"max_mentions must be >= 2, got {self.max_mentions}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RelatednessSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def pair_example(text: str, head: Any, tail: Any, related: bool | None = None, **meta: Any) -> Example:
    """A relation example for the gate (label ``related`` / ``no_relation``, or "" to score)."""
    label = "" if related is None else (RELATED if related else NO_RELATION)
    return Example(text, (head, tail), label, "relation", meta=dict(meta))


class RelatednessScorer:
    """P(related) of an ordered mention pair, as one PET module on ``backbone``."""

    def __init__(self, backbone: Backbone, settings: RelatednessSettings | None = None,
                 lora: LoraSettings | None = None, pet: PETModel | None = None) -> None:
        from conpet.model.encoding import ConpetEncoder

        self.backbone = backbone
        self.settings = settings or RelatednessSettings()
        self.pet = pet or PETModel(backbone, lora)
        self.encoder = ConpetEncoder(backbone.tokenizer, backbone.arch)
        self.steps = 0
        if RELATEDNESS_MODULE not in self.pet.module_names:
            self.pet.add_module(RELATEDNESS_MODULE, len(OUTCOMES), representation="markers")

    def _logits(self, examples: Sequence[Example]) -> torch.Tensor:
        batch = self.encoder.batch(list(examples)).to(self.backbone.device)
        return self.pet.logits(batch, RELATEDNESS_MODULE)

    def train(self, pairs: Sequence[Example], old_tasks: Sequence[Sequence[Example]] = (),
              progress: ProgressSink | None = None) -> float:
        """One continual step on ``pairs`` (labelled ``related`` / ``no_relation``) with replay of
        ``old_tasks``; returns the last batch's loss. Cancellable between batches."""
        if not pairs:
            raise ValueError("the relatedness gate needs at least one pair to train on")
        s = self.settings
        sampler = ReplaySampler(list(pairs), [list(t) for t in old_tasks], batch_size=s.batch_size,
                                new_old_ratio=s.new_old_ratio, batch_limit=s.batch_limit,
                                max_epochs=s.max_epochs, seed=s.seed * 1000 + self.steps)
        weight = _class_weights([*pairs, *(p for t in old_tasks for p in t)]).to(self.backbone.device)
        rep = Reporter(progress)
        self.pet.set_trainable(RELATEDNESS_MODULE)
        optimizer = torch.optim.AdamW(self.pet.module_parameters(RELATEDNESS_MODULE), lr=s.learning_rate,
                                      weight_decay=0.0)
        done, loss_value = 0, math.nan
        try:
            for epoch in sampler.epochs():
                for batch in epoch:
                    rep.check_cancel()
                    target = torch.tensor([OUTCOMES.index(p.label) for p in batch], device=self.backbone.device)
                    loss = torch.nn.functional.cross_entropy(self._logits(batch), target, weight=weight)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    done += 1
                    loss_value = float(loss.detach())
                    rep(done / len(sampler), f"relatedness batch {done}/{len(sampler)}", "relations",
                        {"loss": loss_value})
        finally:
            self.pet.set_trainable(None)
        self.steps += 1
        return loss_value

    @torch.no_grad()
    def score(self, pairs: Sequence[Example], batch_size: int = 32) -> list[float]:
        """P(related) of each pair, in order."""
        out: list[float] = []
        for b in range(0, len(pairs), batch_size):
            probs = torch.softmax(self._logits(pairs[b : b + batch_size]), dim=-1)
            out.extend(float(p) for p in probs[:, OUTCOMES.index(RELATED)].cpu())
        return out

    def save(self, folder: str | Path) -> Path:
        """Write ``folder`` (``relatedness.json`` + ``module/``), replacing an existing one as a whole."""
        def write(out: Path) -> None:
            self.pet.save_module(RELATEDNESS_MODULE, out / "module")
            write_header(out / "relatedness.json", {
                "format": RELATEDNESS_FORMAT, "format_version": RELATEDNESS_FORMAT_VERSION,
                "outcomes": list(OUTCOMES), "steps": self.steps, "settings": asdict(self.settings)})

        return replace_folder(folder, write)

    @classmethod
    def load(cls, folder: str | Path, backbone: Backbone, pet: PETModel | None = None) -> RelatednessScorer:
        folder = Path(folder)
        path = folder / "relatedness.json"
        info = read_header(folder, "relatedness.json", RELATEDNESS_FORMAT, RELATEDNESS_FORMAT_VERSION,
                           RelatednessError, "relatedness")
        if info.get("outcomes") != list(OUTCOMES):
            raise RelatednessError(f"{path}: outcomes {info.get('outcomes')} are not {list(OUTCOMES)}")
        try:
            settings = RelatednessSettings.from_dict(dict(info.get("settings") or {}))
        except (TypeError, ValueError) as exc:
            raise RelatednessError(f"{path}: bad settings ({exc})") from exc
        pet = pet or PETModel(backbone)
        try:
            pet.load_module(folder / "module", RELATEDNESS_MODULE)
        except ModuleError as exc:
            raise RelatednessError(str(exc)) from exc
        n = pet.n_outputs(RELATEDNESS_MODULE)
        if n != len(OUTCOMES):
            pet.remove_module(RELATEDNESS_MODULE)
            raise RelatednessError(f"{folder / 'module'}: a head of {n} outputs, the gate has {len(OUTCOMES)}")
        scorer = cls(backbone, settings, pet=pet)
        scorer.steps = int(info.get("steps", 0))
        return scorer


def _class_weights(pairs: Sequence[Example]) -> torch.Tensor:
    """Inverse-frequency weights (mean 1): a sentence has many more unrelated pairs than related ones,
    and an unweighted gate would learn to say no_relation to everything."""
    counts = torch.tensor([sum(p.label == o for p in pairs) for o in OUTCOMES], dtype=torch.float32)
    counts = counts.clamp(min=1.0)
    weights = counts.sum() / (len(OUTCOMES) * counts)
    return weights
