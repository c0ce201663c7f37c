"""Headless training of a project: what the app's Train does, as one plain function and the
``conpet train PROJECT_DIR`` command.

One call learns one continual step:

1. The next task: the project's open (not yet frozen) task when there is one (a run that failed or was
   cancelled left it, or the app made it), else a new task made of the types named (``--type``) or of
   every live type that no task holds yet and that has at least ``min_examples`` gold annotations.
2. The model: the project's current model (the folder saved by its latest training, see
   ``current_model_folder``), restored on its backbone; or a fresh method (``dynamic`` by default).
3. Every task's gold examples are split 8:1:1 per type, each example's split fixed the first time a
   step sees it (``conpet.project_splits``); the method learns the new task with dynamic replay of the old
   ones, then is evaluated on every seen task's test examples.
4. On success, in one transaction: the modules that changed are registered (their files already saved
   under ``modules/run-NNNN/``), the task is frozen, the step's metrics and the test predictions are
   stored, the cached logits of superseded module versions are forgotten, the run is finished. A failure
   or a cancel marks the run, forgets the logits the attempt cached and leaves the previous model intact.
   Run r issues module versions above r * ``VERSION_STRIDE``, so a retried step never meets logits that a
   failed attempt (in any process) cached under the same version.

The model folder holds the engine's ``method.json`` + one folder per module (``PETMethod.save``) and
``training.json`` (the backbone's identity, the type-id → label map, so that renaming a type later
does not break the next step, and the examples' fixed splits).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conpet.errors import Cancelled, ConpetError, storage_error
from conpet.project_splits import assign_splits, split_task
from conpet.protocols import ProgressEvent, ProgressSink

STATE_FILE = "method.json"
TRAINING_FILE = "training.json"
DEFAULT_MIN_EXAMPLES = 5
DEFAULT_PROFILE = "quick"
TRAIN_SHARE = 0.85
# Run r's modules get versions above r * VERSION_STRIDE: no two attempts (in any process) share a version.
VERSION_STRIDE = 1 << 20
# What a profile (``--profile``, the app's budget) sets, for a new model and for one that continues.
PROFILE_BUDGET = ("lr", "batch_limit", "max_epochs")


# A new project's method: one expert per task routed by per-type statistics (conpet/methods/dynamic_lda.py).
# On fewrel80 and on Few-NERD (minilm, quick profile, 2 seeds each) it is above every other method, the
# type-level selector that was the default before included (docs/results/routing-*).
DEFAULT_METHOD = "dynamic-lda"
# What a project can train with (the app's method list and `conpet train --method`).
PROJECT_METHODS = ("dynamic-lda", "dynamic-typesel", "dynamic", "static")


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
    notes: tuple[str, ...] = ()  # the budget and the warnings said before training (conpet.training_report)


# --- the project's current model -----------------------------------------------------------------


def open_project(project: Any) -> tuple[Any, bool]:
    """(Project, whether we opened it and must close it)."""
    if isinstance(project, (str, os.PathLike)):
        from conpet.store import Project

        return Project.open(project), True
    return project, False


def current_model_folder(project: Any) -> Path | None:
    """The folder of the project's current model: the newest registered module whose parent folder holds
    the engine's ``method.json`` (each training saves the whole model in one folder)."""
    records = sorted(project.modules.list(), key=lambda m: m.id)
    for m in reversed(records):
        folder = project.modules.folder(m).parent
        if (folder / STATE_FILE).is_file():
            return folder
    return None


