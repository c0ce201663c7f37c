"""The mention detector: a PET module (peft LoRA adapter + a linear head) that tags every subword token of
a sentence O / B / I, so that sentences without labels get type-agnostic mention proposals.

It is one module of a ``PETModel`` on the shared frozen backbone (``DETECTOR_MODULE``), with a head of
three rows that reads the final hidden state of *every* token instead of one position. An uncased
backbone (MiniLM lowercases) cannot see capitals, so each token's word shape (``conpet.suggest.mentions.SHAPES``)
enters twice, both learnt from zero: an embedding added to the token embeddings (attention sees casing in
context) and a bias on the tag logits. Tags, shapes, decoding and the scores live in ``conpet.suggest.mentions``.

Continual: each ``train`` call is one step on a batch of newly labelled sentences; its training batches
mix new and earlier steps' sentences (``ReplaySampler``, 1:1 by default, earlier steps drawn uniformly),
so the mentions of earlier types are still seen when new types arrive. The detector remembers the
sentences of the steps it trained in this process; after ``load`` the caller passes them again
(``old_tasks``), as the project store keeps them.

A trained sentence counts as fully annotated: every token outside its gold mentions is an ``O`` example
(a project that labels only some types in a sentence teaches the detector that the rest are not mentions).
Rejected proposals are explicit negatives (``MentionSentence.negatives``): ``O`` even in a sentence that
has no gold mention, whose other tokens then teach nothing (``conpet.suggest.mentions.sentence_tags``).

Proposals below the detector's ``threshold`` are dropped (``conpet.suggest.mention_threshold``: chosen on
validation sentences by ``choose_threshold``, saved in ``detector.json``; 0, every proposal, for a detector
saved before thresholds or never given validation sentences).

Saved as a folder: ``detector.json`` (format, tags, settings, steps, threshold and how it was chosen) and
``shape.safetensors`` (the shape bias and embedding) beside ``module/``, the PET module folder
``PETModel.save_module`` writes (peft adapter + ``head.safetensors`` + ``module.json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from conpet.core.errors import ConpetError
from conpet.core.files import replace_folder
from conpet.core.protocols import ProgressSink, Reporter
from conpet.data.example import Span
from conpet.methods.replay import ReplaySampler
from conpet.model.backbones import Backbone
from conpet.model.modules import LoraSettings, ModuleError, PETModel
from conpet.suggest.folders import read_header, write_header
from conpet.suggest.mention_threshold import DEFAULT_BETA, ThresholdChoice, choose_threshold
from conpet.suggest.mentions import (
    IGNORE,
    N_SHAPES,
    TAGS,
    MentionSentence,
    decode_tags,
    gold_sentences,
    sentence_tags,
    token_shapes,
)

DETECTOR_MODULE = "mention-detector"
DETECTOR_FORMAT = "conpet-mention-detector"
DETECTOR_FORMAT_VERSION = 1


class DetectorError(ConpetError):
    """A detector folder that cannot be loaded (names the file and the problem)."""


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """How the detector trains and reads sentences."""

    batch_size: int = 16
    learning_rate: float = 1e-3
    max_epochs: int = 6  # what the Few-NERD figures used (docs/results/detector)
    batch_limit: int | None = None  # at most this many batches per step
    new_old_ratio: float = 1.0  # new : replayed sentences in a batch once there are earlier steps
    max_length: int = 256  # tokens per sentence; the rest of a longer sentence gets no proposals
    seed: int = 0
    shape_lr_factor: float = 20.0  # the word-shape bias learns at this multiple of learning_rate

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (new and replayed sentences), got {self.batch_size}")
        if self.learning_rate <= 0 or self.max_epochs < 1 or self.max_length < 8:
            raise ValueError("learning_rate must be > 0, max_epochs >= 1 and max_length >= 8")
        if self.batch_limit is not None and self.batch_limit < 1:
            raise ValueError(f"batch_limit must be >= 1 or None, got {self.batch_limit}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed mention ``text[start:end]``; ``score`` is the mean probability of its tokens' tags."""

    start: int
    end: int
    score: float

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one ``train`` call did."""

    step: int
    n_new: int
    n_replayed_tasks: int
    batches: int
    final_loss: float


class MentionDetector:
    """Token-level BIO mention tagging as one PET module on ``backbone``."""

    def __init__(self, backbone: Backbone, settings: DetectorSettings | None = None,
                 lora: LoraSettings | None = None, pet: PETModel | None = None) -> None:
        self.backbone = backbone
        self.settings = settings or DetectorSettings()
        self.pet = pet or PETModel(backbone, lora)
        self.tasks: list[list[MentionSentence]] = []  # the sentences of each step trained in this process
        self.steps = 0
        self.threshold = 0.0  # proposals scored below it are dropped; 0 keeps every one
        self.threshold_choice: dict[str, Any] | None = None  # how it was chosen (ThresholdChoice.to_dict)
        if DETECTOR_MODULE not in self.pet.module_names:
            self.pet.add_module(DETECTOR_MODULE, len(TAGS))
        self.shape_bias = torch.nn.Embedding(N_SHAPES, len(TAGS)).to(backbone.device, torch.float32)
        torch.nn.init.zeros_(self.shape_bias.weight)  # starts as the plain head
        self.shape_bias.requires_grad_(False)
        # the same shapes as inputs: added to the token embeddings, so attention can use casing in context
        self.shape_embedding = torch.nn.Embedding(N_SHAPES, backbone.hidden_size).to(backbone.device,
                                                                                      torch.float32)
        torch.nn.init.zeros_(self.shape_embedding.weight)
        self.shape_embedding.requires_grad_(False)

    # --- encoding ----------------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str]) -> Any:
        """The tokenizer's batch (with ``offset_mapping``) plus ``shapes``: each token's word shape."""
        tok = self.backbone.tokenizer
        if not getattr(tok, "is_fast", False):
            raise DetectorError(f"backbone {self.backbone.name!r}: the detector needs a fast tokenizer "
                                "(character offsets)")
        enc = tok(list(texts), return_offsets_mapping=True, truncation=True, padding=True,
                  max_length=self.settings.max_length, return_tensors="pt")
        enc["shapes"] = torch.tensor([
            token_shapes(text, [tuple(o) for o in enc["offset_mapping"][i].tolist()], enc.word_ids(i))
            for i, text in enumerate(texts)
        ], dtype=torch.long)
        return enc

    def _token_logits(self, enc: Any) -> torch.Tensor:
        """[B, T, 3] tag logits: the detector's adapter active, its head on every final hidden state,
        plus the shape bias of each token's word."""
        pet = self.pet
        # PETModel reads one position per example; the detector needs every token's state, so it runs
        # the shared peft model itself, under the same lock and with its adapter active (as pet.hidden)
        device = self.backbone.device
        shapes = enc["shapes"].to(device)
        shared = pet._shared
        with shared.lock:
            shared.activate(pet._adapter(DETECTOR_MODULE))
            words = shared.model.get_input_embeddings()(enc["input_ids"].to(device))
            embeds = words + self.shape_embedding(shapes).to(words.dtype)
            out = shared.model(inputs_embeds=embeds, attention_mask=enc["attention_mask"].to(device))
        head = pet.heads[DETECTOR_MODULE](out.last_hidden_state.float())
        return head + self.shape_bias(shapes)

    # --- training ----------------------------------------------------------------------------------

    def train(self, items: Sequence[object], old_tasks: Sequence[Sequence[object]] | None = None,
              progress: ProgressSink | None = None) -> StepReport:
        """One continual step on every gold mention of ``items`` (sentences or examples), replaying
        ``old_tasks`` (default: the steps this detector trained before). Cancellable between batches."""
        new = gold_sentences(items)
        if not new:
            raise ValueError("the detector needs at least one sentence to train on")
        old = self.tasks if old_tasks is None else [gold_sentences(t) for t in old_tasks]
        s = self.settings
        sampler = ReplaySampler(new, old, batch_size=s.batch_size, new_old_ratio=s.new_old_ratio,
                                batch_limit=s.batch_limit, max_epochs=s.max_epochs,
                                seed=s.seed * 1000 + self.steps)
        self.last_plan = sampler.plan
        rep = Reporter(progress)
        loss = self._run(sampler, rep)
        self.tasks.append(new)
        self.steps += 1
        rep(1.0, f"detector step {self.steps}: {len(new)} sentences", "detector", {"loss": loss})
        return StepReport(self.steps, len(new), len(sampler.old_tasks), len(sampler), loss)

    def _run(self, sampler: ReplaySampler[MentionSentence], rep: Reporter) -> float:
        self.pet.set_trainable(DETECTOR_MODULE)
        self.shape_bias.requires_grad_(True)
        self.shape_embedding.requires_grad_(True)
        lr = self.settings.learning_rate
        # twelve numbers that start at 0: at the LoRA's rate they would move ~0.3 in a few hundred steps
        optimizer = torch.optim.AdamW([
            {"params": self.pet.module_parameters(DETECTOR_MODULE), "lr": lr},
            {"params": [self.shape_bias.weight], "lr": lr * self.settings.shape_lr_factor},
            {"params": [self.shape_embedding.weight], "lr": lr},
        ], weight_decay=0.0)
        done, loss_value = 0, math.nan
        try:
            for epoch in sampler.epochs():
                for batch in epoch:
                    rep.check_cancel()
                    loss = self._loss(batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    done += 1
                    loss_value = float(loss.detach())
                    rep(done / len(sampler), f"detector batch {done}/{len(sampler)}", "detector",
                        {"loss": loss_value})
        finally:
            self.pet.set_trainable(None)
            self.shape_bias.requires_grad_(False)
            self.shape_embedding.requires_grad_(False)
        return loss_value

    def _loss(self, batch: Sequence[MentionSentence]) -> torch.Tensor:
        enc = self._encode([s.text for s in batch])
        labels = torch.full(enc["input_ids"].shape, IGNORE, dtype=torch.long)
        for i, sentence in enumerate(batch):
            offsets = [tuple(o) for o in enc["offset_mapping"][i].tolist()]
            row = sentence_tags(offsets, sentence)
            labels[i, : len(row)] = torch.tensor(row)
        labels[enc["attention_mask"] == 0] = IGNORE
        logits = self._token_logits(enc)
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, len(TAGS)), labels.to(logits.device).reshape(-1), ignore_index=IGNORE
        )

    # --- proposals ---------------------------------------------------------------------------------

    @torch.no_grad()
    def propose(self, texts: Sequence[str], batch_size: int = 32, progress: ProgressSink | None = None,
                min_score: float | None = None) -> list[list[Proposal]]:
        """The proposed mentions of each text scored at least ``min_score`` (default: the detector's
        ``threshold``; 0 gives every one), in text order (cancellable between batches)."""
        floor = self.threshold if min_score is None else min_score
        rep = Reporter(progress)
        out: list[list[Proposal]] = []
        for b in range(0, len(texts), batch_size):
            rep.check_cancel()
            chunk = list(texts[b : b + batch_size])
            out.extend([p for p in props if p.score >= floor] for props in self._propose_batch(chunk))
            rep(min(1.0, (b + len(chunk)) / len(texts)), f"proposed {b + len(chunk)}/{len(texts)}", "detector")
        return out

    def _propose_batch(self, texts: list[str]) -> list[list[Proposal]]:
        enc = self._encode(texts)
        probs = torch.softmax(self._token_logits(enc), dim=-1).cpu()
        tags = probs.argmax(-1)
        out = []
        for i, text in enumerate(texts):
            # padding (either side) has empty offsets, which decoding skips like special tokens
            offsets = [tuple(o) for o in enc["offset_mapping"][i].tolist()]
            spans = decode_tags(text, offsets, tags[i].tolist(), enc.word_ids(i))
            out.append([self._proposal(span, offsets, probs[i], tags[i]) for span in spans])
        return out

    @staticmethod
    def _proposal(span: Span, offsets: list[tuple[int, int]], probs: torch.Tensor,
                  tags: torch.Tensor) -> Proposal:
        inside = [j for j, (a, b) in enumerate(offsets) if a < b and a < span.end and span.start < b]
        score = float(probs[inside, tags[inside]].mean()) if inside else 0.0
        return Proposal(span.start, span.end, score)

    def choose_threshold(self, sentences: Sequence[MentionSentence], beta: float = DEFAULT_BETA,
                         progress: ProgressSink | None = None) -> ThresholdChoice | None:
        """Set ``threshold`` to the best span-only F-beta on ``sentences`` (held out from training; see
        ``conpet.suggest.mention_threshold``). Without a gold mention or a proposal there, it stays as it is
        and None comes back."""
        complete = [s for s in sentences if s.complete]
        found = self.propose([s.text for s in complete], progress=progress, min_score=0.0)
        choice = choose_threshold([s.spans for s in complete],
                                  [[(p.span, p.score) for p in props] for props in found], beta)
        if choice is not None:
            self.threshold = choice.threshold
            self.threshold_choice = choice.to_dict()
        return choice

    # --- persistence -------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write ``folder`` (``detector.json``, ``shape.safetensors``, ``module/``), replacing an existing
        one as a whole."""
        from safetensors.torch import save_file

        def write(out: Path) -> None:
            self.pet.save_module(DETECTOR_MODULE, out / "module")
            save_file({"weight": self.shape_bias.weight.detach().cpu().contiguous(),
                       "embedding": self.shape_embedding.weight.detach().cpu().contiguous()},
                      str(out / "shape.safetensors"), metadata={"format": "pt"})
            write_header(out / "detector.json", {
                "format": DETECTOR_FORMAT, "format_version": DETECTOR_FORMAT_VERSION, "tags": list(TAGS),
                "module": DETECTOR_MODULE, "steps": self.steps, "settings": asdict(self.settings),
                "threshold": self.threshold, "threshold_choice": self.threshold_choice})

        return replace_folder(folder, write)

    @classmethod
    def load(cls, folder: str | Path, backbone: Backbone, pet: PETModel | None = None) -> MentionDetector:
        """A detector from a folder written by ``save`` (checked before the module is added)."""
        folder = Path(folder)
        path = folder / "detector.json"
        info = read_header(folder, "detector.json", DETECTOR_FORMAT, DETECTOR_FORMAT_VERSION, DetectorError,
                           "mention-detector")
        if info.get("tags") != list(TAGS):
            raise DetectorError(f"{path}: tags {info.get('tags')} are not {list(TAGS)}")
        try:
            settings = DetectorSettings.from_dict(dict(info.get("settings") or {}))
        except (TypeError, ValueError) as exc:
            raise DetectorError(f"{path}: bad settings ({exc})") from exc
        threshold = _threshold_of(info, path)
        pet = pet or PETModel(backbone)
        if DETECTOR_MODULE in pet.module_names:
            raise DetectorError(f"{folder}: this model already has a module {DETECTOR_MODULE!r}")
        _check_head_size(folder / "module" / "module.json")  # before the module is added to ``pet``
        shape, embedding = _read_shape_weights(folder / "shape.safetensors", backbone.hidden_size)
        try:
            pet.load_module(folder / "module", DETECTOR_MODULE)
        except ModuleError as exc:
            raise DetectorError(str(exc)) from exc
        detector = cls(backbone, settings, pet=pet)
        with torch.no_grad():
            detector.shape_bias.weight.copy_(shape)
            detector.shape_embedding.weight.copy_(embedding)
        detector.steps = int(info.get("steps", 0))
        detector.threshold = threshold
        choice = info.get("threshold_choice")
        detector.threshold_choice = dict(choice) if isinstance(choice, dict) else None
        return detector


def check_threshold(value: object, where: str) -> float:
    """``value`` as a mention threshold (a number from 0 to 1), or a ``DetectorError`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise DetectorError(f"{where}: a mention threshold is a number from 0 to 1, got {value!r}")
    return float(value)


def _threshold_of(info: dict[str, Any], path: Path) -> float:
    """The saved threshold; 0 (every proposal) for a detector saved before thresholds."""
    return check_threshold(info.get("threshold", 0.0), f"{path}: threshold")


def _check_head_size(path: Path) -> None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DetectorError(f"{path.parent}: not a PET module folder (no module.json)") from exc
    except (OSError, ValueError) as exc:
        raise DetectorError(f"{path}: unreadable ({exc})") from exc
    n = info.get("n_outputs") if isinstance(info, dict) else None
    if n != len(TAGS):
        raise DetectorError(f"{path}: a head of {n} outputs, a mention detector has {len(TAGS)} (O, B, I)")


def _read_shape_weights(path: Path, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The shape bias [shapes, tags] and the shape embedding [shapes, hidden] of a detector folder."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise DetectorError(f"{path.parent}: not a mention-detector folder (no {path.name})")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise DetectorError(f"{path}: unreadable ({exc})") from exc
    out = []
    for key, shape in (("weight", (N_SHAPES, len(TAGS))), ("embedding", (N_SHAPES, hidden_size))):
        t = tensors.get(key)
        if t is None or tuple(t.shape) != shape:
            raise DetectorError(f"{path}: expected {key!r} of shape {shape}, found "
                                f"{None if t is None else tuple(t.shape)} (made for another backbone?)")
        out.append(t)
    return out[0], out[1]
