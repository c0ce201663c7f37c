"""Dynamic ConPET routed by a statistical router (ours): one expert per task, as in the paper, but the
trained selector is replaced by per-type Gaussian statistics over a fixed feature map (`conpet.methods.router`).

Step k:
1. Expert k (a PET module over task k's types) trains on task k's data with cross-entropy over its own
   types. Nothing else trains: old experts and the router's old statistics never change, so nothing
   is forgotten by drift. (Step 1's expert is initialised fresh; later ones from the feature map's LoRA,
   `expert_init="selector"` standing for "the routing module's weights" as in the authors' code.)
2. The router adds task k's types: their means and scatter over the feature map's features of task k's
   training data (one feature pass over the new data; old data is never revisited).

The feature map (`router_features`) is either the frozen backbone, or expert 0 after step 1
("adapt once, then freeze": the first task's LoRA shapes the space, then it never moves). Features
are the hidden states at the start markers and `[MASK]` (3 x hidden) of the last layer, and by default
(`router_layers="last+middle"`) also of the middle layer (6 x hidden, from the same pass: on fewrel80,
seeds 1 and 2, +2.3 / +2.6 class accuracy offline over the last layer alone). With the first-task map the
feature pass also gives expert 0's logits, so routing costs no pass of its own when expert 0 is active.

Prediction for an example: the router's log p(type | x) over all seen types; a task's score is the
log-sum-exp of its types'; the top-t tasks are active; a type y of an active task j scores
`log p(y | x) + w * log_softmax(expert_j(x))[y]`; inactive tasks' types are out (probability 0).

New labels of learnt types (data-incremental; `conpet.methods.refresh`): a refresh step (`refresh`, with or
without a new task after it) downdates the router's statistics by the training examples that left a type
(features from the cache) and merges those that joined it (one feature pass each), so they equal the batch
statistics of the current labels; an expert whose task's training data changed by more than
`refresh_share` of what it was trained on (or that the caller names) retrains as a new version beside the
old one, which goes only when the step commits. When that expert is the feature map (expert 0), every
statistic is recomputed through the new expert (`refresh_map="recompute"`, the default: one feature pass over
the stored training data; on fewrel80 +2.4 W over keeping the map, docs/results/refresh-feature-map) or the
old weights stay as a frozen module `feature_map` of their own (`"keep"`: every statistic and cached feature
stays valid, no extra pass).

`lda-frozen` and `lda-adapted` are the training-free rows (no experts; the router alone predicts):
what a closed-form classifier gets on the same split, beside every continual method.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from conpet.core.errors import ConpetError
from conpet.core.protocols import Reporter
from conpet.data.example import Example
from conpet.data.tasks import TaskData
from conpet.methods.base import PETMethod, Prediction, Stage, StepStats, length_order, softmax
from conpet.methods.refresh import TaskChange
from conpet.methods.registry import register_method
from conpet.methods.router import ROUTER_FILE, GaussianRouter
from conpet.methods.training_report import (
    readapts_map,  # one rule for a step's re-adaptation and its work plan
)
from conpet.model.representations import FEATURE_LAYERS, REPRESENTATIONS

FEATURES = "features"
MAP_PREFIX = "feature_map_"  # a re-adapted feature map: feature_map_<step> (router_readapt_types)
KEPT_MAP = "feature_map"  # expert 0's weights kept as the feature map when expert 0 itself is refreshed
CONSOLIDATED_MAP = "consolidated_map"  # the feature map a consolidation trained on every stored example
CALIBRATION_WEIGHTS = (0.0, 1.0, 3.0, 10.0, 30.0)  # w: from the router alone to the experts deciding  # logical module id of the feature map's cached features


class ScoredBatch:
    """One prediction batch: the router's per-type log-posterior, the active tasks and the combined scores."""

    def __init__(self, log_post: np.ndarray, task_scores: np.ndarray, active: list[list[int]],
                 combined: np.ndarray, own: dict[int, np.ndarray]) -> None:
        self.log_post = log_post  # [B, types] in the method's type order
        self.task_scores = task_scores  # [B, tasks]
        self.active = active  # per example, active tasks best first
        self.combined = combined  # [B, types], -inf outside the active tasks
        self.own = own  # task j -> [B, |S_j|] expert softmax (rows of examples where j is active)


