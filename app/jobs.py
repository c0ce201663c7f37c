"""The app's long jobs as plain functions ``job(..., sink)`` with no Qt in them (Orange3's pattern): the
worker runs them on a QThread, the tests run them directly. Each opens its *own* ``Project`` on the
thread it runs on and closes it at the end; the GUI thread's project object is never shared.

Training is ``conpet.project.training.train_project`` (the same function as ``conpet train``) and
prediction ``conpet.project.predict.predict_project`` (the same as ``conpet predict PROJECT_DIR``) and
evaluation ``conpet.project.evaluate.evaluate_project`` (``conpet evaluate PROJECT_DIR FILE``), so the app
and the CLI agree on where a project's model lives and how its runs are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.core.protocols import ProgressSink, Reporter
from conpet.project.backbones import BackboneProvider
from conpet.project.crossval import DEFAULT_FOLDS
from conpet.project.predict import PredictOutcome
from conpet.project.training import DEFAULT_METHOD

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

# The entity types the demo's relation types take as (head, tail), as their descriptions say.
DEMO_ARGUMENTS = {
    "works_for": (("Person",), ("Company",)),
    "located_in": (("Company", "City"), ("City",)),
    "born_in": (("Person",), ("City",)),
    "treats": (("Drug",), ("Disease",)),
}

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
        for name, (head, tail) in DEMO_ARGUMENTS.items():
            project.types.set_arguments(project.types.find(name, "relation") or name, head=head, tail=tail)
    rep(1.0, "demo project ready", "import")
    return folder


def import_data(folder: str | Path, path: Path, fmt: str | None, options: dict | None = None,
                sink: ProgressSink | None = None) -> Any:
    """Import one file into the project (all or nothing); Cancel aborts the transaction. ``options`` are
    the reader's (e.g. plain text's ``split``)."""
    from conpet.store import Project
    from conpet.store.importer import import_file

    rep = Reporter(sink)

    def progress(fraction: float, message: str) -> None:
        rep.check_cancel()  # raising here rolls the import's one transaction back
        rep(fraction, message, "import")

    with Project.open(folder) as project:
        return import_file(project, path, fmt or None, progress=progress, options=options or None)


# ------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainRequest:
    folder: str | Path  # the project folder or its server's URL
    method: str = DEFAULT_METHOD
    backbone: str = "minilm"
    device: str = "cpu"
    budget: str = "smoke"  # a conpet.core.config profile: smoke | quick | paper | converge
    min_examples: int = 10
    types: tuple[str, ...] | None = None  # the new task's types (names); None: every ready type
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (tests: a tiny budget)
    threads: int | None = None  # torch CPU threads; None or 0: automatic (conpet.core.runtime.default_threads)
    all_data: bool = False  # no held-out split for the new task; a cross-validated accuracy (conpet.project.crossval)
    folds: int = DEFAULT_FOLDS
    refresh_only: bool = False  # no new task: learn the learnt types' changed labels alone
    consolidate: bool = False  # no new task: consolidate the model (conpet.project.consolidation), its own budget


def train_next_task(req: TrainRequest, sink: ProgressSink | None = None,
                    backbone_provider: BackboneProvider | None = None) -> Any:
    """One "Train new knowledge": ``conpet.project.training.train_project`` (the same code as
    ``conpet train``) on this thread, with its own project session. Returns its ``TrainOutcome``."""
    from conpet.project.training import train_project

    backbone: Any = req.backbone
    if backbone_provider is not None:
        backbone = backbone_provider(req.backbone, req.device)
    return train_project(req.folder, method=req.method, backbone=backbone, min_examples=req.min_examples,
                         profile=None if req.consolidate else req.budget, overrides=req.overrides, device=req.device, sink=sink,
                         types=list(req.types) if req.types else None, threads=req.threads or None,
                         all_data=req.all_data, folds=req.folds, refresh_only=req.refresh_only,
                         consolidate=req.consolidate)


# ----------------------------------------------------------------------------------------- prediction
def predict_project(folder: str | Path, sink: ProgressSink | None = None, *, sentence_ids: list[int] | None = None,
                    device: str | None = None, backbone_provider: BackboneProvider | None = None,
                    threads: int | None = None, mention_threshold: float | None = None) -> PredictOutcome:
    """The app's "Predict": ``conpet.project.predict.predict_project`` on this thread."""
    from conpet.project.predict import predict_project as predict

    return predict(folder, sink, sentence_ids=sentence_ids, device=device, backbone_provider=backbone_provider,
                   threads=threads, mention_threshold=mention_threshold)


# ----------------------------------------------------------------------------------------- evaluation
def evaluate_file(folder: str | Path, path: Path, fmt: str | None, sink: ProgressSink | None = None, *,
                  backbone_provider: BackboneProvider | None = None, threads: int | None = None,
                  mention_threshold: float | None = None) -> Any:
    """The app's "Evaluate on a file…": ``conpet.project.evaluate.evaluate_project`` (the same as
    ``conpet evaluate PROJECT_DIR FILE``) on this thread; returns its ``EvalReport``; writes nothing."""
    from conpet.project.evaluate import evaluate_project

    return evaluate_project(folder, path, fmt, sink=sink, backbone_provider=backbone_provider, threads=threads,
                            mention_threshold=mention_threshold)
