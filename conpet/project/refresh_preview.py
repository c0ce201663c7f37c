"""What the next training would do with the labels of learnt types that changed since their task was trained,
told before it starts and without loading a backbone (the app's Train button and dialog).

It reads the current model's record of each type's training examples (``method.json``'s ``learnt_examples``,
and for a model saved before that record, the example splits its last step fixed) and compares it with the
store's current gold labels, split as the training step will split them (``conpet.project.splits``).
``conpet.project.training`` makes the same comparison with the loaded model before it trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from conpet.methods.refresh import TaskChange, changes_text, label_changes
from conpet.project.model import current_model_folder, learnt_data, open_project, read_model_state
from conpet.project.splits import split_key


@dataclass(frozen=True)
class RefreshPreview:
    added: int = 0
    removed: int = 0
    tasks: tuple[int, ...] = ()  # learnt tasks (1-based) whose training data changed
    experts: tuple[int, ...] = ()  # tasks (1-based) whose expert would retrain (refresh_share)
    refreshes: bool = False  # whether the model's method has a refresh step
    method: str = ""
    text: str = ""  # one sentence for the user

    @property
    def changed(self) -> int:
        return self.added + self.removed


def preview_refresh(project: Any) -> RefreshPreview:
    """How many labels of learnt types changed and what the next training does with them."""
    proj, close = open_project(project)
    try:
        return _preview(proj)
    finally:
        if close:
            proj.close()


def _preview(project: Any) -> RefreshPreview:
    from conpet.methods.registry import method_class

    folder = current_model_folder(project)
    if folder is None:
        return RefreshPreview()
    state, training = read_model_state(folder)
    cls = method_class(state["method"])
    datas, changes = learnt_changes(project, state, training)
    added = sum(len(c.added) for c in changes)
    removed = sum(len(c.removed) for c in changes)
    tasks = tuple(c.task + 1 for c in changes if c.changed)
    if not tasks:
        return RefreshPreview(refreshes=cls.new_labels == "refresh", method=cls.name, text=changes_text(changes))
    experts = _experts(state, datas, changes) if cls.new_labels == "refresh" else ()
    text = changes_text(changes) + "; "
    if cls.new_labels == "refresh":
        text += (f"the next training refreshes the model: the router's statistics follow them ({added} feature "
                 "pass(es), seconds)")
        text += (f", and the expert(s) of task(s) {', '.join(map(str, experts))} retrain (each about a new task's "
                 "expert stage)" if experts else "; no expert retrains (each task changed by less than "
                 f"{_share(state)})")
    else:
        text += f"{cls.name} {cls.new_labels_text}"
    return RefreshPreview(added, removed, tasks, experts, cls.new_labels == "refresh", cls.name, text + ".")


def learnt_changes(project: Any, state: Mapping[str, Any], training: Mapping[str, Any]
                   ) -> tuple[list[Any], list[TaskChange]]:
    """The learnt tasks' current training data and, per task, the examples added and removed since the model
    learnt its types."""
    datas = [replace(d, valid=(), test=()) for d in learnt_data(project, state, training)]
    learnt = {str(t): list(ids) for t, ids in (state.get("learnt_examples") or {}).items()}
    known = training.get("splits") or {}
    for d in datas:  # a model saved before the record: what its last step split counts as learnt
        for t in d.types:
            learnt.setdefault(t, [ex.input_key for ex in d.train if ex.label == t and split_key(ex) in known])
    return datas, label_changes(datas, learnt)


def _experts(state: Mapping[str, Any], datas: list[Any], changes: list[TaskChange]) -> tuple[int, ...]:
    """The experts whose task's data changed by more than refresh_share since they trained (as
    ``RoutedByStatistics.expert_change`` counts it)."""
    share = (state.get("config") or {}).get("refresh_share", 0.5)
    trained = (state.get("extra") or {}).get("expert_examples") or {}
    learnt = state.get("learnt_examples") or {}
    if share is None:
        return ()
    out = []
    for d, c in zip(datas, changes, strict=True):
        ids = trained.get(str(c.task))  # example ids; without them, the router's record (input keys, per type)
        if ids:
            before, now = set(ids), {ex.id for ex in d.train}
        else:
            before = {i for t in d.types for i in learnt.get(t, ())}
            now = {ex.input_key for ex in d.train}
        diff = len(before ^ now)
        if diff and (diff / len(before) if before else 1.0) > share:
            out.append(c.task + 1)
    return tuple(out)


def _share(state: Mapping[str, Any]) -> str:
    share = (state.get("config") or {}).get("refresh_share", 0.5)
    return "never (refresh_share off)" if share is None else f"{100 * share:.0f} % of its examples"
