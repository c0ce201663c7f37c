"""`conpet evaluate PROJECT_DIR FILE` and the app's "Evaluate on a file…": a project's current model
(loaded by the same code as prediction, ``conpet.project.predict.current_model``) scored on a labelled
file with ``conpet.eval.labelled_file``'s report.

The file is the user's, not the project's: nothing of it is written into the project. No run is
recorded, no sentence or prediction stored, and the logits computed are kept in memory only
(``ReadThroughCache`` reads the project's cache, so mentions the project already holds cost no backbone
pass, but never writes to it). The project is opened without the orphan collection that the app and the
training commands do on open, so its folder is left as it was too.

Types: a gold type is matched to the project's type of the same name (today's name; a type renamed after
training still counts). Examples of a type the project does not have at all are left out and named in the
report (``not_in_project``), and so are those of a project type the model has not learnt yet; the rest
are scored. A file with no example of a learnt type is refused, naming its types.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressSink, Reporter, as_sink
from conpet.data.example import Example
from conpet.eval.labelled_file import EvalReport, evaluate_sentences, examples_of
from conpet.eval.span_metrics import pair_metrics, span_metrics
from conpet.model.logit_cache import MemoryLogitCache
from conpet.project.argument_mask import project_rules
from conpet.project.backbones import BackboneProvider
from conpet.project.model import release
from conpet.project.predict import CurrentModel, current_model, renamed, trained_model_folder
from conpet.suggest.suggestions import load_suggesters


class ReadThroughCache:
    """A ``LogitCache`` that reads the project's cache and keeps what it is given in memory."""

    def __init__(self, stored: Any) -> None:
        self.stored = stored
        self.memory = MemoryLogitCache()

    def get_many(self, keys: Iterable[Any]) -> dict[Any, np.ndarray]:
        keys = list(keys)
        found = self.memory.get_many(keys)
        missing = [k for k in keys if k not in found]
        if missing:
            found.update(self.stored.get_many(missing))
        return found

    def put_many(self, items: Mapping[Any, np.ndarray]) -> None:
        self.memory.put_many(items)


class _RenamedMethod:
    """The method's routing answers in today's type names (what the file's gold labels are)."""

    def __init__(self, method: Any, to_model: Mapping[str, str], to_current: Mapping[str, str]) -> None:
        self.method, self.to_model, self.to_current = method, to_model, to_current

    def task_of_type(self) -> dict[str, int]:
        return {self.to_current.get(k, k): v for k, v in self.method.task_of_type().items()}

    def __getattr__(self, name: str) -> Any:
        if name == "oracle_routing_accuracy" and hasattr(self.method, name):
            return lambda examples: self.method.oracle_routing_accuracy(self.relabel(examples))
        if name in ("oracle_routing_accuracy", "task_of_type"):
            raise AttributeError(name)
        return getattr(self.method, name)

    def relabel(self, examples: Sequence[Example]) -> list[Example]:
        return [dataclasses.replace(e, label=self.to_model.get(e.label, e.label)) for e in examples]


class ProjectModel:
    """A project's current model as ``conpet.eval.labelled_file.evaluate_sentences`` wants it (the interface of a
    loaded ``Bundle``: ``types``, ``kinds``, ``method``, ``predict_examples``, ``suggesters``), in today's type
    names."""

    def __init__(self, model: CurrentModel, method: Any, suggesters: Any, rules: dict | None = None) -> None:
        self.model = model
        self.rules = rules or {}  # relation type -> its declared argument types (``argument_rules``)
        self.suggesters = suggesters  # the mention detector and the relatedness gate (``span_metrics``)
        self.to_current = dict(model.rename)
        self.to_model = {name: label for label, name in model.rename.items()}
        self.method = _RenamedMethod(method, self.to_model, self.to_current)
        self._method = method

    @property
    def types(self) -> list[str]:
        return sorted(self.to_model)

    def argument_rules(self) -> dict:
        return dict(self.rules)

    @property
    def kinds(self) -> set[str]:
        return set(self.model.kinds)

    def predict_examples(self, examples: Sequence[Example], progress: Any = None) -> list[Any]:
        preds = self._method.predict(self.method.relabel(examples), as_sink(progress))
        return [renamed(p, self.to_current) for p in preds]


