"""Predict a project: every marked mention (entity) and pair (relation) of its current annotations, with
its current model, stored as one ``purpose="predict"`` run whose predictions the app's Predictions and
Routing views show and ``conpet predict PROJECT_DIR`` writes out.

Frozen modules' logits come from the project's logit cache, so a second pass over the same sentences
does no backbone work.

When the model has suggesters (``conpet.suggest.suggestions``: a mention detector and a relatedness gate, trained
with the model), the run also holds their proposals, as ordinary predictions that the app shows as
suggestions: the detector's mentions on sentences without gold entity labels, typed by the entity experts
(``expert_scores["detector"]``: the detector's confidence in the span), and the pairs of a sentence's
mentions (gold or proposed) that the gate scores at or above its threshold, typed by the relation experts
(``expert_scores["related"]``: P(related); the pair's score is P(related) × P(type | related), so that a
pair the gate doubts is ranked as doubtful). A model without suggesters predicts marked spans only.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressSink, Reporter
from conpet.data.example import Example, example_id
from conpet.project.argument_mask import fit_argument_types
from conpet.project.backbones import BackboneProvider, recorded_backbone
from conpet.project.lease import hold_lease
from conpet.project.model import current_model_folder, learnt_kinds, open_project, read_model_state, release
from conpet.project.run_progress import RunSink


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


def predict_project(project: Any, sink: ProgressSink | None = None, *, sentence_ids: list[int] | None = None,
                    device: str | None = None, backbone_provider: BackboneProvider | None = None,
                    threads: int | None = None, relation_threshold: float | None = None,
                    mention_threshold: float | None = None) -> PredictOutcome:
    """Predict every marked mention and pair (of ``sentence_ids``, default all) with the project's current
    model and store the predictions (with the selector's scores, the active experts and the chosen expert's
    scores) as one run, with the suggesters' proposals (see the module docstring; ``relation_threshold``
    replaces the gate's saved threshold, ``mention_threshold`` the detector's). ``project`` is a folder or an open ``Project``; the backbone is the
    model's own, from ``backbone_provider`` when given (the app keeps one), on ``device`` (default: cuda when
    available)."""
    proj, close = open_project(project)
    try:
        with hold_lease(proj, "predict"):  # it writes a run: not beside a training (conpet.project.lease)
            return _predict(proj, sink, sentence_ids, device, backbone_provider, threads, relation_threshold,
                            mention_threshold)
    finally:
        if close:
            proj.close()


@dataclass(frozen=True)
class CurrentModel:
    """A project's current model ready to load: its folder and state, the loaded backbone, the learnt
    labels (type id -> label when learnt), today's names of those labels and the kinds they cover."""
    folder: Path
    state: dict[str, Any]
    backbone: Any
    learnt: dict[int, str]
    rename: dict[str, str]
    kinds: set[str]

    def load_method(self, project: Any, cache: Any) -> Any:
        """The engine's method of this model, its logit cache ``cache`` (the project's, or one that
        must not write to it: ``conpet evaluate``)."""
        from conpet.methods.registry import load_method

        method = load_method(self.folder, self.backbone, cache=cache)  # runs where the backbone is
        for label, kind in learnt_kinds(project, self.learnt).items():  # a model saved before kinds were kept
            method.type_kinds.setdefault(label, kind)
        return method


def trained_model_folder(project: Any, purpose: str = "predict") -> Path:
    """The current model's folder; a clear refusal when the project has none yet."""
    model_folder = current_model_folder(project)
    if model_folder is None:
        raise ConpetError(f"{project.where}: nothing to {purpose} with yet: train the first task "
                          "(`conpet train` or Train new knowledge… in the app)")
    return model_folder


def current_model(project: Any, rep: Reporter, device: str | None = None,
                  backbone_provider: BackboneProvider | None = None, threads: int | None = None,
                  purpose: str = "predict") -> CurrentModel:
    """The project's current model with its backbone loaded (``purpose`` names the job in the message
    given when there is no model yet). Shared by prediction and ``conpet evaluate PROJECT_DIR``."""
    from conpet.core.runtime import apply_threads
    from conpet.model.backbones import default_device, load_backbone

    model_folder = trained_model_folder(project, purpose)
    state, training = read_model_state(model_folder)
    name = recorded_backbone(training.get("backbone", {}))
    device = device or default_device()
    apply_threads(threads or None, device)
    rep(0.0, f"loading the {name} backbone", "loading")
    backbone = backbone_provider(name, device) if backbone_provider else load_backbone(name, device=device)
    # the model's labels are the types' names when they were learnt; map them to today's names
    learnt = {int(k): v for k, v in training.get("labels", {}).items()}
    current = {t.id: t for t in project.types.list(include_deleted=True)}
    rename = {label: current[i].name for i, label in learnt.items() if i in current}
    kinds = {current[i].kind for i in learnt if i in current} or {"entity", "relation"}
    return CurrentModel(model_folder, state, backbone, learnt, rename, kinds)


