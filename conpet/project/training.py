"""Headless training of a project: what the app's Train does, as one plain function and the
``conpet train PROJECT_DIR`` command (``conpet.cli.train``).

One call learns one continual step: a refresh of the learnt tasks, a new task, or both.

0. A refresh (``conpet.methods.refresh``): the labels of learnt types that changed since their task was
   trained (added, removed, corrected; the model records each type's training example ids) are learnt
   first, when the method has a refresh step (``dynamic-lda``): the router's statistics follow them, an
   expert whose task's data changed by more than ``refresh_share`` (or named with ``refresh``) retrains.
   With no new type to learn, the step is the refresh alone.
1. The next task: the project's open (not yet frozen) task when there is one (a run that failed or was
   cancelled left it, or the app made it), else a new task made of the types named (``--type``) or of
   every live type that no task holds yet and that has at least ``min_examples`` gold annotations.
2. The model: the project's current model (the folder saved by its latest training, see
   ``current_model_folder``), restored on its backbone; or a fresh method (``DEFAULT_METHOD``) with the
   profile's settings (``conpet.core.config.profile_train``) and the caller's overrides.
3. Every task's gold examples are split 8:1:1 per type, each example's split fixed the first time a
   step sees it (``conpet.project.splits``); the method learns the new task with dynamic replay of the old
   ones, then is evaluated on every seen task's test examples.
   Then the suggesters (``conpet.project.suggesters``: the mention detector and the relatedness gate) take
   one continual step on what is new since the previous model, and are saved in the model folder.
4. On success, in one transaction: the modules that changed are registered (their files already saved
   under ``modules/run-NNNN/``), the task is frozen, the step's metrics and the test predictions are
   stored, the cached logits of superseded module versions are forgotten, the run is finished. A failure
   or a cancel marks the run, forgets the logits the attempt cached and leaves the previous model intact.
   Run r issues module versions above r * ``VERSION_STRIDE``, so a retried step never meets logits that a
   failed attempt (in any process) cached under the same version. Either way the step's PET modules leave
   the backbone at the end (``conpet.project.model.release``): a backbone kept for the next job stays clean.

The model folder's layout is ``conpet.project.model``'s; the type-id → label map in its ``training.json``
keeps a type renamed later from breaking the next step.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.core.errors import Cancelled, ConpetError, storage_error
from conpet.core.protocols import ProgressEvent, ProgressSink, ScaledSink
from conpet.methods.refresh import changes_text
from conpet.methods.work_progress import WorkProgress, consolidate_work, fold_work, refresh_work, step_work
from conpet.project.backbones import recorded_backbone
from conpet.project.consolidation import cannot_consolidate, last_step_seconds, plan_consolidation
from conpet.project.crossval import DEFAULT_FOLDS, check_folds
from conpet.project.lease import confirm_lease, hold_lease
from conpet.project.model import (
    TRAINING_FILE,
    as_the_model_names_them,
    current_model_folder,
    learnt_kinds,
    module_kind,
    open_project,
    read_model_state,
    release,
    store_name,
)
from conpet.project.run_progress import RunSink
from conpet.project.splits import assign_splits, split_key, split_task
from conpet.project.suggesters import STATE_KEY as SUGGESTERS_KEY
from conpet.project.suggesters import train_suggesters

DEFAULT_MIN_EXAMPLES = 5
DEFAULT_PROFILE = "quick"
# Run r's modules get versions above r * VERSION_STRIDE: no two attempts (in any process) share a version.
VERSION_STRIDE = 1 << 20
# Cross-validation fold i's models (--all-data) get versions above r * VERSION_STRIDE + (i + 1) * FOLD_STRIDE.
FOLD_STRIDE = 1 << 14
# What a profile (``--profile``, the app's budget) sets, for a new model and for one that continues.
PROFILE_BUDGET = ("lr", "batch_limit", "max_epochs", "patience")


# A new project's method: one expert per task routed by per-type statistics (conpet/methods/dynamic_lda.py).
# On fewrel80 and on Few-NERD (minilm, quick profile, 2 seeds each) it is above every other method, the
# type-level selector that was the default before included (docs/results/routing-*).
DEFAULT_METHOD = "dynamic-lda"


class TrainError(ConpetError):
    """A project that cannot be trained as asked (says why and what to do)."""


@dataclass(frozen=True)
class TrainOutcome:
    run_id: int
    status: str  # finished | cancelled
    method: str
    task_index: int  # the store's task index (1-based)
    types: tuple[str, ...]
    model_folder: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()  # the budget and the warnings said before training (conpet.methods.training_report)
    suggesters: tuple[str, ...] = ()  # what the detector and the relatedness gate did (also in the run's log)
    refresh: dict[str, Any] = field(default_factory=dict)  # what the refresh did (added, removed, experts, router)
    consolidation: dict[str, Any] = field(default_factory=dict)  # what a consolidation did (examples, types, map)


# --- one training step -------------------------------------------------------------------------


@contextmanager
def numerical_failures(task_index: int) -> Iterator[None]:
    """A numerical failure inside a step (a singular matrix, a floating-point error) as a TrainError that says
    which task and what to change; the step then fails like any other (the previous model stays current)."""
    import numpy as np
    import torch

    try:
        yield
    except (torch.linalg.LinAlgError, np.linalg.LinAlgError, FloatingPointError) as exc:
        raise TrainError(f"task {task_index}: training failed numerically ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); the model is unchanged. "
                         "Try a larger router_shrinkage, a lower learning rate or more labelled examples") from exc


def _plan_task(project: Any, n_learnt: int, min_examples: int,
               types: Sequence[str] | None = None) -> tuple[Any, bool, str]:
    """(the task record to learn now, whether it was created here, why there is none). An open task is
    learnt as it is (the app or an interrupted run made it); else ``types`` (names) or the pending types
    form a new one; with none of them the task is None (a refresh alone may still have work)."""
    tasks = project.tasks.list()
    if any(not t.frozen for t in tasks[:n_learnt]):
        raise TrainError("the project's tasks and its current model disagree (a learnt task is not frozen)")
    if len(tasks) > n_learnt + 1:
        raise TrainError(f"the project has {len(tasks)} tasks but its model knows {n_learnt}; only the next "
                         "one can be trained")
    if len(tasks) == n_learnt + 1:
        task = tasks[n_learnt]
        if task.frozen:
            raise TrainError(f"task {task.index} is frozen but the current model does not know it "
                             "(its model folder is missing?)")
        if types and sorted(types) != sorted(task.type_names):
            raise TrainError(f"task {task.index} is open with types {sorted(task.type_names)}; train it first "
                             "(without --type)")
        return task, False, ""
    if types:
        chosen = []
        for name in types:
            found = [t for t in project.types.list() if t.name == name]
            if not found:
                raise TrainError(f"there is no type called {name!r} in this project")
            if len(found) > 1:
                raise TrainError(f"both an entity and a relation type are called {name!r}")
            if found[0].task_id is not None:
                raise TrainError(f"type {name!r} already belongs to task {found[0].task_index}")
            chosen.append(found[0].id)
        return project.tasks.create_next(chosen), True, ""
    pending = project.pending_types(min_examples)
    if not pending:
        counts = project.types.gold_counts()
        free = [t for t in project.types.list() if t.task_id is None]
        if not free:
            return None, False, ("nothing new to learn: every type already belongs to a trained task and no label "
                                 "of a learnt type changed since its task was trained (add a type, or label, "
                                 "correct or remove examples first)")
        detail = ", ".join(f"{t.name!r}: {counts.get(t.id, 0)}" for t in free)
        return None, False, (f"no type has the {min_examples} labelled examples a new task needs ({detail}), and "
                             "no label of a learnt type changed; label more, or lower --min-examples")
    return project.tasks.create_next([t.id for t in pending]), True, ""


@dataclass(frozen=True)
class RefreshPlan:
    """What a step does with the labels of learnt types that changed since their task was trained."""

    runs: bool  # a refresh step runs (the method has one, and something changed or was asked for)
    added: int = 0
    removed: int = 0
    tasks: tuple[int, ...] = ()  # learnt tasks (0-based) whose training data changed
    experts: tuple[int, ...] = ()  # experts (0-based tasks) that retrain
    forced: tuple[int, ...] = ()  # asked for (``refresh``)
    notes: list[str] = field(default_factory=list)
    blocked: str = ""  # why changed labels cannot be learnt in a step with no new task

    def summary(self) -> dict[str, Any]:
        return {"runs": self.runs, "added": self.added, "removed": self.removed,
                "tasks": [k + 1 for k in self.tasks], "experts": [k + 1 for k in self.experts]}


def _refresh_plan(m: Any, method_name: str, history: Sequence[Any], forced: Sequence[int]) -> RefreshPlan:
    """Count the learnt types' changed labels (``conpet.methods.refresh``) and say what the step does with
    them and what it costs."""
    from conpet.methods.training_report import stage_plans

    changes = m.label_changes(history) if history else []
    added = sum(len(c.added) for c in changes)
    removed = sum(len(c.removed) for c in changes)
    tasks = tuple(c.task for c in changes if c.changed)
    notes = [changes_text(changes)] if history else []
    if m.new_labels != "refresh":
        if forced:
            raise TrainError(f"{method_name} has no refresh step: it {m.new_labels_text}")
        if tasks:
            notes.append(f"{method_name} {m.new_labels_text}")
        return RefreshPlan(False, added, removed, tasks, notes=notes,
                           blocked=f"{changes_text(changes)}, but {method_name} {m.new_labels_text}; add a type to "
                                   "learn a new task" if tasks else "")
    if not tasks and not forced:
        return RefreshPlan(False, notes=notes)
    experts = tuple(m.experts_to_refresh(history, list(forced)))
    notes.append(f"refresh: the router's statistics follow the changed labels: {added} example(s) merged (one "
                 f"feature pass each), {removed} taken out (features from the cache)")
    for j in experts:
        batches = sum(p.batches for p in stage_plans(method_name, m.config, len(history[j].train), True)
                      if p.stage == "expert")
        notes.append(f"refresh: expert {j + 1} retrains on its task's {len(history[j].train)} current training "
                     f"examples ({batches} batches, as a new task's expert)"
                     + ("; asked for" if j in forced else f"; its data changed by {100 * m.expert_change(history[j]):.0f} %"))
    if 0 in experts and m.feature_map == m.expert(0):
        n_all = sum(len(d.train) for d in history)
        notes.append("refresh: expert 1's old weights stay as the feature map, so every statistic stays valid"
                     if m.config.refresh_map == "keep" else
                     f"refresh: every type's statistics are recomputed through the new expert 1 (one feature pass "
                     f"over all {n_all} training examples)")
    return RefreshPlan(True, added, removed, tasks, experts, tuple(forced), notes)


def _backfill_learnt(m: Any, history: Sequence[Any], training: Mapping[str, Any]) -> None:
    """A model saved before it recorded its types' training examples: take those whose split its last step
    fixed (``training.json``'s splits) as learnt, so examples labelled since count as added (what was removed
    or relabelled before then cannot be told any more)."""
    from dataclasses import replace

    missing = [d for d in history if any(t not in m.learnt_examples for t in d.types)]
    if not missing:
        return
    known = training.get("splits") or {}
    m.record_learnt([replace(d, train=tuple(ex for ex in d.train if split_key(ex) in known)) for d in missing])


def _task_data(index: int, types: Sequence[str], examples: Sequence[Any], splits: Mapping[str, str]) -> Any:
    from conpet.data.tasks import TaskData

    train, valid, test = split_task(examples, splits)
    return TaskData(index, tuple(types), tuple(train), tuple(valid), tuple(test))


def _save_model_atomic(method: Any, folder: Path, training: Mapping[str, Any],
                       suggesters: Any = None) -> None:
    from conpet.core.files import replace_folder
    from conpet.suggest.suggestions import save_suggesters

    def write(stage: Path) -> None:
        method.save(stage)
        if suggesters is not None:
            save_suggesters(stage, suggesters)
        (stage / TRAINING_FILE).write_text(json.dumps(training, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    replace_folder(folder, write)


def train_project(project: Any, *, method: str | None = None, backbone: Any = None,
                  min_examples: int = DEFAULT_MIN_EXAMPLES, profile: str | None = None,
                  overrides: Mapping[str, Any] | None = None, device: str | None = None,
                  sink: ProgressSink | None = None, types: Sequence[str] | None = None,
                  threads: int | None = None, notify: Callable[[str], Any] | None = None,
                  suggesters: Mapping[str, Mapping[str, Any]] | None = None, all_data: bool = False,
                  folds: int = DEFAULT_FOLDS, refresh: Sequence[int] = (),
                  refresh_only: bool = False, consolidate: bool = False) -> TrainOutcome:
    """Learn the project's next task (see the module docstring); returns what happened. ``backbone`` is a
    name, a path or a loaded ``Backbone`` (default: the current model's, else ``minilm``); ``device`` is
    where a backbone given by name is loaded (a loaded one stays where it is: the backbone's device is the
    model's, whatever device the model was trained on). ``profile`` sets the budget (``PROFILE_BUDGET``)
    of a new model and of one that continues (None: ``DEFAULT_PROFILE`` for a new model, its own budget for
    one that continues); ``overrides`` are ``TrainConfig`` fields (lr, max_epochs, batch_limit, seed, ...)
    applied last. Raises ``Cancelled`` when the sink asks to stop (the run is then marked cancelled and
    nothing else changes). ``types`` (names) chooses the new task's types instead of every pending type.
    ``threads``: torch CPU threads (default: the free cores, ``conpet.core.runtime.default_threads``). Python,
    NumPy and torch are seeded from the run's seed and the task, so the same seed and data give the same
    weights and predictions. ``notify`` receives, before training, each stage's budget and every warning
    (types left out, a tiny test split). Each step also trains the suggesters, the mention detector and
    the relatedness gate (``conpet.project.suggesters``; ``suggesters`` gives their settings:
    {"detector": {...}, "relatedness": {...}}), saved in the model folder; what they did is in the notes
    and the run's log. ``all_data``: the new task trains on all its labelled examples (no validation or
    test split) and its accuracy is a ``folds``-fold cross-validated estimate (``conpet.project.crossval``;
    the metrics' ``"cv"``). ``refresh``: learnt tasks (the store's 1-based indices) whose experts retrain on
    their current data whatever changed (``conpet train --refresh TASK``); labels of learnt types that changed
    since their task was trained are learnt in any case (see the module docstring). ``refresh_only``: no new
    task in this step, whatever types are pending (the app's Train with no new type chosen). ``consolidate``:
    the step is a consolidation (``conpet.project.consolidation``: a new feature map on every stored example,
    every type's statistics recomputed through it; after a refresh when labels of learnt types changed), no
    new task; its cost is said (``notify``) before it runs."""
    if all_data and folds < 2:
        raise TrainError(f"--folds must be at least 2, not {folds}")
    proj, close = open_project(project)
    try:
        _refuse_a_method_projects_do_not_offer(proj, method)  # before the lease: a refusal writes nothing
        with hold_lease(proj, "train"):  # one training per project, in any process (conpet.project.lease)
            return _train(proj, method, backbone, min_examples, profile, dict(overrides or {}), device, sink,
                          types, threads, notify, suggesters, all_data, folds, tuple(refresh), refresh_only,
                          consolidate)
    finally:
        if close:
            proj.close()


def _refuse_a_method_projects_do_not_offer(project: Any, method_name: str | None) -> None:
    from conpet.methods.registry import canonical_name, method_class, project_methods

    if method_name is None or current_model_folder(project) is not None:
        return  # the default, or a model that continues (its own method; `_train` checks a mismatch)
    name = canonical_name(method_name)
    if not method_class(name).in_projects:
        raise TrainError(f"a project cannot train with {name!r}; choose one of {', '.join(project_methods())}")


def _train(project: Any, method_name: str | None, backbone: Any, min_examples: int, profile: str | None,
           overrides: dict[str, Any], device: str | None, sink: ProgressSink | None,
           types: Sequence[str] | None = None, threads: int | None = None,
           notify: Callable[[str], Any] | None = None,
           suggester_settings: Mapping[str, Mapping[str, Any]] | None = None, all_data: bool = False,
           folds: int = DEFAULT_FOLDS, refresh: tuple[int, ...] = (), refresh_only: bool = False,
           consolidate: bool = False) -> TrainOutcome:
    from conpet.core.runtime import apply_threads, seed_everything, step_seed
    from conpet.eval.continual import evaluate
    from conpet.methods.registry import canonical_name, method_class, project_methods
    from conpet.model.backbones import backbone_info, load_backbone

    t_start = time.monotonic()
    prev = current_model_folder(project)
    state, training = read_model_state(prev) if prev is not None else ({}, {})
    n_learnt = len(state.get("tasks", []))
    if prev is not None:
        have = canonical_name(state["method"])
        if method_name is not None and canonical_name(method_name) != have:
            raise TrainError(f"the project's model is a {have!r} model; it cannot continue as "
                             f"{canonical_name(method_name)!r} (start a new project for another method)")
        method_name = have
    method_name = canonical_name(method_name or DEFAULT_METHOD)
    if prev is None and not method_class(method_name).in_projects:
        raise TrainError(f"a project cannot train with {method_name!r}; choose one of {', '.join(project_methods())}")

    bad = [i for i in refresh if not 1 <= i <= n_learnt]
    if bad:
        raise TrainError(f"cannot refresh task {bad[0]}: the project's model has learnt {n_learnt} task(s)")
    if consolidate:
        if all_data or types:
            raise TrainError("a consolidation learns no new task: leave out --all-data and --type")
        if n_learnt == 0:
            raise TrainError(cannot_consolidate(method_name, {}, 0))
        task, created, why_none = None, False, ""
    elif refresh_only:
        task, created, why_none = None, False, ("nothing to refresh: no label of a learnt type changed since its "
                                                "task was trained")
    else:
        task, created, why_none = _plan_task(project, n_learnt, min_examples, types)
    if task is None and n_learnt == 0:
        raise TrainError(why_none)
    if task is None and all_data:
        raise TrainError("--all-data trains a new task, and there is none to learn")
    chose_types = created and not types  # the pending types formed the task: say which were left out

    # The backbone: the one given, else the model's own (by name, else path), else minilm.
    rec = dict(training.get("backbone") or {})
    if prev is not None and not rec.get("sha256"):
        rec = _backbone_of_runs(project)
    if backbone is None:
        backbone = recorded_backbone(rec)
    if sink is not None:
        sink.report(ProgressEvent(0.0, f"loading backbone {getattr(backbone, 'name', backbone)}", "setup"))
    bb = load_backbone(backbone, device=device) if isinstance(backbone, (str, os.PathLike)) else backbone
    sha = bb.weights_sha256()
    if rec.get("sha256") and rec["sha256"] != sha:
        raise TrainError(f"backbone mismatch: the project's model was trained on {rec.get('name')!r} "
                         f"(weights {rec['sha256'][:16]}…), not {bb.name!r} ({sha[:16]}…)")

    # Labels: the model's names for its types (by type id), then the new task's current names.
    labels: dict[int, str] = {int(k): v for k, v in training.get("labels", {}).items()}
    all_tasks = project.tasks.list()
    model_types = [list(ts) for ts in state.get("tasks", [])]
    history_records = all_tasks[:n_learnt]
    for rec_t, names in zip(history_records, model_types, strict=True):
        if sorted(labels.get(i, n) for i, n in zip(rec_t.type_ids, rec_t.type_names, strict=True)) != sorted(names):
            by_id = {i: n for i, n in zip(rec_t.type_ids, rec_t.type_names, strict=True)}
            if sorted(by_id.values()) == sorted(names):
                labels.update(by_id)
            else:
                raise TrainError(f"task {rec_t.index}'s types {sorted(rec_t.type_names)} differ from what the "
                                 f"model learnt {sorted(names)} (renamed without a record?)")
    new_ids = list(task.type_ids) if task is not None else []
    for i, n in zip(new_ids, task.type_names if task is not None else [], strict=True):
        labels[i] = n
    taken = [lab for i, lab in labels.items() if i not in new_ids]
    clash = sorted(set(task.type_names if task is not None else []) & set(taken))
    if clash:
        raise TrainError(f"type name(s) {clash} are already learnt by an earlier task; rename the new type")

    m = _load_or_make_method(prev, method_name, bb, project.logit_cache, profile, overrides)
    sugg = None
    try:
        if consolidate and cannot_consolidate(method_name, m.config, n_learnt):
            raise TrainError(cannot_consolidate(method_name, m.config, n_learnt))  # the trained modules leave the backbone with the job (the app keeps the backbone)
        for label, kind in learnt_kinds(project, labels).items():  # a model saved before kinds were recorded
            m.type_kinds.setdefault(label, kind)
        seed = m.config.seed
        n_threads = apply_threads(threads, bb.device)
        records = [*history_records, *([task] if task is not None else [])]
        gold = [project.examples_for_training(list(rec_t.type_ids)) for rec_t in records]
        splits = assign_splits((ex for exs in gold for ex in exs), training.get("splits", {}))
        if all_data:  # the new task's new examples are all trained on, and recorded so: never tested later
            splits.update({split_key(ex): "train" for ex in gold[-1] if split_key(ex) not in training.get("splits", {})})
        datas = []
        for k, (rec_t, exs) in enumerate(zip(records, gold, strict=True)):
            types = model_types[k] if k < n_learnt else [labels[i] for i in rec_t.type_ids]
            datas.append(_task_data(k, types, as_the_model_names_them(exs, labels), splits))
        new = datas[-1] if task is not None else None
        history = datas[:n_learnt]
        if new is not None and not new.train:
            raise TrainError(f"task {task.index} has no training examples")
        short = [t for t in new.types if not any(ex.label == t for ex in new.train)] if new is not None else []
        if short:
            raise TrainError(f"type(s) {short} of task {task.index} have no labelled examples")
        if all_data:
            try:
                check_folds(new.train, folds)
            except ConpetError as exc:
                raise TrainError(str(exc)) from exc
        _backfill_learnt(m, history, training)
        plan = _refresh_plan(m, method_name, history, [i - 1 for i in refresh])
        if task is None and not plan.runs and not consolidate:
            raise TrainError(plan.blocked or why_none)
        notes = plan.notes
        labelled = {ex.meta.get("sentence_id") for d in datas for ex in (*d.train, *d.valid, *d.test)}
        if consolidate:
            notes = notes + plan_consolidation(method_name, m.config, history, last_step_seconds(project),
                                               len(labelled)).lines
        if new is not None:
            notes = notes + _notes(project, method_name, m.config, new, min_examples, chose_types,
                                   folds if all_data else 0, seen=datas)
        for line in notes:
            if notify is not None:
                notify(line)

        run = project.runs.start(method_name, config={"train": m.config.to_dict(), "profile": profile,
                                                      "min_examples": min_examples,
                                                      "task_index": task.index if task is not None else None,
                                                      "types": list(new.types) if new is not None else [],
                                                      "seed": seed, "threads": n_threads, "notes": notes,
                                                      "all_data": all_data, "folds": folds if all_data else None,
                                                      "refresh": plan.summary(), "consolidate": consolidate},
                                 task_id=task.id if task is not None else None, backbone=bb.name,
                                 backbone_sha256=sha)
        m.version_floor = run.id * VERSION_STRIDE
        run_sink = RunSink(project, run.id, sink)
        before = {n: int(v) for n, v in state.get("versions", {}).items()}
        saved_versions = m.cache_versions() if prev is not None else {}  # what the saved model keeps cached
        try:
            with project.runs.recorded(run.id):
                if prev is not None:  # what an earlier attempt that failed, was cancelled or killed computed
                    project.logit_cache.prune_model(m.uid, saved_versions)
                # The fraction counts expected work (batches, passes, saving); the ETA is its measured rate.
                segments = (refresh_work(method_name, m.config, history, plan.experts, plan.added,
                                         final=new is None and not consolidate, suggester_sentences=len(labelled))
                            if plan.runs else [])
                if consolidate:
                    segments += consolidate_work(m.config, history, suggester_sentences=len(labelled))
                if new is not None:
                    segments += step_work(method_name, m.config, new, datas, suggester_sentences=len(labelled))
                if all_data:
                    segments = fold_work(method_name, m.config, new, datas, folds) + segments
                work = WorkProgress(run_sink, segments,
                                    prefix=f"task {task.index}: " if task is not None
                                    else "consolidate: " if consolidate else "refresh: ")
                cv = None
                if all_data:  # k extra trainings of the new task only, before the model that is kept
                    cv = _cross_validate(prev, method_name, bb, project.logit_cache, profile, overrides, m,
                                         new, datas[:-1], folds, run.id, work)
                stats = refreshed = consolidated = None
                step_index = task.index if task is not None else n_learnt
                # each example is encoded once in the step's training, validation and test
                with m.job(), numerical_failures(step_index):
                    if plan.runs:  # the learnt tasks' changed labels first; a new task then starts from them
                        seed_everything(step_seed(seed, n_learnt))
                        refreshed = m.refresh(history, work.training_sink(), retrain=plan.forced)
                    if consolidate:  # the new map's initial weights and batches repeat with the seed
                        seed_everything(step_seed(seed, n_learnt) + 1)
                        consolidated = m.consolidate(history, work.training_sink())
                    if new is not None:
                        seed_everything(step_seed(seed, task.index))  # new modules' initial weights repeat
                        stats = m.learn_task(new, history, work.training_sink())
                    _, sel, preds = evaluate(m, datas, work.segment_sink("evaluation"))
                if run_sink.cancel_requested():
                    raise Cancelled("cancelled by the user")
                sugg = train_suggesters(project, bb, prev, training.get(SUGGESTERS_KEY) or {},
                                        work.segment_sink("suggesters"), suggester_settings,
                                        budget={"batch_limit": m.config.batch_limit, "seed": seed})
                for line in sugg.notes:  # what they did, after the fact: the run's log and the outcome's notes
                    project.runs.append_log(run.id, line)
                test_ids = _fixed_test_ids(datas, training)
                metrics = {**_step_metrics(task.index if task is not None else n_learnt, new, datas, preds, sel,
                                           stats, refreshed, test_ids, consolidated), "seed": seed,
                           "threads": n_threads}
                if cv is not None:
                    metrics["cv"] = cv.to_dict()
                folder = project.modules_dir / f"run-{run.id:04d}"
                training_state = {"backbone": backbone_info(bb), "labels": {str(k): v for k, v in labels.items()},
                                  "run_id": run.id, "task_ids": [t.id for t in records],
                                  "splits": splits, SUGGESTERS_KEY: sugg.state, TEST_IDS_KEY: test_ids}
                try:
                    _save_model_atomic(m, folder, training_state, sugg.suggesters)
                except OSError as exc:
                    raise storage_error(exc, folder) from exc
                work.finish("saving", "model saved")
                try:
                    _record_step(project, m, run.id, task, new, datas, preds, metrics, stats, folder, before,
                                 sugg.suggesters, started_from=prev)
                except BaseException:
                    shutil.rmtree(folder, ignore_errors=True)  # not registered: no half-made model stays behind
                    raise
        except BaseException:
            with suppress(ConpetError):
                project.logit_cache.prune_model(m.uid, saved_versions)
            raise
        return TrainOutcome(run.id, "finished", method_name, task.index if task is not None else 0,
                            tuple(new.types) if new is not None else (), folder, metrics,
                            time.monotonic() - t_start, tuple(notes), tuple(sugg.notes),
                            dict(refreshed.extra.get("refresh", {})) if refreshed is not None else {},
                            dict(consolidated.extra.get("consolidate", {})) if consolidated is not None else {})
    finally:
        release(m)
        if sugg is not None:
            sugg.suggesters.close()


def _notes(project: Any, method: str, config: Any, new: Any, min_examples: int, chose_types: bool,
           folds: int = 0, seen: Any = ()) -> list[str]:
    from conpet.methods.training_report import (
        all_data_notes,
        describe_plan,
        left_out_types,
        small_test_warnings,
        stage_plans,
    )

    notes = describe_plan(stage_plans(method, config, len(new.train), new.index > 0,
                                      seen_types=sum(len(d.types) for d in seen),
                                      seen_examples=sum(len(d.train) for d in seen)))
    if chose_types:
        free = [t for t in project.types.list() if t.task_id is None]
        notes += left_out_types(free, project.types.gold_counts(), min_examples)
    if folds:
        return notes + all_data_notes(len(new.train), folds)
    return notes + small_test_warnings(new)


def _cross_validate(prev: Path | None, method_name: str, bb: Any, cache: Any, profile: str | None,
                    overrides: Mapping[str, Any], main: Any, new: Any, history: Sequence[Any], folds: int,
                    run_id: int, work: WorkProgress) -> Any:
    """The new task's ``folds``-fold cross-validated accuracy (``conpet.project.crossval``): each fold's
    model starts from the project's model as ``main`` does, learns the other folds, predicts its own."""
    from dataclasses import replace

    from conpet.core.runtime import seed_everything, step_seed
    from conpet.project.crossval import cross_validate

    def train_and_predict(i: int, train: list[Any], held: list[Any]) -> list[str]:
        fm = _load_or_make_method(prev, method_name, bb, cache, profile, overrides)
        try:
            fm.uid = main.uid  # its cached logits go with the run's (pruned with them) under versions of its own
            fm.version_floor = run_id * VERSION_STRIDE + (i + 1) * FOLD_STRIDE
            fm.type_kinds.update(main.type_kinds)
            seed_everything(step_seed(main.config.seed, new.index + 1) + 100 * (i + 1))
            prefix = f"cross-validation fold {i + 1}/{folds}: "
            fm.learn_task(replace(new, train=tuple(train), valid=(), test=()), list(history),
                          ScaledSink(work.training_sink(), 0.0, 1.0, prefix=prefix))
            preds = fm.predict(held, ScaledSink(work.segment_sink("fold-evaluation"), 0.0, 1.0, prefix=prefix))
            return [p.label for p in preds]
        finally:
            release(fm)

    return cross_validate(list(new.train), folds, train_and_predict)


def profile_budget(profile: str, method: str = "dynamic") -> dict[str, Any]:
    """The training budget of a ``conpet.core.config`` profile as TrainConfig fields: what ``--profile`` (and the
    app's budget) sets, for a new model and for one that continues."""
    from conpet.core.config import profile_train
    from conpet.methods.registry import method_class

    train = profile_train(profile, data="project", dynamic=method_class(method).dynamic_family)
    return {name: getattr(train, name) for name in PROFILE_BUDGET}


def _load_or_make_method(prev: Path | None, method_name: str, bb: Any, cache: Any, profile: str | None,
                         overrides: Mapping[str, Any]) -> Any:
    """The project's model restored from ``prev`` (the profile's budget, then ``overrides``, replacing its
    saved settings), or a new ``method_name`` model with the profile's settings and ``overrides``."""
    from conpet.core.config import profile_train
    from conpet.methods.registry import load_method, make_method, method_class

    if prev is not None:
        m = load_method(prev, bb, cache=cache)
        changes = {**(profile_budget(profile, method_name) if profile else {}), **overrides}
        if changes:
            m.config = m.config.replace(**changes)
        return m
    train = profile_train(profile or DEFAULT_PROFILE, data="project",
                          dynamic=method_class(method_name).dynamic_family).replace(**overrides)
    return make_method(method_name, bb, train, cache=cache)


def _step_metrics(step: int, new: Any, datas: Sequence[Any], preds: Sequence[Any], sel: Any, stats: Any,
                  refreshed: Any, test_ids: Mapping[str, Sequence[str]], consolidated: Any = None) -> dict[str, Any]:
    """A step's metrics. Each task's accuracy (``task_acc``, and W and A over them) counts only the test
    examples fixed at the task's first step (``test_ids``), so the accuracy matrix and forgetting compare the
    same examples at every step; test examples that reached a task later are the ``grown_*`` figures."""
    fixed, grown = _test_counts(datas, preds, test_ids)
    accs = [c / n for c, n in fixed if n]
    total = sum(n for _, n in fixed)
    g_total = sum(n for _, n in grown)
    seconds = sum(s.seconds for s in (stats, refreshed, consolidated) if s is not None)
    out = {
        "kind": "step" if new is not None else "consolidate" if consolidated is not None else "refresh",
        "task_index": step,
        "types": list(new.types) if new is not None else [],
        "whole_acc": sum(c for c, _ in fixed) / total if total else None,
        "avg_acc": sum(accs) / len(accs) if accs else None,
        "task_acc": [c / n if n else None for c, n in fixed],
        "test_examples": [n for _, n in fixed], "test_correct": [c for c, _ in fixed],
        "grown_test_examples": [n for _, n in grown], "grown_test_correct": [c for c, _ in grown],
        "grown_acc": sum(c for c, _ in grown) / g_total if g_total else None,
        "train_examples": [len(d.train) for d in datas],
        "selector_acc": sel, "train_seconds": seconds,
        "data_sha256": data_hashes(datas),
    }
    if refreshed is not None:
        out["refresh"] = dict(refreshed.extra.get("refresh", {}))
    if consolidated is not None:
        out["consolidate"] = dict(consolidated.extra.get("consolidate", {}))
    return out


TEST_IDS_KEY = "test_ids"  # training.json: per task (0-based, as text), the test example ids of its first step


def _fixed_test_ids(datas: Sequence[Any], training: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each task's test example ids as recorded at its first step (a task new now, or learnt by a model saved
    before the record: its current ones, from now on)."""
    known = training.get(TEST_IDS_KEY) or {}
    return {str(k): list(known.get(str(k)) or sorted(ex.id for ex in d.test)) for k, d in enumerate(datas)}


def _test_counts(datas: Sequence[Any], preds: Sequence[Any], test_ids: Mapping[str, Sequence[str]]
                 ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Per task, (correct, total) over its fixed test examples still labelled so, and over the later ones."""
    examples = [ex for d in datas for ex in d.test]
    hit = {ex.id: p.label == ex.label for ex, p in zip(examples, preds, strict=True)}
    fixed, grown = [], []
    for k, d in enumerate(datas):
        ids = set(test_ids.get(str(k), ()))
        f = [hit[ex.id] for ex in d.test if ex.id in ids]
        g = [hit[ex.id] for ex in d.test if ex.id not in ids]
        fixed.append((sum(f), len(f)))
        grown.append((sum(g), len(g)))
    return fixed, grown


def _record_step(project: Any, m: Any, run_id: int, task: Any, new: Any, datas: Sequence[Any], preds: Any,
                 metrics: Mapping[str, Any], stats: Any, folder: Path, before: Mapping[str, int],
                 suggesters: Any = None, *, started_from: Path | None = None) -> None:
    """One transaction: the changed modules registered (the suggesters too, after the method's, so the
    newest module still lies in the model folder), the task frozen, the metrics and the test
    predictions stored, the superseded versions' cached logits forgotten, the run finished."""
    test_examples = [ex for d in datas for ex in d.test]
    changed = [n for n in m.logical_modules() if before.get(n) != m.versions.get(n, 0)]
    if not changed:
        # a refresh of the statistics alone changed no module: the last one is recorded again from the new
        # folder (same files), since the newest registered module's folder is the current model
        changed = m.logical_modules()[-1:]
    step = task.index if task is not None else len(datas)
    with project.transaction():
        confirm_lease(project)  # a step whose lease was taken over (it expired) records nothing
        if current_model_folder(project) != started_from:
            raise TrainError(f"the project's model changed while task {task.index} trained (another job recorded "
                             "one); this step's result is discarded: train again")
        for name in changed:
            kind, k = module_kind(name)
            project.modules.register(kind, folder / name, name=store_name(name),
                                     task_index=(k + 1) if k is not None else None, run_id=run_id,
                                     parameter_count=m.pet.parameter_count(m.adapter(name)))
        _register_suggesters(project, run_id, folder, suggesters)
        project.files.store_folder(folder)  # in the database: a teammate's machine rebuilds the same folder
        if task is not None:
            project.tasks.freeze(task.id)
        if preds:
            project.predictions.add_engine_results(run_id, test_examples, preds)
        project.runs.update_progress(run_id, 1.0, "finished", stage="done", metrics=metrics, step=step)
        if stats is not None:
            project.runs.append_log(run_id, json.dumps({"stats": stats.to_dict()}, default=str))
        project.logit_cache.prune_model(m.uid, m.cache_versions())
        if new is not None:
            project.runs.finish(run_id, f"task {task.index} learnt: {', '.join(new.types)}")
        elif metrics.get("kind") == "consolidate":
            c = metrics.get("consolidate", {})
            project.runs.finish(run_id, f"consolidated: a new feature map on {c.get('examples')} stored examples of "
                                        f"{c.get('types')} types")
        else:
            project.runs.finish(run_id, f"refreshed: {metrics.get('refresh', {})}")


def _register_suggesters(project: Any, run_id: int, folder: Path, suggesters: Any) -> None:
    """The detector and the gate as modules of the store (kind "static": a module outside the experts and
    the selector; the store's kinds need no migration for it)."""
    from conpet.suggest.detector import DETECTOR_MODULE
    from conpet.suggest.relation_candidates import RELATEDNESS_MODULE
    from conpet.suggest.suggestions import DETECTOR_FOLDER, RELATEDNESS_FOLDER

    if suggesters is None:
        return
    for part, sub, name in ((suggesters.detector, DETECTOR_FOLDER, DETECTOR_MODULE),
                            (suggesters.relatedness, RELATEDNESS_FOLDER, RELATEDNESS_MODULE)):
        if part is not None and (folder / sub).is_dir():
            project.modules.register("static", folder / sub, name=name, run_id=run_id,
                                     parameter_count=part.pet.parameter_count(name))


def _backbone_of_runs(project: Any) -> dict[str, Any]:
    """The backbone recorded by the newest finished run (for a model folder without training.json)."""
    for run in project.runs.list(status="finished"):
        if run.backbone_sha256:
            return {"name": run.backbone, "path": run.backbone, "sha256": run.backbone_sha256}
    return {}


def data_hashes(datas: Sequence[Any]) -> list[dict[str, str]]:
    """Per task: SHA-256 over the sorted example ids of its train / valid / test splits."""
    import hashlib

    def h(exs: Sequence[Any]) -> str:
        return hashlib.sha256("\n".join(sorted(ex.id for ex in exs)).encode()).hexdigest()

    return [{"train": h(d.train), "valid": h(d.valid), "test": h(d.test)} for d in datas]