def evaluate_project(project: Any, path: str | Path, fmt: str | None = None, options: dict | None = None,
                     sink: ProgressSink | None = None, *, oracle: bool = True, device: str | None = None,
                     backbone_provider: BackboneProvider | None = None, threads: int | None = None,
                     sentences: tuple[str, Sequence[Any]] | None = None,
                     mention_threshold: float | None = None) -> EvalReport:
    """Score the current model of ``project`` (a folder or an open ``Project``) on the labelled file
    ``path`` (see the module docstring). ``sentences`` = (format, sentences) already read from ``path``;
    ``mention_threshold`` replaces the detector's saved threshold in the span scores."""
    from conpet.data.formats import read_sentences
    from conpet.store import Project

    t0 = time.monotonic()
    name, read = sentences if sentences is not None else read_sentences(path, fmt, **(options or {}))
    examples = examples_of(read, Path(path).name)
    if not examples:
        raise ConpetError(f"{path}: nothing to evaluate: the file has no labelled entity or relation")
    own = isinstance(project, (str, Path))
    proj = Project.open(project) if own else project  # no orphan collection: evaluate changes nothing
    try:
        return _evaluate(proj, path, name, read, examples, sink, oracle, device, backbone_provider, threads, t0,
                         mention_threshold)
    finally:
        if own:
            proj.close()


def _evaluate(project: Any, path: str | Path, name: str, read: Sequence[Any], examples: list[Example],
              sink: ProgressSink | None, oracle: bool, device: str | None,
              backbone_provider: BackboneProvider | None, threads: int | None, t0: float,
              mention_threshold: float | None = None) -> EvalReport:
    trained_model_folder(project, "evaluate")  # before the types: no model is the first thing to say
    project_types = {t.name for t in project.types.list()}
    outside = Counter(e.label for e in examples if e.label not in project_types)
    if sum(outside.values()) == len(examples):
        raise ConpetError(f"{path}: none of the file's types is a type of the project "
                          f"({_names(outside)}; the project has {_names(project_types)})")
    rep = Reporter(sink)
    model = current_model(project, rep, device, backbone_provider, threads, purpose="evaluate")
    method = suggesters = None
    try:
        method = model.load_method(project, ReadThroughCache(project.logit_cache))
        suggesters = load_suggesters(model.folder, model.backbone, None, mention_threshold)
        evaluable = ProjectModel(model, method, suggesters, project_rules(project))
        learnt = set(evaluable.types)
        if not any(e.label in learnt for e in examples):
            raise ConpetError(f"{path}: no example of a type the project's model has learnt (the file has "
                              f"{_names(Counter(e.label for e in examples))}; the model knows {_names(learnt)})")
        rep(0.0, f"scoring {len(examples)} mention(s) and pair(s) of {Path(path).name}", "evaluation")  # no ETA yet
        report = evaluate_sentences(evaluable, read, path, name, sink, oracle=oracle, started=t0)
        report.spans = span_metrics(evaluable, read, sink)  # the detector's proposals on the raw text
        report.pairs = pair_metrics(evaluable, read, sink)  # the gate's proposals between the gold mentions
    finally:
        release(method)
        if suggesters is not None:
            suggesters.close()
    report.not_in_project = dict(sorted(outside.items()))
    for t in outside:
        report.skipped_unknown_types.pop(t, None)
    return report


def _names(names: Iterable[str], most: int = 8) -> str:
    ordered = sorted(set(names))
    return ", ".join(ordered[:most]) + (f" … ({len(ordered)} in all)" if len(ordered) > most else "")
