"""Consolidating a project's model (``conpet train --consolidate``, the app's "Consolidate the model…"): what it
will do and cost, said before it runs, from its work plan (``conpet.methods.work_progress.consolidate_work``)
and without loading a backbone.

A consolidation trains a new feature map on every stored training example of every learnt type and
recomputes every type's router statistics through it (``PETMethod.consolidate``); the experts stay. Its cost
is given in the work units of ``work_progress`` against those of the last training step, and in seconds at
the speed that step was measured to run (its ``train_seconds``) when the project recorded one.
``conpet.project.training`` runs it (``train_project(consolidate=True)``) and says the same lines first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conpet.project.model import (
    current_model_folder,
    learnt_data,
    open_project,
    read_model_state,
    step_metrics,
)


@dataclass(frozen=True)
class ConsolidationPlan:
    """What a consolidation of the current model would do; ``reason`` says why there is none to run."""

    examples: int = 0  # stored training examples the new map trains on (and the router recomputes)
    types: int = 0
    tasks: int = 0
    batches: int = 0
    units: float = 0.0  # work units of the whole job (``work_progress``)
    ratio: float | None = None  # its training side against the last step's
    seconds: float | None = None  # its training side at the last step's measured speed
    lines: list[str] = field(default_factory=list)  # what the CLI and the app say before it runs
    reason: str = ""

    @property
    def possible(self) -> bool:
        return not self.reason


def plan_consolidation(method: str, config: Any, datas: Sequence[Any], last_step_seconds: float | None = None,
                       suggester_sentences: int = 0) -> ConsolidationPlan:
    """The plan and its lines for the learnt tasks ``datas`` (``TaskData``, every split) of a ``method`` model
    under ``config`` (``TrainConfig``); ``last_step_seconds``: the training seconds the last task's step took, when known (that
    step's plan is taken with today's data, a close stand-in for what it had)."""
    from conpet.methods.training_report import describe_plan, feature_map_plan
    from conpet.methods.work_progress import consolidate_work, step_work, training_units

    examples = sum(len(d.train) for d in datas)
    types = sum(len(d.types) for d in datas)
    stage = feature_map_plan(config, examples)
    segments = consolidate_work(config, datas, suggester_sentences)
    units = sum(s.total for s in segments)
    last = training_units(step_work(method, config, datas[-1], datas)) if datas else 0.0
    ratio = training_units(segments) / last if last else None
    seconds = ratio * last_step_seconds if ratio is not None and last_step_seconds else None
    lines = ["consolidate: " + describe_plan([stage])[0] + ", from scratch, as a new feature map beside the old one",
             f"consolidate: then every learnt type's router statistics are recomputed through it (one feature pass "
             f"over the {examples} examples) and the test examples' features once; the experts stay as they are, "
             "and the model before it stays current until the step is saved"]
    if ratio is not None:
        cost = f"consolidate: its training costs about {ratio:.1f} times the last task's step"
        cost += (f": about {_duration(seconds)} at the speed that step ran here ({_duration(last_step_seconds)}), "
                 "plus evaluating and saving" if seconds is not None else "")
        lines.append(cost)
    return ConsolidationPlan(examples, types, len(datas), stage.batches, units, ratio, seconds, lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def cannot_consolidate(method_name: str, config: Mapping[str, Any] | Any, n_tasks: int) -> str:
    """Why a model cannot be consolidated ("" when it can)."""
    from conpet.methods.registry import method_class

    if n_tasks == 0:
        return "the project has no trained model to consolidate: train a first task"
    if not getattr(method_class(method_name), "consolidates", False):
        return (f"a {method_name} model has no consolidation step (dynamic-lda, the default of new projects, has: "
                "a new feature map on every stored example)")
    features = config.get("router_features") if isinstance(config, Mapping) else config.router_features
    if features not in (None, "first-task"):
        return f"this model routes on the frozen backbone's features (router_features={features!r}): nothing to adapt"
    return ""


def last_step_seconds(project: Any) -> float | None:
    """The training seconds of the project's latest new-task step, when a run recorded them."""
    steps = step_metrics(project)
    seconds = steps[-1].get("train_seconds") if steps else None
    return float(seconds) if seconds else None


def preview_consolidation(project: Any) -> ConsolidationPlan:
    """The plan of consolidating the project's current model now (the app's dialog says its lines)."""
    proj, close = open_project(project)
    try:
        return _preview(proj)
    finally:
        if close:
            proj.close()


def _preview(project: Any) -> ConsolidationPlan:
    from conpet.core.config import SAVED_BEFORE, TrainConfig

    folder = current_model_folder(project)
    if folder is None:
        return ConsolidationPlan(reason=cannot_consolidate("dynamic-lda", {}, 0))
    state, training = read_model_state(folder)
    saved = {**{k: v for k, v in SAVED_BEFORE.items() if k not in state["config"]}, **state["config"]}
    why = cannot_consolidate(state["method"], saved, len(state.get("tasks", [])))
    if why:
        return ConsolidationPlan(reason=why)
    datas = learnt_data(project, state, training)
    return plan_consolidation(state["method"], TrainConfig.from_dict(saved), datas, last_step_seconds(project))