def _predict(project: Any, sink: ProgressSink | None, sentence_ids: list[int] | None, device: str | None,
             backbone_provider: BackboneProvider | None, threads: int | None,
             relation_threshold: float | None = None, mention_threshold: float | None = None) -> PredictOutcome:
    from conpet.suggest.suggestions import load_suggesters

    rep = Reporter(sink)
    model = current_model(project, rep, device, backbone_provider, threads)
    run = project.runs.start(model.state.get("method", "?"), purpose="predict", backbone=model.backbone.name,
                             config={"model_folder": model.folder.relative_to(project.folder).as_posix(),
                                     "sentences": len(sentence_ids) if sentence_ids is not None else "all"})
    method = suggesters = None
    t0 = time.monotonic()
    try:
        with project.runs.recorded(run.id):
            method = model.load_method(project, project.logit_cache)
            examples = prediction_examples(project, model.kinds, sentence_ids)
            suggesters = load_suggesters(model.folder, model.backbone, relation_threshold, mention_threshold)
            rep(0.02, "proposing mentions and pairs", "suggesting")
            proposals = _proposals(project, suggesters, set(method.type_kinds.values()) or model.kinds,
                                   sentence_ids)
            proposals = _unasked(proposals, {ex.id for ex in examples})
            examples += [p.example for p in proposals]
            rep(0.05, f"predicting {len(examples)} mention(s) and pair(s)", "evaluation")
            before = method.backbone_forwards
            with method.job():  # each example is encoded once for the selector's and the experts' passes
                preds = method.predict(examples, RunSink(project, run.id, sink)) if examples else []
            passes = method.backbone_forwards - before
            preds = [renamed(p, model.rename) for p in preds]
            preds = fit_argument_types(project, examples, preds)  # declared head / tail types (not learnt)
            preds = _with_proposal_scores(preds, proposals)  # after the mask, which renormalises the types
            seconds = time.monotonic() - t0
            with project.transaction():
                n = project.predictions.add_engine_results(run.id, examples, preds)
                project.runs.update_progress(run.id, 1.0, "stored", stage="done", metrics={
                    "kind": "predict", "predictions": n, "seconds": seconds, "backbone_passes": passes})
                project.runs.finish(run.id, f"{n} predictions in {seconds:.1f} s ({passes} backbone passes)")
            return PredictOutcome(run.id, n, seconds, passes)
    finally:
        release(method)
        if suggesters is not None:
            suggesters.close()


def _proposals(project: Any, suggesters: Any, kinds: set[str], sentence_ids: list[int] | None) -> list[Any]:
    from conpet.project.suggesters import sentence_inputs
    from conpet.suggest.suggestions import suggest

    if suggesters.detector is None and suggesters.relatedness is None:
        return []
    ids = sentence_ids if sentence_ids is not None else project.sentences.ids()
    _, inputs = sentence_inputs(project, ids)
    return suggest(suggesters, inputs, kinds)


def _unasked(proposals: list[Any], asked: set[str]) -> list[Any]:
    """The proposals whose question is not asked already (a marked span, or an earlier proposal)."""
    out = []
    for p in proposals:
        if p.example.id not in asked:
            asked.add(p.example.id)
            out.append(p)
    return out


def _with_proposal_scores(preds: list[Any], proposals: list[Any]) -> list[Any]:
    """Each proposal's prediction with the suggester's score in its ``expert_scores``."""
    from conpet.suggest.suggestions import with_scores

    scores = {p.example.id: p.scores for p in proposals}
    return [with_scores(p, scores[p.example_id]) if p.example_id in scores else p for p in preds]


def renamed(p: Any, names: dict[str, str]) -> Any:
    """A prediction with the types' current names (a type renamed after training keeps its id)."""
    if not any(names.get(k, k) != k for k in [p.label, *p.expert_scores]):
        return p
    return dataclasses.replace(p, label=names.get(p.label, p.label),
                               expert_scores={names.get(k, k): v for k, v in p.expert_scores.items()})


def write_run_predictions(project: Any, run_id: int, out: TextIO) -> int:
    """Write a prediction run's predictions as JSONL, one line per sentence in the order of its id:
    ``{"id": sentence id, "text": ..., "predictions": [...]}`` with each prediction as ``conpet predict
    BUNDLE`` writes it (``conpet.bundle.MentionPrediction.to_dict``). Returns the number of sentences."""
    from conpet.bundle import MentionPrediction, SentencePrediction

    by_sentence: dict[int, list[Any]] = {}
    for rec in project.predictions.for_run(run_id):
        by_sentence.setdefault(rec.sentence_id, []).append(rec)
    ids = sorted(by_sentence)
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        texts = project.sentences.get_many(part)
        for sid in part:
            text = texts[sid].text
            mentions = [MentionPrediction(kind=r.kind, spans=r.spans, text=_mention_text(text, r.spans),
                                          label=r.label, score=r.score,
                                          selector_scores=list(r.selector_scores or []) or None,
                                          active_experts=list(r.active_experts or []) or None,
                                          expert_scores=dict(r.expert_scores), module_versions=dict(r.module_versions),
                                          example_id=r.example_id)
                        for r in sorted(by_sentence[sid], key=lambda r: (r.start, r.end, r.tail_start or -1))]
            out.write(json.dumps(SentencePrediction(text, str(sid), mentions).to_dict(), ensure_ascii=False) + "\n")
    return len(ids)


def _mention_text(text: str, spans: Any) -> str:
    parts = [text[s.start:s.end] for s in spans]
    return " -> ".join(parts)