@register_method("dynamic-lda", aliases=("lda-router", "conpet-lda"))
class RoutedByStatistics(PETMethod):
    name: ClassVar[str] = "dynamic-lda"
    description: ClassVar[str] = ("one expert per task, routed by per-type Gaussian statistics (LDA) over the "
                                  "first task's frozen module; nothing old retrains")
    default_representation: ClassVar[str] = "markers"
    default_top_t: ClassVar[int] = 1
    default_router_layers: ClassVar[str] = "last+middle"
    use_selector: ClassVar[bool] = True  # it routes (the runner then measures oracle routing)
    use_experts: ClassVar[bool] = True  # False: the router alone predicts (training-free rows)
    features_from: ClassVar[str | None] = None  # a subclass may fix the feature map
    dynamic_family: ClassVar[bool] = True
    routed_by_statistics: ClassVar[bool] = True
    in_projects: ClassVar[bool] = True
    new_labels: ClassVar[str] = "refresh"
    consolidates: ClassVar[bool] = True  # a new feature map on every stored example (`consolidate_step`)
    new_labels_text: ClassVar[str] = (
        "learns labels added to, removed from or corrected in learnt types at its next training, with or without "
        "a new task: the router's statistics follow the current labels exactly (merge and downdate), and an "
        "expert whose task's training data changed by more than refresh_share retrains")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.features_from is not None:
            self.config = self.config.replace(router_features=self.features_from)
        self.router: GaussianRouter | None = None
        self.chosen: dict[str, float] = {}  # t and w picked on validation data (router_calibrate)
        self.energy: dict[int, tuple[float, float]] = {}  # task -> its expert's energy mean, std on own data
        self.map_name: str | None = None  # the re-adapted feature map's module (router_readapt_types > 0)
        # the kept map's features are still those of expert 0 at the version it had: (name, version)
        self.map_key: tuple[str, int] | None = None
        self.expert_examples: dict[int, list[str]] = {}  # task -> ids of the examples its expert trained on

    @staticmethod
    def expert(j: int) -> str:
        return f"expert_{j}"

    @property
    def readapts(self) -> bool:
        """Whether the feature map is a module of its own, re-trained on stored data while types are few."""
        return self.config.router_readapt_types > 0 and self.config.router_features == "first-task"

    @property
    def feature_map(self) -> str | None:
        """The module whose adapter computes features (None: the frozen backbone): expert 0, or the
        latest re-adapted map."""
        if self.config.router_features != "first-task":
            return None
        return self.map_name if (self.readapts or self.map_name) else self.expert(0)

    def readapts_at(self, task: TaskData) -> bool:
        """Whether this step re-trains the feature map: the first step always, later ones while the types
        learnt so far (the new task's included) are at most `router_readapt_types`."""
        return readapts_map(self.name, self.config, len(self.types), task.index > 0)

    @property
    def feature_layers(self) -> tuple[str, ...]:
        """The layers whose marker and [MASK] states make the features, final layer last."""
        return FEATURE_LAYERS[self.config.router_layers or "last"]

    @property
    def feature_blocks(self) -> int:
        """Hidden-state vectors per example's features (3 positions per layer)."""
        return REPRESENTATIONS["markers"] * len(self.feature_layers)

    @property
    def feature_dim(self) -> int:
        return self.backbone.hidden_size * self.feature_blocks

    def logical_modules(self) -> list[str]:
        experts = [self.expert(j) for j in range(self.n_tasks)] if self.use_experts else []
        if self.readapts or (self.use_experts and self.map_name):
            return experts + ([self.map_name] if self.map_name else [])
        if self.use_experts:
            return experts
        return [self.feature_map] if self.feature_map and self.n_tasks else []

    # --- features ------------------------------------------------------------------------------------

    def features_id(self) -> str:
        """The cache's module id of the features: one per feature map and layer choice (the backbone's
        differ from expert 0's, one layer's from two)."""
        layers = "" if self.feature_layers == ("last",) else "-" + "+".join(self.feature_layers)
        source = self.map_key[0] if self.map_key else (self.feature_map or "backbone")
        return self.module_id(f"{FEATURES}-{source}{layers}")

    def cache_versions(self) -> dict[str, int]:
        return {**super().cache_versions(), self.features_id(): self.feature_version()} if self.n_tasks else {}

    def feature_version(self) -> int:
        """Features are cached under the feature map's version: a changed map never hits old entries."""
        if self.map_key:
            return self.map_key[1]
        return self.versions.get(self.feature_map, 0) if self.feature_map else 1

    def features(self, examples: Sequence[Example]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """[N, 3H] features of the frozen feature map (cached like logits), and, for the rows computed
        now with the first-task map, expert 0's logits from the same pass ({row: logits})."""
        n = len(examples)
        out = np.zeros((n, self.feature_dim), dtype=np.float32)
        if n == 0:
            return out, {}
        mid, ver = self.features_id(), self.feature_version()
        keys = [(ex.input_key, mid, ver) for ex in examples]
        cacheable = self.cache is not None and (self.feature_map is None or self.is_frozen(self.feature_map))
        hits = self.cache.get_many(keys) if cacheable else {}
        miss = [i for i, k in enumerate(keys) if k not in hits]
        for i, k in enumerate(keys):
            if k in hits:
                out[i] = hits[k]
        side: dict[int, np.ndarray] = {}
        bs = self.config.eval_batch_size
        for s in range(0, len(miss), bs):
            rows = miss[s : s + bs]
            feats, logits = self._feature_pass([examples[i] for i in rows])
            out[rows] = feats
            if logits is not None:
                side.update({i: logits[j] for j, i in enumerate(rows)})
            if cacheable:
                self.cache.put_many({keys[i]: feats[j] for j, i in enumerate(rows)})
                if logits is not None and self.feature_map is not None:  # expert 0's logits came with them
                    fm_id, fm_ver = self.module_id(self.feature_map), self.versions.get(self.feature_map, 0)
                    self.cache.put_many({(examples[i].input_key, fm_id, fm_ver): logits[j] for j, i in enumerate(rows)})
        return out, side

    def _feature_pass(self, examples: list[Example]) -> tuple[np.ndarray, np.ndarray | None]:
        self.backbone_forwards += 1
        self.backbone_examples += len(examples)
        batch = self.encode(examples)
        fm = self.feature_map
        with torch.no_grad():
            if fm is None or not self.has_module(fm):
                return self.pet.hidden(batch, None, "markers", self.feature_layers).cpu().numpy(), None
            feats = self.pet.hidden(batch, self.adapter(fm), "markers", self.feature_layers)
            shares = self.use_experts and fm == self.expert(0)  # the map is expert 0: its logits come along
            logits = self.pet.head_logits(self.adapter(fm), feats) if shares else None
        return feats.cpu().numpy(), (logits.cpu().numpy() if logits is not None else None)

    # --- training ------------------------------------------------------------------------------------

    def begin_step(self, task: TaskData | None) -> dict[str, Any]:
        state = super().begin_step(task)
        state["router"] = copy.deepcopy(self.router)
        state["chosen"] = dict(self.chosen)
        state["energy"] = dict(self.energy)
        state["map_name"] = self.map_name
        state["map_key"] = self.map_key
        state["expert_examples"] = dict(self.expert_examples)
        return state

    def commit_step(self, state: dict[str, Any]) -> None:
        super().commit_step(state)
        old = state["map_name"]
        if old and old != self.map_name:  # a re-adapted or consolidated map replaces the one before
            self.remove_module(old)
            self.versions.pop(old, None)
            self._adapters.pop(old, None)

    def rollback_step(self, state: dict[str, Any]) -> None:
        super().rollback_step(state)
        self.router = state["router"]
        self.chosen = state["chosen"]
        self.energy = state["energy"]
        self.map_name = state["map_name"]
        self.map_key = state["map_key"]
        self.expert_examples = state["expert_examples"]

    def train_step(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        k = task.index
        missing = sorted(set(task.types) - {ex.label for ex in task.train})
        if missing:
            raise ConpetError(f"task {k + 1}: no training examples of {', '.join(missing)}: the router "
                              "needs at least one example of every type")
        readapt = self.readapts_at(task)
        lo = 0.0
        if readapt:
            lo = 0.45 if self.use_experts else 0.9
            self.adapt_feature_map(task, history, rep, stats, hi=lo)
        trains_expert = self.use_experts or (k == 0 and self.feature_map is not None and not self.readapts)
        if trains_expert:
            self.train_expert(task, rep, stats, lo=lo, hi=0.9)
        # A new map needs every stored example's statistics again, through it; else only the new types'.
        rep(0.9, "router: statistics of every learnt type through the new feature map" if readapt
            else "router: statistics of the new types", "router")
        if readapt or self.router is None:
            self.router = GaussianRouter(self.feature_dim, self.config.router_shrinkage)
        for source in ([*history, task] if readapt else [task]):
            feats, _ = self.features(source.train)
            self.router.update(self.router_input(feats), [ex.label for ex in source.train])
        if readapt:  # every learnt type's statistics now reflect its current examples
            self.record_learnt(history)
        if self.config.router_calibrate and self.use_experts:
            rep(0.95, "router: choosing t and w on validation data", "router")
            stats.extra["calibration"] = dict(self.calibrate([t.valid for t in [*history, task]]))

    def adapt_feature_map(self, task: TaskData, history: Sequence[TaskData], rep: Reporter, stats: StepStats,
                          hi: float) -> None:
        """A new feature map trained from scratch on every learnt task's stored training data (the project
        keeps them all), cross-entropy over every learnt type; it replaces the old map when the step ends."""
        c = self.config
        seen = [*history, task]
        missing = sorted({t for s in seen for t in s.types} - {ex.label for s in seen for ex in s.train})
        if missing:
            raise ConpetError(f"re-adapting the feature map: no stored training examples of {', '.join(missing)}")
        name = f"{MAP_PREFIX}{task.index + 1}"
        self.add_module(name, len(self.types))
        self.bump_version(name)
        index = self.type_index()
        train = [ex for s in seen for ex in s.train]
        sampler = self.make_sampler("feature-map", train, [], c.iter2_limit)
        valid = [ex for v in self.make_validation([list(s.valid) for s in seen], sampler, "feature-map") for ex in v]
        valid = valid or train
        self.map_name = name  # the rest of the step reads features through it
        stage = self.cross_entropy_stage("feature-map", name, index, sampler, valid)
        stats.stages.append(self.run_stage(stage, rep, 0.0, hi))

    def train_expert(self, task: TaskData, rep: Reporter, stats: StepStats, hi: float, lo: float = 0.0) -> None:
        """Expert k on task k's data alone: cross-entropy over its own types."""
        c = self.config
        k = task.index
        name = self.expert(k)
        init_ok = self.feature_map is not None and (k > 0 or self.readapts)  # a map exists before this expert
        init = self.feature_map if (init_ok and c.expert_init == "selector") else None
        self.add_module(name, len(task.types), init_from=init)
        self.bump_version(name)
        self.fit_expert(task, rep, stats, lo, hi)

    def fit_expert(self, task: TaskData, rep: Reporter, stats: StepStats, lo: float, hi: float) -> None:
        """Train expert `task.index` (already added, at a new version) on the task's training data."""
        c = self.config
        k = task.index
        name = self.expert(k)
        self.expert_examples[k] = sorted(ex.id for ex in task.train)
        local = {t: i for i, t in enumerate(task.types)}
        sampler = self.make_sampler("expert", task.train, [], c.iter2_limit)
        valid = self.make_validation([list(task.valid)], sampler, "expert")[0] or list(task.train)
        stats.stages.append(self.run_stage(self.cross_entropy_stage("expert", name, local, sampler, valid), rep, lo, hi))
        if c.router_energy > 0:  # on held-out data: on its training data an expert's energy runs high
            self.energy[k] = self.energy_statistics(k, list(task.valid) or list(task.train))

    # --- refresh: new labels of learnt types ---------------------------------------------------------

    def expert_change(self, task: TaskData) -> float:
        """Training examples added to or removed from task k since its expert trained, per example it trained
        on (a model saved before the record: since the router last learnt the task's types)."""
        trained = self.expert_examples.get(task.index)  # example ids: a relabel within the task counts
        if trained is None:  # the router's record is by input key, per type
            before = {i for t in task.types for i in self.learnt_examples.get(t, ())}
            now = {ex.input_key for ex in task.train}
        else:
            before, now = set(trained), {ex.id for ex in task.train}
        changed = len(before ^ now)
        return changed / len(before) if before else float(changed > 0)

    def experts_to_refresh(self, tasks: Sequence[TaskData], forced: Sequence[int] = ()) -> list[int]:
        """The experts a refresh retrains: those whose task's data changed by more than `refresh_share`, and
        `forced` (none without experts)."""
        if not self.use_experts:
            return []
        share = self.config.refresh_share
        auto = [] if share is None else [t.index for t in tasks[: self.n_tasks] if self.expert_change(t) > share]
        return sorted({*auto, *forced})

    def refresh_step(self, tasks: list[TaskData], retrain: list[int], rep: Reporter, stats: StepStats) -> None:
        changes = self.label_changes(tasks)
        bad = [j for j in retrain if not 0 <= j < self.n_tasks]
        if bad:
            raise ConpetError(f"cannot refresh task {bad[0] + 1}: the model has learnt {self.n_tasks} task(s)")
        experts = self.experts_to_refresh(tasks, retrain)
        recompute = False
        for pos, j in enumerate(experts):
            if j == 0 and self.feature_map == self.expert(0):
                if self.config.refresh_map == "keep":
                    self.keep_feature_map()
                else:
                    recompute = True
            lo, hi = 0.85 * pos / len(experts), 0.85 * (pos + 1) / len(experts)
            rep(lo, f"expert {j + 1}: retraining on its task's {len(tasks[j].train)} current examples", "expert")
            self.retrain_expert(tasks[j], rep, stats, lo, hi)
        rep(0.85, "router: statistics of the changed labels", "router")
        how = self.rebuild_router(tasks) if recompute else self.update_statistics(tasks, changes)
        self.record_learnt(tasks)
        stats.extra["refresh"] = {"added": sum(len(c.added) for c in changes),
                                  "removed": sum(len(c.removed) for c in changes),
                                  "experts": [j + 1 for j in experts], "router": how}
        if self.config.router_calibrate and self.use_experts:
            rep(0.95, "router: choosing t and w on validation data", "router")
            stats.extra["calibration"] = dict(self.calibrate([t.valid for t in tasks]))

    # --- consolidation: a new feature map on every stored example (conpet train --consolidate) ----------

    def consolidate_step(self, tasks: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        """A feature map trained from scratch on every learnt task's stored training data (cross-entropy over
        every learnt type, as `router_readapt_types` does at a step), then every type's statistics recomputed
        through it. The experts stay as they are (their cached logits stay valid); new experts start from the
        new map. The new map trains beside the old one, which goes only when the step commits."""
        if self.config.router_features != "first-task":
            raise ConpetError(f"the feature map of this {self.name} model is the frozen backbone "
                              f"(router_features={self.config.router_features!r}): there is nothing to consolidate")
        missing = sorted({t for s in tasks for t in s.types} - {ex.label for s in tasks for ex in s.train})
        if missing:
            raise ConpetError(f"consolidating: no stored training examples of {', '.join(missing)}")
        name = CONSOLIDATED_MAP
        old = self.map_name
        if self.has_module(name):  # an earlier consolidation's map: replaced, not retrained in place
            self._superseded.append(self.adapter(name))
        if old and old != name and self.has_module(old):  # a re-adapted or kept map: no longer read
            self._superseded.append(self.adapter(old))
        version = self.bump_version(name)
        self._adapters[name] = f"{name}-v{version}"
        self.add_module(name, len(self.types))
        train = [ex for s in tasks for ex in s.train]
        sampler = self.make_sampler("consolidate", train, [], self.config.iter2_limit)
        valid = [ex for v in self.make_validation([list(s.valid) for s in tasks], sampler, "consolidate")
                 for ex in v] or train
        self.map_name, self.map_key = name, None  # the rest of the step reads features through it
        rep(0.0, f"feature map: training on the {len(train)} stored training examples of all "
                 f"{len(self.types)} learnt types", "feature-map")
        stage = self.cross_entropy_stage("feature-map", name, self.type_index(), sampler, valid)
        stats.stages.append(self.run_stage(stage, rep, 0.0, 0.8))
        rep(0.8, f"router: statistics of every learnt type through the new feature map ({len(train)} examples)",
            "router")
        self.rebuild_router(tasks)
        stats.extra["consolidate"] = {"examples": len(train), "types": len(self.types), "map": name,
                                      "replaced": old or self.expert(0)}
        if self.config.router_calibrate and self.use_experts:
            rep(0.95, "router: choosing t and w on validation data", "router")
            stats.extra["calibration"] = dict(self.calibrate([t.valid for t in tasks]))

    def keep_feature_map(self) -> None:
        """Expert 0 is about to retrain: its current weights stay, frozen, as the feature map (a module of their
        own), so that every statistic and every cached feature stays valid."""
        name = self.expert(0)
        self._adapters[KEPT_MAP] = self.adapter(name)
        self.versions[KEPT_MAP] = self.versions.get(name, 0)
        self.map_key = self.map_key or (name, self.versions.get(name, 0))
        self.map_name = KEPT_MAP

    def retrain_expert(self, task: TaskData, rep: Reporter, stats: StepStats, lo: float, hi: float) -> None:
        """Expert k again, from the feature map's LoRA as a new expert would be, on the task's current data, as a
        new version trained beside the old one (which the step drops when it commits)."""
        name = self.expert(task.index)
        v = self.bump_version(name)
        staging = f"{name}-v{v}"
        init = self.feature_map if (self.config.expert_init == "selector" and self.feature_map
                                    and self.feature_map != name) else None
        self.pet.add_module(staging, len(task.types), init_from=self.adapter(init) if init else None,
                            representation=self.config.representation or "mask")
        self._superseded.append(self.adapter(name))
        self._adapters[name] = staging
        self.fit_expert(task, rep, stats, lo, hi)

    def update_statistics(self, tasks: Sequence[TaskData], changes: Sequence[TaskChange]) -> str:
        """Downdate the router by the examples that left each type (their features from the cache), merge those
        that joined (one feature pass each). A left example whose features are no longer cached: every
        statistic is rebuilt from the current examples instead (features mostly cached). Says which."""
        assert self.router is not None
        removed = [r for c in changes for r in c.removed]
        added = [ex for c in changes for ex in c.added]
        if removed:
            old = self.cached_features([i for i, _ in removed])
            if old is None:
                return self.rebuild_router(tasks)
            self.router.downdate(self.router_input(old), [t for _, t in removed])
        if added:
            added = sorted(added, key=lambda ex: len(ex.text))  # batches of similar length pad least
            feats, _ = self.features(added)
            self.router.update(self.router_input(feats), [ex.label for ex in added])
        return "updated"

    def cached_features(self, ids: Sequence[str]) -> np.ndarray | None:
        """The feature map's cached features of examples by input key (`Example.input_key`, the cache's key:
        what `learnt_examples` records) ([N, dim]); None when any is missing."""
        if self.cache is None:
            return None
        mid, ver = self.features_id(), self.feature_version()
        keys = [(i, mid, ver) for i in ids]
        hits = self.cache.get_many(keys)
        if len(hits) < len(keys):
            return None
        return np.stack([np.asarray(hits[k], dtype=np.float32) for k in keys])

    def rebuild_router(self, tasks: Sequence[TaskData]) -> str:
        """Every type's statistics from scratch over the current training examples."""
        self.router = GaussianRouter(self.feature_dim, self.config.router_shrinkage)
        for task in tasks:
            if task.train:
                feats, _ = self.features(task.train)
                self.router.update(self.router_input(feats), [ex.label for ex in task.train])
        self.router.reserve(self.types)  # a type left with no example keeps its place
        return "rebuilt"

    def cross_entropy_stage(self, stage: str, name: str, index: dict[str, int], sampler: Any,
                            valid: Sequence[Example]) -> Stage:
        """A stage training module `name` with cross-entropy over the types `index` numbers, validated by its
        accuracy on `valid` (an expert over its task's types, a feature map over every learnt type)."""
        c = self.config

        def loss(batch: list[Example]) -> tuple[torch.Tensor, dict[str, float]]:
            logits = self.module_logits(name, batch, grad=True)
            gold = torch.tensor([index[ex.label] for ex in batch], device=logits.device)
            return F.cross_entropy(logits, gold), {"acc": float((logits.argmax(-1) == gold).float().mean())}

        def validate() -> float:
            correct = 0
            for i in range(0, len(valid), c.eval_batch_size):
                chunk = valid[i : i + c.eval_batch_size]
                pred = self.module_logits(name, chunk).argmax(-1).tolist()
                correct += sum(int(p == index[ex.label]) for p, ex in zip(pred, chunk, strict=True))
            return correct / len(valid)

        return Stage(stage, name, sampler, loss, validate, c.lr)

    def energy_statistics(self, k: int, examples: Sequence[Example]) -> tuple[float, float]:
        """Mean and spread of expert k's energy (log-sum-exp of its logits) on its own task's examples: the
        scale on which its energy for any input is standardised, so that experts compare with each other."""
        energies = []
        for i in range(0, len(examples), self.config.eval_batch_size):
            logits = self.module_logits(self.expert(k), examples[i : i + self.config.eval_batch_size])
            energies.append(_logsumexp(logits.cpu().numpy().astype(np.float64)))
        e = np.concatenate(energies)
        return float(e.mean()), float(max(e.std(), 1e-3))

    # --- scoring -------------------------------------------------------------------------------------

    def router_input(self, feats: np.ndarray) -> np.ndarray:
        """What the router sees: the features, each position's block scaled to unit length when
        `router_normalize` (the [MASK] state's norm would otherwise outweigh the markers', one layer's
        the other's)."""
        if not self.config.router_normalize:
            return feats
        blocks = np.split(np.asarray(feats, dtype=np.float64), self.feature_blocks, axis=1)
        return np.concatenate([b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in blocks], 1)

    def router_log_posterior(self, feats: np.ndarray, examples: Sequence[Example] | None = None) -> np.ndarray:
        """[B, types] log p(type | x) in the method's type order (the router stores types as it met them).
        With ``examples``, each row is normalised over the types of its example's kind only (the others: -inf)."""
        if self.router is None:
            raise ConpetError("this model has not learnt any task yet")
        lp = self.router.log_posterior(self.router_input(feats), self.kind_allowed(examples))
        col = {t: i for i, t in enumerate(self.router.types)}
        out = np.full((len(feats), len(self.types)), -np.inf)
        for j, t in enumerate(self.types):
            if t in col:
                out[:, j] = lp[:, col[t]]
        return out

    def kind_allowed(self, examples: Sequence[Example] | None) -> np.ndarray | None:
        """[B, router types]: which of the router's types each example may be (same kind, or a type of unknown
        kind); None when nothing is refused. A row that would allow nothing stays open (``mask_by_kind`` then
        refuses the example with a clear message)."""
        if not examples or self.router is None:
            return None
        kinds = np.array(self.kinds_of(self.router.types))
        allowed = np.stack([(kinds == ex.kind) | (kinds == "") for ex in examples])
        allowed[~allowed.any(axis=1)] = True
        return None if allowed.all() else allowed

    @property
    def top_t(self) -> int:
        """Active tasks per example: the calibrated t, else the setting."""
        return int(self.chosen.get("top_t") or self.config.top_t or 1)

    @property
    def weight(self) -> float:
        """The experts' weight w: the calibrated one, else the setting."""
        return float(self.chosen["weight"]) if "weight" in self.chosen else self.config.router_weight

    def calibrate(self, valid_sets: Sequence[Sequence[Example]]) -> dict[str, float]:
        """Choose t and w maximising the average accuracy over the seen tasks' validation sets (features and
        frozen experts' logits are cached, so a step adds only the new task's and new expert's passes). Ties
        go to the smaller t, then the smaller w."""
        sets = [list(v) for v in valid_sets if v]
        if not sets:
            return {}
        index = self.type_index()
        best: tuple[float, int, float] | None = None
        for t in (1, 2, 3):
            if t > self.n_tasks:
                break
            for w in CALIBRATION_WEIGHTS:
                accs = []
                for vs in sets:
                    hits = 0
                    for chunk in self._chunks(vs):
                        sb = self.score_batch(chunk, top_t=t, weight=w)
                        hits += sum(int(np.argmax(sb.combined[i]) == index[ex.label]) for i, ex in enumerate(chunk))
                    accs.append(hits / len(vs))
                score = float(np.mean(accs))
                if best is None or score > best[0] + 1e-12:
                    best = (score, t, w)
        assert best is not None
        self.chosen = {"top_t": best[1], "weight": best[2], "valid_acc": best[0]}
        return self.chosen

    def score_batch(self, chunk: Sequence[Example], forced: Sequence[Sequence[int]] | None = None,
                    top_t: int | None = None, weight: float | None = None) -> ScoredBatch:
        """Route and score one batch: one feature pass (or cache hits), then one pass per distinct active
        expert not already known. `forced` gives the active tasks (oracle routing)."""
        t = min(top_t or self.top_t, self.n_tasks)
        w = self.weight if weight is None else weight
        feats, side = self.features(chunk)
        # an entity is routed and scored over entity types only, a pair over relation types (PETMethod.mask_by_kind)
        log_post = self.mask_by_kind(chunk, torch.as_tensor(self.router_log_posterior(feats, chunk)),
                                     self.kinds_of(self.types)).numpy()
        offsets, sizes = self.task_offsets(), [len(ts) for ts in self.task_types]
        task_scores = np.stack([_logsumexp(log_post[:, o : o + n]) for o, n in zip(offsets, sizes, strict=True)],
                               axis=-1)
        if forced is not None:
            active = [list(a) for a in forced]
        else:
            active = np.argsort(-task_scores, axis=-1, kind="stable")[:, :t].tolist()
        expert_log_soft: dict[int, np.ndarray] = {}
        votes: dict[int, np.ndarray] = {}
        lam = self.config.router_energy
        for j in sorted({j for a in active for j in a}) if self.use_experts else ():
            rows = [i for i, a in enumerate(active) if j in a]
            logits = self.expert_logits(j, chunk, rows, side)
            energy = _logsumexp(logits)
            expert_log_soft[j] = logits - energy[:, None]
            if lam > 0 and j in self.energy:
                mean, std = self.energy[j]
                votes[j] = lam * (energy - mean) / std
        combined, own = combine_scores(log_post, sizes, active, expert_log_soft if self.use_experts else None, w,
                                       votes)
        return ScoredBatch(log_post, task_scores, active, combined, own)

    def expert_logits(self, j: int, chunk: Sequence[Example], rows: list[int],
                      side: dict[int, np.ndarray]) -> np.ndarray:
        """Expert j's logits for chunk[rows]: from the feature pass where it gave them, else the cache or a
        pass over just the rows still missing."""
        out = np.zeros((len(rows), len(self.task_types[j])), dtype=np.float64)
        need = [r for r in rows if not (j == 0 and r in side)]
        for pos, r in enumerate(rows):
            if j == 0 and r in side:
                out[pos] = side[r]
        if need:
            computed = self.module_logits(self.expert(j), [chunk[r] for r in need]).cpu().numpy()
            where = {r: pos for pos, r in enumerate(rows)}
            for q, r in enumerate(need):
                out[where[r]] = computed[q]
        return self.mask_by_kind([chunk[r] for r in rows], torch.as_tensor(out),
                                 self.kinds_of(self.task_types[j])).numpy()

    # --- prediction ----------------------------------------------------------------------------------

    def check_trained(self) -> None:
        if not self.task_types or self.router is None:
            raise ConpetError("this model has not learnt any task yet")

    def predict_batch(self, batch: list[Example]) -> list[Prediction]:
        return self.predictions(batch, self.score_batch(batch))

    def predictions(self, chunk: Sequence[Example], sb: ScoredBatch) -> list[Prediction]:
        types, task_of = self.types, self.task_of_type()
        sel = softmax(sb.task_scores)
        probs = softmax(sb.combined)
        versions = {self.features_id(): self.feature_version()}
        out = []
        for i, ex in enumerate(chunk):
            y = int(np.argmax(sb.combined[i]))
            owner = task_of[types[y]]
            row = [r for r, a in enumerate(sb.active) if owner in a].index(i)
            used = dict(versions)
            if self.use_experts:
                used.update({self.module_id(self.expert(j)): self.versions.get(self.expert(j), 0)
                             for j in sb.active[i]})
            out.append(Prediction(
                ex.id, types[y], float(probs[i, y]), [float(x) for x in sel[i]], list(sb.active[i]),
                {t: float(v) for t, v in zip(self.task_types[owner], sb.own[owner][row], strict=True)
                 if self.same_kind(t, ex)}, used))
        return out

    def oracle_routing_accuracy(self, examples: Sequence[Example]) -> float:
        """Accuracy if every example went to its gold task alone (how much of the error is routing)."""
        task_of, index = self.task_of_type(), self.type_index()
        correct = 0
        for chunk in self._chunks(examples):
            sb = self.score_batch(chunk, forced=[[task_of[ex.label]] for ex in chunk])
            correct += sum(int(np.argmax(sb.combined[i]) == index[ex.label]) for i, ex in enumerate(chunk))
        return correct / len(examples) if examples else float("nan")

    def routing_report(self, examples: Sequence[Example]) -> dict[str, float]:
        """Diagnostics on labelled examples: the router's top-1/2/3 task accuracy and its own class
        accuracy, and whole accuracy with t = 1, 2, 3 (a bench records them after every step)."""
        if not examples:
            return {}
        task_of, index = self.task_of_type(), self.type_index()
        ks = sorted({1, 2, 3, self.top_t})
        hits = {f"route_top{k}": 0 for k in (1, 2, 3)}
        hits["router_class_acc"] = 0
        hits.update({f"whole_t{k}": 0 for k in ks})
        for chunk in self._chunks(examples):
            gold_t = np.array([task_of[ex.label] for ex in chunk])
            gold_y = np.array([index[ex.label] for ex in chunk])
            first: ScoredBatch | None = None
            for k in ks:
                sb = self.score_batch(chunk, top_t=k)
                if first is None:
                    first = sb
                hits[f"whole_t{k}"] += int((sb.combined.argmax(-1) == gold_y).sum())
            assert first is not None
            ranked = np.argsort(-first.task_scores, axis=-1, kind="stable")
            for k in (1, 2, 3):
                hits[f"route_top{k}"] += int((ranked[:, :k] == gold_t[:, None]).any(-1).sum())
            hits["router_class_acc"] += int((first.log_post.argmax(-1) == gold_y).sum())
        out = {key: 100.0 * v / len(examples) for key, v in hits.items()}
        return {**out, "t": float(self.top_t), "w": float(self.weight)}  # what prediction used

    def _chunks(self, examples: Sequence[Example]) -> list[list[Example]]:
        order = length_order(examples)
        bs = self.config.eval_batch_size
        return [[examples[j] for j in order[i : i + bs]] for i in range(0, len(order), bs)]

    # --- save / load ---------------------------------------------------------------------------------

    def save(self, folder: Any) -> None:
        super().save(folder)
        if self.router is not None:
            from pathlib import Path

            self.router.save(Path(folder) / ROUTER_FILE)

    def extra_state(self) -> dict[str, Any]:
        return {"files": [ROUTER_FILE] if self.router is not None else [], "chosen": dict(self.chosen),
                "energy": {str(k): list(v) for k, v in self.energy.items()}, "feature_map": self.map_name,
                "feature_key": list(self.map_key) if self.map_key else None,
                "expert_examples": {str(k): list(v) for k, v in sorted(self.expert_examples.items())}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.chosen = dict(state.get("chosen") or {})
        self.energy = {int(k): (float(v[0]), float(v[1])) for k, v in (state.get("energy") or {}).items()}
        self.map_name = state.get("feature_map")
        key = state.get("feature_key")
        self.map_key = (str(key[0]), int(key[1])) if key else None
        self.expert_examples = {int(k): list(v) for k, v in (state.get("expert_examples") or {}).items()}

    @classmethod
    def load(cls, folder: Any, backbone: Any, cache: Any = None) -> RoutedByStatistics:
        from pathlib import Path

        method = super().load(folder, backbone, cache=cache)
        assert isinstance(method, RoutedByStatistics)
        if method.task_types:
            method.router = GaussianRouter.load(Path(folder) / ROUTER_FILE)
            unknown = sorted(set(method.types) - set(method.router.types))
            if unknown:
                raise ConpetError(f"{folder}: the router has no statistics for {', '.join(unknown)}")
        return method


@register_method("lda-frozen", aliases=("lda",))
class LDAOnFrozenFeatures(RoutedByStatistics):
    """Training-free: LDA over the frozen backbone's marker and [MASK] states; no PET module at all."""

    name: ClassVar[str] = "lda-frozen"
    description: ClassVar[str] = (
        "training-free: LDA over the frozen backbone'"
        "s marker and [MASK] states (a reference row)")
    use_experts: ClassVar[bool] = False
    features_from: ClassVar[str | None] = "frozen"
    consolidates: ClassVar[bool] = False  # its feature map is the frozen backbone
    new_labels_text: ClassVar[str] = ("learns labels added to, removed from or corrected in learnt types at its "
                                      "next training: its statistics follow the current labels exactly")


@register_method("lda-adapted")
class LDAOnAdaptedOnceFeatures(RoutedByStatistics):
    """LDA over the features of a module trained on task 1 only and then frozen; no other training."""

    name: ClassVar[str] = "lda-adapted"
    description: ClassVar[str] = (
        "LDA over a module trained on task 1 only, then"
        " frozen; nothing else trains (a reference row)")
    use_experts: ClassVar[bool] = False
    features_from: ClassVar[str | None] = "first-task"
    new_labels_text: ClassVar[str] = ("learns labels added to, removed from or corrected in learnt types at its "
                                      "next training: its statistics follow the current labels exactly")


def combine_scores(log_post: np.ndarray, sizes: Sequence[int], active: Sequence[Sequence[int]],
                   expert_log_soft: dict[int, np.ndarray] | None, weight: float,
                   votes: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The score of type y of an active task j: `log_post[y] + weight * expert_log_soft[j][y]`; types of
    inactive tasks get -inf. `expert_log_soft[j]` holds the rows of the examples where j is active, in
    order; None: the router alone. ``votes[j]`` (same rows), when given, is added to every type of task j:
    the expert's own evidence that the input is of its task (`router_energy`). Also returns, per active task, the within-task distribution shown
    as the expert's scores (the router's own when there are no experts)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    combined = np.full_like(log_post, -np.inf, dtype=np.float64)
    own: dict[int, np.ndarray] = {}
    for j in sorted({j for a in active for j in a}):
        rows = [i for i, a in enumerate(active) if j in a]
        sl = slice(offsets[j], offsets[j + 1])
        if expert_log_soft is None:
            combined[rows, sl] = log_post[rows, sl]
            own[j] = softmax(log_post[rows, sl])
        else:
            combined[rows, sl] = log_post[rows, sl] + weight * expert_log_soft[j]
            if votes and j in votes:
                combined[rows, sl] += votes[j][:, None]
            own[j] = np.exp(expert_log_soft[j])
    return combined, own


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp that tolerates rows of -inf."""
    m = np.max(x, axis=-1)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.exp(x - safe[:, None]).sum(axis=-1))
