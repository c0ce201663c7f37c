"""The app's long jobs as plain functions ``job(..., sink)`` with no Qt in them (Orange3's pattern): the
worker runs them on a QThread, the tests run them directly. Each opens its *own* ``Project`` on the
thread it runs on and closes it at the end; the GUI thread's project object is never shared.

Training is ``conpet.project_training.train_project`` (the same function as ``conpet train``), so the
app, the CLI and bundle export agree on where a project's model lives (``modules/run-NNNN/``, the newest
is the current model) and how its metrics are recorded. Prediction of the whole project is here: it
stores one ``purpose="predict"`` run whose predictions the Predictions and Routing views show.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.data.example import Example, example_id
from conpet.errors import ConpetError
from conpet.project_training import DEFAULT_METHOD
from conpet.protocols import NullProgress, ProgressEvent, ProgressSink, Reporter

DEMO_JSONL = Path(__file__).resolve().parent.parent / "resources" / "demo" / "demo.jsonl"

# The demo's types: description, shortcut key and colour (imported types get the store's palette).
DEMO_TYPES = {
    ("entity", "Person"): ("A named person: a first and last name.", "1", "#4e79a7"),
    ("entity", "City"): ("A city or town.", "2", "#59a14f"),
    ("entity", "Company"): ("A business, firm or lab, by its name.", "3", "#f28e2b"),
    ("entity", "Drug"): ("A medicine or active ingredient.", "4", "#b07aa1"),
    ("entity", "Disease"): ("An illness or medical condition.", "5", "#e15759"),
    ("relation", "works_for"): ("Head (a person) is employed by or works at tail (a company).", "w", "#76b7b2"),
    ("relation", "located_in"): ("Head (a company or place) is located in tail (a city).", "l", "#9c755f"),
    ("relation", "born_in"): ("Head (a person) was born in or grew up in tail (a city).", "b", "#edc948"),
    ("relation", "treats"): ("Head (a drug) is used to treat tail (a disease).", "r", "#ff9da7"),
}

# --------------------------------------------------------------------------------------------- sinks
class RunSink:
    """Forwards the engine's progress to the caller's sink and writes it to the run record (at most once a
    second)."""

    def __init__(self, project: Any, run_id: int, parent: ProgressSink | None) -> None:
        self.project, self.run_id = project, run_id
        self.parent = parent or NullProgress()
        self._last_write = 0.0

    def report(self, event: ProgressEvent) -> None:
        self.parent.report(event)
        now = time.monotonic()
        if now - self._last_write >= 1.0 or event.fraction >= 1.0:
            self._last_write = now
            self.project.runs.update_progress(self.run_id, event.fraction, event.message, stage=event.stage)

    def cancel_requested(self) -> bool:
        return self.parent.cancel_requested()


# ----------------------------------------------------------------------------------------- backbones
BackboneProvider = Callable[[str, str], Any]  # (name or path, device) -> a loaded Backbone (tests pass one)


def default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001
        return "cpu"


# ------------------------------------------------------------------------------------- the demo / import
def create_demo_project(folder: Path, sink: ProgressSink | None = None) -> Path:
    """A new project at ``folder`` holding the demo sentences, with described, coloured, keyed types."""
    from conpet.store import Project
    from conpet.store.importer import import_file

    rep = Reporter(sink)
    with Project.create(folder, name="Demo") as project:
        import_file(project, DEMO_JSONL, "jsonl", progress=lambda f, msg: rep(0.9 * f, msg, "import"),
                    author="demo")
        for t in project.types.list():
            spec = DEMO_TYPES.get((t.kind, t.name))
            if spec:
                desc, key, colour = spec
                project.types.describe(t.id, desc)
                project.types.set_colour(t.id, colour)
                project.types.set_shortcut(t.id, key)
    rep(1.0, "demo project ready", "import")
    return folder


def import_data(folder: Path, path: Path, fmt: str | None, sink: ProgressSink | None = None) -> Any:
    """Import one file into the project (all or nothing); Cancel aborts the transaction."""
    from conpet.store import Project
    from conpet.store.importer import import_file

    rep = Reporter(sink)

    def progress(fraction: float, message: str) -> None:
        rep.check_cancel()  # raising here rolls the import's one transaction back
        rep(fraction, message, "import")

    with Project.open(folder) as project:
        return import_file(project, path, fmt or None, progress=progress)


# ------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainRequest:
    folder: Path
    method: str = DEFAULT_METHOD
    backbone: str = "minilm"
    device: str = "cpu"
    budget: str = "smoke"  # a conpet.config profile: smoke | quick | paper
    min_examples: int = 10
    types: tuple[str, ...] | None = None  # the new task's types (names); None: every ready type
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (tests: a tiny budget)
    threads: int | None = None  # torch CPU threads; None or 0: automatic (conpet.runtime.default_threads)


def train_next_task(req: TrainRequest, sink: ProgressSink | None = None,
                    backbone_provider: BackboneProvider | None = None) -> Any:
    """One "Train new knowledge": ``conpet.project_training.train_project`` (the same code as
    ``conpet train``) on this thread, with its own project session. Returns its ``TrainOutcome``."""
    from conpet.project_training import train_project

    backbone: Any = req.backbone
    if backbone_provider is not None:
        backbone = backbone_provider(req.backbone, req.device)
    return train_project(req.folder, method=req.method, backbone=backbone, min_examples=req.min_examples,
                         profile=req.budget, overrides=req.overrides, device=req.device, sink=sink,
                         types=list(req.types) if req.types else None, threads=req.threads or None)


# ----------------------------------------------------------------------------------------- prediction
@dataclass(frozen=True)
class PredictOutcome:
    run_id: int
    predictions: int
    seconds: float
    backbone_passes: int  # forward passes through the backbone (0 when every logit came from the cache)


def prediction_examples(project: Any, kinds: set[str], sentence_ids: list[int] | None = None) -> list[Example]:
    """One example per distinct marked mention (entity) or pair (relation) of the current annotations,
    with no label (the id does not depend on the gold type, so cached logits survive a correction)."""
    ids = sentence_ids if sentence_ids is not None else project.sentences.ids()
    out: dict[str, Example] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        texts = project.sentences.get_many(part)
        for sid, anns in project.annotations.for_sentences(part).items():
            text = texts[sid].text
            for a in anns:
                if a.kind not in kinds:
                    continue
                eid = example_id(text, a.spans, "", "")
                if eid not in out:
                    out[eid] = Example(text=text, spans=a.spans, label="", kind=a.kind, id=eid,
                                       meta={"sentence_id": sid})
    return list(out.values())


def predict_project(folder: Path, sink: ProgressSink | None = None, *, sentence_ids: list[int] | None = None,
                    device: str | None = None, backbone_provider: BackboneProvider | None = None,
                    threads: int | None = None) -> PredictOutcome:
    """Predict every marked mention and pair with the project's current model and store the predictions
    (with the selector's scores, the active experts and the chosen expert's scores) as one run. Frozen
    modules' logits come from the project's logit cache, so a second pass does no backbone work."""
    from conpet.backbones import BACKBONES, load_backbone
    from conpet.methods.registry import load_method
    from conpet.project_training import current_model_folder, learnt_kinds, read_model_state
    from conpet.runtime import apply_threads
    from conpet.store import Project

    rep = Reporter(sink)
    with Project.open(folder) as project:
        model_folder = current_model_folder(project)
        if model_folder is None:
            raise ConpetError("nothing to predict with yet: train the first task (Train new knowledge…)")
        state, training = read_model_state(model_folder)
        info = training.get("backbone", {})
        name = info.get("name") if info.get("name") in BACKBONES else (info.get("path") or "minilm")
        device = device or default_device()
        apply_threads(threads or None, device)
        rep(0.0, f"loading the {name} backbone", "loading")
        backbone = backbone_provider(name, device) if backbone_provider else load_backbone(name, device=device)
        # the model's labels are the types' names when they were learnt; map them to today's names
        learnt = {int(k): v for k, v in training.get("labels", {}).items()}
        current = {t.id: t for t in project.types.list(include_deleted=True)}
        rename = {label: current[i].name for i, label in learnt.items() if i in current}
        kinds = {current[i].kind for i in learnt if i in current} or {"entity", "relation"}
        run = project.runs.start(state.get("method", "?"), purpose="predict", backbone=backbone.name,
                                 config={"model_folder": model_folder.relative_to(project.folder).as_posix(),
                                         "sentences": len(sentence_ids) if sentence_ids is not None else "all"})
        method = None
        t0 = time.monotonic()
        try:
            with project.runs.recorded(run.id):
                method = load_method(model_folder, backbone, cache=project.logit_cache)  # runs where backbone is
                for label, kind in learnt_kinds(project, learnt).items():  # a model saved before kinds were kept
                    method.type_kinds.setdefault(label, kind)
                examples = prediction_examples(project, kinds, sentence_ids)
                rep(0.02, f"predicting {len(examples)} mention(s) and pair(s)", "evaluation")
                before = method.backbone_forwards
                preds = method.predict(examples, RunSink(project, run.id, sink)) if examples else []
                passes = method.backbone_forwards - before
                preds = [_renamed(p, rename) for p in preds]
                seconds = time.monotonic() - t0
                with project.transaction():
                    n = project.predictions.add_engine_results(run.id, examples, preds)
                    project.runs.update_progress(run.id, 1.0, "stored", stage="done", metrics={
                        "kind": "predict", "predictions": n, "seconds": seconds, "backbone_passes": passes})
                    project.runs.finish(run.id, f"{n} predictions in {seconds:.1f} s ({passes} backbone passes)")
                return PredictOutcome(run.id, n, seconds, passes)
        finally:
            if method is not None and getattr(method, "_pet", None) is not None:
                method.pet.close()


def _renamed(p: Any, names: dict[str, str]) -> Any:
    """A prediction with the types' current names (a type renamed after training keeps its id)."""
    if not any(names.get(k, k) != k for k in [p.label, *p.expert_scores]):
        return p
    return dataclasses.replace(p, label=names.get(p.label, p.label),
                               expert_scores={names.get(k, k): v for k, v in p.expert_scores.items()})
