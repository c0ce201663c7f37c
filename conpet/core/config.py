"""Settings of the continual engine: frozen, keyword-only dataclasses, validated, to/from JSON.

`TrainConfig` holds everything a method needs to learn a task; `ExperimentConfig` adds what a benchmark
needs to build the task sequence (data, split, subsampling). Profiles (`smoke`, `quick`, `paper`) are
named presets made by `make_config` (`converge`: early stopping on validation accuracy).

`LoraSettings` (a PET module's LoRA) and `EncoderSettings` (the input lengths) are each setting's one
definition, with its default, help and check. TrainConfig keeps them as flat fields (``lora_rank``,
``max_length_entity``, ...: the names of the JSON files, `--set` and saved runs) made by `_setting_of`
from those definitions, and hands them on whole as `TrainConfig.lora` and `TrainConfig.encoder_settings`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from conpet.core.errors import ConpetError

PROFILES = ("smoke", "quick", "paper", "converge")
# TrainConfig settings older versions saved that mean nothing now (read and dropped).
LEGACY_SETTINGS = frozenset({"device"})
# TrainConfig settings older versions saved as None to mean "the default" (read as the default).
LEGACY_NONE = frozenset({"lora_alpha"})
# Settings added after models were saved, with the value those models were trained with (a saved model
# without the setting reads this, not today's default, so that it predicts as it did).
SAVED_BEFORE: dict[str, Any] = {"router_layers": "last", "router_readapt_types": 0}


class ConfigError(ConpetError, ValueError):
    """A setting with a value that cannot work (names the setting and the problem)."""


@dataclass(frozen=True, slots=True)
class LoraSettings:
    """LoRA hyper-parameters of a PET module (``conpet.model.modules``)."""

    rank: int = field(default=4, metadata={"help": "LoRA rank r (4 in all the paper's experiments)"})
    alpha: float = field(default=8.0, metadata={"help": "LoRA alpha; the update is scaled by alpha / rank (8: "
                                                        "peft's default; the authors' code: 1)"})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (0 in the paper's code)"})
    targets: tuple[str, ...] | None = field(
        default=None, metadata={"help": "module names LoRA adapts (None: the backbone's per-architecture targets)"})

    def __post_init__(self) -> None:
        if not _number(self.rank) or self.rank < 1:
            raise ConfigError(f"LoRA rank (lora_rank) must be at least 1, not {self.rank!r}")
        if not _number(self.alpha) or self.alpha <= 0:
            raise ConfigError(f"LoRA alpha (lora_alpha) must be positive, not {self.alpha!r}")
        if not _number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout (lora_dropout) must be in [0, 1), not {self.dropout!r}")
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(self.targets))
            if not self.targets:
                raise ConfigError("LoRA targets (lora_targets) must name at least one module (or be None)")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets) if self.targets is not None else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraSettings:
        targets = data.get("targets")
        return cls(rank=int(data["rank"]), alpha=float(data["alpha"]), dropout=float(data.get("dropout", 0.0)),
                   targets=tuple(targets) if targets else None)


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """Maximum input lengths in tokens (``conpet.model.encoding``; Table III: 256 for entity typing, 128 for
    relations)."""

    max_length_entity: int = field(default=256, metadata={"help": "token limit for entity typing inputs"})
    max_length_relation: int = field(default=128, metadata={"help": "token limit for relation inputs"})

    def __post_init__(self) -> None:
        for name in ("max_length_entity", "max_length_relation"):
            if not _number(getattr(self, name)) or getattr(self, name) < 24:  # specials, prompt, some sentence
                raise ConfigError(f"{name} must be at least 24 tokens, not {getattr(self, name)!r}")


def _number(value: Any) -> bool:
    """Whether ``value`` can be compared as a number (a None from JSON or `--set` gets a clear message)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _setting_of(cls: type, name: str) -> Any:
    """A TrainConfig field that stands for setting ``name`` of ``cls``: its default and help are that
    setting's (defined once, there); ``metadata["setting_of"]`` says where it comes from."""
    source = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    return field(default=source.default, metadata={**source.metadata, "setting_of": (cls, name)})


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How a continual method learns one task. Defaults follow the paper (Table III, FewRel)."""

    lr: float = field(default=2e-4, metadata={"help": "learning rate of the PET module being trained"})
    selector_lr: float | None = field(
        default=None, metadata={"help": "learning rate of Dynamic ConPET's selector (None: same as lr)"})
    head_lr_scale: float = field(
        default=1.0, metadata={"help": "the linear head's learning rate is lr times this (the paper: 1)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    batch_size: int = field(default=8, metadata={"help": "examples per training batch (new + old)"})
    eval_batch_size: int = field(default=32, metadata={"help": "examples per prediction batch"})
    new_old_ratio: float = field(
        default=1.0, metadata={"help": "new:old examples in a replay batch (1.0 = half new, half old)"})
    replay: bool = field(default=True, metadata={"help": "replay old tasks' data (False: sequential tuning)"})
    batch_limit: int | None = field(
        default=4000, metadata={"help": "most training batches per stage and step (None: no limit)"})
    selector_batch_limit: int | None = field(
        default=None, metadata={"help": "Dynamic ConPET iter1 cap (None: batch_limit)"})
    expert_batch_limit: int | None = field(
        default=None, metadata={"help": "Dynamic ConPET iter2 cap (None: batch_limit)"})
    max_epochs: int = field(default=10, metadata={"help": "most passes over the new task's training data"})
    valid_ratio: float = field(
        default=0.25, metadata={"help": "validation batches per training batch of an epoch (4:1 -> 0.25)"})
    min_valid_per_task: int = field(
        default=8, metadata={"help": "smallest validation sample per seen task"})
    top_t: int | None = field(
        default=None, metadata={"help": "experts active per example (t; None: the method's default, 1 for the "
                                        "paper's Dynamic ConPET)"})
    alpha: float = field(default=-100.0, metadata={"help": "logit given to the types of inactive experts"})
    expert_init: Literal["fresh", "selector"] = field(
        default="selector",
        metadata={"help": "new expert's LoRA: fresh, or a copy of the selector's (the authors' code)"})
    selector_labels: Literal["task", "type"] = field(
        default="task",
        metadata={"help": "Dynamic ConPET's selector learns task ids (the paper) or the types themselves, "
                          "a task's score being the log-sum-exp of its types' scores"})
    teacher_forcing: bool = field(
        default=True, metadata={"help": "always activate the gold task's expert while training"})
    representation: Literal["mask", "markers"] | None = field(
        default=None,
        metadata={"help": "what a module's head reads: 'mask' (the hidden state at [MASK], the paper) or "
                          "'markers' (the start markers' states and [MASK]'s, concatenated); None: the "
                          "method's default"})
    router_features: Literal["frozen", "first-task"] = field(
        default="first-task",
        metadata={"help": "statistical router's feature map: the frozen backbone, or the first task's "
                          "module frozen after that task"})
    router_layers: Literal["last", "last+middle"] | None = field(
        default=None,
        metadata={"help": "statistical router: which layers' states at the markers and [MASK] it reads, "
                          "concatenated: the last layer's, or the middle and the last layer's (one pass "
                          "either way); None: the method's default"})
    router_readapt_types: int = field(
        default=0,
        metadata={"help": "statistical router: while the tasks learnt so far have at most this many types, "
                          "re-train the feature map at each step on all their stored training data and "
                          "recompute the router's statistics through it (then it freezes); 0: adapt on the "
                          "first task only"})
    router_shrinkage: float = field(
        default=0.3, metadata={"help": "statistical router: covariance shrinkage s towards tr(S)/d * I (0.3: "
                                       "with 6 x hidden features and tens of examples per type)"})
    router_normalize: bool = field(
        default=True, metadata={"help": "statistical router: scale each position's hidden state to unit length "
                                        "before the statistics (no position dominates by its norm)"})
    router_calibrate: bool = field(
        default=False,
        metadata={"help": "statistical router: after each step choose t (1-3) and the expert weight w (0, 1, 3, 10, "
                          "30) on the seen tasks' validation data instead of top_t and router_weight"})
    router_energy: float = field(
        default=0.0, metadata={"help": "statistical router: weight of each active expert's standardised energy (the "
                                       "log-sum-exp of its logits, z-scored on its own task's validation data) added "
                                       "to its types' scores, so that with t > 1 the experts also vote on the task; "
                                       "0: off"})
    router_weight: float = field(
        default=1.0, metadata={"help": "statistical router: weight w of the expert's within-task log-softmax "
                                       "added to the router's log p(type)"})
    refresh_share: float | None = field(
        default=0.5,
        metadata={"help": "refresh: an expert retrains on its task's current data once the training examples added "
                          "to or removed from its task since it was trained exceed this share of those it was "
                          "trained on (0: any change; None: never, the router alone follows new labels)"})
    refresh_map: Literal["keep", "recompute"] = field(
        default="recompute",
        metadata={"help": "statistical router, when the first task's expert (the feature map) retrains: recompute "
                          "every type's statistics through the new expert (one feature pass over all stored "
                          "training data; on fewrel80 +2.4 W over keeping the map, docs/results/refresh-feature-map), "
                          "or keep the old expert as a frozen feature map of its own (statistics stay valid, no "
                          "extra pass)"})
    lora_rank: int = _setting_of(LoraSettings, "rank")
    lora_alpha: float = _setting_of(LoraSettings, "alpha")
    lora_dropout: float = _setting_of(LoraSettings, "dropout")
    lora_targets: tuple[str, ...] | None = _setting_of(LoraSettings, "targets")
    max_length_entity: int = _setting_of(EncoderSettings, "max_length_entity")
    max_length_relation: int = _setting_of(EncoderSettings, "max_length_relation")
    grad_clip: float | None = field(default=1.0, metadata={"help": "gradient norm clip (None: off)"})
    memory_per_type: int = field(
        default=50, metadata={"help": "limited-memory baselines (EMR, EA-EMR, CRL): memorised examples per type"})
    seed: int = field(default=1, metadata={"help": "seed of sampling and initialisation"})
    patience: int | None = field(
        default=None, metadata={"help": "early stopping: a stage stops once its validation accuracy has not risen "
                                        "for this many epochs (the best epoch's weights are kept; None: run "
                                        "every epoch)"})
    # No device here: a model runs where its loaded backbone is (a project trained on a GPU continues on a
    # CPU-only machine and back). Settings saved with a "device" still load (LEGACY_SETTINGS).

    def __post_init__(self) -> None:
        _positive(self, "lr", "batch_size", "eval_batch_size", "max_epochs")
        if self.selector_lr is not None and self.selector_lr <= 0:
            raise ConfigError("selector_lr must be positive")
        if self.head_lr_scale <= 0:
            raise ConfigError("head_lr_scale must be positive")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay must not be negative")
        if self.new_old_ratio <= 0:
            raise ConfigError("new_old_ratio must be positive")
        for name in ("batch_limit", "selector_batch_limit", "expert_batch_limit"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1 or None")
        if not 0 < self.valid_ratio <= 10:
            raise ConfigError("valid_ratio must be in (0, 10]")
        if self.top_t is not None and self.top_t < 1:
            raise ConfigError("top_t must be at least 1")
        if self.representation not in (None, "mask", "markers"):
            raise ConfigError("representation must be 'mask' or 'markers'")
        if self.router_features not in ("frozen", "first-task"):
            raise ConfigError("router_features must be 'frozen' or 'first-task'")
        if self.router_layers not in (None, "last", "last+middle"):
            raise ConfigError("router_layers must be 'last' or 'last+middle'")
        if self.router_readapt_types < 0:
            raise ConfigError("router_readapt_types must not be negative (0: adapt on the first task only)")
        if not 0.0 < self.router_shrinkage <= 1.0:  # 0: a singular covariance with fewer examples than dimensions
            raise ConfigError(f"router_shrinkage must be in (0, 1], not {self.router_shrinkage!r} (0 leaves the "
                              "router's covariance singular when there are fewer examples than feature dimensions)")
        if self.router_weight < 0:
            raise ConfigError("router_weight must not be negative")
        if self.router_energy < 0:
            raise ConfigError("router_energy must not be negative")
        if self.refresh_share is not None and self.refresh_share < 0:
            raise ConfigError("refresh_share must not be negative (None: experts never refresh)")
        if self.refresh_map not in ("keep", "recompute"):
            raise ConfigError("refresh_map must be 'keep' or 'recompute'")
        if self.memory_per_type < 1:
            raise ConfigError("memory_per_type must be at least 1")
        if self.expert_init not in ("fresh", "selector"):
            raise ConfigError("expert_init must be 'fresh' or 'selector'")
        if self.selector_labels not in ("task", "type"):
            raise ConfigError("selector_labels must be 'task' or 'type'")
        if self.batch_size < 2 and self.replay:
            raise ConfigError("batch_size must be at least 2 to mix new and old examples")
        if self.patience is not None and self.patience < 1:
            raise ConfigError("patience must be at least 1 or None")
        if self.lora_targets is not None:
            object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        for cls in (LoraSettings, EncoderSettings):  # checked where they are defined (names the setting)
            self._settings_of(cls)

    @property
    def lora(self) -> LoraSettings:
        """The LoRA settings of the modules this config trains."""
        return self._settings_of(LoraSettings)

    @property
    def encoder_settings(self) -> EncoderSettings:
        """The input lengths of the examples this config trains on and predicts."""
        return self._settings_of(EncoderSettings)

    def _settings_of(self, cls: type) -> Any:
        sources = {f.name: f.metadata.get("setting_of") for f in fields(self)}
        return cls(**{src[1]: getattr(self, name) for name, src in sources.items() if src and src[0] is cls})

    @property
    def iter1_limit(self) -> int | None:
        return self.selector_batch_limit if self.selector_batch_limit is not None else self.batch_limit

    @property
    def iter2_limit(self) -> int | None:
        return self.expert_batch_limit if self.expert_batch_limit is not None else self.batch_limit

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, {k: v for k, v in data.items()
                                if k not in LEGACY_SETTINGS and not (k in LEGACY_NONE and v is None)})


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A benchmark run: the data, its task split and subsampling, and the training settings."""

    profile: str = field(default="custom", metadata={"help": "preset this came from"})
    data: str = field(default="fewrel16", metadata={"help": "data set name or path"})
    backbone: str = field(default="minilm", metadata={"help": "backbone name or path"})
    n_tasks: int = field(default=4, metadata={"help": "tasks the types are split into (random split)"})
    split: Literal["random", "group"] = field(
        default="random", metadata={"help": "random type clusters, or one task per example group"})
    max_train_per_type: int | None = field(
        default=None, metadata={"help": "subsample training examples per type (None: all)"})
    max_valid_per_type: int | None = field(default=None, metadata={"help": "subsample validation examples"})
    max_test_per_type: int | None = field(default=None, metadata={"help": "subsample test examples"})
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.n_tasks < 1:
            raise ConfigError("n_tasks must be at least 1")
        if self.split not in ("random", "group"):
            raise ConfigError("split must be 'random' or 'group'")
        for name in ("max_train_per_type", "max_valid_per_type", "max_test_per_type"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1 or None")

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        data = dict(data)
        train = TrainConfig.from_dict(data.pop("train", {}))
        return _from_dict(cls, {**data, "train": train})


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{name} must be positive, not {getattr(obj, name)!r}")


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = _to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return dict(sorted(out.items()))


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) for {cls.__name__}: {', '.join(unknown)}")
    return cls(**data)