def read_model_state(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(method.json, training.json or {}) of a model folder."""
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    side = folder / TRAINING_FILE
    training = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else {}
    return state, training


def step_metrics(project: Any) -> list[dict[str, Any]]:
    """Metrics per continual step, from the project's finished runs (oldest first; a later run's entry
    for the same step wins)."""
    by_step: dict[Any, dict[str, Any]] = {}
    for run in sorted(project.runs.list(status="finished"), key=lambda r: r.id):
        for m in run.metrics:
            if m.get("kind", "step") == "step" and m.get("step") is not None:
                by_step[m["step"]] = {**m, "run_id": run.id}
    return [by_step[k] for k in sorted(by_step)]


# --- progress ----------------------------------------------------------------------------------


class TerminalProgress:
    """A progress bar on a terminal stream (stderr): redrawn in place on a TTY, else one line now and
    then. Implements ``ProgressSink``; ``request_cancel`` makes ``cancel_requested`` true."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 28, label: str = "",
                 min_interval: float = 0.2, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.label = label
        self.min_interval = min_interval if self.tty else 10.0
        self.quiet = quiet
        self._cancel = threading.Event()
        self._last = 0.0
        self._last_frac = -1.0
        self._last_stage = ""
        self._drawn = False

    def report(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        f = min(max(event.fraction, 0.0), 1.0)
        stage_changed = event.stage != self._last_stage
        if not (f >= 1.0 or stage_changed or now - self._last >= self.min_interval
                or (not self.tty and f - self._last_frac >= 0.1)):
            return
        self._last, self._last_frac, self._last_stage = now, f, event.stage
        line = self.render(event)
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: cols - 1].ljust(cols - 1))
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def render(self, event: ProgressEvent) -> str:
        f = min(max(event.fraction, 0.0), 1.0)
        filled = int(round(f * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"{self.label}[{bar}] {100 * f:5.1f}%"]
        if event.stage and event.stage not in event.message:
            parts.append(f"{event.stage}:")
        parts.append(event.message)
        m = event.metrics or {}
        if isinstance(m.get("loss"), float) and m["loss"] == m["loss"]:
            parts.append(f"loss {m['loss']:.3f}")
        if isinstance(m.get("acc"), float):
            parts.append(f"acc {100 * m['acc']:.0f}%")
        if event.eta_seconds is not None and f < 1.0:
            parts.append(f"ETA {format_seconds(event.eta_seconds)}")
        return " ".join(parts)

    def close(self) -> None:
        if self._drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        self._cancel.set()


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@contextmanager
def cancel_on_sigint(sink: TerminalProgress) -> Iterator[None]:
    """First Ctrl-C asks the job to stop after the current batch; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if sink.cancel_requested():
            raise KeyboardInterrupt
        sink.request_cancel()
        sink.stream.write("\nconpet: stopping after this batch (Ctrl-C again to abort at once)\n")
        sink.stream.flush()

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class _RunSink:
    """Forwards progress to the caller's sink and, at most once a second, to the run's record."""

    def __init__(self, project: Any, run_id: int, outer: ProgressSink | None, interval: float = 1.0) -> None:
        self.project, self.run_id, self.outer, self.interval = project, run_id, outer, interval
        self._last = 0.0

    def report(self, event: ProgressEvent) -> None:
        if self.outer is not None:
            self.outer.report(event)
        now = time.monotonic()
        if now - self._last >= self.interval or event.fraction >= 1.0:
            self._last = now
            try:
                self.project.runs.update_progress(self.run_id, event.fraction, event.message, stage=event.stage)
            except ConpetError:
                pass  # progress is best-effort; the result is written in one transaction at the end

    def cancel_requested(self) -> bool:
        return bool(self.outer is not None and self.outer.cancel_requested())


# --- one training step -------------------------------------------------------------------------


def _relabel(examples: Sequence[Any], labels: Mapping[int, str]) -> list[Any]:
    from dataclasses import replace

    out = []
    for ex in examples:
        want = labels.get(int(ex.meta.get("type_id", -1)), ex.label)
        out.append(ex if want == ex.label else replace(ex, label=want, meta=dict(ex.meta)))
    return out


def _plan_task(project: Any, n_learnt: int, min_examples: int,
               types: Sequence[str] | None = None) -> tuple[Any, bool]:
    """(the task record to learn now, whether it was created here). An open task is learnt as it is
    (the app or an interrupted run made it); else ``types`` (names) or the pending types form a new one."""
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
        return task, False
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
        return project.tasks.create_next(chosen), True
    pending = project.pending_types(min_examples)
    if not pending:
        counts = project.types.gold_counts()
        free = [t for t in project.types.list() if t.task_id is None]
        if not free:
            raise TrainError("nothing new to learn: every type already belongs to a trained task "
                             "(add a type and label some sentences first)")
        detail = ", ".join(f"{t.name!r}: {counts.get(t.id, 0)}" for t in free)
        raise TrainError(f"no type has the {min_examples} labelled examples a new task needs ({detail}); "
                         "label more, or lower --min-examples")
    return project.tasks.create_next([t.id for t in pending]), True


def _task_data(index: int, types: Sequence[str], examples: Sequence[Any], splits: Mapping[str, str]) -> Any:
    from conpet.data.tasks import TaskData

    train, valid, test = split_task(examples, splits)
    return TaskData(index, tuple(types), tuple(train), tuple(valid), tuple(test))


def _module_kind(name: str) -> tuple[str, int | None]:
    if name == "selector":
        return "selector", None
    if name.startswith("expert_") and name[7:].isdigit():
        return "expert", int(name[7:])
    return "static", None


def _store_name(name: str) -> str:
    kind, k = _module_kind(name)
    if kind == "expert":
        return f"expert-{k + 1}"  # the store's task index is 1-based
    return "selector" if kind == "selector" else name


def _save_model_atomic(method: Any, folder: Path, training: Mapping[str, Any]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        stage = tmp / "model"
        method.save(stage)
        (stage / TRAINING_FILE).write_text(json.dumps(training, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        stage.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def train_project(project: Any, *, method: str | None = None, backbone: Any = None,
                  min_examples: int = DEFAULT_MIN_EXAMPLES, profile: str | None = None,
                  overrides: Mapping[str, Any] | None = None, device: str | None = None,
                  sink: ProgressSink | None = None, types: Sequence[str] | None = None,
                  threads: int | None = None, notify: Callable[[str], Any] | None = None) -> TrainOutcome:
    """Learn the project's next task (see the module docstring); returns what happened. ``backbone`` is a
    name, a path or a loaded ``Backbone`` (default: the current model's, else ``minilm``); ``device`` is
    where a backbone given by name is loaded (a loaded one stays where it is: the backbone's device is the
    model's, whatever device the model was trained on). ``profile`` sets the budget (``PROFILE_BUDGET``)
    of a new model and of one that continues (None: ``DEFAULT_PROFILE`` for a new model, its own budget for
    one that continues); ``overrides`` are ``TrainConfig`` fields (lr, max_epochs, batch_limit, seed, ...)
    applied last. Raises ``Cancelled`` when the sink asks to stop (the run is then marked cancelled and
    nothing else changes). ``types`` (names) chooses the new task's types instead of every pending type.
    ``threads``: torch CPU threads (default: the free cores, ``conpet.runtime.default_threads``). Python,
    NumPy and torch are seeded from the run's seed and the task, so the same seed and data give the same
    weights and predictions. ``notify`` receives, before training, each stage's budget and every warning
    (types left out, a tiny test split)."""
    proj, close = open_project(project)
    try:
        return _train(proj, method, backbone, min_examples, profile, dict(overrides or {}), device, sink, types,
                      threads, notify)
    finally:
        if close:
            proj.close()


def _train(project: Any, method_name: str | None, backbone: Any, min_examples: int, profile: str | None,
           overrides: dict[str, Any], device: str | None, sink: ProgressSink | None,
           types: Sequence[str] | None = None, threads: int | None = None,
           notify: Callable[[str], Any] | None = None) -> TrainOutcome:
    from conpet.backbones import backbone_info, load_backbone
    from conpet.methods.base import ScaledSink
    from conpet.methods.registry import canonical_name
    from conpet.runner import evaluate
    from conpet.runtime import apply_threads, seed_everything, step_seed

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

    task, created = _plan_task(project, n_learnt, min_examples, types)
    chose_types = created and not types  # the pending types formed the task: say which were left out

    # The backbone: the one given, else the model's own (by name, else path), else minilm.
    rec = dict(training.get("backbone") or {})
    if prev is not None and not rec.get("sha256"):
        rec = _backbone_of_runs(project)
    if backbone is None:
        from conpet.backbones import BACKBONES

        backbone = rec.get("name") if rec.get("name") in BACKBONES else (rec.get("path") or "minilm")
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
    for i, n in zip(task.type_ids, task.type_names, strict=True):
        labels[i] = n
    taken = [lab for i, lab in labels.items() if i not in task.type_ids]
    clash = sorted(set(task.type_names) & set(taken))
    if clash:
        raise TrainError(f"type name(s) {clash} are already learnt by an earlier task; rename the new type")

    m = _load_or_make_method(prev, method_name, bb, project.logit_cache, profile, overrides)
    for label, kind in learnt_kinds(project, labels).items():  # a model saved before kinds were recorded
        m.type_kinds.setdefault(label, kind)
    seed = m.config.seed
    n_threads = apply_threads(threads, bb.device)
    gold = [project.examples_for_training(list(rec_t.type_ids)) for rec_t in [*history_records, task]]
    splits = assign_splits((ex for exs in gold for ex in exs), training.get("splits", {}))
    datas = []
    for k, (rec_t, exs) in enumerate(zip([*history_records, task], gold, strict=True)):
        types = model_types[k] if k < n_learnt else [labels[i] for i in rec_t.type_ids]
        datas.append(_task_data(k, types, _relabel(exs, labels), splits))
    new = datas[-1]
    if not new.train:
        raise TrainError(f"task {task.index} has no training examples")
    short = [t for t in new.types if not any(ex.label == t for ex in new.train)]
    if short:
        raise TrainError(f"type(s) {short} of task {task.index} have no labelled examples")
    notes = _notes(project, method_name, m.config, new, min_examples, chose_types)
    for line in notes:
        if notify is not None:
            notify(line)

    run = project.runs.start(method_name, config={"train": m.config.to_dict(), "profile": profile,
                                                  "min_examples": min_examples, "task_index": task.index,
                                                  "types": list(new.types), "seed": seed,
                                                  "threads": n_threads, "notes": notes},
                             task_id=task.id, backbone=bb.name, backbone_sha256=sha)
    m.version_floor = run.id * VERSION_STRIDE
    run_sink = _RunSink(project, run.id, sink)
    before = {n: int(v) for n, v in state.get("versions", {}).items()}
    saved_versions = {m.module_id(n): v for n, v in before.items()}
    try:
        with project.runs.recorded(run.id):
            if prev is not None:  # what an earlier attempt that failed, was cancelled or killed computed
                project.logit_cache.prune_model(m.uid, saved_versions)
            step_sink = ScaledSink(run_sink, 0.0, TRAIN_SHARE, prefix=f"task {task.index}: ")
            seed_everything(step_seed(seed, task.index))  # new modules' initial weights repeat for a seed
            stats = m.learn_task(new, datas[:-1], step_sink)
            eval_sink = ScaledSink(run_sink, TRAIN_SHARE, 0.97, prefix=f"task {task.index}: ")
            counts, sel, preds = evaluate(m, datas, eval_sink)
            if run_sink.cancel_requested():
                raise Cancelled("cancelled by the user")
            metrics = {**_step_metrics(task.index, new, datas, counts, sel, stats), "seed": seed,
                       "threads": n_threads}
            folder = project.modules_dir / f"run-{run.id:04d}"
            training_state = {"backbone": backbone_info(bb), "labels": {str(k): v for k, v in labels.items()},
                              "run_id": run.id, "task_ids": [t.id for t in [*history_records, task]],
                              "splits": splits}
            try:
                _save_model_atomic(m, folder, training_state)
            except OSError as exc:
                raise storage_error(exc, folder) from exc
            try:
                _record_step(project, m, run.id, task, new, datas, preds, metrics, stats, folder, before)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # not registered: no half-made model stays behind
                raise
    except BaseException:
        with suppress(ConpetError):
            project.logit_cache.prune_model(m.uid, saved_versions)
        raise
    return TrainOutcome(run.id, "finished", method_name, task.index, tuple(new.types), folder, metrics,
                        time.monotonic() - t_start, tuple(notes))


def _notes(project: Any, method: str, config: Any, new: Any, min_examples: int, chose_types: bool) -> list[str]:
    from conpet.training_report import describe_plan, left_out_types, small_test_warnings, stage_plans

    notes = describe_plan(stage_plans(method, config, len(new.train), new.index > 0))
    if chose_types:
        free = [t for t in project.types.list() if t.task_id is None]
        notes += left_out_types(free, project.types.gold_counts(), min_examples)
    return notes + small_test_warnings(new)


def learnt_kinds(project: Any, labels: Mapping[int, str]) -> dict[str, str]:
    """label -> kind ("entity" | "relation") of the types in ``labels`` (type id -> label)."""
    kinds = {t.id: t.kind for t in project.types.list(include_deleted=True)}
    return {label: kinds[i] for i, label in labels.items() if i in kinds}


def profile_budget(profile: str) -> dict[str, Any]:
    """The training budget of a ``conpet.config`` profile as TrainConfig fields: what ``--profile`` (and the
    app's budget) sets, for a new model and for one that continues."""
    from conpet.config import make_config

    train = make_config(profile, data="project").train
    return {name: getattr(train, name) for name in PROFILE_BUDGET}


def _load_or_make_method(prev: Path | None, method_name: str, bb: Any, cache: Any, profile: str | None,
                         overrides: Mapping[str, Any]) -> Any:
    """The project's model restored from ``prev`` (the profile's budget, then ``overrides``, replacing its
    saved settings), or a new ``method_name`` model with the profile's settings and ``overrides``."""
    from conpet.config import make_config
    from conpet.methods.registry import load_method, make_method

    if prev is not None:
        m = load_method(prev, bb, cache=cache)
        changes = {**(profile_budget(profile) if profile else {}), **overrides}
        if changes:
            m.config = m.config.replace(**changes)
        return m
    exp = make_config(profile or DEFAULT_PROFILE, data="project", backbone=bb.name, method=method_name,
                      **overrides)
    return make_method(method_name, bb, exp.train, cache=cache)


def _step_metrics(task_index: int, new: Any, datas: Sequence[Any], counts: Sequence[tuple[int, int]],
                  sel: Any, stats: Any) -> dict[str, Any]:
    accs = [c / n for c, n in counts if n]
    total = sum(n for _, n in counts)
    return {
        "kind": "step", "task_index": task_index, "types": list(new.types),
        "whole_acc": sum(c for c, _ in counts) / total if total else None,
        "avg_acc": sum(accs) / len(accs) if accs else None,
        "task_acc": [c / n if n else None for c, n in counts],
        "test_examples": [n for _, n in counts], "test_correct": [c for c, _ in counts],
        "train_examples": [len(d.train) for d in datas],
        "selector_acc": sel, "train_seconds": stats.seconds,
        "data_sha256": data_hashes(datas),
    }


def _record_step(project: Any, m: Any, run_id: int, task: Any, new: Any, datas: Sequence[Any], preds: Any,
                 metrics: Mapping[str, Any], stats: Any, folder: Path, before: Mapping[str, int]) -> None:
    """One transaction: the changed modules registered, the task frozen, the metrics and the test
    predictions stored, the superseded versions' cached logits forgotten, the run finished."""
    test_examples = [ex for d in datas for ex in d.test]
    changed = [n for n in m.logical_modules() if before.get(n) != m.versions.get(n, 0)]
    with project.transaction():
        for name in changed:
            kind, k = _module_kind(name)
            project.modules.register(kind, folder / name, name=_store_name(name),
                                     task_index=(k + 1) if k is not None else None, run_id=run_id,
                                     parameter_count=m.pet.parameter_count(m.adapter(name)))
        project.tasks.freeze(task.id)
        if preds:
            project.predictions.add_engine_results(run_id, test_examples, preds)
        project.runs.update_progress(run_id, 1.0, "finished", stage="done", metrics=metrics, step=task.index)
        project.runs.append_log(run_id, json.dumps({"stats": stats.to_dict()}, default=str))
        project.logit_cache.prune_model(m.uid, {m.module_id(n): m.versions.get(n, 0)
                                                for n in m.logical_modules()})
        project.runs.finish(run_id, f"task {task.index} learnt: {', '.join(new.types)}")


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


# --- the command -------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="learn a project's next task headless (what the app's Train does)",
        description="Learn the project's next task: its open task, or the types with at least --min-examples "
                    "gold annotations that no task holds yet. Stores the run, the modules and the metrics in "
                    "the project. Ctrl-C stops after the current batch.")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--method", choices=PROJECT_METHODS, default=None,
                   help=f"continual method for a new project's model (default {DEFAULT_METHOD}; later steps keep it)")
    p.add_argument("--backbone", default=None, metavar="NAME|PATH",
                   help="minilm, smollm2-135m, or a local model folder / GGUF file (default: the model's own, "
                        "else minilm)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--min-examples", type=int, default=DEFAULT_MIN_EXAMPLES,
                   help=f"labelled examples a type needs to join a new task (default {DEFAULT_MIN_EXAMPLES})")
    p.add_argument("--type", action="append", dest="types", metavar="NAME",
                   help="a type of the new task (repeat for several; default: every type with enough examples)")
    p.add_argument("--profile", choices=("smoke", "quick", "paper"), default=None,
                   help=f"training budget preset of this step, as the app's budget (default: {DEFAULT_PROFILE} "
                        "for a new model; a model that continues keeps its own)")
    p.add_argument("--epochs", type=int, default=None, help="most epochs per step (overrides the profile)")
    p.add_argument("--batch-limit", type=int, default=None, help="most batches per stage (overrides the profile)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (overrides the profile)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the sampling and the new modules' initial weights (default: the model's, else 1; "
                        "an example's train/valid/test split is fixed when first seen); recorded with the run and "
                        "in an exported bundle")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: the cores the load average shows free, at most 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: Any) -> int:
    overrides: dict[str, Any] = {}
    for arg, key in (("epochs", "max_epochs"), ("batch_limit", "batch_limit"), ("lr", "lr"), ("seed", "seed")):
        v = getattr(args, arg)
        if v is not None:
            overrides[key] = v
    bar = TerminalProgress(label="train ", quiet=args.quiet)
    try:
        with cancel_on_sigint(bar):
            out = train_project(args.project, method=args.method, backbone=args.backbone,
                                min_examples=args.min_examples, profile=args.profile, overrides=overrides,
                                device=args.device, sink=bar, types=args.types, threads=args.threads,
                                notify=lambda line: print(f"conpet: {line}", file=sys.stderr, flush=True))
    except Cancelled:
        bar.close()
        print("conpet: training cancelled; the project keeps its previous model", file=sys.stderr)
        return 130
    finally:
        bar.close()
    from conpet.training_report import accuracy_text

    m = out.metrics
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    correct, totals = m.get("test_correct") or [], m.get("test_examples") or []
    print(f"run {out.run_id}: task {out.task_index} ({', '.join(out.types)}) learnt with {out.method} "
          f"in {out.seconds:.1f} s (seed {m.get('seed')}, {m.get('threads')} CPU thread(s))")
    print(f"whole accuracy {accuracy_text(sum(correct), sum(totals))} of the test examples, average accuracy "
          f"{pct(m.get('avg_acc'))}"
          + (f", selector accuracy {pct(m.get('selector_acc'))}" if m.get("selector_acc") is not None else ""))
    print("per task: " + ", ".join(f"task {k + 1} {accuracy_text(c, n)}"
                                   for k, (c, n) in enumerate(zip(correct, totals, strict=True))))
    print(f"model saved in {out.model_folder}")
    return 0
