"""The continual-method contract and the shared machinery of every PET-based method.

`ContinualMethod` is what the runner, the app and the bundle code see: `learn_task`, `predict`,
`save`, `load`. `PETMethod` implements the common parts on top of `conpet.model.modules.PETModel`:
encoding, the logit cache for frozen modules, one training loop with named hook points
(`TrainingHook`), best-epoch selection on a fixed validation sample, snapshots that make a
cancelled step leave the last finished task's modules intact, and saving/loading module folders.

New methods (the baselines of issue 4) subclass `PETMethod` (or `SingleModuleMethod` /
`DynamicConPET`) and override the `make_sampler`, `batch_loss`, `after_step` … points, or plug
`TrainingHook` objects into `method.hooks`, instead of forking the loop.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from conpet.core.config import SAVED_BEFORE, TrainConfig
from conpet.core.errors import ConpetError
from conpet.core.protocols import LogitCache, ProgressSink, Reporter, ScaledSink
from conpet.data.example import Example
from conpet.data.tasks import TaskData
from conpet.methods.refresh import TaskChange, label_changes
from conpet.methods.replay import ReplaySampler, validation_sample, validation_size

__all__ = [
    "ContinualMethod", "PETMethod", "Prediction", "StageStats", "StepStats", "TaskData", "TrainingHook",
    "Stage", "ScaledSink", "STATE_FILE", "METHOD_FORMAT",
]

STATE_FILE = "method.json"
METHOD_FORMAT = 1
# The logit of a type of another kind than the example (an entity type for a relation pair): below any
# learnt score and below Dynamic ConPET's alpha, yet finite, so that losses and distillation stay finite.
MASKED_LOGIT = -1e4


@dataclass(frozen=True)
class Prediction:
    """One example's prediction, with what the app shows about routing.

    `score` is the softmax probability of `label` over all seen types (over the concatenation for
    Dynamic ConPET); `selector_scores` the selector's softmax over experts (task order);
    `active_experts` the experts used (task indices, best first); `expert_scores` the routed
    expert's softmax over its own types (for single-module methods: over all seen types);
    `module_versions` the module ids and versions that produced it.
    """

    example_id: str
    label: str
    score: float
    selector_scores: list[float] | None = None
    active_experts: list[int] | None = None
    expert_scores: dict[str, float] = field(default_factory=dict)
    module_versions: dict[str, int] = field(default_factory=dict)

    @property
    def routed_expert(self) -> int | None:
        return self.active_experts[0] if self.active_experts else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StageStats:
    name: str
    module: str
    batches: int = 0
    epochs: int = 0
    best_epoch: int = -1
    best_score: float = float("nan")
    valid_scores: list[float] = field(default_factory=list)
    last_loss: float = float("nan")
    mean_loss: float = float("nan")
    seconds: float = 0.0
    stopped_early: bool = False  # early stopping (TrainConfig.patience) ended the stage before its last epoch


@dataclass
class StepStats:
    """What one continual step did. `seconds` is the whole training time of the step."""

    task: int
    seconds: float = 0.0
    stages: list[StageStats] = field(default_factory=list)
    backbone_forwards: int = 0
    backbone_examples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ContinualMethod:
    """The interface every continual method offers."""

    name: ClassVar[str] = "?"
    # True where a step trains on all history without a batch limit (joint retraining, Limitless): step k
    # then costs about k times the first, and progress and ETA weight the steps so.
    step_cost_grows: ClassVar[bool] = False
    # One PET expert per task (Dynamic ConPET and its variants): trained with Table III's dynamic learning rate,
    # a step trains the new expert after the selector (when it has one).
    dynamic_family: ClassVar[bool] = False
    # Routed by per-type statistics instead of a trained selector (conpet.methods.dynamic_lda): experts see their
    # own task only, and the router's statistics need a feature pass instead of batches.
    routed_by_statistics: ClassVar[bool] = False
    # Offered to projects (the app's method list, `conpet train --method`). Never inherited: a subclass (a
    # variant, an ablation, a Table IV name for the same model) is offered only where it says so itself.
    in_projects: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "in_projects" not in vars(cls):
            cls.in_projects = False
    # What the method does with new labels of types it has learnt (`conpet.methods.refresh.NEW_LABELS`):
    # "refresh" (a refresh step learns them), "replay" (its next new task replays them) or "none".
    new_labels: ClassVar[str] = "none"
    new_labels_text: ClassVar[str] = "never learns labels added to a type after its task was trained"
    # Whether the method has a consolidation step (`PETMethod.consolidate`): one the user chooses, with no new task.
    consolidates: ClassVar[bool] = False

    def learn_task(self, task: TaskData, history: Sequence[TaskData], sink: ProgressSink | None = None) -> StepStats:
        raise NotImplementedError

    def predict(self, examples: Sequence[Example], sink: ProgressSink | None = None) -> list[Prediction]:
        raise NotImplementedError

    def job(self) -> AbstractContextManager[Any]:
        """The scope of one job (a training step with its validation and test passes; a prediction):
        within it a method may keep what it computed per example (its encodings) for the job's other
        passes. Re-entrant; what was kept goes at the end."""
        return nullcontext()

    def save(self, folder: str | Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: str | Path, backbone: Any, cache: LogitCache | None = None) -> ContinualMethod:
        raise NotImplementedError


class TrainingHook:
    """Named points of the training loop; override what you need (all are no-ops here)."""

    def before_step(self, method: PETMethod, task: TaskData, history: Sequence[TaskData]) -> None: ...

    def after_step(self, method: PETMethod, task: TaskData, history: Sequence[TaskData], stats: StepStats) -> None: ...

    def extra_parameters(self, method: PETMethod, stage: Stage) -> list[torch.nn.Parameter]:
        return []

    def batch_loss(self, method: PETMethod, stage: Stage, batch: list[Example],
                   loss: torch.Tensor | None) -> torch.Tensor | None:
        return loss

    def after_epoch(self, method: PETMethod, stage: Stage, epoch: int, score: float) -> None: ...


@dataclass
class Stage:
    """One training stage of a step: which module trains, on which batches, with which loss."""

    name: str  # "selector", "expert", "train": also the progress stage shown to the user
    module: str  # logical module name
    sampler: ReplaySampler[Example]
    loss: Callable[[list[Example]], tuple[torch.Tensor | None, dict[str, float]]]
    validate: Callable[[], float] | None
    lr: float


def _new_uid() -> str:
    return uuid.uuid4().hex[:12]


class PETMethod(ContinualMethod):
    """Shared machinery for methods built from PET modules on one frozen backbone.

    Logical module names ("selector", "expert_3", "main") map to peft adapter names unique to this
    instance (several methods may share one backbone in a process). Cache module ids are
    "<uid>/<logical name>"; versions grow whenever a module's weights change.
    """

    uses_cache: ClassVar[bool] = True
    new_labels: ClassVar[str] = "replay"
    new_labels_text: ClassVar[str] = ("learns labels added to learnt types at its next new task, which replays "
                                      "every learnt task's current training data")
    # What `TrainConfig` leaves to the method (its None settings): the paper's choices unless a method
    # says otherwise.
    default_representation: ClassVar[str] = "mask"
    default_top_t: ClassVar[int] = 1
    default_router_layers: ClassVar[str] = "last"  # what a statistical router reads (conpet.methods.router)

    def __init__(self, backbone: Any, config: TrainConfig | None = None, *,
                 cache: LogitCache | None = None, uid: str | None = None) -> None:
        self.backbone = backbone
        self.config = config or TrainConfig()
        self.cache = cache
        self.uid = uid or _new_uid()
        self.task_types: list[tuple[str, ...]] = []
        self.type_kinds: dict[str, str] = {}  # type -> "entity" | "relation", from the examples it was learnt on
        self.versions: dict[str, int] = {}
        self._burned: dict[str, int] = {}  # versions used by a cancelled step: never issued again
        # Versions issued from now on are above this. A caller whose cache outlives the process sets it to a
        # number no other attempt used (the project layer: from the run id), so that a step that failed in
        # another process can never have left logits under a version issued again.
        self.version_floor = 0
        self.hooks: list[TrainingHook] = []
        self.backbone_forwards = 0  # PET forward passes through the backbone (tests count these)
        self.backbone_examples = 0
        self._training: set[str] = set()  # modules not frozen right now (never cached)
        # type -> input keys of the training examples the model learnt it from (`conpet.methods.refresh`)
        self.learnt_examples: dict[str, list[str]] = {}
        # logical module -> PET adapter where they differ: a refreshed module trains beside the old one,
        # which stays in place until the step commits
        self._adapters: dict[str, str] = {}
        self._superseded: list[str] = []  # adapters the step in progress replaced (dropped when it commits)
        self._pet: Any = None
        self._encoder: Any = None
        # the loaded backbone's device decides (never a saved setting: the model may have moved machines)
        self._device = torch.device(getattr(backbone, "device", None) or "cpu")

    @property
    def config(self) -> TrainConfig:
        return self._config

    @config.setter
    def config(self, value: TrainConfig) -> None:
        self._config = resolve_defaults(value, self)

    # --- label space -----------------------------------------------------------------------------

    @property
    def types(self) -> list[str]:
        return [t for ts in self.task_types for t in ts]

    @property
    def n_tasks(self) -> int:
        return len(self.task_types)

    def type_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.types)}

    def task_of_type(self) -> dict[str, int]:
        return {t: i for i, ts in enumerate(self.task_types) for t in ts}

    def task_offsets(self) -> list[int]:
        out, pos = [], 0
        for ts in self.task_types:
            out.append(pos)
            pos += len(ts)
        return out

    # --- the PET model ---------------------------------------------------------------------------

    @property
    def pet(self) -> Any:
        if self._pet is None:
            from conpet.model.modules import PETModel

            self._pet = PETModel(self.backbone, self.config.lora)
        return self._pet

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from conpet.model.encoding import ConpetEncoder

            self._encoder = ConpetEncoder(self.backbone.tokenizer, self.backbone.arch,
                                          self.config.encoder_settings)
        return self._encoder

    def adapter(self, name: str) -> str:
        """The PETModel name of a logical module: the same (each method has its own PETModel), except for a
        module being refreshed, whose new weights train under a name of their own until the step commits."""
        return self._adapters.get(name, name)

    def module_id(self, name: str) -> str:
        return f"{self.uid}/{name}"

    def has_module(self, name: str) -> bool:
        return self._pet is not None and self.adapter(name) in set(self.pet.module_names)

    def add_module(self, name: str, n_outputs: int, init_from: str | None = None) -> None:
        self.pet.add_module(self.adapter(name), n_outputs,
                            init_from=self.adapter(init_from) if init_from else None,
                            representation=self.config.representation or "mask")

    def remove_module(self, name: str) -> None:
        if self.has_module(name):
            self.pet.remove_module(self.adapter(name))

    def job(self) -> AbstractContextManager[Any]:
        """Each example is tokenised once in the job, however many epochs, stages and modules read it
        (``ConpetEncoder.kept``)."""
        return self.encoder.kept()

    def encode(self, examples: Sequence[Example]) -> Any:
        return self.encoder.batch(list(examples)).to(self._device)

    def forward_logits(self, name: str, examples: Sequence[Example], *, grad: bool) -> torch.Tensor:
        """Logits of module `name` through the backbone (no cache), float32 on the method's device."""
        self.backbone_forwards += 1
        self.backbone_examples += len(examples)
        batch = self.encode(examples)
        if grad:
            return self.pet.logits(batch, self.adapter(name)).float()
        with torch.no_grad():
            return self.pet.logits(batch, self.adapter(name)).float()

    def is_frozen(self, name: str) -> bool:
        return name not in self._training

    def module_logits(self, name: str, examples: Sequence[Example], *, grad: bool = False) -> torch.Tensor:
        """Logits of module `name` for `examples`, with the outputs of another kind than each example's
        masked (`mask_by_kind`). A frozen module's logits come from the cache when present (one look-up
        per call); only misses go through the backbone, and are then stored (unmasked)."""
        return self.mask_by_kind(examples, self._raw_module_logits(name, examples, grad=grad),
                                 self.output_kinds(name))

    def _raw_module_logits(self, name: str, examples: Sequence[Example], *, grad: bool) -> torch.Tensor:
        if not examples:
            return torch.zeros((0, self.pet.n_outputs(self.adapter(name))), device=self._device)
        if grad or self.cache is None or not self.uses_cache or not self.is_frozen(name):
            return self.forward_logits(name, examples, grad=grad)
        mid, ver = self.module_id(name), self.versions.get(name, 0)
        keys = [(ex.input_key, mid, ver) for ex in examples]
        hits = self.cache.get_many(keys)
        miss = [i for i, k in enumerate(keys) if k not in hits]
        rows: list[np.ndarray | None] = [hits.get(k) for k in keys]
        if miss:
            computed = self.forward_logits(name, [examples[i] for i in miss], grad=False).cpu().numpy()
            self.cache.put_many({keys[i]: computed[j] for j, i in enumerate(miss)})
            for j, i in enumerate(miss):
                rows[i] = computed[j]
        return torch.as_tensor(np.stack(rows), dtype=torch.float32, device=self._device)

    # --- kinds: entity examples are scored over entity types only, relation pairs over relation types --

    def kinds_of(self, types: Sequence[str]) -> list[str]:
        """The kind of each type ("" for one this model has no record of: never masked)."""
        return [self.type_kinds.get(t, "") for t in types]

    def same_kind(self, type_name: str, example: Example) -> bool:
        """Whether `example` may be of type `type_name` (a type of unknown kind may be of any)."""
        return self.type_kinds.get(type_name, example.kind) == example.kind

    def output_kinds(self, name: str) -> list[str] | None:
        """The kind of each output of module `name` ("" where mixed or unknown), or None (nothing to mask).
        Here: ``expert_<j>`` scores task j's types (the dynamic methods' experts), and a module whose outputs
        are all seen types scores them in order (a single-module method's, a type-level selector); methods
        with other modules name their outputs' kinds themselves."""
        if not self.type_kinds:
            return None
        if name.startswith("expert_") and name[7:].isdigit() and int(name[7:]) < self.n_tasks:
            return self.kinds_of(self.task_types[int(name[7:])])
        if self.pet.n_outputs(self.adapter(name)) == len(self.types):
            return self.kinds_of(self.types)
        return None

    def mask_by_kind(self, examples: Sequence[Example], logits: torch.Tensor,
                     kinds: Sequence[str] | None) -> torch.Tensor:
        """`logits` [B, C] with MASKED_LOGIT where output c is of another kind than example b. A model
        that learnt types of one kind only changes nothing for examples of that kind; an example of a kind
        the model never learnt is refused (no type could be right)."""
        if not kinds or not examples:
            return logits
        learnt = set(self.type_kinds.values())
        asked = {ex.kind for ex in examples}
        unknown = sorted(asked - learnt)
        if unknown and learnt:
            raise ConpetError(f"this model has learnt no {unknown[0]} types, so it cannot classify "
                              f"{unknown[0]} examples (it knows {', '.join(sorted(learnt))} types)")
        if len(asked) == 1 and set(kinds) <= asked | {""}:
            return logits
        wrong = torch.tensor([[k not in ("", ex.kind) for k in kinds] for ex in examples], device=logits.device)
        return logits.masked_fill(wrong, MASKED_LOGIT)

    # --- the training loop -----------------------------------------------------------------------

    def make_sampler(self, stage: str, new: Sequence[Example], old_tasks: Sequence[Sequence[Example]],
                     limit: int | None) -> ReplaySampler[Example]:
        """The batches of one stage (dynamic replay). Override for other replay schemes."""
        c = self.config
        return ReplaySampler(new, old_tasks if c.replay else (), batch_size=c.batch_size,
                             new_old_ratio=c.new_old_ratio, batch_limit=limit, max_epochs=c.max_epochs,
                             seed=c.seed * 1000 + self.n_tasks * 10 + hash_stage(stage))

    def make_validation(self, valid_sets: Sequence[Sequence[Example]], sampler: ReplaySampler[Example],
                        stage: str) -> list[list[Example]]:
        n = validation_size(sampler.plan.batches_per_epoch, self.config.batch_size, self.config.valid_ratio)
        return validation_sample(valid_sets, n, seed=self.config.seed * 1000 + self.n_tasks * 10
                                 + hash_stage(stage), min_per_task=self.config.min_valid_per_task)

    def average_accuracy(self, samples: Sequence[Sequence[Example]]) -> float:
        """Mean over tasks of the accuracy of `predict` on each task's sample (empty ones skipped)."""
        accs = []
        flat = [ex for s in samples for ex in s]
        if not flat:
            return float("nan")
        preds = self.predict(flat)
        pos = 0
        for s in samples:
            if not s:
                continue
            p = preds[pos : pos + len(s)]
            pos += len(s)
            accs.append(sum(int(x.label == ex.label) for x, ex in zip(p, s, strict=True)) / len(s))
        return float(np.mean(accs))

    def run_stage(self, stage: Stage, rep: Reporter, lo: float, hi: float) -> StageStats:
        """Train `stage.module` on `stage.sampler`'s batches; validate after each epoch and keep the
        best epoch's weights, stopping early once `patience` epochs brought no better validation accuracy.
        Checks for cancellation before every batch."""
        c = self.config
        st = StageStats(stage.name, stage.module)
        t0 = time.monotonic()
        adapter = self.adapter(stage.module)
        self.pet.set_trainable(adapter)
        params = list(self.pet.module_parameters(adapter))
        for h in self.hooks:
            params.extend(h.extra_parameters(self, stage))
        params = [p for p in params if p.requires_grad]
        head = {id(p) for p in self.pet.heads[adapter].parameters()} if adapter in self.pet.heads else set()
        groups = [{"params": [p for p in params if id(p) not in head], "lr": stage.lr},
                  {"params": [p for p in params if id(p) in head], "lr": stage.lr * c.head_lr_scale}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=stage.lr, weight_decay=c.weight_decay)
        total = max(len(stage.sampler), 1)
        best: dict[int, torch.Tensor] | None = None
        losses: list[float] = []
        ema: float | None = None
        acc_ema: float | None = None
        self._training.add(stage.module)
        try:
            for epoch, batches in enumerate(stage.sampler.epochs()):
                for batch in batches:
                    rep.check_cancel()
                    loss, info = stage.loss(batch)
                    for h in self.hooks:
                        loss = h.batch_loss(self, stage, batch, loss)
                    if loss is not None and loss.requires_grad:
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        if c.grad_clip:
                            torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
                        opt.step()
                        lv = float(loss.detach())
                        losses.append(lv)
                        ema = lv if ema is None else 0.9 * ema + 0.1 * lv
                    if "acc" in info:
                        acc_ema = info["acc"] if acc_ema is None else 0.9 * acc_ema + 0.1 * info["acc"]
                    st.batches += 1
                    if st.batches % 5 == 0 or st.batches == total:
                        metrics = {"loss": ema if ema is not None else float("nan"), "batch": st.batches,
                                   "batches": total, "epoch": epoch + 1}
                        if acc_ema is not None:
                            metrics["acc"] = acc_ema
                        rep(lo + (hi - lo) * st.batches / total,
                            f"{stage.name}: batch {st.batches}/{total}, epoch {epoch + 1}", stage.name, metrics)
                st.epochs = epoch + 1
                if stage.validate is not None:
                    rep.check_cancel()
                    with torch.no_grad():
                        score = stage.validate()
                    st.valid_scores.append(score)
                    for h in self.hooks:
                        h.after_epoch(self, stage, epoch, score)
                    if best is None or score > st.best_score:
                        st.best_score, st.best_epoch = score, epoch
                        best = {id(p): p.detach().clone() for p in params}
                    rep(lo + (hi - lo) * st.batches / total,
                        f"{stage.name}: epoch {epoch + 1} validation {score:.3f}", stage.name,
                        {"valid_acc": score, "epoch": epoch + 1})
                    if c.patience is not None and epoch - st.best_epoch >= c.patience:
                        st.stopped_early = True  # no better epoch for `patience` epochs: converged
                        break
            if best is not None and st.best_epoch != st.epochs - 1:
                with torch.no_grad():
                    for p in params:
                        p.copy_(best[id(p)])
        finally:
            self._training.discard(stage.module)
            self.pet.set_trainable(None)
        st.last_loss = losses[-1] if losses else float("nan")
        st.mean_loss = float(np.mean(losses)) if losses else float("nan")
        st.seconds = time.monotonic() - t0
        return st

    # --- snapshots: a cancelled step restores the last finished task's modules --------------------

    def snapshot_module(self, name: str) -> dict[str, Any]:
        """A copy of a module's LoRA weights and head, for `restore_module`."""
        lora = self.pet.module_parameters(name)[:-2]  # LoRA tensors; the last two are the head's
        return {"lora": [(p, p.detach().clone()) for p in lora], "head": copy.deepcopy(self.pet.heads[name])}

    def restore_module(self, name: str, snap: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, saved in snap["lora"]:
                p.copy_(saved)
        self.pet.heads[name] = snap["head"]
        self.pet.set_trainable(None)

    # --- learning a task: the template ----------------------------------------------------------

    def learn_task(self, task: TaskData, history: Sequence[TaskData], sink: ProgressSink | None = None) -> StepStats:
        if task.index != self.n_tasks:
            raise ConpetError(f"task {task.index} arrives out of order: this model has learnt {self.n_tasks} task(s)")
        overlap = set(task.types) & set(self.types)
        if overlap:
            raise ConpetError(f"task {task.index} repeats types already learnt: {sorted(overlap)}")
        if not task.train:
            raise ConpetError(f"task {task.index} has no training examples")
        rep = Reporter(sink)
        stats = StepStats(task=task.index)
        f0, e0 = self.backbone_forwards, self.backbone_examples
        t0 = time.monotonic()
        state = self.begin_step(task)
        try:
            for h in self.hooks:
                h.before_step(self, task, history)
            self.train_step(task, list(history), rep, stats)
            for h in self.hooks:
                h.after_step(self, task, history, stats)
            rep.check_cancel()
        except BaseException:
            self.rollback_step(state)
            raise
        self.commit_step(state)
        self.record_learnt([*history, task] if self.new_labels == "replay" else [task])
        stats.seconds = time.monotonic() - t0
        stats.backbone_forwards = self.backbone_forwards - f0
        stats.backbone_examples = self.backbone_examples - e0
        rep(1.0, f"task {task.index + 1} learnt in {stats.seconds:.1f} s", "done")
        return stats

    # --- learning more about learnt types (conpet.methods.refresh) --------------------------------

    def record_learnt(self, tasks: Sequence[TaskData]) -> None:
        """Record that the model now reflects the training examples of `tasks`' types."""
        for task in tasks:
            for t in task.types:
                self.learnt_examples[t] = sorted(ex.input_key for ex in task.train if ex.label == t)

    def label_changes(self, tasks: Sequence[TaskData]) -> list[TaskChange]:
        """Per learnt task (`tasks`: every learnt task with its current data, in order), the training
        examples added and removed since the model learnt its types."""
        return label_changes(tasks[: self.n_tasks], self.learnt_examples)

    def refresh(self, tasks: Sequence[TaskData], sink: ProgressSink | None = None,
                retrain: Sequence[int] = ()) -> StepStats:
        """A step with no new task: learn what changed in the learnt tasks' training data (`tasks`: every
        learnt task with its current data). `retrain`: tasks whose modules must retrain whatever changed.
        A failed or cancelled refresh leaves the model as it was."""
        if self.new_labels != "refresh":
            raise ConpetError(f"{self.name} has no refresh step: it {self.new_labels_text}")
        if len(tasks) != self.n_tasks or any(tuple(t.types) != ts for t, ts in zip(tasks, self.task_types,
                                                                                  strict=False)):
            raise ConpetError(f"a refresh needs the {self.n_tasks} learnt task(s) with their types, in order")
        return self._taskless_step(sink, "refreshed",
                                   lambda rep, stats: self.refresh_step(list(tasks), sorted(set(retrain)), rep, stats))

    def refresh_step(self, tasks: list[TaskData], retrain: list[int], rep: Reporter, stats: StepStats) -> None:
        raise NotImplementedError

    # --- consolidation: an explicit step the user chooses (dynamic-lda: a new feature map on all data) ----

    def consolidate(self, tasks: Sequence[TaskData], sink: ProgressSink | None = None) -> StepStats:
        """A step with no new task that re-learns what the method shares between tasks from every learnt
        task's stored training data (`tasks`: every learnt task with its current data, in order; their
        labels must be those the model learnt: refresh first). A failed or cancelled consolidation leaves
        the model as it was."""
        if not self.consolidates:
            raise ConpetError(f"{self.name} has no consolidation step (only a statistically routed method with "
                              "an adapted feature map has: dynamic-lda)")
        if len(tasks) != self.n_tasks or any(tuple(t.types) != ts for t, ts in zip(tasks, self.task_types,
                                                                                  strict=False)):
            raise ConpetError(f"a consolidation needs the {self.n_tasks} learnt task(s) with their types, in order")
        pending = [c for c in self.label_changes(tasks) if c.changed]
        if pending:
            raise ConpetError(f"labels of task {pending[0].task + 1}'s types changed since the model learnt them: "
                              "refresh the model first (a consolidation learns no new labels)")
        return self._taskless_step(sink, "consolidated",
                                   lambda rep, stats: self.consolidate_step(list(tasks), rep, stats))

    def consolidate_step(self, tasks: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        raise NotImplementedError

    def _taskless_step(self, sink: ProgressSink | None, done: str,
                       body: Callable[[Reporter, StepStats], None]) -> StepStats:
        """A step with no new task (a refresh, a consolidation) as one unit: `body` changes the model, a failure
        or a cancel rolls all of it back, success commits it."""
        rep = Reporter(sink)
        stats = StepStats(task=-1)
        f0, e0 = self.backbone_forwards, self.backbone_examples
        t0 = time.monotonic()
        state = self.begin_step(None)
        try:
            body(rep, stats)
            rep.check_cancel()
        except BaseException:
            self.rollback_step(state)
            raise
        self.commit_step(state)
        stats.seconds = time.monotonic() - t0
        stats.backbone_forwards = self.backbone_forwards - f0
        stats.backbone_examples = self.backbone_examples - e0
        rep(1.0, f"{done} in {stats.seconds:.1f} s", "done")
        return stats

    def begin_step(self, task: TaskData | None) -> dict[str, Any]:
        """Record what a rollback needs, then add the task's types to the label space (a refresh: no task)."""
        state = {"task_types": list(self.task_types), "versions": dict(self.versions),
                 "modules": set(self.pet.module_names), "snapshots": {}, "type_kinds": dict(self.type_kinds),
                 "learnt_examples": dict(self.learnt_examples), "adapters": dict(self._adapters)}
        self._superseded = []
        if task is not None:
            self.task_types.append(tuple(task.types))
            for ex in (*task.train, *task.valid, *task.test):
                self.type_kinds.setdefault(ex.label, ex.kind)
        return state

    def bump_version(self, name: str) -> int:
        """A new version for module `name` (its weights are about to change); never one used before."""
        v = max(self.versions.get(name, 0), self._burned.get(name, 0), self.version_floor) + 1
        self.versions[name] = v
        return v

    def rollback_step(self, state: dict[str, Any]) -> None:
        """Undo a step that did not finish: restore the snapshotted modules, drop the new ones.

        Version numbers issued during the step may already key cached logits of weights that are
        now gone, so they are never reused: a restored module gets a fresh version (its cached
        logits are recomputed once), and the next step's versions start above them."""
        during = dict(self.versions)
        # a refreshed module trained under an adapter of its own: the old weights never changed
        swapped = [n for n, a in self._adapters.items() if state["adapters"].get(n, n) != a]
        self._training.clear()
        for name, snap in state["snapshots"].items():
            if self.has_module(name):
                self.restore_module(name, snap)
        for adapter in set(self.pet.module_names) - state["modules"]:
            self.pet.remove_module(adapter)
        self.task_types = state["task_types"]
        self.type_kinds = dict(state["type_kinds"])
        self.learnt_examples = dict(state["learnt_examples"])
        self._adapters = dict(state["adapters"])
        self._superseded = []
        self.versions = dict(state["versions"])
        for name, v in during.items():
            if v != self.versions.get(name):
                self._burned[name] = max(self._burned.get(name, 0), v)
                if name in self.versions:
                    self.versions[name] = v + 1
                    self._burned[name] = v + 1
        for name in swapped:  # its cached logits are still its own: keep its version (never issue v again)
            if name in state["versions"]:
                self.versions[name] = state["versions"][name]

    def commit_step(self, state: dict[str, Any]) -> None:
        """The step succeeded: drop the adapters its refreshed modules replaced."""
        mapped = {self.adapter(n) for n in self.logical_modules()}
        for adapter in self._superseded:
            if adapter not in mapped and adapter in set(self.pet.module_names):
                self.pet.remove_module(adapter)
        self._superseded = []

    def train_step(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        raise NotImplementedError

    # --- prediction: one loop for every method ---------------------------------------------------------

    def check_trained(self) -> None:
        """Refuse to predict before the first task is learnt."""
        if not self.task_types:
            raise ConpetError("this model has not learnt any task yet")

    def predict(self, examples: Sequence[Example], sink: ProgressSink | None = None) -> list[Prediction]:
        """Predictions in input order. The examples are ordered by length first (`length_order`), so that
        batches need little padding; `predict_ordered` sees them in that order."""
        self.check_trained()
        order = length_order(examples)
        out = self.predict_ordered([examples[i] for i in order], Reporter(sink))
        return unorder(order, out)

    def predict_ordered(self, examples: list[Example], rep: Reporter) -> list[Prediction]:
        """Predictions for length-ordered examples: `predict_batch` on each batch. A method that groups work
        across batches (Dynamic ConPET: the examples routed to one expert) overrides this instead."""
        out: list[Prediction] = []
        for batch in reported(self.eval_batches(examples), rep, "predicted"):
            out.extend(self.predict_batch(batch))
        return out

    def eval_batches(self, items: Sequence[Any]) -> list[list[Any]]:
        """`items` cut into prediction batches (`eval_batch_size`), in order."""
        bs = self.config.eval_batch_size
        return [list(items[i : i + bs]) for i in range(0, len(items), bs)]

    def predict_batch(self, batch: list[Example]) -> list[Prediction]:
        raise NotImplementedError

    # --- save / load --------------------------------------------------------------------------------

    def logical_modules(self) -> list[str]:
        """The modules that make up the current predictor (what save writes)."""
        raise NotImplementedError

    def cache_versions(self) -> dict[str, int]:
        """{cache module id: version} of everything the current model keeps in the logit cache: what a
        project's cache prune keeps (every other version of this model is stale)."""
        return {self.module_id(n): self.versions.get(n, 0) for n in self.logical_modules()}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def save(self, folder: str | Path) -> None:
        """Each module as PETModel.save_module (peft adapter folder + head + module.json) in a
        sub-folder named after it, and `method.json` with the method state."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = self.logical_modules()
        for name in names:
            self.pet.save_module(self.adapter(name), folder / name)
        state = {
            "format": METHOD_FORMAT, "method": self.name, "uid": self.uid,
            "backbone": getattr(self.backbone, "name", ""),
            "tasks": [list(ts) for ts in self.task_types], "modules": names,
            "type_kinds": dict(sorted(self.type_kinds.items())),
            "versions": {n: self.versions.get(n, 0) for n in names},
            "config": self.config.to_dict(), "extra": self.extra_state(),
            "learnt_examples": {t: list(ids) for t, ids in sorted(self.learnt_examples.items())},
        }
        (folder / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path, backbone: Any, cache: LogitCache | None = None) -> PETMethod:
        folder = Path(folder)
        state = read_state(folder)
        if state["method"] != cls.name and cls.name != "?":
            raise ConpetError(f"{folder}: holds a {state['method']!r} model, not {cls.name!r}")
        saved = {**{k: v for k, v in SAVED_BEFORE.items() if k not in state["config"]}, **state["config"]}
        method = cls(backbone, TrainConfig.from_dict(saved), cache=cache, uid=state["uid"])
        method.task_types = [tuple(ts) for ts in state["tasks"]]
        method.type_kinds = {str(k): str(v) for k, v in state.get("type_kinds", {}).items()}
        method.versions = {k: int(v) for k, v in state["versions"].items()}
        # a model saved before the record: its learnt types' changes are counted from its next step on
        method.learnt_examples = {str(t): [str(i) for i in ids] for t, ids in
                                  (state.get("learnt_examples") or {}).items()}
        for name in state["modules"]:
            sub = folder / name
            if not sub.is_dir():
                raise ConpetError(f"{folder}: module folder {name!r} is missing")
            method.pet.load_module(sub, method.adapter(name))
        method.load_extra_state(state.get("extra", {}))
        return method

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "uid": self.uid, "tasks": [list(t) for t in self.task_types],
                "versions": dict(self.versions)}


def reported(batches: Sequence[list[Any]], rep: Reporter, message: str, lo: float = 0.0,
             hi: float = 1.0) -> Iterator[list[Any]]:
    """The batches of a prediction pass, checking for cancellation before each and reporting the share of
    items done (mapped to [lo, hi] of the job) after it, as "<message> <done>/<total>"."""
    total, done = sum(len(b) for b in batches), 0
    for batch in batches:
        rep.check_cancel()
        yield batch
        done += len(batch)
        rep(lo + (hi - lo) * done / max(total, 1), f"{message} {done}/{total}", "evaluation")


def resolve_defaults(config: TrainConfig, method: Any) -> TrainConfig:
    """Fill the settings a config leaves to the method (None) with the method's defaults, so that a
    saved model records what it actually used."""
    changes: dict[str, Any] = {}
    if config.representation is None:
        changes["representation"] = method.default_representation
    if config.top_t is None:
        changes["top_t"] = method.default_top_t
    if config.router_layers is None:
        changes["router_layers"] = method.default_router_layers
    return config.replace(**changes) if changes else config


def read_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise ConpetError(f"{folder}: not a saved model ({STATE_FILE} is missing)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConpetError(f"{path}: unreadable ({exc})") from exc
    if state.get("format") != METHOD_FORMAT:
        raise ConpetError(f"{path}: unknown format {state.get('format')!r} (this version reads {METHOD_FORMAT})")
    return state


def length_order(examples: Sequence[Example]) -> list[int]:
    """Indices of `examples` by text length: batches of similar length need little padding
    (prediction costs about a third less than in input order). Characters stand in for tokens,
    so ordering needs no tokenisation (a fully cached prediction pass never tokenises)."""
    return sorted(range(len(examples)), key=lambda i: len(examples[i].text))


def unorder(order: Sequence[int], items: Sequence[Any]) -> list[Any]:
    """Put results computed in `order` back in input order."""
    out: list[Any] = [None] * len(order)
    for j, i in enumerate(order):
        out[i] = items[j]
    return out


def hash_stage(stage: str) -> int:
    return sum(ord(ch) * (i + 1) for i, ch in enumerate(stage)) % 997


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