def save_json(config: TrainConfig | ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


# Table III of the paper (batch size 8, weight decay 0.01 everywhere).
TABLE_III: dict[str, dict[str, Any]] = {
    "fewnerd": dict(lr_static=2e-5, lr_dynamic=1e-4, batch_limit=25_000, max_epochs=10, max_len=256),
    "ontonotes": dict(lr_static=1e-4, lr_dynamic=1e-4, batch_limit=12_500, max_epochs=10, max_len=256),
    "bbn": dict(lr_static=2e-4, lr_dynamic=2e-4, batch_limit=5_000, max_epochs=10, max_len=256),
    "fewrel": dict(lr_static=2e-4, lr_dynamic=2e-4, batch_limit=4_000, max_epochs=10, max_len=128),
    "tacred": dict(lr_static=5e-4, lr_dynamic=5e-4, batch_limit=2_000, max_epochs=20, max_len=128),
    "ace": dict(lr_static=5e-4, lr_dynamic=5e-4, batch_limit=2_000, max_epochs=20, max_len=128),
}

# The `converge` profile: at most this many epochs, stopping after this many without a better validation accuracy.
CONVERGE_MAX_EPOCHS = 30
CONVERGE_PATIENCE = 3

# The names (and spellings) of the paper's data sets; a file is recognised by its name or a word of it.
DATASET_NAMES: dict[str, str] = {
    "fewrel": "fewrel", "fewrel80": "fewrel", "fewrel16": "fewrel",
    "fewnerd": "fewnerd", "few-nerd": "fewnerd",
    "ontonotes": "ontonotes", "ontonotes5": "ontonotes",
    "bbn": "bbn", "tacred": "tacred",
    "ace": "ace", "ace05": "ace", "ace2005": "ace",
}


def dataset_name(data: str) -> str | None:
    """The paper's data set that ``data`` (a name or a file path) is, matched exactly: the whole name, its
    stem, or one word of the stem (split at ``_ - .`` and spaces), so ``/data/tacred_train.json`` is TACRED
    while ``surface_relations.jsonl`` is none (a substring match made it ACE). None: not one of them."""
    name = Path(str(data)).name.lower()
    stem = name.split(".", 1)[0]
    for key in (name, stem, *re.split(r"[_\-. ]+", stem)):
        if key in DATASET_NAMES:
            return DATASET_NAMES[key]
    return None


def _table_iii_row(data: str) -> dict[str, Any]:
    return TABLE_III[dataset_name(data) or "fewrel"]


def _default_tasks(data: str) -> int:
    key = Path(str(data)).name.lower()
    if key == "fewrel16":
        return 4
    if dataset_name(data) == "ace":
        return 5
    return 10


def profile_train(profile: str, *, data: str = "fewrel16", dynamic: bool = True, seed: int = 1) -> TrainConfig:
    """How ``profile`` trains (see ``make_config``), without the experiment around it: what a project's
    training uses directly (the data caps and the baselines' memory are the experiment's). ``dynamic``: for a
    method of the dynamic family (the method class's ``dynamic_family``), which Table III gives its own
    learning rate."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = TrainConfig(seed=seed)
    if profile == "paper":
        row = _table_iii_row(data)
        return base.replace(lr=row["lr_dynamic"] if dynamic else row["lr_static"],
                            batch_limit=row["batch_limit"], max_epochs=row["max_epochs"])
    if profile == "converge":  # no batch limit: epochs until validation accuracy stops rising
        return base.replace(lr=2e-3, head_lr_scale=5.0, batch_limit=None, max_epochs=CONVERGE_MAX_EPOCHS,
                            patience=CONVERGE_PATIENCE, min_valid_per_task=8)
    batch_limit = 400 if profile == "quick" else 100
    return base.replace(lr=2e-3, head_lr_scale=5.0, batch_limit=batch_limit, max_epochs=2, min_valid_per_task=8)


def make_config(profile: str, *, data: str = "fewrel16", backbone: str = "minilm", dynamic: bool = True,
                seed: int = 1, n_tasks: int | None = None, **train_overrides: Any) -> ExperimentConfig:
    """The preset `profile` for a data set and a method of the dynamic family or not (`dynamic`).

    - `paper`: Table III's settings, all data.
    - `quick`: fewrel80 on minilm in a few minutes per (method, seed) on one free CPU core: at most 32
      training and 10 validation examples per type (all test examples), 2 epochs, learning rate 2e-3 with
      5x that for the linear head (a 22M encoder with ~130 batches per step, not LLaMA-7B with
      thousands: on fewrel80 task 1 this reaches 75% test accuracy where Table III's 2e-4 stays near chance).
    - `smoke`: a minute or two on fewrel16: 16 training examples per type, 2 epochs.
    - `converge`: all data, no batch limit, up to 30 epochs with early stopping on validation accuracy
      (patience 3 epochs, the best epoch's weights kept): what a project trains with when time is not short.
    """
    train = profile_train(profile, data=data, dynamic=dynamic, seed=seed)
    tasks = n_tasks or _default_tasks(data)
    if profile in ("paper", "converge"):
        exp = ExperimentConfig(profile=profile, data=data, backbone=backbone, n_tasks=tasks, train=train)
    elif profile == "quick":
        exp = ExperimentConfig(profile=profile, data=data, backbone=backbone, n_tasks=tasks,
                               max_train_per_type=32, max_valid_per_type=10, max_test_per_type=None, train=train)
    else:
        exp = ExperimentConfig(profile=profile, data=data, backbone=backbone, n_tasks=tasks,
                               max_train_per_type=16, max_valid_per_type=8, max_test_per_type=25, train=train)
    exp = exp.replace(train=exp.train.replace(memory_per_type=default_memory_per_type(data, exp.max_train_per_type)))
    if train_overrides:
        exp = exp.replace(train=exp.train.replace(**train_overrides))
    return exp


# Table III: memory examples per type of the limited-memory baselines.
MEMORY_PER_TYPE: dict[str, int] = {"fewnerd": 100, "ontonotes": 100, "bbn": 50, "fewrel": 50, "tacred": 20,
                                   "ace": 20}
# Training examples per type in the paper's versions of the data sets (rough; used only to keep the
# memory's share of the data when a profile caps examples per type). FewRel: 700 per relation, 8:1:1.
# Few-NERD supervised: about 340k training mentions over 66 types.
PAPER_TRAIN_PER_TYPE: dict[str, int] = {"fewnerd": 5000, "ontonotes": 3000, "bbn": 2000, "fewrel": 560,
                                        "tacred": 1000, "ace": 500}


def _data_key(data: str) -> str:
    return dataset_name(data) or "fewrel"


def default_memory_per_type(data: str, max_train_per_type: int | None = None) -> int:
    """Memory examples per type for a data set: Table III's value, or, when at most
    `max_train_per_type` training examples per type are used, the same share of them
    (at least 1). E.g. FewRel 50 of 560 -> 4 of the quick profile's 40, 1 of the smoke profile's 16."""
    key = _data_key(data)
    size = MEMORY_PER_TYPE[key]
    if max_train_per_type is None:
        return size
    return max(1, min(size, round(max_train_per_type * size / PAPER_TRAIN_PER_TYPE[key])))
